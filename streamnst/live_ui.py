"""Terminal side of `streamnst live`: a rich status panel and single-key controls."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
from collections.abc import Iterator

from rich.table import Table

from .checkpoints import available_styles
from .pipeline import Pipeline
from .temporal import MODES, BlendSettings

KEYS_HELP = "keys: n/p next/prev style  b blend mode  +/- strength  a auto scale on/off  q quit"


def status_table(pipeline: Pipeline) -> Table:
    s = pipeline.summary()
    table = Table(title="streamnst live", show_header=False, min_width=60)
    table.add_column(style="bold")
    table.add_column()
    src = pipeline.source
    table.add_row("source", f"{src.name}  {s['source_fps']:.1f} fps  captured {s['captured']}")
    table.add_row("output", f"{s['fps']:.1f} fps  frames {s['frames_out']}  "
                  f"dropped {s['dropped']}")
    table.add_row("latency", f"p50 {s['latency_p50_ms']:.0f} ms  p95 {s['latency_p95_ms']:.0f} ms"
                  f"  (stylise+blend {s['infer_ms_median']:.0f} ms)")
    style = s["style"] + (f"  (loading {pipeline.switching}...)" if pipeline.switching else "")
    if pipeline.switch_error:
        style += f"  [red]{pipeline.switch_error}[/]"
    table.add_row("style", style)
    auto = f" (auto for {s['target_fps']:g} fps)" if s["auto_scale"] else ""
    table.add_row("blend", f"{s['blend']}  strength {s['strength']:.2f}  "
                  f"scale {s['scale']:.2f}{auto}")
    table.add_row("device", f"{s['device']} {s['dtype']}")
    for name, info in s["sinks"].items():
        table.add_row("sink", f"{name}: sent {info['sent']}, dropped {info['dropped']}")
    for problem in s["sink_problems"]:
        table.add_row("[yellow]sink[/]", f"[yellow]{problem}[/]")
    table.caption = KEYS_HELP
    return table


def window_overlay(pipeline: Pipeline) -> str:
    """One line drawn on the preview window."""
    s = pipeline.summary()
    return (f"{s['style']} | {s['fps']:.1f} fps | p95 {s['latency_p95_ms']:.0f} ms | "
            f"{s['blend']} {s['strength']:.2f}")


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
    """Apply one control key to a running pipeline."""
    if key in ("q", "\x1b"):
        stop.set()
    elif key in ("n", "p"):
        names = list(available_styles())
        if names:
            current = pipeline.stylizer.name
            i = names.index(current) if current in names else -1
            pipeline.switch_style(names[(i + (1 if key == "n" else -1)) % len(names)])
    elif key == "b":
        cur = pipeline.blender.settings
        mode = MODES[(MODES.index(cur.mode) + 1) % len(MODES)]
        pipeline.set_blend(BlendSettings(mode, cur.strength, cur.flow_max_side))
    elif key == "a":  # off: keep the scale adaptation has reached; on: adapt from there
        pipeline.set_scale(pipeline.stylizer.settings.scale if pipeline.autoscaler else "auto")
    elif key in ("+", "=", "-"):
        cur = pipeline.blender.settings
        step = 0.05 if key != "-" else -0.05
        strength = min(0.95, max(0.0, round(cur.strength + step, 2)))
        pipeline.set_blend(BlendSettings(cur.mode, strength, cur.flow_max_side))
