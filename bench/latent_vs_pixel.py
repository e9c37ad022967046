"""Issue #8 (b): epoch time of the latent CNN (14x14x256 codes) against the pixel CNN at 224 px
(the images the autoencoder encodes) and at 64 px (what the cpu profile trains pixel models on).

All run genaug's own training step (train_one_epoch: indexing into an in-memory tensor,
class-weighted cross-entropy, AdamW) on the same number of random samples and batch
size, one after the other in this process, so the ratios are measured under the same load.
Pixels get the benchmark's batch augmentation and latents its latent augmentation (one of the
stored encodings per image, a shift and noise scaled by the training set's channel spread), as in
`genaug benchmark`.

    python bench/latent_vs_pixel.py [--n 512] [--batch-size 64] [--threads 2] [--pixel-sizes 224,64] [--views 4]
                                    [--device auto] [--amp]

Prints a table and exits. The figure for a full epoch scales the measured rate to the
Kermany training split (4,693 images after the patient-level val split).
"""
from __future__ import annotations

import argparse
import time

import torch

from genaug.device import resolve_device
from genaug.models import LatentCNN, SimpleCNN
from genaug.train import class_weights, latent_spread, resident_device, train_one_epoch

TRAIN_IMAGES = 4693


def time_epochs(model, data, labels, batch_size, augment, device, amp=False, repeats=2) -> float:
    """Seconds per sample, best of ``repeats`` epochs after one warm-up epoch. The data lies where
    `genaug benchmark` keeps a training set (`resident_device`: whole on a GPU, so no batch crosses the bus)."""
    model = model.to(device).to(memory_format=torch.channels_last)
    w = class_weights(labels.numpy(), 2).to(device)   # from the labels while they are still in host memory
    data, labels = data.to(resident_device(device)), labels.to(resident_device(device))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    best = float("inf")
    # as fit_classifier does: the latents' channel spread for their noise, once per training set
    spread = latent_spread(data) if data.is_floating_point() else None
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        _, seen = train_one_epoch(model, opt, data, labels, w, batch_size, gen, device, augment, "bench",
                                  amp=amp, spread=spread)
        if device.type == "cuda":
            torch.cuda.synchronize()   # kernels still queued belong to this epoch
        if r:  # the first epoch warms up allocators and kernels
            best = min(best, (time.perf_counter() - t0) / seen)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="samples per timed epoch")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--pixel-sizes", default="224,64", help="pixel CNN input sizes to compare with")
    ap.add_argument("--views", type=int, default=4,
                    help="augmented encodings stored per latent, as `genaug encode --views` (the cpu profile's 4)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast, as the benchmark trains on CUDA")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    torch.manual_seed(0)
    labels = torch.randint(0, 2, (a.n,))
    runs = [(f"pixel CNN, {px}x{px}x1 uint8", SimpleCNN(1, 2), torch.randint(0, 256, (a.n, 1, px, px), dtype=torch.uint8))
            for px in (int(v) for v in a.pixel_sizes.split(","))]
    latents = torch.randn(a.n, 1 + a.views, 256, 14, 14).half() if a.views else torch.randn(a.n, 256, 14, 14).half()
    runs.append((f"latent CNN, 14x14x256 float16, {a.views} views", LatentCNN(256, 2), latents))
    rows = []
    for name, model, data in runs:
        per = time_epochs(model, data, labels, a.batch_size, True, device, a.amp and device.type == "cuda")
        rows.append((name, 1 / per, per * TRAIN_IMAGES))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}{', bf16 autocast' if a.amp and device.type == 'cuda' else ''}, "
          f"{a.n} samples per epoch, batch {a.batch_size}")
    print(f"| model | images/s | s per epoch ({TRAIN_IMAGES} images) |")
    print("|---|---|---|")
    for name, ips, epoch in rows:
        print(f"| {name} | {ips:.1f} | {epoch:.0f} |")
    for name, _, epoch in rows[:-1]:
        print(f"latent CNN is {epoch / rows[-1][2]:.1f}x faster per epoch than the {name}")


if __name__ == "__main__":
    main()
