"""Issue #5: how much of the test accuracy that the validation threshold loses does a threshold chosen on a
few labelled images of the test split's own kind win back? (What `genaug threshold` does for a user's site.)

A cell's threshold is chosen on its validation split, carved by patient from the training images; on the
Kermany test split the same probabilities mean something else (bench/label_shift.py: not a shift in the
class mix). A hospital that uses a model would label some of its own images. This simulates that from
the probabilities the cells recorded (nothing is retrained): for each cell, draw whole test patients of each
class until `n` images are labelled in the test split's class mix (the "site" images), choose the
threshold on them as `genaug threshold` does (Youden's J, midway down to the next lower score:
`genaug.metrics.choose_threshold(..., midpoint=True)`; `--rule edge` for the score itself, the benchmark's
rule on validation), and score the rest of
the test split at that threshold and at the cell's validation threshold: the same images for both, and
never an image of a patient the threshold saw. Per model, variant, train fraction and input size, over
the cells and draws: mean accuracy on the rest at each threshold, the 5th percentile of the site
threshold's (how bad an unlucky draw is), and how often it beat the validation threshold.

    python bench/site_threshold.py --data ../shared/data/chest_xray_224 docs/runs/benchmark/<run> [more]

The test split's patients come from the data folder (cells record labels, not file names); its labels must
match each cell's. Binary cells at train fraction 1 by default. The figures are in docs/STATUS.md.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from genaug.data.folder import patient_of, scan_folder
from genaug.metrics import choose_threshold
from genaug.runs import read_cells


def test_patients(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The test split's labels and patients, in the order genaug reads it (the cells' order)."""
    classes, items, _ = scan_folder(data)
    entries = items["test"]
    return (np.array([classes.index(c) for _, c in entries]),
            np.array([patient_of(data, rel) for rel, _ in entries]))


def draw_site(rng: np.random.Generator, labels: np.ndarray, patients: np.ndarray, n: int) -> np.ndarray:
    """Indices of whole patients drawn at random, per class, until each class has its share of ``n``
    images as in ``labels`` (a patient's last images may take it a little past). A patient with images of
    two classes counts where it is first drawn, and all its images go."""
    chosen: list[int] = []
    taken: set[str] = set()
    for k in np.unique(labels):
        want, got = round(n * float(np.mean(labels == k))), 0
        for p in rng.permutation(sorted(set(patients[labels == k]))):
            if got >= want:
                break
            if p in taken:
                continue
            taken.add(p)
            idx = np.flatnonzero(patients == p)
            chosen.extend(idx.tolist())
            got += int(np.sum(labels[idx] == k))
    return np.array(sorted(chosen), dtype=np.int64)


def cell_draws(cell: dict, labels: np.ndarray, patients: np.ndarray, n: int, draws: int,
               midpoint: bool = True) -> list[tuple[float, float]]:
    """(accuracy at the site threshold, at the validation threshold) on the rest of the test split, per draw."""
    probs = np.asarray(cell["test_probs"], dtype=np.float64)
    p1, val_thr = probs[:, 1], cell["test_at_val_threshold"]["threshold"]
    rng = np.random.default_rng([int(cell["seed"]), n])
    out = []
    for _ in range(draws):
        site = draw_site(rng, labels, patients, n)
        rest = np.setdiff1d(np.arange(len(labels)), site)
        thr = choose_threshold(torch.from_numpy(labels[site]), torch.from_numpy(probs[site]), midpoint)
        acc = lambda t: float(np.mean((p1[rest] >= t).astype(int) == labels[rest]))
        out.append((acc(thr), acc(val_thr)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="genaug benchmark run folders (their cells/)")
    ap.add_argument("--data", type=Path, required=True, help="the data folder the runs tested on")
    ap.add_argument("--sizes", default="20,50,100,200", help="labelled site images per draw, comma-separated")
    ap.add_argument("--draws", type=int, default=50, help="draws per cell and size")
    ap.add_argument("--models", default="cnn,resnet34,densenet121", help="models to include ('all': every one)")
    ap.add_argument("--all-fractions", action="store_true", help="include cells below train fraction 1")
    ap.add_argument("--rule", choices=("midpoint", "edge"), default="midpoint",
                    help="the site threshold: midway below the lowest score called positive (genaug threshold's), "
                         "or that score itself (the benchmark's on validation)")
    args = ap.parse_args()
    labels, patients = test_patients(args.data)
    sizes = [int(s) for s in args.sizes.split(",")]
    groups, skipped = defaultdict(list), 0
    for run in args.runs:
        for cell in read_cells(run / "cells"):
            probs = np.asarray(cell.get("test_probs", []))
            if (probs.ndim != 2 or probs.shape[1] != 2 or len(probs) != len(labels)
                    or not np.array_equal(np.asarray(cell["test_labels"]), labels)
                    or (args.models != "all" and cell["model"] not in args.models.split(","))
                    or (cell["train_fraction"] != 1 and not args.all_fractions)):
                skipped += 1
                continue
            groups[(cell["model"], cell["variant"], cell["train_fraction"], cell["input_shape"][-1])].append(cell)
    if not groups:
        raise SystemExit(f"no binary cell of {args.data}'s test split with recorded probabilities under "
                         f"{len(args.runs)} run(s)")
    print(f"Test split of {args.data}: {len(labels)} images, {len(set(patients))} patients; "
          f"{args.draws} draws per cell and size; site threshold: Youden's J, "
          + ("midway to the next lower score.\n" if args.rule == "midpoint" else "the score itself.\n"))
    print("| model | variant | train fraction | px | cells | site images | accuracy % on the rest: validation "
          "threshold | site threshold | its 5th percentile | draws where the site threshold did better % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (model, variant, fraction, px), cells in sorted(groups.items()):
        for n in sizes:
            pairs = np.array([d for c in cells
                              for d in cell_draws(c, labels, patients, n, args.draws, args.rule == "midpoint")])
            print(f"| {model} | {variant} | {fraction:g} | {px} | {len(cells)} | {n} | {100 * pairs[:, 1].mean():.1f} "
                  f"| {100 * pairs[:, 0].mean():.1f} | {100 * np.percentile(pairs[:, 0], 5):.1f} "
                  f"| {100 * np.mean(pairs[:, 0] > pairs[:, 1]):.0f} |")
    print(f"\n{skipped} cell(s) left out (not binary, other test images, other models or train fractions, "
          "or without recorded probabilities).")


if __name__ == "__main__":
    main()
