"""Issue #5, `benchmark --tta`: what test-time augmentation changes for the same trained weights.

`genaug compare` pairs two runs by seed, but a run with `--tta` and one without train their own
models, so their difference also holds whatever the machine changed between the two trainings. This
re-evaluates the models a `--tta --save-models` run saved, each once with its copies and once without
(the plain probabilities, the threshold chosen on plain validation probabilities), on the run's own
validation and test images, and prints per cell and over all seeds the accuracy at each one's
validation threshold and at 0.5, ROC-AUC, and test-time augmentation minus plain with the paired
bootstrap interval `genaug compare` uses (seeds and test images resampled).

    python bench/tta_effect.py outputs/benchmark/<run>

It checks first that its probabilities with the copies are the ones the run recorded. Pixel cells
only (an encoded cell's copies are of latents). One thread. The figures are in docs/STATUS.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

from genaug.config import config_from_dict
from genaug.data import load_data
from genaug.jobs import data_cache_dir
from genaug.metrics import choose_threshold, paired_bootstrap_diff, predictions, roc_auc
from genaug.predict import load_classifier
from genaug.train import as_tensor, predict_probs


def evaluate(model, tta: dict, val, test) -> dict:
    """Threshold on validation, then test correctness per image at it and at 0.5, and ROC-AUC."""
    p_val = predict_probs(model, val[0], **tta)
    p_test = predict_probs(model, test[0], **tta)
    thr = choose_threshold(val[1], p_val)
    return {"probs": p_test, "threshold": thr, "roc_auc": roc_auc(test[1], p_test),
            "correct": (predictions(p_test, thr) == test[1]).numpy(),
            "correct_half": (predictions(p_test, None) == test[1]).numpy()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a genaug benchmark run made with --tta K --save-models")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = config_from_dict(yaml.safe_load((args.run / "config.yaml").read_text()))
    if cfg.benchmark.equalize != "none":
        raise SystemExit("equalized runs are not handled here")
    d = cfg.data
    bundle = load_data(d.data, cfg.benchmark.image_size, d.task, d.val_fraction, d.split_seed,
                       data_cache_dir(cfg), d.demo_train)   # as the run read them
    val = (as_tensor(bundle.val.images), torch.from_numpy(bundle.val.labels))
    test = (as_tensor(bundle.test.images), torch.from_numpy(bundle.test.labels))
    rows = {}
    for path in sorted((args.run / "models").glob("*.pt")):
        model, ckpt = load_classifier(path)
        if "autoencoder" in ckpt or not ckpt.get("tta"):
            continue
        cell = json.loads((args.run / "cells" / f"{path.stem}.json").read_text())
        assert cell["test_labels"] == test[1].tolist(), f"{path.stem}: other test images than the run's"
        tta, plain = evaluate(model, ckpt["tta"], val, test), evaluate(model, {}, val, test)
        gap = np.abs(tta["probs"].numpy() - np.array(cell["test_probs"])).max()
        assert gap < 1e-5, f"{path.stem}: probabilities with the copies differ from the run's by {gap}"
        rows.setdefault(ckpt["model_name"], []).append((path.stem, plain, tta))
    print(f"{args.run.name}: test-time augmentation ({cfg.benchmark.tta} copies) against plain, the same weights\n")
    print("| cell | accuracy % plain | accuracy % tta | at 0.5 plain | at 0.5 tta | ROC-AUC plain | ROC-AUC tta |")
    print("|---|---|---|---|---|---|---|")
    for model, cells in rows.items():
        for name, p, t in cells:
            print(f"| {name} | {100 * p['correct'].mean():.1f} | {100 * t['correct'].mean():.1f} | "
                  f"{100 * p['correct_half'].mean():.1f} | {100 * t['correct_half'].mean():.1f} | "
                  f"{p['roc_auc']:.3f} | {t['roc_auc']:.3f} |")
    print()
    for model, cells in rows.items():
        for key, what in (("correct", "at the validation threshold"), ("correct_half", "at 0.5")):
            a = np.stack([p[key] for _, p, _ in cells])
            b = np.stack([t[key] for _, _, t in cells])
            r = paired_bootstrap_diff(a, b, n=2000, seed=0)
            print(f"{model}, {len(cells)} seeds, {what}: {100 * a.mean():.1f} -> {100 * b.mean():.1f}%, tta - plain "
                  f"{100 * r['diff']:+.1f} points (95% CI {100 * r['ci'][0]:+.1f} to {100 * r['ci'][1]:+.1f})")
        auc = [(p["roc_auc"], t["roc_auc"]) for _, p, t in cells]
        print(f"{model}: ROC-AUC {np.mean([x for x, _ in auc]):.3f} -> {np.mean([y for _, y in auc]):.3f}")


if __name__ == "__main__":
    main()
