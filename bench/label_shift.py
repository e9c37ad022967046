"""Issue #5: is the validation threshold's miss on test a shift in the class mix, which could be corrected?

The Kermany test split is 37.5% NORMAL, the training split 25.7%, and the models lose their accuracy on
test through specificity (NORMAL children called pneumonia). If the models' probabilities stayed right
on test up to the change of class mix (label shift), Bayes' rule would correct them: multiply each
posterior by (test prior / validation prior) and renormalise. The test prior need not be known: the
EM procedure of Saerens, Latinne and Decaestecker (2002) estimates it from the unlabelled test
probabilities alone, which is what a clinic could do with its own unlabelled images.

This reads the validation and test probabilities that benchmark cells recorded (nothing is retrained)
and prints, per model, variant, train fraction, input size and test split size, over the cells of the
runs given:
- accuracy at the validation threshold and at 0.5, as the benchmark reports them;
- the first class's share of the test split: its true share, the validation split's, and EM's estimate;
- accuracy after the EM correction (argmax of the corrected probabilities);
- two figures that use the test labels, so are not results, only bounds for the question: accuracy
  corrected with the true test prior, and at the single threshold best on test.

    python bench/label_shift.py docs/runs/benchmark/<run> [more runs]

Binary cells only. The figures are in docs/STATUS.md.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from genaug.runs import read_cells


def em_prior(probs: np.ndarray, source_prior: np.ndarray, iters: int = 1000,
             tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Saerens et al. (2002): the target prior that makes the corrected posteriors' mean equal it,
    and those corrected posteriors. `probs` are posteriors under `source_prior`."""
    prior = source_prior.copy()
    for _ in range(iters):
        corrected = probs * (prior / source_prior)
        corrected /= corrected.sum(1, keepdims=True)
        new = corrected.mean(0)
        done = np.abs(new - prior).max() < tol
        prior = new
        if done:
            break
    corrected = probs * (prior / source_prior)
    return prior, corrected / corrected.sum(1, keepdims=True)


def best_threshold_accuracy(y: np.ndarray, p1: np.ndarray) -> float:
    """The accuracy at the one threshold that is best on these very labels (a ceiling, not a result)."""
    order = np.argsort(-p1, kind="stable")
    # predicting positive for the top k: correct = positives among them + negatives outside them
    pos_top = np.concatenate([[0], np.cumsum(y[order] == 1)])
    k = np.arange(len(y) + 1)
    correct = pos_top + ((y == 0).sum() - (k - pos_top))
    s = p1[order]
    cut = np.concatenate([[True], s[:-1] != s[1:], [True]])   # a threshold cannot split tied images
    return float(correct[cut].max() / len(y))


def cell_figures(cell: dict) -> dict | None:
    """This cell's row of figures, or None when it is not binary or lacks its probabilities."""
    if "val_probs" not in cell or "test_probs" not in cell:
        return None
    p_test = np.asarray(cell["test_probs"], float)   # validation enters through its labels' class mix
    if p_test.ndim != 2 or p_test.shape[1] != 2:
        return None
    y_test, y_val = np.asarray(cell["test_labels"]), np.asarray(cell["val_labels"])
    val_prior = np.bincount(y_val, minlength=2) / len(y_val)
    test_prior = np.bincount(y_test, minlength=2) / len(y_test)
    em, corrected = em_prior(p_test, val_prior)
    known = p_test * (test_prior / val_prior)
    return {"at_val_threshold": cell["test_at_val_threshold"]["accuracy"],
            "at_half": cell["test_at_0.5"]["accuracy"],
            "true_share": test_prior[0], "val_share": val_prior[0], "em_share": em[0],
            "em_accuracy": float((corrected.argmax(1) == y_test).mean()),
            "known_prior_accuracy": float((known.argmax(1) == y_test).mean()),
            "best_on_test": best_threshold_accuracy(y_test, p_test[:, 1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="genaug benchmark run folders (their cells/)")
    args = ap.parse_args()
    groups, skipped = defaultdict(list), 0
    for run in args.runs:
        for cell in read_cells(run / "cells"):
            row = cell_figures(cell)
            if row is None:
                skipped += 1
                continue
            key = (cell["model"], cell["variant"], cell["train_fraction"], cell["input_shape"][-1], cell["n_test"])
            groups[key].append(row)
    if not groups:
        raise SystemExit(f"no binary cell with recorded probabilities under {len(args.runs)} run(s)")
    pct = lambda v: f"{100 * np.mean(v):.1f}"
    print("| model | variant | train fraction | px | test images | cells | accuracy % (val thr) | at 0.5 "
          "| test share of class 0: true / val / EM (range) | accuracy %, EM-corrected "
          "| with the true test prior* | best threshold on test* |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (model, variant, fraction, px, n_test), rows in sorted(groups.items()):
        col = lambda k: [r[k] for r in rows]
        em = col("em_share")
        print(f"| {model} | {variant} | {fraction:g} | {px} | {n_test} | {len(rows)} "
              f"| {pct(col('at_val_threshold'))} | {pct(col('at_half'))} | "
              f"{np.mean(col('true_share')):.3f} / {np.mean(col('val_share')):.3f} / {np.mean(em):.3f} "
              f"({min(em):.3f}-{max(em):.3f}) | {pct(col('em_accuracy'))} | {pct(col('known_prior_accuracy'))} | "
              f"{pct(col('best_on_test'))} |")
    print(f"\n* uses the test labels: a bound for the question, not a result. {skipped} cell(s) skipped "
          "(not binary, or without recorded probabilities).")


if __name__ == "__main__":
    main()
