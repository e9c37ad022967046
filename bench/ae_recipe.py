"""Issue #4: which autoencoder recipe reaches the best reconstruction for a fixed CPU budget.

Trains the ConvAutoencoder at 224 px on the first 1,500 training images of the Kermany data
for a fixed number of image-equivalents (``--budget``, default 2,000), one recipe per call,
and prints validation PSNR/SSIM on 96 validation images. This is how the cpu profile's
batch 8 / lr 3e-3 was chosen (docs/STATUS.md #4).

    python bench/ae_recipe.py lr=3e-3+bs=8 [--budget 2000] [--data ../shared/data/chest_xray_224]

Recipe keys, joined by '+': lr=FLOAT, bs=INT, crop=PX (random crops of that size, budget
counted in pixels), linout (no output sigmoid). Runs on one thread; prints one line and exits.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from genaug.config import config_from_dict
from genaug.jobs import load_bundle
from genaug.metrics import reconstruction_metrics
from genaug.models import ConvAutoencoder
from genaug.train import as_tensor, batch_indices, to_float


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", help="e.g. lr=3e-3+bs=8")
    ap.add_argument("--budget", type=float, default=2000, help="training image-equivalents")
    ap.add_argument("--data", default="../shared/data/chest_xray_224")
    ap.add_argument("--out", default="outputs", help="run root whose cache/ holds decoded images")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = config_from_dict({"data": {"data": args.data}, "run": {"out_root": args.out}})
    b = load_bundle(cfg, 224)
    torch.manual_seed(0)
    tx, vx = as_tensor(b.train.images[:1500]), to_float(as_tensor(b.val.images[:96]))
    model = ConvAutoencoder(224, 256)
    lr, bs, crop = 1e-3, 32, 0
    for part in args.recipe.split("+"):
        key, _, value = part.partition("=")
        if key == "lr":
            lr = float(value)
        elif key == "bs":
            bs = int(value)
        elif key == "crop":
            crop = int(value)
        elif key == "linout":
            model.decoder[-1] = nn.Identity()
        elif key != "base":
            raise SystemExit(f"unknown recipe key '{key}'")
    steps = int(args.budget / (bs * ((crop / 224) ** 2 if crop else 1.0)))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    t0, step = time.time(), 0
    while step < steps:
        for idx in batch_indices(len(tx), bs, True, gen, drop_last=True):
            x = to_float(tx[idx])
            if crop:   # offsets on the 16 px grid, so the crop maps onto whole latent cells
                i, j = (torch.randint(0, (224 - crop) // 16 + 1, (2,), generator=gen) * 16).tolist()
                x = x[:, :, i:i + crop, j:j + crop]
            loss = F.mse_loss(model.decoder(model.encoder(x)), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step >= steps:
                break
    model.eval()
    with torch.no_grad():
        recon = model.decoder(model.encoder(vx)).clamp(0, 1)
    m = reconstruction_metrics(vx, recon)
    print(f"| {args.recipe} | {steps} steps | PSNR {m['psnr']:.2f} dB | SSIM {m['ssim']:.4f} | {time.time() - t0:.0f} s |")


if __name__ == "__main__":
    main()
