"""Issue #5: is the validation threshold's miss on test a shift in what the network's features look like,
which unlabelled images of the test split's kind correct, and at what class mix does that hold?

AdaBN (Li et al., 2016, "Revisiting batch normalization for practical domain adaptation") keeps every weight
and re-estimates each BatchNorm layer's running statistics on unlabelled images from the new domain. Plain
AdaBN takes the new images' class mix into those statistics; "mix-matched" AdaBN (`adapt_to_site`) draws the
images again first, weighted so that the classes stand in the model's training mix as its own probabilities
tell them (3 rounds, each with the model adapted in the round before). Neither is in genaug: what they do
depends on a class mix a site cannot see without labels (the table this prints). Session 64 found the miss is
no shift in the class mix alone (`bench/label_shift.py`).

A site is simulated on the test split's patients, halved at random: its images are one half drawn to a NORMAL
share m, and the model adapted on them is scored on the other half drawn to the same share m (a site's
unlabelled images and the ones it then reads come from one population), then the halves swap. m runs from
mostly PNEUMONIA to mostly NORMAL, and "as it comes" takes the halves whole (the test split's own 0.375). The
labels only choose which images are drawn. Per saved model, at its own (validation) threshold, per m:
accuracy, sensitivity and specificity (means over the halvings, both halves pooled each time) for

- the model as saved,
- plain AdaBN on the site's images,
- mix-matched AdaBN (`adapt_to_site`),

and the NORMAL share each model's probabilities give the site's images, against the true m: where it says
training's mix whatever the site holds, adaptation has undone the site's own class mix.

A control, once per model: the statistics re-estimated on as many plain training images (training's were
gathered on augmented ones), with the threshold chosen again on validation as the benchmark would, scored
on the whole test split: a change that needs no test image (`--control-only` prints it alone).

    python bench/site_batchnorm.py RUN/models/cnn__real__f1__seed0.pt [more checkpoints] [--repeats 5]

Models with BatchNorm (an encoded cell's latent classifier is adapted, not its encoder). The data are the
checkpoint's own (its config's data, split and size). Figures in docs/STATUS.md (session 83).
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genaug.data.equalize import equalize_images
from genaug.data.loading import load_data
from genaug.metrics import choose_threshold, classification_metrics
from genaug.models import EncodedClassifier
from genaug.predict import checkpoint_probs, decision_threshold, input_resize, input_size, load_classifier
from genaug.runs import enclosing_run
from genaug.train import to_float

ROUNDS = 3
BATCH = 64
SHARES = (0.1, "training", "as it comes", 0.5, 0.75, 0.9)
METHODS = ("as saved", "plain AdaBN", "mix-matched AdaBN")


def adaptable_part(model: nn.Module) -> nn.Module:
    """The part whose BatchNorm statistics are the site's to set: an encoded cell's latent classifier, not the
    autoencoder's encoder (its latents are what the classifier learnt from); any other model whole."""
    return model.classifier if isinstance(model, EncodedClassifier) else model


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in adaptable_part(model).modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def with_site_statistics(model: nn.Module, images: np.ndarray, device="cpu") -> nn.Module:
    """A copy of ``model`` whose BatchNorm layers hold the plain average of the batch statistics of ``images``
    ((N, H, W) uint8, preprocessed as the model was trained), in batches of BATCH; everything else as it
    was, dropout off while they are gathered. Not `genaug.train.recompute_batchnorm`: that drops a short last
    batch, as training does, and resets every BatchNorm layer, an encoded model's encoder's too."""
    model = copy.deepcopy(model).to(device).eval()
    norms = batchnorm_layers(model)
    if not norms:
        raise SystemExit("this model has no BatchNorm layer")
    for m in norms:
        m.reset_running_stats()
        m.momentum = None   # a cumulative average over the batches, not a moving one
        m.train()
    data = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)
    stop = len(data) - 1 if len(data) % BATCH == 1 else len(data)   # a batch of one image has no variance
    with torch.no_grad():
        for i in range(0, stop, BATCH):
            model(to_float(data[i:i + BATCH].to(device)))
    return model.eval()


