"""How busy this machine's cores are, from Linux's /proc/stat. Free of torch: the CLI reads it before torch
loads (to choose how OpenMP's idle threads wait), and the benchmark while it times its models' steps."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager


def cpu_ticks(stat: str = "/proc/stat") -> tuple[int, int]:
    """(all, idle) clock ticks of every core together since boot, from Linux's /proc/stat."""
    with open(stat) as f:
        ticks = [int(t) for t in f.readline().split()[1:9]]   # user nice system idle iowait irq softirq steal
    return sum(ticks), ticks[3] + ticks[4]


def busy_cores(window: float = 0.05, stat: str = "/proc/stat") -> float | None:
    """How many cores other processes keep busy now: /proc/stat read ``window`` seconds apart, or where
    there is none, the one-minute load average (None on Windows). The load average lags by a minute:
    the demo started just after a minute of both cores busy (load average 1.4-1.9) waited passively by
    it and took 243 s; by the ticks of now it took 126 s, with the same test probabilities
    (docs/PERFORMANCE.md (f), session 40). Sampling costs ``window`` seconds of each command's start."""
    try:
        total0, idle0 = cpu_ticks(stat)
        time.sleep(window)
        total1, idle1 = cpu_ticks(stat)
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    if total1 <= total0:
        return None
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / (total1 - total0))


@contextmanager
def load_of_others(stat: str = "/proc/stat"):
    """Yields a dict whose 'cores', once the block ends, says how many cores other processes kept busy while it
    ran: every core's busy time from /proc/stat less this process's own CPU time (all its threads), over the
    block's wall time; None where /proc/stat cannot be read (macOS, Windows) or no tick passed."""
    seen: dict = {"cores": None}
    try:
        before = cpu_ticks(stat)
    except (OSError, ValueError, IndexError):
        before = None
    own0, wall0 = time.process_time(), time.perf_counter()
    yield seen
    if before is None:
        return
    try:
        total, idle = cpu_ticks(stat)
    except (OSError, ValueError, IndexError):
        return
    wall = time.perf_counter() - wall0
    if total <= before[0] or wall <= 0:
        return
    every = (os.cpu_count() or 1) * (1 - (idle - before[1]) / (total - before[0]))
    seen["cores"] = max(0.0, every - (time.process_time() - own0) / wall)
