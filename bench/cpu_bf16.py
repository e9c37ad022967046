"""Training images a second of each benchmark classifier on the CPU in fp32 and under bf16 autocast
(`genaug benchmark --cpu-amp`), through the benchmark's own training step (augmentation, channels_last,
AdamW), on random data: what --cpu-amp buys on this CPU.

bf16 is computed in hardware only on CPUs with AMX or AVX512-BF16 (Intel Xeon, 4th generation on); elsewhere
torch emulates it, which users report far slower than fp32 (not measured here); and bf16 does not give fp32's
numbers. So --cpu-amp is off by default.

    python bench/cpu_bf16.py [--sizes 64,224] [--models cnn,resnet34,densenet121] [--batch-size 32]
                             [--steps 5] [--threads 0]

Prints a Markdown table (fp32, bf16, their ratio; the latent CNN on 14x14x256 latents too) and exits.
"""
from __future__ import annotations

import argparse
import time

import torch

from genaug.device import cpu_has_bf16
from genaug.models import build_classifier
from genaug.runs import machine_info, machine_summary
from genaug.train import class_weights, train_one_epoch


def images_per_second(name: str, sample_shape: tuple, latent: bool, bf16: bool, batch: int, steps: int) -> float:
    """Median over ``steps`` timed training steps of ``batch`` images (after one warm-up step)."""
    torch.manual_seed(0)
    model = build_classifier(name, 2, sample_shape[0], latent=latent, image_size=sample_shape[-1])
    model.to(memory_format=torch.channels_last)   # as fit_classifier lays the model out
    data = (torch.randn(batch, 1, *sample_shape).half() if latent   # one plain view per latent image
            else torch.randint(0, 256, (batch, *sample_shape), dtype=torch.uint8))
    labels = torch.arange(batch) % 2
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    weights = class_weights(labels.numpy(), 2)
    gen = torch.Generator().manual_seed(0)
    times = []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        train_one_epoch(model, opt, data, labels, weights, batch, gen, "cpu", True, "bench", amp=bf16)
        if step:   # the first warms up allocators and oneDNN's kernels
            times.append(time.perf_counter() - t0)
    return batch / sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,224")
    ap.add_argument("--models", default="cnn,resnet34,densenet121")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cases = [(name, (1, size, size), False, f"{size} px") for size in map(int, a.sizes.split(","))
             for name in a.models.split(",")] + [("cnn", (256, 14, 14), True, "14x14x256 latents")]
    print(f"torch {torch.__version__} on {machine_summary(machine_info('cpu'))}; bf16 in hardware (AMX or "
          f"AVX512-BF16): {'yes' if cpu_has_bf16() else 'no'}; batch {a.batch_size}, median of {a.steps} "
          "timed training steps after one warm-up")
    print("| classifier | input | fp32 images/s | bf16 images/s | bf16 / fp32 |")
    print("|---|---|---|---|---|")
    for name, shape, latent, label in cases:
        fp32, bf16 = (images_per_second(name, shape, latent, on, a.batch_size, a.steps) for on in (False, True))
        print(f"| {name}{' (latent)' if latent else ''} | {label} | {fp32:.1f} | {bf16:.1f} | {bf16 / fp32:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()
