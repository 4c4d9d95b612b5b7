"""Adaptive working scale: the decision rule on measured frame times, and a live pipeline
that adapts, hands control to a user's fixed scale, and takes it back."""

from __future__ import annotations

import io
import random
import threading
import time
from itertools import pairwise

import pytest
from rich.console import Console

from streamnst.cli.live_keys import handle_key, status_table
from streamnst.core.errors import InputError
from streamnst.engine.autoscale import LADDER, AutoScale
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.live.pipeline import Pipeline
from streamnst.live.sinks import NullSink
from streamnst.live.sources import PatternSource


def feed(scaler: AutoScale, ms: float, n: int) -> list[float]:
    return [s for s in (scaler.observe(ms) for _ in range(n)) if s is not None]


def test_over_budget_jumps_to_the_largest_scale_predicted_to_fit():
    a = AutoScale(30.0)  # 33.3 ms
    assert feed(a, 60.0, a.warmup + a.window - 1) == []  # warm-up frames, then a window
    assert a.observe(60.0) == 0.7  # 60 ms x 0.7^2 = 29.4 ms fits, 0.8 (38.4) does not
    assert a.changes == 1
    # the status line says why: the frame time against the budget
    assert a.reason == "down: frames took 60 ms against 33 ms for 30 fps"


def test_the_live_panel_says_why_the_scale_moved(tiny_style):
    pipe = Pipeline(PatternSource(64, 48, fps=30), Stylizer(tiny_style, StylizerSettings(
        device="cpu", dtype="fp32")), [NullSink()], auto_scale=True)
    pipe._start_autoscale()
    feed(pipe.autoscaler, 60.0, pipe.autoscaler.warmup + pipe.autoscaler.window)
    console = Console(file=io.StringIO(), width=200)
    console.print(status_table(pipe))
    assert "down: frames took 60 ms against 33 ms" in console.file.getvalue()


def test_keeps_full_size_while_frames_come_within_tolerance():
    a = AutoScale(30.0, warmup=0)  # 33.3 ms; tolerated up to 37.0 ms (27 fps)
    assert feed(a, 36.0, 3 * a.window) == [] and a.scale == 1.0
    assert feed(a, 38.0, a.window) == [0.9]  # 38 x 0.81 = 30.8 ms fits the whole budget
    strict = AutoScale(30.0, warmup=0, tolerance=1.0)
    assert feed(strict, 34.0, strict.window) == [0.9]


def test_one_slow_frame_changes_nothing():
    a = AutoScale(30.0, warmup=0)
    assert feed(a, 10.0, 7) + feed(a, 900.0, 1) + feed(a, 10.0, 7) == []
    assert a.scale == 1.0


def test_impossible_budget_ends_at_the_floor_and_stays():
    a = AutoScale(1000.0)
    assert feed(a, 50.0, 200)[-1] == LADDER[-1]
    assert a.scale == 0.5 and a.changes == 1


def _simulate(a: AutoScale, cost, frames: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    history = []
    for _ in range(frames):
        a.observe(cost(a.scale) * rng.uniform(0.9, 1.1))
        history.append(a.scale)
    return history


def test_settles_without_oscillating_when_cost_has_a_fixed_part():
    # 12 ms fixed (decode, flow) + 40 ms x pixels: 1.0 costs 52 ms, 0.7 costs 31.6 ms
    def cost(s: float) -> float:
        return 12.0 + 40.0 * s * s

    a = AutoScale(30.0)
    history = _simulate(a, cost, 600)
    assert len(set(history[200:])) == 1, "still switching after 200 frames"
    final = history[-1]
    assert cost(final) <= a.budget_ms  # keeps up...
    assert final >= 0.6 and a.changes <= 3  # ...without giving up more detail than needed


def test_steps_back_up_when_the_machine_frees_up():
    a = AutoScale(30.0)
    _simulate(a, lambda s: 80.0 * s * s, 300)
    assert a.scale < 0.7
    history = _simulate(a, lambda s: 10.0 * s * s, 300, seed=1)
    assert history[-1] == 1.0
    moves = [(LADDER.index(x), LADDER.index(y)) for x, y in pairwise(history) if x != y]
    assert len(moves) >= 2 and all(i - j == 1 for i, j in moves)  # one step at a time, up


def test_bad_settings():
    with pytest.raises(InputError, match="target fps"):
        AutoScale(0.0)
    with pytest.raises(InputError, match="descending"):
        AutoScale(30.0, ladder=(0.5, 1.0))
    with pytest.raises(InputError, match="tolerance"):
        AutoScale(30.0, tolerance=1.5)


def _wait(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _panel(pipe: Pipeline) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(status_table(pipe))
    return console.export_text()


def test_live_pipeline_adapts_then_obeys_a_fixed_scale(tiny_style):
    stylizer = Stylizer(tiny_style, StylizerSettings(device="cpu"))
    # a budget no machine meets: the scale must fall to the floor while frames keep flowing
    pipe = Pipeline(PatternSource(96, 64, fps=60), stylizer, [NullSink()],
                    auto_scale=True, target_fps=100_000).start()
    try:
        assert _wait(lambda: pipe.summary().scale == LADDER[-1])
        s = pipe.summary()
        assert s.auto_scale and s.target_fps == 100_000 and s.scale_changes >= 1
        assert "scale 0.50 (auto for 100000 fps)" in _panel(pipe)
        assert "[/] mix less/more" in _panel(pipe)  # the keys line, printed as written
        pipe.set_scale(0.8)  # a user's choice: adaptation stops
        frames = pipe.summary().frames_out
        assert _wait(lambda: pipe.summary().frames_out > frames + 40)
        s = pipe.summary()
        assert s.scale == 0.8 and not s.auto_scale
        handle_key("a", pipe, threading.Event())  # the panel's key: adapt again...
        assert pipe.summary().auto_scale and pipe.summary().scale == 0.8  # from here
        assert _wait(lambda: pipe.summary().scale == LADDER[-1])
        handle_key("a", pipe, threading.Event())  # ...and stop, keeping the reached scale
        assert not pipe.summary().auto_scale and pipe.summary().scale == LADDER[-1]
    finally:
        pipe.stop()
