"""The click group, options shared by several commands, and the entry point that turns
every streamnst error into one line."""

from __future__ import annotations

import logging
import signal
import sys

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from streamnst.core.errors import StreamNSTError
from streamnst.live import LIVE_MAX_SIDE

console = Console(stderr=True)
out = Console()


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=console, show_path=False)], force=True)


#: command -> (the module under streamnst/cli that defines it, its line in `--help`):
#: `streamnst --help` lists the commands without importing them (they import torch, which
#: takes seconds); a command's module is imported when it runs or shows its own help
COMMANDS = {
    "bench": ("offline_cmds", "Measure stylisation speed of each network and backend"),
    "eval": ("offline_cmds", "Temporal consistency and style fidelity of a stylised video"),
    "export": ("offline_cmds", "Export a style network to ONNX"),
    "gatys": ("offline_cmds", "Reference render by optimisation (Gatys et al.)"),
    "live": ("live_cmd", "Run the live filter: capture, stylise, blend, send to outputs"),
    "styles": ("styles_cmds", "List installed styles, or show one style's recipe"),
    "stylize": ("offline_cmds", "Stylise an image or a video file"),
    "train": ("styles_cmds", "Train a style network on a painting"),
    "train-bank": ("styles_cmds", "Train one network for many paintings (a style bank)"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when used (see COMMANDS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            import importlib

            try:
                importlib.import_module(f"streamnst.cli.{COMMANDS[name][0]}")
            except ImportError as exc:  # a torch/torchvision mismatch, a broken install
                _error_line(f"cannot load the {name} command ({exc}); reinstall streamnst "
                            "with matching torch and torchvision (see the README)")
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1] if name in COMMANDS else
                 self.commands[name].get_short_help_str()) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="streamnst")
def cli(verbose: int) -> None:
    """Real-time, flicker-free neural style transfer for cameras, screens and files."""
    _setup_logging(verbose)


class ScaleParam(click.ParamType):
    """A number from 0.1 to 1, or "auto" (live only: adapt to keep the frame rate)."""

    name = "SCALE|auto"

    def convert(self, value, param, ctx):
        if value is None or value == "auto" or isinstance(value, float):
            return value
        try:
            return float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number from 0.1 to 1 nor 'auto'", param, ctx)


def dataclass_options(cls, skip: frozenset[str] = frozenset(), helps: dict | None = None,
                      choices: dict | None = None, types: dict | None = None):
    """A decorator adding one flag per field of the dataclass `cls` (its defaults shown):
    `--field-name`, typed by its default, with help, choices and types from the dicts (a
    field defaulting to None needs its type there). The one way a command's settings
    become options, so they never drift from the settings themselves."""
    from dataclasses import MISSING, fields

    helps, choices, types = helps or {}, choices or {}, types or {}

    def add(f):
        for fld in reversed(fields(cls)):
            if fld.name in skip or fld.default is MISSING:
                continue
            flag = "--" + fld.name.replace("_", "-")
            kind = click.Choice(choices[fld.name]) if fld.name in choices \
                else types.get(fld.name, type(fld.default))
            if kind is bool:
                flag = f"{flag}/--no-{fld.name.replace('_', '-')}"
            f = click.option(flag, fld.name, type=None if kind is bool else kind,
                             default=fld.default, show_default=True,
                             help=helps.get(fld.name))(f)
        return f
    return add


