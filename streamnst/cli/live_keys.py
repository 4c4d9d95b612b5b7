"""Terminal side of `streamnst live`: a rich status panel and single-key controls."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
from collections.abc import Iterator

from rich.table import Table
from rich.text import Text

from streamnst.core.errors import StreamNSTError
from streamnst.live.control import LiveControl
from streamnst.live.pipeline import Pipeline

KEYS_HELP = ("keys: n/p next/prev style  [/] mix less/more  m mix with next  b blend mode  "
             "+/- strength  c keep colours  f keep face  a auto scale on/off  q quit")


def status_table(pipeline: Pipeline) -> Table:
    s = pipeline.summary()
    table = Table(title="streamnst live", show_header=False, min_width=60)
    table.add_column(style="bold")
    table.add_column()
    src = pipeline.source
    table.add_row("source", f"{src.name}  {s.source_fps:.1f} fps  captured {s.captured}")
    table.add_row("output", f"{s.fps:.1f} fps  frames {s.frames_out}  "
                  f"dropped {s.dropped}  CPU {s.cpu_ms_per_frame:.0f} ms/frame "
                  f"({s.cores} cores)")
    table.add_row("latency", f"p50 {s.latency_p50_ms:.0f} ms  p95 {s.latency_p95_ms:.0f} ms"
                  f"  (stylise+blend {s.infer_ms_median:.0f} ms)")
    style = s.style + (f"  (loading {pipeline.switching}...)" if pipeline.switching else "")
    if pipeline.switch_error:
        style += f"  [red]{pipeline.switch_error}[/]"
    if s.mix_style and s.mix > 0:
        style += f"  + {s.mix:.0%} {s.mix_style}"
    if s.keep_colors:
        style += "  in the input's colours"
    if s.keep_face > 0:
        style += f"  keeping {s.keep_face:.0%} of faces"
    table.add_row("style", style)
    auto = f" (auto for {s.target_fps:g} fps)" if s.auto_scale else ""
    table.add_row("blend", f"{s.blend}  strength {s.strength:.2f}  "
                  f"scale {s.scale:.2f}{auto}")
    table.add_row("device", f"{s.device} {s.dtype}")
    for name, info in s.sinks.items():
        table.add_row("sink", f"{name}: sent {info['sent']}, dropped {info['dropped']}")
    for problem in s.sink_problems:
        table.add_row("[yellow]sink[/]", f"[yellow]{problem}[/]")
    table.caption = Text(KEYS_HELP)  # plain text: "[/]" would read as a markup tag
    return table


def window_overlay(pipeline: Pipeline) -> str:
    """One line drawn on the preview window."""
    s = pipeline.summary()
    return (f"{s.style} | {s.fps:.1f} fps | p95 {s.latency_p95_ms:.0f} ms | "
            f"{s.blend} {s.strength:.2f}")


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
