"""``genaug compare A B``: two benchmark runs on the same data, cell by cell, with paired statistics.

A benchmark compares variants inside one run. Settings a run keeps fixed (epochs, image size,
augmentations, pretrained weights, ...) are compared across runs: cells of the same model,
variant, train fraction and seed (and fold) in both runs saw the same validation and test
images, so B − A is a paired difference, as within a run.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genaug.benchmark import VARIANT_ONLY_SETTINGS, replicate_key, paired_comparison
from genaug.errors import CheckpointError, ConfigError
from genaug.report import PAIRED_TEST_NOTE, ONE_RUN_NOTE, paired_columns, verdict
from genaug.runs import machines_line, machines_of, read_run_config

# data keys that decide which images are test and validation: both runs must agree on them
SAME_DATA_KEYS = ("data", "task", "split_seed", "val_fraction")


def _cells(run_dir: Path) -> list[dict]:
    cells_dir = run_dir / "cells"
    if not (run_dir / "manifest.json").is_file() or not cells_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a genaug benchmark run (no manifest.json and cells/)")
    cells = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(cells_dir.glob("*.json"))]
    if not cells:
        raise CheckpointError(f"{run_dir} has no finished cells yet; resume it first")
    return cells


def _settings(run_dir: Path) -> dict:
    cfg = read_run_config(run_dir)
    return {"data": cfg.get("data", {}), "benchmark": cfg.get("benchmark", {})}


# benchmark keys that say which cells a run holds, not how a cell trains
CELL_SET_KEYS = ("models", "variants", "seeds", "train_fractions", "save_models")


def setting_differences(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """(key, A's value, B's value) for every benchmark setting the runs do not share, those that
    change how a cell trains first."""
    keys = sorted(set(a["benchmark"]) | set(b["benchmark"]), key=lambda k: (k in CELL_SET_KEYS, k))
    return [(k, a["benchmark"].get(k), b["benchmark"].get(k)) for k in keys
            if a["benchmark"].get(k) != b["benchmark"].get(k)]


def compare_runs(run_a: str | Path, run_b: str | Path, n_boot: int = 1000) -> dict:
    a_dir, b_dir = Path(run_a), Path(run_b)
    cells_a, cells_b = _cells(a_dir), _cells(b_dir)
    set_a, set_b = _settings(a_dir), _settings(b_dir)
    differ = [k for k in SAME_DATA_KEYS if set_a["data"].get(k) != set_b["data"].get(k)]
    if differ:
        raise ConfigError(f"{a_dir.name} and {b_dir.name} split different data ({', '.join(differ)} differ), so "
                          "their test images are not the same; compare runs made on one data source and split")
    index_b = {(c["model"], c["variant"], c["train_fraction"], replicate_key(c)): c for c in cells_b}
    groups: dict[tuple, list[tuple[dict, dict]]] = {}
    for c in cells_a:
        other = index_b.get((c["model"], c["variant"], c["train_fraction"], replicate_key(c)))
        if other is None:
            continue
        if other["test_labels"] != c["test_labels"]:
            raise ConfigError(f"cell {c['model']}/{c['variant']}/seed {c['seed']} was tested on other images in "
                              f"{b_dir.name} than in {a_dir.name}; these runs cannot be paired")
        groups.setdefault((c["model"], c["variant"], c["train_fraction"]), []).append((c, other))
    if not groups:
        raise ConfigError(f"{a_dir.name} and {b_dir.name} share no cell (same model, variant, train fraction and "
                          "seed); add seeds to one of them with genaug benchmark --resume")
    rows = []
    for (model, variant, frac), pairs in sorted(groups.items()):
        pairs.sort(key=lambda p: replicate_key(p[0]))
        acc = {side: [p[i]["test_at_val_threshold"]["accuracy"] for p in pairs] for i, side in enumerate("ab")}
        auc = {side: [p[i]["test_at_val_threshold"]["roc_auc"] for p in pairs] for i, side in enumerate("ab")}
        rows.append({"model": model, "variant": variant, "train_fraction": frac,
                     "accuracy_a": float(np.mean(acc["a"])), "accuracy_b": float(np.mean(acc["b"])),
                     "roc_auc_a": float(np.mean(auc["a"])), "roc_auc_b": float(np.mean(auc["b"])),
                     "seconds_per_epoch_a": float(np.mean([p[0]["seconds_per_epoch"] for p in pairs])),
                     "seconds_per_epoch_b": float(np.mean([p[1]["seconds_per_epoch"] for p in pairs])),
                     # the same seed and settings give the same test probabilities only on the same kernels
                     "identical_pairs": sum(p[0]["test_probs"] == p[1]["test_probs"] for p in pairs),
                     **paired_comparison(pairs, n_boot)})
    paired = [p for group in groups.values() for p in group]
    variants = {r["variant"] for r in rows}
    differ = setting_differences(set_a, set_b)
    # e.g. latent_epochs differs, but only real cells are paired: it cannot explain B − A
    elsewhere = [d for d in differ if d[0] in VARIANT_ONLY_SETTINGS and not variants & set(VARIANT_ONLY_SETTINGS[d[0]])]
    return {"a": str(a_dir), "b": str(b_dir), "settings_differ": [d for d in differ if d not in elsewhere],
            "settings_differ_unpaired_variants": elsewhere, "rows": rows,
            "machines": {side: machines_of([p[i] for p in paired]) for i, side in enumerate("ab")}}


def format_comparison(result: dict) -> str:
    a, b = Path(result["a"]).name, Path(result["b"]).name
    L = [f"# {b} against {a}", "", f"A = `{result['a']}`  ", f"B = `{result['b']}`", ""]
    train = [d for d in result["settings_differ"] if d[0] not in CELL_SET_KEYS]
    held = [d for d in result["settings_differ"] if d[0] in CELL_SET_KEYS]
    L += ["How cells train, where the runs differ (A → B):", ""]
    L += [f"- `{k}`: {va!r} → {vb!r}" for k, va, vb in train] or ["- nothing: the same settings"]
    if result.get("settings_differ_unpaired_variants"):
        L += ["", "Settings that differ for variants not paired here, so they leave these cells alone: "
              + "; ".join(f"`{k}` {va!r} → {vb!r}" for k, va, vb in result["settings_differ_unpaired_variants"])]
    if held:
        L += ["", "Which cells each run holds: " + "; ".join(f"`{k}` {va!r} → {vb!r}" for k, va, vb in held)]
    L += ["", "Where the paired cells ran: A on " + machines_line(result["machines"]["a"]) + "; B on "
          + machines_line(result["machines"]["b"]) + "."]
    same = sum(r["identical_pairs"] for r in result["rows"])
    total = sum(r["pairs"] for r in result["rows"])
    line = f"Identical test probabilities in {same} of {total} paired cells"
    if same == total:
        line += ": B reproduces A's test probabilities exactly."
    elif not train:
        line += (", although the settings agree: the same seed gives the same model only with the same kernels "
                 "(another CPU model, even with the same instruction set, another GPU or thread count picks others) "
                 "and the same genaug code.")
    else:
        line += "."
    L += ["", line]
    L += ["", "In short, B against A:", ""] + [
        f"- {r['model']}, {r['variant']}, train fraction {r['train_fraction']:g}: {verdict(r)}." for r in result["rows"]]
    if any(r["pairs"] == 1 for r in result["rows"]):
        L += [f"- {ONE_RUN_NOTE}"]
    L += ["", "Only cells present in both runs (same model, variant, train fraction and seed) are compared; "
          "accuracy at each cell's validation threshold, on the same real test images.", "",
          "| model | variant | train frac | paired runs | accuracy % A | accuracy % B | B − A (pp) | 95% CI "
          "(seeds and images) | p | McNemar p by seed | ROC-AUC A → B | s/epoch A → B |",
          "|---" * 12 + "|"]
    for r in result["rows"]:
        L.append(f"| {r['model']} | {r['variant']} | {r['train_fraction']:g} | {r['pairs']} | "
                 f"{100 * r['accuracy_a']:.1f} | {100 * r['accuracy_b']:.1f} | "
                 f"{paired_columns(r)} | {r['roc_auc_a']:.3f} → {r['roc_auc_b']:.3f} | "
                 f"{r['seconds_per_epoch_a']:.1f} → {r['seconds_per_epoch_b']:.1f} |")
    return "\n".join(L + ["", PAIRED_TEST_NOTE]) + "\n"
