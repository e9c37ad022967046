"""Issue #5, `benchmark --ema`: whose BatchNorm statistics an average of the weights needs.

Trains the pixel CNN of the cpu profile (64 px, batch 64, AdamW lr 1e-3, the default augmentations) on the
Kermany training split for a few epochs and prints, after each, the validation loss of

- the trained weights,
- their exponential moving average (decay 0.99) with BatchNorm statistics averaged as the weights are
  (torch's AveragedModel with use_buffers=True; what `--ema` did first),
- the same average with statistics recomputed over the plain training images (`recompute_batchnorm`,
  what `--ema` does).

    python bench/ema_batchnorm.py [--data ../shared/data/chest_xray_224] [--epochs 4]

One thread; one line per epoch. The figures are in docs/STATUS.md (session 47).
"""
from __future__ import annotations

import argparse
import copy

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from genaug.data import load_data
from genaug.models import build_classifier
from genaug.train import class_weights, evaluate_loss, recompute_batchnorm, train_one_epoch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/chest_xray_224")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--decay", type=float, default=0.99)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    bundle = load_data(args.data, 64)
    train, val = bundle.splits["train"], bundle.splits["val"]
    x, y = torch.from_numpy(train.images[:, None].copy()), torch.from_numpy(train.labels)
    vx, vy = torch.from_numpy(val.images[:, None].copy()), torch.from_numpy(val.labels)
    model = build_classifier("cnn", len(bundle.classes), 1, image_size=64)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    weights = class_weights(y.numpy(), len(bundle.classes))
    gen = torch.Generator().manual_seed(0)
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.decay), use_buffers=True)
    for epoch in range(1, args.epochs + 1):
        train_one_epoch(model, opt, x, y, weights, 64, gen, "cpu", True, f"epoch {epoch}", ema=averaged)
        own = copy.deepcopy(averaged.module)
        recompute_batchnorm(own, x, "cpu", 64)
        losses = [evaluate_loss(m, vx, vy, weights, "cpu") for m in (model, averaged.module, own)]
        print(f"epoch {epoch}: validation loss: trained weights {losses[0]:.3f}; average, averaged statistics "
              f"{losses[1]:.3f}; average, recomputed statistics {losses[2]:.3f}", flush=True)


if __name__ == "__main__":
    main()
