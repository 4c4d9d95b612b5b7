"""Offline commands count the cores other programs leave idle (core/threads.py)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from streamnst.core.threads import cores, idle_cores, offline_threads


def test_a_busy_neighbour_takes_a_core_from_the_count():
    quiet = idle_cores(0.5)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        loaded = idle_cores(0.5)
    finally:
        busy.kill()
        busy.wait()
    assert quiet is not None and loaded is not None
    assert loaded < quiet - 0.5  # one core's worth went to the busy loop
    if cores() >= 2:
        assert 1 <= offline_threads() <= cores()


def test_an_explicit_count_is_kept():
    assert offline_threads(3) == 3


@pytest.mark.skipif(cores() < 2, reason="needs 2 cores to leave one idle")
def test_a_render_beside_a_busy_loop_uses_the_idle_core_only():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert offline_threads() <= cores() - 1  # before: every core, and 4x slower
    finally:
        busy.kill()
        busy.wait()
