"""Issue #8 (d): wall time and peak memory (RSS) of a genaug command, e.g. the demo benchmark.

    python bench/wall_memory.py -- genaug benchmark --profile demo --out /tmp/bench-demo

Runs the command as a child process and prints its wall time, the peak resident set size
of the child (getrusage RUSAGE_CHILDREN: the largest single process, in this case the
genaug process itself) and its exit code.
"""
from __future__ import annotations

import resource
import subprocess
import sys
import time


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        sys.exit("usage: python bench/wall_memory.py -- COMMAND [ARGS...]")
    t0 = time.perf_counter()
    rc = subprocess.call(argv)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss   # KiB on Linux
    print(f"| command | wall | peak RSS | exit |")
    print("|---|---|---|---|")
    print(f"| `{' '.join(argv)}` | {wall / 60:.1f} min ({wall:.0f} s) | {peak_kib / 1024 ** 2:.2f} GiB | {rc} |")
    sys.exit(rc)


if __name__ == "__main__":
    main()
