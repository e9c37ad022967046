"""Inference batch size on the CPU: images/s of genaug's `predict_probs` by network, image size and batch.

`predict_probs` serves the benchmark's validation and test passes, `genaug predict`, `explain` and the
GAN quality report. It ran every batch at 256 images; on this CPU a 224 px DenseNet-121 classified the
real test split at about 8 images/s that way. This times the core classifiers at each --sizes and
--batches, each (size, batch) pair --repeats times in turn so a change in machine load hits all batches;
the table gives the median images/s, and the latent CNN's on 14x14x256 latents. Untrained weights: the time does not depend on them.

    python bench/eval_batch.py [--sizes 32,64,224] [--batches 8,16,32,64,256] [--n 128] [--repeats 3] [--no-latent]

Prints a table and exits.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from genaug.models import CORE_CLASSIFIERS, build_classifier
from genaug.train import predict_probs


def images_per_second(model, data, batch_size: int) -> float:
    start = time.perf_counter()
    predict_probs(model, data, batch_size=batch_size)
    return len(data) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="32,64,224")
    ap.add_argument("--batches", default="8,16,32,64,256")
    ap.add_argument("--n", type=int, default=128, help="images per timed pass (at least the largest batch)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default=",".join(CORE_CLASSIFIERS))
    ap.add_argument("--latent", action=argparse.BooleanOptionalAction, default=True,
                    help="also the latent CNN on 14x14x256 latents")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    n = max(args.n, max(batches))
    print(f"torch {torch.__version__} on CPU, {torch.get_num_threads()} threads; {n} images a pass, one "
          f"warm-up pass, median of {args.repeats}")
    print("| network | px | " + " | ".join(f"batch {b}" for b in batches) + " | best / batch 256 |")
    print("|---|---|" + "---|" * (len(batches) + 1))
    cases = [(name, size) for name in args.models.split(",") if name for size in sizes]
    cases += [("latent CNN", 14)] if args.latent else []
    for name, size in cases:
        torch.manual_seed(0)
        if name == "latent CNN":   # float16 latents, as genaug encode stores them
            model = build_classifier("cnn", 2, in_channels=256, latent=True).eval()
            data = torch.randn(n, 256, size, size).to(torch.float16)
        else:
            model = build_classifier(name, 2, image_size=size).eval()
            data = (torch.rand(n, 1, size, size) * 255).to(torch.uint8)
        predict_probs(model, data[:min(batches)], batch_size=min(batches))   # warm-up
        speeds = {b: [] for b in batches}
        for _ in range(args.repeats):
            for b in batches:
                speeds[b].append(images_per_second(model, data, b))
        med = {b: statistics.median(v) for b, v in speeds.items()}
        ratio = f"{max(med.values()) / med[256]:.2f}x" if 256 in med else "-"
        print(f"| {name} | {size} | " + " | ".join(f"{med[b]:.1f}" for b in batches) + f" | {ratio} |",
              flush=True)


if __name__ == "__main__":
    main()
