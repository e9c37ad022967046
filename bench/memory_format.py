"""Classifier training steps on the CPU in NCHW against channels_last memory format.

genaug trains in channels_last on CUDA; this measures whether the CPU gains from it too.
Each (network, format) pair is timed ``--repeats`` times, alternating the formats, so a
change in machine load hits both; the table gives the median images/s.

    OMP_NUM_THREADS=1 python bench/memory_format.py [--size 64] [--batch-size 64] [--steps 3] [--threads 1]

Prints a table and exits.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from genaug.models import CORE_CLASSIFIERS
from throughput import classifier_step, timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    print(f"torch {torch.__version__} on CPU, {torch.get_num_threads()} threads; {args.size} px, batch "
          f"{args.batch_size}, {args.steps} timed steps after one warm-up, median of {args.repeats}")
    print("| network | NCHW images/s | channels_last images/s | channels_last / NCHW |\n|---|---|---|---|")
    for name in CORE_CLASSIFIERS:
        speeds = {False: [], True: []}
        for _ in range(args.repeats):
            for cl in (False, True):
                torch.manual_seed(0)
                fn = classifier_step(name, args.size, args.batch_size, device, channels_last=cl)
                speeds[cl].append(timed(fn, args.steps, args.batch_size, device))
        nchw, cl = statistics.median(speeds[False]), statistics.median(speeds[True])
        print(f"| {name} | {nchw:.1f} | {cl:.1f} | {cl / nchw:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