def stylizer_options(f):
    """Options shared by every command that runs a style network."""
    f = click.option("--style", "-s", default=None, metavar="NAME|PATH",
                     help="Installed style name or .pth checkpoint (default: starry_night).")(f)
    f = click.option("--device", default="auto", show_default=True,
                     help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")(f)
    f = click.option("--dtype", default="auto", show_default=True,
                     type=click.Choice(["auto", "fp32", "bf16", "fp16", "int8"]),
                     help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, int8 on "
                          "CPUs with VNNI and no bf16, else fp32. int8: ONNX Runtime's "
                          "quantised network, CPU only.")(f)
    f = click.option("--scale", default=None, type=ScaleParam(),
                     help="Stylise at this fraction of the working size (0.1-1), resize "
                          "back. live: auto by default (steps between 1 and 0.5 to keep up "
                          "with --fps-target); elsewhere 1.")(f)
    f = click.option("--max-side", default=None, type=click.IntRange(min=0),
                     help="Longest side the network works at; bigger frames are stylised "
                          f"smaller and resized back (live: {LIVE_MAX_SIDE} by default; "
                          "0 or unset elsewhere: no cap).")(f)
    f = click.option("--threads", default=None, type=int,
                     help="CPU threads for inference (live: 1 on up to 4 cores, else half "
                          "of them; elsewhere the cores other programs leave idle at the "
                          "start; -v says how many).")(f)
    f = click.option("--backend", default="torch", show_default=True,
                     type=click.Choice(["torch", "onnx"]),
                     help="torch, or onnx (ONNX Runtime, fp32; CUDA/TensorRT when installed).")(f)
    f = click.option("--shading", default=None, type=click.FloatRange(0.0, 1.0),
                     help="Give back this much (0-1) of the input's broad light and shade: "
                          "faces keep their modelling and the glow some styles paint around "
                          "people goes (default: the style's own setting).")(f)
    f = click.option("--palette", default=None, type=click.FloatRange(0.0, 1.0),
                     help="Move each frame's colours this far (0-1) toward the painting's, "
                          "over the whole frame (default: the style's own setting, else 0; "
                          "styles learnt with --quick store one).")(f)
    f = click.option("--canvas", default=None, type=click.FloatRange(0.0, 32.0),
                     help="Strength (levels of 255) of the fixed grain the network paints "
                          "flat walls from; 0 leaves them flat (default: the amount the "
                          "style was trained with).")(f)
    f = click.option("--keep-colors", is_flag=True,
                     help="Keep the input's colours: the painting's light, dark and strokes "
                          "in the camera's own colours.")(f)
    f = click.option("--keep-face", default=None, type=click.FloatRange(0.0, 1.0),
                     help="Let this much (0-1) of a person's own face show through the "
                          "painting: 0 paints it like the rest, 1 leaves it as the camera "
                          "saw it (default: the style's own setting, else 0.6 in live "
                          "and 0 in files).")(f)
    return f


def make_stylizer(style, device, dtype, scale, threads, backend="torch", max_side=None,
                  shading=None, canvas=None, keep_colors=False, keep_face=None,
                  palette=None):
    from streamnst.engine.stylizer import Stylizer, StylizerSettings
    from streamnst.nets.checkpoint_io import DEFAULT_STYLE

    if scale == "auto":
        raise StreamNSTError("--scale auto adapts to a live frame rate, so only `streamnst "
                             "live` takes it; give a number from 0.1 to 1")
    if threads is None and not str(device).startswith(("cuda", "mps")):
        from streamnst.core.threads import offline_threads

        threads = offline_threads()  # the cores other programs leave idle (core/threads.py)
    settings = StylizerSettings(device=device, dtype=dtype,
                                scale=1.0 if scale is None else scale, threads=threads,
                                backend=backend, max_side=max_side or None, shading=shading,
                                canvas=canvas, keep_colors=keep_colors, keep_face=keep_face,
                                palette=palette)
    return Stylizer(style or DEFAULT_STYLE, settings)


def progress_bar() -> Progress:
    """The progress display every long command shows: label, bar, count, one text field
    (`info`), elapsed and remaining time."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console)


def blend_options(f):
    f = click.option("--blend", default="flow", show_default=True,
                     type=click.Choice(["off", "ema", "flow"]),
                     help="Frame-to-frame blending: flow-guided (no ghosts), plain ema, or off.")(f)
    f = click.option("--strength", default=0.7, show_default=True, type=float,
                     help="Weight of the previous output in the blend (0-0.95).")(f)
    return f


def _error_line(message: object) -> None:
    """One unwrapped line on stderr (rich would wrap it at the terminal's width), exit 2."""
    text = " ".join(str(message).split())
    style = console.is_terminal and not console.no_color
    click.echo(click.style("error:", fg="red", bold=True) + " " + text if style
               else f"error: {text}", err=True)
    sys.exit(2)


def _sigterm_as_ctrl_c() -> None:
    """SIGTERM (`kill`, a service manager, a container stop) stops like Ctrl+C: threads
    joined, recordings finished, training state saved. SIGINT always does, even when the
    process started with it ignored (as a shell script's background job does): a
    `kill -INT` must not be lost."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main() -> None:
    """Entry point: any streamnst error becomes one clear line and exit status 2."""
    _sigterm_as_ctrl_c()
    try:
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except StreamNSTError as exc:
        _error_line(exc)
    except click.exceptions.Abort:  # click's name for Ctrl+C (or SIGTERM) in a command
        console.print("interrupted")
        sys.exit(130)
    except click.UsageError as exc:  # a wrong option or argument: one line, like ours
        where = exc.ctx.command_path if exc.ctx else "streamnst"
        _error_line(f"{exc.format_message()} (see '{where} --help')")
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except OSError as exc:
        _error_line(exc.strerror and f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")
                    or exc)


if __name__ == "__main__":
    main()