def class_mix_weights(probs: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per image, sum over classes k of target[k] / mean(probs[:, k]) * probs[i, k]: weights under which the
    images' expected class mix, as ``probs`` tell it, is ``target``. Normalised to sum to 1."""
    share = np.clip(probs.mean(0), 1e-6, None)
    w = (probs * (target / share)).sum(1)
    return w / w.sum()


def adapt_to_site(model: nn.Module, ckpt: dict, images: np.ndarray, target: np.ndarray, device="cpu",
                  seed: int = 0) -> tuple[nn.Module, list[np.ndarray]]:
    """``model`` with BatchNorm statistics from ``images`` drawn in the class mix ``target`` (module doc), and
    the class shares the model's probabilities gave the images before adapting and after each round."""
    rng = np.random.default_rng(seed)
    probs = checkpoint_probs(model, ckpt, images, device).numpy()
    shares, adapted = [probs.mean(0)], model
    for _ in range(ROUNDS):
        drawn = np.sort(rng.choice(len(images), len(images), p=class_mix_weights(probs, target)))
        adapted = with_site_statistics(model, images[drawn], device)
        probs = checkpoint_probs(adapted, ckpt, images, device).numpy()
        shares.append(probs.mean(0))
    return adapted, shares


def training_class_shares(ckpt: dict, path: Path) -> np.ndarray:
    """The share of each class among the images the model trained on, from its cell's record beside it in
    the benchmark run (cells/<cell>.json)."""
    run = enclosing_run(path)
    counts = json.loads((run / "cells" / f"{path.stem}.json").read_text())["train_class_counts"]
    n = np.array([sum(v.values()) if isinstance(v, dict) else v for v in (counts[c] for c in ckpt["classes"])],
                 dtype=float)
    return n / n.sum()


def with_share(idx: np.ndarray, labels: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """The largest draw from ``idx`` without replacement whose first-class share is ``share``, in order."""
    first, rest = idx[labels[idx] == 0], idx[labels[idx] != 0]
    n = int(min(len(first) / share, len(rest) / (1 - share)))
    k = int(round(n * share))
    return np.sort(np.concatenate([rng.choice(first, k, replace=False), rng.choice(rest, n - k, replace=False)]))


def counts(y: np.ndarray, p1: np.ndarray, thr: float) -> np.ndarray:
    """[true NORMAL called NORMAL, NORMAL images, PNEUMONIA called PNEUMONIA, PNEUMONIA images]."""
    called = p1 >= thr
    return np.array([(~called & (y == 0)).sum(), (y == 0).sum(), (called & (y == 1)).sum(), (y == 1).sum()])


def site_rows(model, ckpt, images, labels, patients, target, thr, repeats) -> dict:
    """{(m, method): [(counts, the NORMAL share the model gave the site's images, their true NORMAL share), ...]}
    over halvings and halves."""
    rows: dict = {}
    people = sorted(set(patients))
    for rep in range(repeats):
        rng = np.random.default_rng(rep)
        order = list(people)
        rng.shuffle(order)
        first = set(order[: len(order) // 2])
        in_first = np.array([p in first for p in patients])
        halves = (np.flatnonzero(in_first), np.flatnonzero(~in_first))
        for m in SHARES:
            share = target[0] if m == "training" else m
            for site, other in ((halves[0], halves[1]), (halves[1], halves[0])):
                if m != "as it comes":
                    site, other = with_share(site, labels, share, rng), with_share(other, labels, share, rng)
                models = {"as saved": model, "plain AdaBN": with_site_statistics(model, images[site]),
                          "mix-matched AdaBN": adapt_to_site(model, ckpt, images[site], target)[0]}
                for name, net in models.items():
                    said = checkpoint_probs(net, ckpt, images[site])[:, 0].mean().item()
                    p1 = checkpoint_probs(net, ckpt, images[other])[:, 1].numpy()
                    rows.setdefault((m, name), []).append((counts(labels[other], p1, thr), said,
                                                           (labels[site] == 0).mean()))
    return rows


def control(model, ckpt, data, prep, test_images, thr, rng) -> str:
    """Statistics from plain training images, threshold chosen again on validation; whole test split."""
    classes, test = ckpt["classes"], data.test
    net = with_site_statistics(model, prep(data.train.images[np.sort(rng.choice(len(data.train), len(test),
                                                                                    replace=False))]))
    new_thr = choose_threshold(torch.as_tensor(data.val.labels), checkpoint_probs(net, ckpt, prep(data.val.images)))
    out = []
    for name, m, t in (("as saved", model, thr), ("training images' statistics, threshold again", net, new_thr)):
        f = classification_metrics(torch.as_tensor(test.labels), checkpoint_probs(m, ckpt, test_images), classes, t)
        out.append(f"{name}: threshold {t:.3f}, accuracy {f['accuracy']:.3f} (sensitivity {f['sensitivity']:.3f}, "
                   f"specificity {f['specificity']:.3f}), ROC-AUC {f['roc_auc']:.3f}")
    return "; ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--repeats", type=int, default=5, help="halvings of the test split's patients")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--control-only", action="store_true", help="the control alone, not the simulated sites")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bundles, summary = {}, {}
    for path in args.checkpoints:
        model, ckpt = load_classifier(path)
        cfg = ckpt["config"]["data"]
        key = (cfg["data"], input_size(ckpt), cfg["val_fraction"], cfg["split_seed"], input_resize(ckpt))
        if key not in bundles:
            bundles[key] = load_data(cfg["data"], key[1], cfg["task"], key[2], key[3], resize=key[4])
        data = bundles[key]
        prep = lambda x: equalize_images(x, ckpt.get("equalize", "none"))   # noqa: E731
        thr, test = decision_threshold(ckpt), data.test
        target = training_class_shares(ckpt, Path(path))
        test_images = prep(test.images)
        rows = {} if args.control_only else site_rows(model, ckpt, test_images, test.labels, test.patients,
                                                      target, thr, args.repeats)
        print(f"\n{path}: {ckpt['model_name']} at {input_size(ckpt)} px, seed {ckpt.get('seed')}, threshold "
              f"{thr:.4f}, trained on NORMAL {target[0]:.3f}; {args.repeats} halvings of "
              f"{len(set(test.patients))} test patients")
        print("control: " + control(model, ckpt, data, prep, test_images, thr, np.random.default_rng(0)))
        if rows:
            print("| site NORMAL share | method | accuracy | sensitivity | specificity | NORMAL share it gives the site |")
            print("|---|---|---|---|---|---|")
        for (m, name), runs in rows.items():
            c = np.array([r[0] for r in runs], dtype=float)
            pooled = [   # a halving's accuracy: both halves scored, pooled
                (c[i, 0] + c[i + 1, 0] + c[i, 2] + c[i + 1, 2]) / (c[i, 1] + c[i + 1, 1] + c[i, 3] + c[i + 1, 3])
                for i in range(0, len(c), 2)]
            true = np.mean([r[2] for r in runs])
            label = f"{true:.3f}" + (" (training's)" if m == "training" else " (as it comes)" if m == "as it comes" else "")
            print(f"| {label} | {name} | {np.mean(pooled):.3f} ({min(pooled):.3f}-{max(pooled):.3f}) | "
                  f"{(c[:, 2] / c[:, 3]).mean():.3f} | {(c[:, 0] / c[:, 1]).mean():.3f} | "
                  f"{np.mean([r[1] for r in runs]):.3f} |")
            summary.setdefault((label.split()[0] if m != "training" else "training", name), []).append(np.mean(pooled))
    if len(args.checkpoints) > 1 and summary:
        print(f"\nmean accuracy over the {len(args.checkpoints)} models")
        print("| site NORMAL share | " + " | ".join(METHODS) + " |")
        print("|---|" + "---|" * len(METHODS))
        for m in dict.fromkeys(k[0] for k in summary):
            print(f"| {m} | " + " | ".join(f"{np.mean(summary[(m, n)]):.3f}" for n in METHODS) + " |")


if __name__ == "__main__":
    main()
