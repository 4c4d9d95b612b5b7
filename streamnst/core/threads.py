"""How many threads an offline command gives torch, decided at start-up from what the
machine is doing then.

torch's OpenMP threads wait for each other at the end of every operation: when another
program holds one of the cores, the thread scheduled after it holds back all the others.
Measured on 2 cores, 90 demo frames through `stylize` (start-up included): quiet, 2
threads 10.1 s and 1 thread 12.3 s; beside one busy process, 2 threads 42.2 s and 1
thread 12.2 s. So a command counts the cores other programs leave idle and uses that many.
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger(__name__)
SAMPLE_S = 0.25  # long enough to see a busy neighbour, short beside a command's start-up


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields[:8])


def idle_cores(sample_s: float = SAMPLE_S) -> float | None:
    """How many cores' worth of CPU went unused over the next `sample_s` seconds (this
    process is asleep meanwhile, so it is the others' use); None where it cannot tell."""
    before = _cpu_times()
    time.sleep(sample_s)
    after = _cpu_times()
    if before is None or after is None or after[1] <= before[1]:
        return None
    share = (after[0] - before[0]) / (after[1] - before[1])
    return share * (os.cpu_count() or 1)


def offline_threads(requested: int | None = None) -> int:
    """torch's thread count for an offline command: `requested` if given, else the cores
    left idle by other programs now (at least 1, at most this process's cores)."""
    if requested:
        return requested
    n = cores()
    idle = idle_cores()
    threads = n if idle is None else max(1, min(n, int(idle + 0.3)))
    log.info("threads: %d of %d cores (%s)", threads, n,
             "could not read the load" if idle is None else
             f"{idle:.1f} cores idle before start")
    return threads
