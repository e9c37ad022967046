"""Issue #8 (b): epoch time of the latent CNN (14x14x256 codes) against the pixel CNN at 224 px.

Both run genaug's own training step (train_one_epoch: indexing into an in-memory tensor,
class-weighted cross-entropy, AdamW) on the same number of random samples and batch
size, one after the other in this process, so the ratio is measured under the same load.
Pixels get the benchmark's batch augmentation, latents none, as in `genaug benchmark`.

    python bench/latent_vs_pixel.py [--n 512] [--batch-size 64] [--threads 2]

Prints a table and exits. The figure for a full epoch scales the measured rate to the
Kermany training split (4,693 images after the patient-level val split).
"""
from __future__ import annotations

import argparse
import time

import torch

from genaug.models import LatentCNN, SimpleCNN
from genaug.train import class_weights, train_one_epoch

TRAIN_IMAGES = 4693


def time_epochs(model, data, labels, batch_size, augment, repeats=2) -> float:
    """Seconds per sample, best of ``repeats`` epochs after one warm-up epoch."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    w = class_weights(labels.numpy(), 2)
    gen = torch.Generator().manual_seed(0)
    best = float("inf")
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        _, seen = train_one_epoch(model, opt, data, labels, w, batch_size, gen, "cpu", augment, "bench")
        if r:  # the first epoch warms up allocators and kernels
            best = min(best, (time.perf_counter() - t0) / seen)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="samples per timed epoch")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    labels = torch.randint(0, 2, (a.n,))
    pixels = torch.randint(0, 256, (a.n, 1, 224, 224), dtype=torch.uint8)
    latents = torch.randn(a.n, 256, 14, 14).half()
    rows = []
    for name, model, data, aug in (("pixel CNN, 224x224x1 uint8", SimpleCNN(1, 2), pixels, True),
                                   ("latent CNN, 14x14x256 float16", LatentCNN(256, 2), latents, False)):
        per = time_epochs(model, data, labels, a.batch_size, aug)
        rows.append((name, 1 / per, per * TRAIN_IMAGES))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.n} samples per epoch, "
          f"batch {a.batch_size}")
    print(f"| model | images/s | s per epoch ({TRAIN_IMAGES} images) |")
    print("|---|---|---|")
    for name, ips, epoch in rows:
        print(f"| {name} | {ips:.1f} | {epoch:.0f} |")
    print(f"latent CNN is {rows[0][2] / rows[1][2]:.1f}x faster per epoch")


if __name__ == "__main__":
    main()
