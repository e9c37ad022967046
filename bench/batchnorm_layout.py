"""Issue #3: how exactly does PyTorch's CPU BatchNorm compute in each memory layout?

Session 78 found that `genaug gan --channels-last` GANs came out with a higher NORMAL FID than the same seeds
trained contiguous, seed after seed, and looked for a cause below the GAN. One generator forward pass, layer by
layer against float64, put the difference in BatchNorm2d in training mode, whose error grew with the feature map
in the channels-last layout only. This measures that alone: batch_norm in training mode (batch statistics) on
float32 input of N x C x S x S, mean ``--offset`` and std 0.5 (activations after a convolution are not centred),
forward and backward, against the same computation in float64; for each S, in the contiguous and the
channels-last layout:
- forward: the largest absolute error of the normalized output;
- backward: the relative error (norm of the difference over the norm) of the input's gradient, for a random
  output gradient.

    python bench/batchnorm_layout.py [--sizes 4,8,16,32,64] [--batch 64] [--channels 32] [--threads 1]

The figures are in docs/PERFORMANCE.md (t).
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F


def errors(x: torch.Tensor, grad_out: torch.Tensor, layout: torch.memory_format) -> tuple[float, float]:
    """(forward max abs error, backward relative error) of float32 batch_norm in ``layout`` against float64."""
    ref_in = x.double().requires_grad_(True)
    ref = F.batch_norm(ref_in, None, None, training=True)
    ref_grad, = torch.autograd.grad(ref, ref_in, grad_out.double())
    xi = x.contiguous(memory_format=layout).requires_grad_(True)
    y = F.batch_norm(xi, None, None, training=True)
    grad, = torch.autograd.grad(y, xi, grad_out.contiguous(memory_format=layout))
    forward = (y.double() - ref).abs().max().item()
    backward = ((grad.double() - ref_grad).norm() / ref_grad.norm()).item()
    return forward, backward


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4,8,16,32,64", help="feature map sides S, comma-separated")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--offset", type=float, default=3.0, help="the input's mean")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, {args.channels} channels, "
          f"input mean {args.offset:g}, std 0.5")
    print()
    print("| S | values a channel's statistics sum | forward error, contiguous | forward error, channels-last | "
          "ratio | backward error, contiguous | backward error, channels-last | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for s in (int(v) for v in args.sizes.split(",")):
        x = torch.randn(args.batch, args.channels, s, s, generator=gen) * 0.5 + args.offset
        grad_out = torch.randn(args.batch, args.channels, s, s, generator=gen)
        (fc, bc), (fl, bl) = (errors(x, grad_out, layout) for layout in (torch.contiguous_format, torch.channels_last))
        print(f"| {s} | {args.batch * s * s} | {fc:.1e} | {fl:.1e} | {fl / fc:.0f}x | {bc:.1e} | {bl:.1e} | "
              f"{bl / bc:.0f}x |")


if __name__ == "__main__":
    main()
