"""Terminal side of `streamnst live`: a rich status panel and single-key controls."""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import threading
from collections.abc import Iterator

from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from streamnst.cli.app import console, out
from streamnst.core.errors import StreamNSTError
from streamnst.core.signals import stop_requested
from streamnst.live.control import LiveControl
from streamnst.live.pipeline import Pipeline

KEYS_HELP = ("keys: n/p next/prev style  [/] mix less/more  m mix with next  b blend mode  "
             "+/- strength  c keep colours  f keep face  a auto scale on/off  q quit")


def status_table(pipeline: Pipeline) -> Table:
    """The status panel. Every name in it (styles, sources, outputs, problems) is the
    user's: Text, never read as rich markup (a style named "[/red]x" crashed it)."""
    s = pipeline.summary()
    table = Table(title="streamnst live", show_header=False, min_width=60)
    table.add_column(style="bold")
    table.add_column()
    src = pipeline.source
    table.add_row("source", Text(f"{src.name}  {s.source_fps:.1f} fps  captured {s.captured}"))
    table.add_row("output", f"{s.fps:.1f} fps  frames {s.frames_out}  "
                  f"dropped {s.dropped}  CPU {s.cpu_ms_per_frame:.0f} ms/frame "
                  f"({s.cores} cores)")
    table.add_row("latency", f"p50 {s.latency_p50_ms:.0f} ms  p95 {s.latency_p95_ms:.0f} ms"
                  f"  (stylise+blend {s.infer_ms_median:.0f} ms)")
    style = Text(s.style + (f"  (loading {pipeline.switching}...)"
                            if pipeline.switching else ""))
    if pipeline.switch_error:
        style.append(f"  {pipeline.switch_error}", style="red")
    if s.mix_style and s.mix > 0:
        style.append(f"  + {s.mix:.0%} {s.mix_style}")
    if s.keep_colors:
        style.append("  in the input's colours")
    if s.keep_face > 0:
        style.append(f"  keeping {s.keep_face:.0%} of faces")
    table.add_row("style", style)
    scaler = pipeline.autoscaler
    auto = f" (auto for {s.target_fps:g} fps)" if s.auto_scale else ""
    if scaler is not None and scaler.reason:  # why it moved last: a busy machine, say
        auto += f", {scaler.reason}"
    table.add_row("blend", f"{s.blend}  strength {s.strength:.2f}  "
                  f"scale {s.scale:.2f}{auto}")
    table.add_row("device", f"{s.device} {s.dtype}")
    for name, info in s.sinks.items():
        table.add_row("sink", Text(f"{name}: sent {info['sent']}, dropped {info['dropped']}"))
    for problem in s.sink_problems:
        # one line each: the whole hint was printed once at the start (7 lines a refresh)
        table.add_row("[yellow]sink[/]", Text(problem, style="yellow", no_wrap=True,
                                              overflow="ellipsis"))
    table.caption = Text(KEYS_HELP)  # plain text: "[/]" would read as a markup tag
    return table


@contextlib.contextmanager
def key_reader() -> Iterator[callable]:
    """Yield a function returning the next pressed key or None (non-blocking).

    Only on a POSIX terminal; elsewhere the function always returns None.
    """
    if not sys.stdin.isatty() or os.name != "posix":
        yield lambda: None
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)

        def read() -> str | None:
            ready, _, _ = select.select([sys.stdin], [], [], 0)
            return sys.stdin.read(1) if ready else None

        yield read
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def handle_key(key: str, pipeline: Pipeline, stop: threading.Event) -> None:
    """Apply one control key to a running pipeline (through the one LiveControl)."""
    control = LiveControl(pipeline)
    if key in ("q", "\x1b"):
        stop.set()
    elif key in ("n", "p"):
        control.step_style(1 if key == "n" else -1)
    elif key == "b":
        control.cycle_blend()
    elif key == "a":
        control.toggle_auto_scale()
    elif key == "c":
        control.toggle_keep_colors()
    elif key == "f":
        control.cycle_keep_face()
    elif key in ("+", "=", "-"):
        control.nudge_strength(-1 if key == "-" else 1)
    elif key in ("[", "]", "m"):
        try:
            if key == "m":
                control.step_mix_style()
            else:
                control.nudge_mix(1 if key == "]" else -1)
        except StreamNSTError as exc:  # a style file of its own does not mix: say why
            pipeline.styles.error = str(exc)


def run_session(pipeline: Pipeline, as_json: bool) -> None:
    """Start the pipeline, show the status panel and take keys until it ends or Ctrl+C,
    then stop it and print the summary."""
    try:
        summary = _watch(pipeline)
    except Exception as exc:
        if as_json:  # a script still gets its summary, with why the run ended
            out.print_json(json.dumps({**_partial_summary(pipeline), "error": str(exc)}))
        raise
    if as_json:
        out.print_json(json.dumps(summary.as_dict()))
    else:
        console.print(f"{summary.frames_out} frames at {summary.fps:.1f} fps, latency p50 "
                      f"{summary.latency_p50_ms:.0f} ms / p95 {summary.latency_p95_ms:.0f}"
                      f" ms, dropped {summary.dropped}")


def _partial_summary(pipeline) -> dict:
    try:
        return pipeline.summary().as_dict()
    except Exception:  # a run that failed before its first frame has no statistics yet
        return {"frames_out": pipeline.stats.frames_out}


def _watch(pipeline):
    """Start, show the status panel and take keys until the end or Ctrl+C; stop."""
    # from the start a signal only sets `stop` (seen: one SIGINT raised as an exception in a
    # few hundred during a style switch was swallowed there and left the filter running; and
    # one that came while an output was connecting was lost); a second one while stop()
    # finishes the recordings changes nothing, and every join in stop() has a timeout, so
    # that cannot hang
    with stop_requested(restore=False) as stop:
        pipeline.start(stop)
        for problem in pipeline.sink_problems:
            console.print(f"[yellow]warning:[/] {escape(problem.message)}", highlight=False,
                          soft_wrap=True)
        with key_reader() as read_key, Live(status_table(pipeline), console=console,
                                            refresh_per_second=4,
                                            transient=not console.is_terminal) as view:
            while not pipeline.wait(0.05) and not stop.is_set():
                key = read_key()
                if key:
                    handle_key(key, pipeline, stop)
                view.update(status_table(pipeline))
        return pipeline.stop()
