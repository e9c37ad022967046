"""Issue #8: how fast a saved model classifies new X-rays, from decoded grey images to probabilities.

The encoded path trains many times faster per epoch than a pixel CNN (bench/latent_vs_pixel.py), but a
new image has to go through the autoencoder's encoder first: `genaug predict` with an encoded cell's
model runs the encoder at 224 px, then the latent CNN. This times, with genaug's own `predict_probs`:

- the pixel CNN at each of --pixel-sizes (the cpu profile trains it at 64 px);
- the encoder plus the latent CNN from 224 px images (what predict does for an encoded model);
- the latent CNN alone on stored latents (what the benchmark's test pass does).

Untrained weights: the time does not depend on them. Decoding the files is left out (it is the same
for every path, and bench/data_path.py times it).

    python bench/inference.py [--n 256] [--threads 1] [--pixel-sizes 224,64] [--batch-size 0]

Prints a table and exits.
"""
from __future__ import annotations

import argparse
import time

import torch

from genaug.models import ConvAutoencoder, EncodedClassifier, LatentCNN, SimpleCNN
from genaug.train import predict_probs


def images_per_second(model, data, repeats: int = 3, batch_size: int | None = None) -> float:
    """Best of ``repeats`` passes over ``data`` after one warm-up pass."""
    best = float("inf")
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        predict_probs(model, data, batch_size=batch_size)
        if r:   # the first pass warms up allocators and kernels
            best = min(best, time.perf_counter() - t0)
    return len(data) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="images per timed pass")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--pixel-sizes", default="224,64", help="pixel CNN input sizes")
    ap.add_argument("--batch-size", type=int, default=0,
                    help="images per batch (0: predict_probs' own, by image size on a CPU; 256 before session 54)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    encoder = ConvAutoencoder(224, 256)
    rows = [(f"pixel CNN, {px} px images", SimpleCNN(1, 2), torch.randint(0, 256, (a.n, 1, px, px), dtype=torch.uint8))
            for px in (int(v) for v in a.pixel_sizes.split(","))]
    rows.append(("encoder + latent CNN, 224 px images (genaug predict, encoded model)",
                 EncodedClassifier(encoder, LatentCNN(256, 2)),
                 torch.randint(0, 256, (a.n, 1, 224, 224), dtype=torch.uint8)))
    rows.append(("latent CNN alone, stored 14x14x256 float16 latents", LatentCNN(256, 2),
                 torch.randn(a.n, 256, 14, 14).half()))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.n} images per pass, batch "
          f"{a.batch_size or 'by image size (train.inference_batch)'}")
    print("| path | images/s |")
    print("|---|---|")
    rates = []
    for name, model, data in rows:
        rates.append(images_per_second(model, data, batch_size=a.batch_size or None))
        print(f"| {name} | {rates[-1]:.1f} |")
    encoded, latent_only = rates[-2], rates[-1]
    for (name, _, _), rate in zip(rows[:-2], rates):
        print(f"encoder + latent CNN: {encoded / rate:.2f}x the images/s of the {name}")
    print(f"the encoder takes {(1 / encoded - 1 / latent_only) / (1 / latent_only):.1f}x the time of the latent CNN")


if __name__ == "__main__":
    main()
