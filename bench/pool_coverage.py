"""How often the pooled interval of `genaug pool` covers the true difference, by simulation.

A benchmark run's interval for mixed − real holds its GAN run fixed. `genaug pool` resamples GAN
runs too (crossed with seeds and test images, `paired_bootstrap_diff` on (inputs, seeds, images)).
This simulates benchmark runs whose true mixed − real difference, averaged over GAN retraining, is
zero: each test image has its own chance of being classified right; each classifier seed shifts
that chance by a normal draw (sd --seed-sd); each GAN run shifts the mixed cells' chance by a normal
draw (sd in --gan-sd). It prints, per number of GAN runs pooled, how often the 95% interval holds 0.
One GAN run (the first column) is what a single benchmark report gives.

    python bench/pool_coverage.py [--trials 200] [--resamples 400] [--images 624] [--seeds 6]

Defaults match the cpu-profile CNN on the Kermany test split (624 images, 6 seeds, seed sd about
1.5 points); session 20's three GAN runs put the GAN sd near 1.3 points.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from genaug.metrics import paired_bootstrap_diff


def coverage(gan_runs: int, gan_sd: float, args, rng) -> float:
    hits = 0
    for t in range(args.trials):
        p = rng.uniform(0.6, 0.98, args.images)                  # each test image's chance, drawn anew per trial
        chance = lambda shift: np.clip(p + shift, 0, 1)
        real = rng.random((args.seeds, args.images)) < chance(rng.normal(0, args.seed_sd, (args.seeds, 1)))
        mixed = np.stack([rng.random((args.seeds, args.images))
                          < chance(rng.normal(0, gan_sd) + rng.normal(0, args.seed_sd, (args.seeds, 1)))
                          for _ in range(gan_runs)])
        r = paired_bootstrap_diff(real, mixed, n=args.resamples, seed=t)   # one GAN run: the 2-D bootstrap
        hits += r["ci"][0] <= 0 <= r["ci"][1]
    return hits / args.trials


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--resamples", type=int, default=400)
    ap.add_argument("--images", type=int, default=624)
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--seed-sd", type=float, default=0.015)
    ap.add_argument("--gan-sd", default="0,0.013,0.03")
    ap.add_argument("--gan-runs", default="1,2,3,5,10")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    runs = [int(g) for g in args.gan_runs.split(",")]
    start = time.time()
    print(f"coverage of the 95% interval over {args.trials} simulated benchmarks ({args.images} test images, "
          f"{args.seeds} seeds, seed sd {100 * args.seed_sd:.1f} points, {args.resamples} resamples)\n")
    print("| GAN sd (points) | " + " | ".join(f"{g} GAN run{'s' if g > 1 else ''}" for g in runs) + " |")
    print("|---" * (len(runs) + 1) + "|")
    for sd in (float(s) for s in args.gan_sd.split(",")):
        print(f"| {100 * sd:.1f} | " + " | ".join(f"{100 * coverage(g, sd, args, rng):.0f}%" for g in runs) + " |",
              flush=True)
    print(f"\n{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
