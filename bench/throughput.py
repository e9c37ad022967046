"""Issue #8 (c): training throughput (images/s) of every genaug network at 64/128/224 px.

One optimizer step per batch on random data, timed after a warm-up step: the GAN (one
discriminator and one generator step, genaug.gan.train_step), the autoencoder (MSE), and
each classifier (cross-entropy). On CUDA it also runs ResNet-34 at 224 px under bf16
autocast with channels_last and reports the GPU's own bf16 matmul throughput beside it.

    python bench/throughput.py [--sizes 64,128,224] [--batch-size 32] [--steps 3] [--device auto]

Prints a table and exits.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from genaug.config import Config
from genaug.device import resolve_device
from genaug.gan import GanState, train_step
from genaug.models import CORE_CLASSIFIERS, ConvAutoencoder, build_classifier


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, steps: int, batch: int, device) -> float:
    fn()  # warm-up: allocator, kernels, cudnn autotuning
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return steps * batch / (time.perf_counter() - t0)


def classifier_step(name, size, batch, device, amp=False, channels_last=None):
    channels_last = amp if channels_last is None else channels_last
    model = build_classifier(name, 2, image_size=size).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, size, size, device=device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,), device=device)

    def fn():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return fn


def autoencoder_step(size, batch, device):
    model = ConvAutoencoder(size, 256).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, size, size, device=device)

    def fn():
        loss = F.mse_loss(model(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return fn


def gan_step(size, batch, device, width):
    cfg = Config()
    cfg.gan.image_size, cfg.gan.ngf, cfg.gan.ndf = size, width, width
    st = GanState(cfg, 2).to(device)
    real = torch.rand(batch, 1, size, size, device=device) * 2 - 1
    labels = torch.randint(0, 2, (batch,), device=device)
    gen = torch.Generator().manual_seed(0)
    return lambda: train_step(st, real, labels, cfg, gen)


def matmul_tflops(device, n=8192, steps=20) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        a @ b
    sync(device)
    return 2 * n ** 3 * steps / (time.perf_counter() - t0) / 1e12


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,128,224")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--models", default=",".join(CORE_CLASSIFIERS), help="classifiers to time (any in the registry)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    sizes = [int(s) for s in a.sizes.split(",")]
    rows = []
    for size in sizes:
        if size in (64, 128):
            for width in (32, 64):
                rows.append((f"GAN step, width {width}", size, timed(gan_step(size, a.batch_size, device, width),
                                                                     a.steps, a.batch_size, device)))
        if size % 16 == 0:
            rows.append(("autoencoder", size, timed(autoencoder_step(size, a.batch_size, device), a.steps,
                                                    a.batch_size, device)))
        for name in a.models.split(","):
            rows.append((name, size, timed(classifier_step(name, size, a.batch_size, device), a.steps,
                                           a.batch_size, device)))
    if device.type == "cuda" and 224 in sizes:
        rows.append(("resnet34, bf16 autocast + channels_last", 224,
                     timed(classifier_step("resnet34", 224, a.batch_size, device, amp=True), a.steps,
                           a.batch_size, device)))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {where}; batch {a.batch_size}, {a.steps} timed steps after one warm-up")
    print("| network (training step) | px | images/s |")
    print("|---|---|---|")
    for name, size, ips in rows:
        print(f"| {name} | {size} | {ips:.1f} |")
    if device.type == "cuda":
        print(f"bf16 matmul (8192^3) on this GPU: {matmul_tflops(device):.0f} TFLOP/s")


if __name__ == "__main__":
    main()
