"""Training images a second of each benchmark classifier on the CPU in fp32 and under bf16 autocast
(`genaug benchmark --cpu-amp`), through the benchmark's own training step (augmentation, channels_last,
AdamW), on random data: what --cpu-amp buys on this CPU. Then the autoencoder's training step
(`genaug encode --cpu-amp`) and the GAN's (`genaug gan --cpu-amp`: genaug.gan.train_step, a discriminator
and a generator update): fp32 in the contiguous layout they train in, bf16 channels-last as they train
under --cpu-amp, and, for reference, fp32 channels-last.

bf16 is computed in hardware only on CPUs with AMX or AVX512-BF16 (Intel Xeon, 4th generation on); elsewhere
torch emulates it, which users report far slower than fp32 (not measured here); and bf16 does not give fp32's
numbers. So --cpu-amp is off by default.

    python bench/cpu_bf16.py [--sizes 64,224] [--models cnn,resnet34,densenet121] [--batch-size 32]
                             [--steps 5] [--threads 0] [--autoencoder-sizes 224] [--autoencoder-batch 8]
                             [--gan-sizes 64] [--gan-batch 64] [--gan-width 32]

Prints a Markdown table (fp32, bf16, their ratio; the latent CNN on 14x14x256 latents too) and exits.
"""
from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from genaug.config import Config
from genaug.device import cpu_has_bf16
from genaug.gan import GanState, train_step
from genaug.models import ConvAutoencoder, build_classifier
from genaug.runs import machine_info, machine_summary
from genaug.train import autocast, class_weights, train_one_epoch


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


def autoencoder_images_per_second(size: int, bf16: bool, layout, batch: int, steps: int) -> float:
    """Median over ``steps`` timed steps of genaug.encode.train_autoencoder's (MSE, Adam; ``layout`` for the
    model and the batch), after one warm-up step."""
    torch.manual_seed(0)
    model = ConvAutoencoder(size, 256).to(memory_format=layout)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.rand(batch, 1, size, size).contiguous(memory_format=layout)
    times = []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        with autocast("cpu", bf16):
            out = model(x)
        loss = F.mse_loss(out.float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step:
            times.append(time.perf_counter() - t0)
    return batch / sorted(times)[len(times) // 2]


def gan_images_per_second(size: int, width: int, bf16: bool, layout, batch: int, steps: int) -> float:
    """Median over ``steps`` timed steps of genaug.gan.train_step (the cpu profile's conditional GAN: AC-GAN
    conditioning, differentiable augmentation, EMA) on two classes, after one warm-up step."""
    cfg = Config()
    g = cfg.gan
    g.image_size, g.ngf, g.ndf, g.batch_size, g.conditioning, g.diffaug = size, width, width, batch, "acgan", True
    torch.manual_seed(0)
    st = GanState(cfg, 2).to("cpu", layout)
    real = (torch.rand(batch, 1, size, size) * 2 - 1).contiguous(memory_format=layout)
    labels = torch.arange(batch) % 2
    gen = torch.Generator().manual_seed(0)
    times = []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        train_step(st, real, labels, cfg, gen, bf16)
        if step:
            times.append(time.perf_counter() - t0)
    return batch / sorted(times)[len(times) // 2]


def _layouts_table(title: str, what: str, sizes: list[int], rate) -> None:
    """fp32 contiguous (as trained), bf16 channels-last (as under --cpu-amp) and fp32 channels-last, by size."""
    print(f"\n{title}")
    print(f"| input | fp32 images/s (contiguous, as trained) | bf16 images/s (channels-last, {what} --cpu-amp) | "
          "bf16 / fp32 | fp32 channels-last images/s |")
    print("|---|---|---|---|---|")
    for size in sizes:
        fp32, bf16, fp32_cl = (rate(size, on, layout) for on, layout in (
            (False, torch.contiguous_format), (True, torch.channels_last), (False, torch.channels_last)))
        print(f"| {size} px | {fp32:.1f} | {bf16:.1f} | {bf16 / fp32:.2f}x | {fp32_cl:.1f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,224")
    ap.add_argument("--models", default="cnn,resnet34,densenet121")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--autoencoder-sizes", default="224", help="comma-separated; '' for none")
    ap.add_argument("--autoencoder-batch", type=int, default=8, help="the cpu profile's encode.batch_size")
    ap.add_argument("--gan-sizes", default="64", help="comma-separated; '' for none")
    ap.add_argument("--gan-batch", type=int, default=64, help="the cpu profile's gan.batch_size")
    ap.add_argument("--gan-width", type=int, default=32, help="the cpu profile's gan.ngf and gan.ndf")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cases = [(name, (1, size, size), False, f"{size} px") for size in map(int, a.sizes.split(","))
             for name in a.models.split(",")] + [("cnn", (256, 14, 14), True, "14x14x256 latents")]
    print(f"torch {torch.__version__} on {machine_summary(machine_info('cpu'))}; bf16 in hardware (AMX or "
          f"AVX512-BF16): {'yes' if cpu_has_bf16() else 'no'}; batch {a.batch_size}, median of {a.steps} "
          "timed training steps after one warm-up")
    # ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI or AVX2 makes this CPU compute as one without bf16 hardware would
    # (oneDNN's emulated bf16, or none: torch's own kernels), which the hardware check above cannot see
    if cap := os.environ.get("ONEDNN_MAX_CPU_ISA"):
        print(f"oneDNN capped at ONEDNN_MAX_CPU_ISA={cap}; oneDNN computes bf16 (emulated where the ISA has no bf16): "
              f"{'yes' if torch.ops.mkldnn._is_mkldnn_bf16_supported() else 'no, torch falls back to its own kernels'}")
    print("| classifier | input | fp32 images/s | bf16 images/s | bf16 / fp32 |")
    print("|---|---|---|---|---|")
    for name, shape, latent, label in cases:
        fp32, bf16 = (images_per_second(name, shape, latent, on, a.batch_size, a.steps) for on in (False, True))
        print(f"| {name}{' (latent)' if latent else ''} | {label} | {fp32:.1f} | {bf16:.1f} | {bf16 / fp32:.2f}x |",
              flush=True)
    if sizes := [int(v) for v in a.autoencoder_sizes.split(",") if v.strip()]:
        _layouts_table(f"autoencoder (256 latent channels at 1/16 of the input size), batch {a.autoencoder_batch}",
                       "encode", sizes, lambda size, on, layout: autoencoder_images_per_second(
                           size, on, layout, a.autoencoder_batch, a.steps))
    if sizes := [int(v) for v in a.gan_sizes.split(",") if v.strip()]:
        _layouts_table(f"conditional GAN (AC-GAN, DiffAugment; width {a.gan_width}), batch {a.gan_batch}: real images "
                       "a second through one discriminator and one generator update", "gan", sizes,
                       lambda size, on, layout: gan_images_per_second(size, a.gan_width, on, layout, a.gan_batch,
                                                                      a.steps))


if __name__ == "__main__":
    main()
