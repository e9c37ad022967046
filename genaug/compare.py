"""``genaug compare A B``: two benchmark runs on the same data, cell by cell, with paired statistics.

A benchmark compares variants inside one run. Settings a run keeps fixed (epochs, image size,
augmentations, pretrained weights, ...) are compared across runs: cells of the same model,
variant, train fraction and seed (and fold) in both runs saw the same validation and test
images, so B − A is a paired difference, as within a run.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from genaug.benchmark import (DEPENDENT_VARIANTS, INPUT_RUNS, VARIANT_ONLY_SETTINGS, calibration_over, correct_rows,
                              is_binary, own_input_run, paired_comparison, replicate_key)
from genaug.config import config_from_dict, data_differences, data_differences_text, parse_model_epochs
from genaug.errors import CheckpointError, ConfigError
from genaug.locks import in_use_by
from genaug.report import (PAIRED_TEST_NOTE, ONE_RUN_NOTE, _p, at_half_column, calibration_text, difference_with_interval,
                           paired_columns, pooled_variant_words, short_commit, threshold_clause, verdict)
from genaug.metrics import paired_bootstrap_diff
from genaug.data.traits import NOTE_START as TELLS_NOTE_START
from genaug.inventory import counted, read_json_or_none, seconds_text
from genaug.quality import fid_text
from genaug.train import chose_channels_last
from genaug.runs import (atomic_write_document, git_commit, missing_run_hint, nearby_runs_hint, machines_line, machines_of, new_run, not_a_run_of,
                         open_run, read_cells, read_run_config, write_json)


def _cells(run_dir: Path) -> list[dict]:
    cells_dir = run_dir / "cells"
    if not (run_dir / "manifest.json").is_file() or not cells_dir.is_dir():
        if not run_dir.exists():
            raise CheckpointError(f"benchmark run not found: {run_dir}{missing_run_hint(run_dir, 'benchmark')}")
        why = (not_a_run_of(run_dir, "benchmark", "this command") or nearby_runs_hint(run_dir, "benchmark")
               or " (no manifest.json and cells/)")
        raise CheckpointError(f"{run_dir} is not a genaug benchmark run{why}")
    cells = read_cells(cells_dir)
    if not cells:
        if busy := in_use_by(run_dir):   # not "resume it": its lock refuses a second process (session 58)
            raise CheckpointError(f"{run_dir} has no finished cells yet: it is at work ({busy}); run this again once "
                                  "a cell has finished")
        raise CheckpointError(f"{run_dir} has no finished cells yet; resume it first")
    return cells


def runs_at_work(dirs: list[Path]) -> dict[str, str]:
    """Which of these runs a process is at work on now (adding cells), and who: their cells may grow."""
    return {str(d): busy for d in dirs if (busy := in_use_by(d))}


def at_work_lines(at_work: dict[str, str], what: str, again: str) -> list[str]:
    """A line for each run that was at work when its cells were read: a comparison or pool made then
    counts only the cells it had finished, with no word of it (session 62: pooled while seed 2 trained)."""
    return [f"- Made while {Path(run).name} was at work ({who}): the cells it finishes later are not in this "
            f"{what}; {again} once it has finished." for run, who in at_work.items()]


def _settings(run_dir: Path) -> dict:
    cfg = read_run_config(run_dir)
    # a key added to genaug after the run was made takes the value the run trained with (its default,
    # or what config_from_dict gives old runs), not None: else every such key reads as a difference
    bench = cfg.get("benchmark", {})
    bench = dataclasses.asdict(config_from_dict({"benchmark": bench}).benchmark) if isinstance(bench, dict) else {}
    # one key per named model, so that a difference says which model's cells it reaches
    for model, epochs in parse_model_epochs(bench.pop("model_epochs", "")).items():
        bench[f"model_epochs[{model}]"] = epochs
    return {"data": cfg.get("data", {}), "benchmark": bench}


def setting_model(key: str) -> str | None:
    """The model a per-model setting (``model_epochs[resnet34]``) is about; None for the others."""
    return key[len("model_epochs["):-1] if key.startswith("model_epochs[") else None


# benchmark keys that say which cells a run holds, not how a cell trains
CELL_SET_KEYS = ("models", "variants", "seeds", "train_fractions", "save_models")


def setting_differences(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """(key, A's value, B's value) for every benchmark setting the runs do not share, and data.resize, those
    that change how a cell trains first."""
    def value(side: dict, k: str):   # a model a run does not name trains its run's `epochs`
        return side["benchmark"].get(k, side["benchmark"].get("epochs") if setting_model(k) else None)

    keys = sorted(set(a["benchmark"]) | set(b["benchmark"]), key=lambda k: (k in CELL_SET_KEYS, k))
    # how images were made square changes every cell's input (runs before session 81 recorded none: they squashed)
    resize = [side.get("data", {}).get("resize", "squash") for side in (a, b)]
    return [("resize", *resize)] * (resize[0] != resize[1]) + [
        (k, value(a, k), value(b, k)) for k in keys if value(a, k) != value(b, k)]


def no_shared_cell(a: str, b: str, cells_a: list[dict], cells_b: list[dict]) -> str:
    """Why two runs share no cell, naming the first of model, variant or train fraction they hold none of alike."""
    for what, key in (("model", "model"), ("variant", "variant"), ("train fraction", "train_fraction")):
        held_a, held_b = ({f"{c[key]:g}" if key == "train_fraction" else c[key] for c in cells} for cells in (cells_a, cells_b))
        if not held_a & held_b:
            return (f"{a} and {b} share no cell: {a} holds {what} {', '.join(sorted(held_a))}, {b} "
                    f"{', '.join(sorted(held_b))}. compare pairs the same cells across two runs; to set {what}s side "
                    "by side, train them in one run (its report's table holds them, on the same seeds)")
    folds_a, folds_b = ({c.get("fold") for c in cells} for cells in (cells_a, cells_b))
    if not folds_a & folds_b:   # found in session 55: a --folds 3 run and one without were told to add seeds
        def split(folds: set) -> str:
            return "one validation split" if folds == {None} else f"--folds {max(f for f in folds if f is not None) + 1}"
        return (f"{a} and {b} share no cell: {a} trains with {split(folds_a)}, {b} with {split(folds_b)}, so their "
                "cells are trained and validated otherwise; compare runs made with the same --folds")
    return (f"{a} and {b} share no cell (same model, variant, train fraction and seed); add seeds to one of them "
            "with genaug benchmark --resume")


def compare_runs(run_a: str | Path, run_b: str | Path, n_boot: int = 1000) -> dict:
    a_dir, b_dir = Path(run_a), Path(run_b)
    cells_a, cells_b = _cells(a_dir), _cells(b_dir)
    if a_dir.resolve() == b_dir.resolve():   # else a page of +0.0 differences, "no difference detected"
        raise ConfigError(f"{run_a} and {run_b} are one run; compare two benchmark runs")
    set_a, set_b = _settings(a_dir), _settings(b_dir)
    differ = data_differences(set_a, set_b)
    if differ:
        raise ConfigError(f"{a_dir.name} and {b_dir.name} split different data "
                          f"({data_differences_text(set_a, set_b, differ)}), so "
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
        raise ConfigError(no_shared_cell(a_dir.name, b_dir.name, cells_a, cells_b))
    rows = []
    for (model, variant, frac), pairs in sorted(groups.items()):
        pairs.sort(key=lambda p: replicate_key(p[0]))
        acc = {side: [p[i]["test_at_val_threshold"]["accuracy"] for p in pairs] for i, side in enumerate("ab")}
        auc = {side: [p[i]["test_at_val_threshold"]["roc_auc"] for p in pairs] for i, side in enumerate("ab")}
        rows.append({"model": model, "variant": variant, "train_fraction": frac,
                     "accuracy_a": float(np.mean(acc["a"])), "accuracy_b": float(np.mean(acc["b"])),
                     "roc_auc_a": float(np.mean(auc["a"])), "roc_auc_b": float(np.mean(auc["b"])),
                     "ece_test_a": calibration_over([p[0] for p in pairs], "test")[0],
                     "ece_test_b": calibration_over([p[1] for p in pairs], "test")[0],
                     "seconds_per_epoch_a": float(np.mean([p[0]["seconds_per_epoch"] for p in pairs])),
                     "seconds_per_epoch_b": float(np.mean([p[1]["seconds_per_epoch"] for p in pairs])),
                     # the same seed and settings give the same test probabilities only on the same kernels
                     "identical_pairs": sum(p[0]["test_probs"] == p[1]["test_probs"] for p in pairs),
                     **paired_comparison(pairs, n_boot)})
    paired = [p for group in groups.values() for p in group]
    variants = {r["variant"] for r in rows}
    differ = setting_differences(set_a, set_b)
    # bf16 on the CPU (--cpu-amp) may change when a run is resumed, so each cell says what it computed in
    precision = {side: "/".join(sorted({cell_precision(p[i]) for p in paired})) for i, side in enumerate("ab")}
    if precision["a"] != precision["b"]:
        differ.insert(0, ("precision", precision["a"], precision["b"]))
    # e.g. latent_epochs differs, but only real cells are paired: it cannot explain B − A; nor can
    # ResNet-34's own epochs when only CNN cells are paired (the latent CNN has latent_epochs)
    pixel_models = {r["model"] for r in rows if r["variant"] != "encoded"}
    elsewhere = [d for d in differ if (d[0] in VARIANT_ONLY_SETTINGS and not variants & set(VARIANT_ONLY_SETTINGS[d[0]]))
                 or (setting_model(d[0]) is not None and setting_model(d[0]) not in pixel_models)]
    return {"a": str(a_dir), "b": str(b_dir), "at_work": runs_at_work([a_dir, b_dir]),
            "classes_differ_in_files": any(_classes_differ_in_files(d) for d in (a_dir, b_dir)),
            "settings_differ": [d for d in differ if d not in elsewhere],
            "settings_differ_unpaired_variants": elsewhere, "rows": rows,
            "machines": {side: machines_of([p[i] for p in paired]) for i, side in enumerate("ab")},
            "commits": {side: commits_of([p[i] for p in paired]) for i, side in enumerate("ab")}}


CLASSES_DIFFER_LINE = ("- The classes differ in their files in this data (size, shape or format), not only in what "
                       "the images show (the runs' reports say how): every run's accuracy may rest on that, and a "
                       "setting that changes how images are read (`resize`, the image size) may change how much.")


def _classes_differ_in_files(run_dir: Path) -> bool:
    """Whether a run's data noted a file trait that tells its classes apart (`data.traits`): a shortcut either
    run may have learnt, and a setting that changes how images are read (resize) may change how much."""
    notes = ((read_json_or_none(run_dir / "manifest.json") or {}).get("data") or {}).get("notes") or []
    return any(isinstance(n, str) and n.startswith(TELLS_NOTE_START) for n in notes)


def cell_precision(cell: dict) -> str:
    """What a cell computed in: 'bf16' or 'fp32' as it recorded (since session 69; its first bf16 cells on a CPU
    recorded only machine.autocast). Before that a CPU cell was always fp32, and a GPU cell bf16 or fp32 by
    run.amp, unrecorded."""
    machine = cell.get("machine") or {}
    if recorded := cell.get("precision") or machine.get("autocast"):
        return recorded
    return "not recorded (GPU)" if machine.get("gpu") else "fp32"


def commits_of(cells: list[dict]) -> list[str]:
    """The genaug commits that trained ``cells`` (a resumed run's cells may come from several)."""
    return sorted({short_commit(str(c["genaug_commit"])) if c.get("genaug_commit") else "not recorded"
                   for c in cells})


def format_comparison(result: dict) -> str:
    a, b = Path(result["a"]).name, Path(result["b"]).name
    L = [f"# {b} against {a}", "", f"A = `{result['a']}`  ", f"B = `{result['b']}`", ""]
    train = [d for d in result["settings_differ"] if d[0] not in CELL_SET_KEYS]
    held = [d for d in result["settings_differ"] if d[0] in CELL_SET_KEYS]
    L += ["How cells train, where the runs differ (A → B):", ""]
    L += [f"- `{k}`: {va!r} → {vb!r}" for k, va, vb in train] or ["- nothing: the same settings"]
    if result.get("settings_differ_unpaired_variants"):
        L += ["", "Settings that differ for variants or models not paired here, so they leave these cells alone: "
              + "; ".join(f"`{k}` {va!r} → {vb!r}" for k, va, vb in result["settings_differ_unpaired_variants"])]
    if held:
        # seeds, models, ... and save_models: what a run holds and keeps, which cannot explain B − A
        L += ["", "What each run holds, not how its cells train: " + "; ".join(f"`{k}` {va!r} → {vb!r}" for k, va, vb in held)]
    L += ["", "Where the paired cells ran: A on " + machines_line(result["machines"]["a"]) + "; B on "
          + machines_line(result["machines"]["b"]) + "."]
    commits = result.get("commits") or {}
    if commits and commits["a"] != commits["b"]:
        # two runs of --ema 0.99 agree in every setting, yet one was trained before its BatchNorm pass existed
        L += ["", f"The paired cells were trained by other genaug code: A by {', '.join(commits['a'])}; B by "
              f"{', '.join(commits['b'])}. A change of code may move the results as a change of settings does."]
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
    L += ["", "In short, B against A:", ""] + at_work_lines(result.get("at_work") or {}, "comparison", "compare again")
    if result.get("classes_differ_in_files"):
        L.append(CLASSES_DIFFER_LINE)
    L += [
        f"- {r['model']}, {r['variant']}, train fraction {r['train_fraction']:g}: {verdict(r)}{threshold_clause(r)}."
        for r in result["rows"]]
    if any(r["pairs"] == 1 for r in result["rows"]):
        L += [f"- {ONE_RUN_NOTE}"]
    L += ["", "Only cells present in both runs (same model, variant, train fraction and seed) are compared; "
          "accuracy at each cell's validation threshold, on the same real test images.", "",
          "| model | variant | train frac | paired runs | accuracy % A | accuracy % B | B − A (pp) | 95% CI "
          "(seeds and images) | p | McNemar p by seed | at threshold 0.5: B − A (95% CI) | ROC-AUC A → B | "
          "calibration error (test) A → B | s/epoch A → B |", "|---" * 14 + "|"]
    for r in result["rows"]:
        L.append(f"| {r['model']} | {r['variant']} | {r['train_fraction']:g} | {r['pairs']} | "
                 f"{100 * r['accuracy_a']:.1f} | {100 * r['accuracy_b']:.1f} | "
                 f"{paired_columns(r)} | {at_half_column(r)} | {r['roc_auc_a']:.3f} → {r['roc_auc_b']:.3f} | "
                 f"{calibration_text(r['ece_test_a'])} → {calibration_text(r['ece_test_b'])} | "
                 f"{seconds_text(r['seconds_per_epoch_a'])} → {seconds_text(r['seconds_per_epoch_b'])} |")
    return "\n".join(L + ["", PAIRED_TEST_NOTE]) + "\n"


# ----------------------------------------------------------------------------- pooling input runs


def _input_run(run_dir: Path, key: str) -> str | None:
    """The GAN or encode run (``key``) a benchmark run was given, or the one it trained itself."""
    given = _settings(run_dir)["benchmark"].get(key)
    if given:
        return str(given)
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    return str(own_input_run(run_dir, manifest[key])) if manifest.get(key) else None


def input_run_quality(input_run: str | Path, archived_in: Path | None = None) -> str:
    """What the input run's own report measured, to read beside its difference: FID per class for a
    GAN run, test PSNR and SSIM for an encode run. Read at the recorded path, or else from its archived
    copy beside the benchmark run's (``archived_in``/<gan|encode>/<name>, genaug archive's layout), so
    archived runs pooled on another machine still show it; '' where neither has its metrics."""
    m = None
    for where in [Path(input_run)] + [archived_in / kind / Path(input_run).name for kind in ("gan", "encode")
                                       if archived_in is not None]:
        try:
            m = json.loads((where / "metrics.json").read_text(encoding="utf-8"))
            break
        except (OSError, json.JSONDecodeError):
            continue
    if not isinstance(m, dict):
        return ""
    # runs of one pool may have trained in fp32 and in bf16 (--cpu-amp, session 76): each says which
    precision = m.get("training_precision")
    trained = f"; trained in {precision}" if precision not in (None, "fp32") else ""
    if chose_channels_last(m):   # the layout changes what a GAN trains to (docs/PERFORMANCE.md (t))
        trained += "; trained channels-last" if not trained else ", channels-last"
    if isinstance(m.get("classes"), dict) and all("fid" in v for v in m["classes"].values()):
        # as its quality report writes it: one decimal showed a briefly trained judge's FIDs all as 0.0
        return ", ".join(f"{c} {fid_text(v['fid']['synthetic'])}" for c, v in m["classes"].items()) + trained
    if isinstance(m.get("test"), dict) and "psnr" in m["test"]:
        return f"{m['test']['psnr']:.2f} dB, SSIM {m['test']['ssim']:.3f}{trained}"
    return ""


def _other_variants_hint(cells: dict, variant: str) -> str:
    """'; they hold encoded cells: --variant encoded' where two or more of the runs given hold another variant
    that pools."""
    poolable = {v for vs in DEPENDENT_VARIANTS.values() for v in vs} - {variant}
    runs_holding = {v: sum(any(c["variant"] == v for c in run_cells) for run_cells in cells.values()) for v in poolable}
    held = sorted(v for v, n in runs_holding.items() if n >= 2)
    return f"; they hold {', '.join(held)} cells: --variant {held[0]}" if held else ""


def pool_runs(run_dirs: list[str | Path], variant: str = "mixed", n_boot: int = 1000,
              real_from: str | Path | None = None) -> dict:
    """``variant`` against real over benchmark runs that differ only in the GAN or encode run behind
    ``variant``, with an interval that resamples those input runs as well as seeds and test images.

    One benchmark run's interval holds its GAN (or autoencoder) fixed, so it cannot say how far
    retraining the GAN moves the answer; runs on several independently trained GANs can. Real cells
    do not read the input run, so one set serves every run: those of the first run that has them,
    seed by seed (the others' are checked against them and the identical ones counted). A run made
    without such an input run (e.g. real and mixed cells, when pooling encoded) may join to supply
    the real cells only, so they need not be trained again beside each input run's cells. ``real_from`` names
    a run whose real cells come first and whose other cells are not pooled: e.g. an earlier real,mixed run
    whose mixed cells drew another share of synthetic images than the runs pooled (session 58)."""
    dirs = [Path(d) for d in run_dirs] + ([Path(real_from)] if real_from is not None else [])
    seen: set[Path] = set()
    for d in dirs:   # else told it "used the same GAN run", as if two runs shared one (session 55)
        if (real := d.resolve()) in seen:
            raise ConfigError(f"{d} is given twice; give each benchmark run once")
        seen.add(real)
    key = next((k for k, vs in DEPENDENT_VARIANTS.items() if variant in vs), None)
    if key is None:
        raise ConfigError(f"--variant {variant} does not depend on an input run; pool one of "
                          f"{', '.join(v for vs in DEPENDENT_VARIANTS.values() for v in vs)}")
    what = INPUT_RUNS[key]
    cells = {d: _cells(d) for d in dirs}
    real_from_dir = dirs[-1] if real_from is not None else None
    if real_from_dir is not None and not any(c["variant"] == "real" for c in cells[real_from_dir]):
        raise ConfigError(f"--real-from {real_from} holds no real cells; give a benchmark run with real cells")
    pooled_models = {c["model"] for d in dirs for c in cells[d] if c["variant"] == variant and d != real_from_dir}
    inputs = _poolable_inputs(dirs, cells, variant, key, what, pooled_models, real_from_dir)
    real_only = [d for d in dirs if not inputs[d]]
    if len(dirs) - len(real_only) < 2:
        have = [d.name for d in dirs if inputs[d]]
        raise ConfigError(f"pooling needs at least two benchmark runs with {variant} cells, each on its own {what} "
                          f"run; of the {len(dirs)} given, " + (f"only {have[0]} holds them" if have else "none does")
                          + _other_variants_hint(cells, variant))
    groups = sorted({(c["model"], c["train_fraction"]) for d in dirs for c in cells[d]
                     if c["variant"] == variant and d != real_from_dir})
    # the run named for its real cells is looked in first, the others' real cells then checked against it
    order = ([real_from_dir] if real_from_dir is not None else []) + [d for d in dirs if d != real_from_dir]
    rows = [row for model, frac in groups
            if (row := _pooled_row(order, cells, inputs, model, variant, frac, n_boot)) is not None]
    if not rows:
        raise ConfigError(_why_none_pooled(dirs, cells, inputs, variant, what, real_from_dir))
    return {"variant": variant, "input": what, "runs": [str(d) for d in dirs if inputs[d]],
            "real_only_runs": [str(d) for d in real_only if d != real_from_dir],
            **({"real_cells_run": str(real_from_dir)} if real_from_dir is not None else {}),
            **({"at_work": busy} if (busy := runs_at_work(dirs)) else {}),
            "classes_differ_in_files": any(_classes_differ_in_files(d) for d in dirs), "rows": rows}


def _why_none_pooled(dirs: list[Path], cells: dict[Path, list[dict]], inputs: dict, variant: str, what: str,
                     real_from_dir: Path | None) -> str:
    """Why no model pooled: its variant cells are not in every run (runs of other models given together),
    no run holds its real cells, or their seeds do not meet (found in session 59: a DenseNet-121 run and a
    CNN run pooled were told only the last)."""
    runs = [d for d in dirs if inputs[d] and d != real_from_dir]
    models = {d: sorted({c["model"] for c in cells[d] if c["variant"] == variant}) for d in runs}
    in_every_run = set.intersection(*(set(m) for m in models.values()))
    if not in_every_run:
        return (f"the runs' {variant} cells are of different models ("
                + "; ".join(f"{', '.join(m)} in {d.name}" for d, m in models.items())
                + "): pool the runs of one model together")
    with_real = {c["model"] for d in dirs for c in cells[d] if c["variant"] == "real"}
    if lacking := sorted(in_every_run - with_real):
        return (f"no run given holds a real cell of {', '.join(lacking)}: name a run that does with --real-from RUN, "
                f"or add them with genaug benchmark --resume RUN --variants real,{variant}")
    return (f"no seed has a real cell and a {variant} cell in every {what} run's benchmark run; add them with "
            f"genaug benchmark --resume RUN --variants real,{variant}")


def _poolable_inputs(dirs: list[Path], cells: dict[Path, list[dict]], variant: str, key: str,
                     what: str, models: set[str], real_from: Path | None = None) -> dict[Path, str | None]:
    """Each benchmark run's input run (``key``), once the runs are checked to split the same data,
    to train cells of ``models`` alike but for that input run, and to use one input run each; None for a
    run without one that holds real cells, and for ``real_from`` (they supply those only)."""
    inputs = {d: None if d == real_from else _input_run(d, key) for d in dirs}
    if missing := [d.name for d in dirs if not inputs[d] and not any(c["variant"] == "real" for c in cells[d])]:
        verbs = ("records", "holds") if len(missing) == 1 else ("record", "hold")
        raise ConfigError(f"{', '.join(missing)} {verbs[0]} no {what} run and {verbs[1]} no real cells; pool "
                          f"benchmark runs with {variant} cells, and runs with real cells to pair them with")
    settings = {d: _settings(d) for d in dirs}
    first = next((d for d in dirs if inputs[d]), dirs[0])
    for d in dirs:
        if d == first:
            continue
        if differ := data_differences(settings[first], settings[d]):
            raise ConfigError(f"{first.name} and {d.name} split different data "
                              f"({data_differences_text(settings[first], settings[d], differ)}); pool runs "
                              "made on one data source and split")
        # settings only other variants read may differ (e.g. latent_epochs when pooling mixed), and
        # beside a run that supplies real cells only, every setting only some variant reads
        # and a model's own epochs (model_epochs[m]) only where m is pooled: its real cells are pixel cells
        reads = lambda k: (variant in VARIANT_ONLY_SETTINGS.get(k, (variant,)) and (inputs[d] or k not in VARIANT_ONLY_SETTINGS)
                           and setting_model(k) in (None, *models))
        if other := [k for k, _, _ in setting_differences(settings[first], settings[d])
                     if k not in CELL_SET_KEYS and k != key and reads(k)]:
            raise ConfigError(f"{first.name} and {d.name} train cells otherwise (they differ in {', '.join(other)}); "
                              f"pool runs that differ only in their {what} run (genaug compare shows what else differs)")
    by_input: dict[str, list[str]] = {}
    for d in dirs:
        if not inputs[d]:
            continue
        by_input.setdefault(str(Path(inputs[d]).resolve()), []).append(d.name)
    if shared := [names for names in by_input.values() if len(names) > 1]:
        raise ConfigError(f"{' and '.join(shared[0])} used the same {what} run; pooled, it would count as if "
                          f"retrained: give each benchmark run once per {what} run")
    return inputs


def _pooled_row(dirs, cells, inputs, model, variant, frac, n_boot) -> dict | None:
    """One model and train fraction pooled over the runs: None where no seed has a real cell and a
    ``variant`` cell in every run."""
    of = lambda d, v: {replicate_key(c): c for c in cells[d]
                       if (c["model"], c["variant"], c["train_fraction"]) == (model, v, frac)}
    real, real_from, others = {}, {}, {}
    for d in dirs:
        for k, c in of(d, "real").items():
            if k in real:
                others.setdefault(k, []).append(c)
            else:
                real[k], real_from[k] = c, d.name
    dirs = [d for d in dirs if inputs[d]]   # from here on, the runs with a variant cell to pair
    variant_cells = {d: of(d, variant) for d in dirs}
    keys = sorted(set(real).intersection(*(set(v) for v in variant_cells.values())))
    if not keys:
        return None
    for k in keys:
        if any(v[k]["test_labels"] != real[k]["test_labels"] for v in variant_cells.values()):
            raise ConfigError(f"{model}/{variant} seed {k[0]} was tested on other images than its real cell; "
                              "these runs cannot be paired")
    auc = lambda cs: float(np.mean([c["test_at_val_threshold"]["roc_auc"] for c in cs]))
    # (seeds, images) for real; (input runs, seeds, images) for the variant
    rows_of = lambda half: (correct_rows([real[k] for k in keys], half),
                            np.stack([correct_rows([variant_cells[d][k] for k in keys], half) for d in dirs]))
    correct_real, correct = rows_of(False)
    # the same cells at the fixed 0.5 threshold: a difference at the validation threshold that is gone at
    # 0.5 (with ROC-AUC unmoved) came from where validation put the threshold, not from better ranking
    at_half = None
    if is_binary(real[keys[0]]):
        half_real, half = rows_of(True)
        at_half = {"accuracy_real": float(half_real.mean()), "accuracy_variant": float(half.mean()),
                   "per_input_run": [float(h.mean() - half_real.mean()) for h in half],
                   "accuracy_difference": paired_bootstrap_diff(half_real, half, n=n_boot, seed=0)}
    per_run = []
    for d, c in zip(dirs, correct):
        r = paired_bootstrap_diff(correct_real, c, n=n_boot, seed=0)
        per_run.append({"run": str(d), "input_run": inputs[d], "input_quality": input_run_quality(inputs[d], d.parent.parent),
                        "diff": r["diff"], "ci": r["ci"], "p_value": r["p_value"], "resamples": r["resamples"],
                        "accuracy": float(c.mean()), "roc_auc": auc(variant_cells[d][k] for k in keys),
                        "machines": machines_of(variant_cells[d][k] for k in keys),
                        "commits": commits_of([variant_cells[d][k] for k in keys]),
                        "train_images": sorted({(c["n_train"] - c["n_train_synthetic"], c["n_train_synthetic"])
                                                for c in (variant_cells[d][k] for k in keys) if "n_train" in c})})
    checked = [(real[k], o) for k in keys for o in others.get(k, [])]
    # cells of seeds not in every run are left out of the pool: said, not silently dropped (session 58)
    unpaired = {d.name: [list(k) for k in sorted(set(variant_cells[d]) - set(keys))] for d in dirs}
    return {"unpaired": {name: ks for name, ks in unpaired.items() if ks},
            "model": model, "variant": variant, "train_fraction": frac, "seeds": [k[0] for k in keys],
            "pairs": len(dirs) * len(keys), "input_runs": len(dirs),
            "accuracy_real": float(correct_real.mean()), "accuracy_variant": float(correct.mean()),
            "roc_auc_real": auc(real[k] for k in keys), "roc_auc_variant": float(np.mean([p["roc_auc"] for p in per_run])),
            "accuracy_difference": paired_bootstrap_diff(correct_real, correct, n=n_boot, seed=0),
            "per_input_run": per_run, "at_0.5": at_half,
            "between_input_runs_sd": float(np.std([p["diff"] for p in per_run], ddof=1)),
            "real_from": sorted(set(real_from[k] for k in keys)),
            "real_machines": machines_of(real[k] for k in keys),
            "real_commits": commits_of([real[k] for k in keys]),
            "real_rechecked": len(checked),
            "real_identical": sum(a["test_probs"] == b["test_probs"] for a, b in checked)}


# Stated beside every pooled result, since a bootstrap can only see the spread of the input runs it
# is given. The coverage figures are bench/pool_coverage.py's (docs/STATUS.md, issue #5, session 21).
POOL_NOTE = ("The interval resamples the {input} runs, the classifier seeds and the test images together (a "
             "crossed bootstrap: seed s of real pairs with seed s of {variant} on every {input} run), so it "
             "counts retraining the {input}. It sees only the spread among the {input} runs it is given: in "
             "simulation (`python bench/pool_coverage.py`), with {input} runs whose effects spread by 3 points "
             "(standard deviation), the 95% interval of one run held the true difference 70% of the time, "
             "of 3 pooled runs 92% and of 5 runs 96%.")


# the input run's own measure of quality, as input_run_quality gives it
QUALITY_COLUMN = {"GAN": "its FID by class", "autoencoder": "its test reconstruction"}


def format_pool(result: dict) -> str:
    v, what = result["variant"], result["input"]
    L = [f"# {v} against real, pooled over {len(result['runs'])} {what} runs", "",
         "Benchmark runs and the " + what + " run each trained its " + v + " cells on:", ""]
    first = result["rows"][0]["per_input_run"]
    L += [f"- `{p['run']}`: `{p['input_run']}`" for p in first]
    L += [f"- `{r}`: none; its real cells only" for r in result.get("real_only_runs", [])]
    if rf := result.get("real_cells_run"):
        L.append(f"- `{rf}`: its real cells only (`--real-from`); its other cells are not pooled")
    L += ["", "## In short", ""] + at_work_lines(result.get("at_work") or {}, "pool",
                                                 "pool the runs again as a new run (genaug pool)")
    if result.get("classes_differ_in_files"):
        L.append(CLASSES_DIFFER_LINE)
    for r in result["rows"]:
        at = f", train fraction {r['train_fraction']:g}" if r["train_fraction"] != 1 else ""
        L.append(f"- {r['model']}{at}, {pooled_variant_words(r, v)} against real: "
                 + verdict(r, f"{counted(len(r['seeds']), 'seed')} on each of {r['input_runs']} {what} runs")
                 + f"; ROC-AUC {r['roc_auc_real']:.3f} → {r['roc_auc_variant']:.3f}; between {what} runs the "
                 f"difference has standard deviation {100 * r['between_input_runs_sd']:.1f} points"
                 + (f"; at the fixed threshold 0.5: {difference_with_interval(r['at_0.5']['accuracy_difference'], with_p=True)}"
                    if r.get("at_0.5") else "") + ".")
    L += ["", "## Each run and pooled", "", POOL_NOTE.format(input=what, variant=v), "",
          "| model | train frac | " + what + " run | " + QUALITY_COLUMN[what] + " | seeds | accuracy % real | "
          "accuracy % " + v + " | " + v + " − real (pp) | 95% CI | p | at 0.5: " + v + " − real (pp) |",
          "|---" * 11 + "|"]
    for r in result["rows"]:
        half = r.get("at_0.5")
        for i, p in enumerate(r["per_input_run"]):
            L.append(f"| {r['model']} | {r['train_fraction']:g} | {Path(p['input_run']).name} | "
                     f"{p['input_quality'] or 'not found'} | {len(r['seeds'])} | "
                     f"{100 * r['accuracy_real']:.1f} | {100 * p['accuracy']:.1f} | {100 * p['diff']:+.1f} | "
                     f"{100 * p['ci'][0]:+.1f} to {100 * p['ci'][1]:+.1f} | {_p(p['p_value'], p['resamples'])} | "
                     + (f"{100 * half['per_input_run'][i]:+.1f} |" if half else "— |"))
        d = r["accuracy_difference"]
        L.append(f"| {r['model']} | {r['train_fraction']:g} | **pooled ({r['input_runs']})** | | {len(r['seeds'])} | "
                 f"{100 * r['accuracy_real']:.1f} | {100 * r['accuracy_variant']:.1f} | {100 * d['diff']:+.1f} | "
                 f"{100 * d['ci'][0]:+.1f} to {100 * d['ci'][1]:+.1f} | {_p(d['p_value'], d['resamples'])} | "
                 + (f"{difference_with_interval(half['accuracy_difference'], with_p=True)} |" if half else "— |"))
    L.append("")
    for r in result["rows"]:
        line = f"{r['model']}: real cells from {', '.join(r['real_from'])}"
        if r["real_rechecked"]:
            line += (f"; the other runs' real cells of the same seeds have identical test probabilities in "
                     f"{r['real_identical']} of {r['real_rechecked']}")
        L.append(line + ".")
    L += [""] + [line for r in result["rows"]
                 for line in (_unpaired_cells(r, v) + _synthetic_images_pooled(r, v) + _where_pooled_cells_ran(r, v)
                              + _which_code_trained(r, v))]
    L += ["", "Accuracy at each cell's validation threshold, on the same real test images. Each "
          f"{what} run's row pairs its own {v} cells with the same real cells; its interval resamples seeds and "
          f"test images only, as one benchmark run's report does. The last column takes the same cells at the "
          f"fixed threshold 0.5 (binary tasks): a difference at the validation threshold that is gone at 0.5, with "
          f"ROC-AUC unmoved, came from where validation put each cell's threshold rather than from better ranking."]
    return "\n".join(L) + "\n"


def _unpaired_cells(row: dict, variant: str) -> list[str]:
    """The ``variant`` cells a pool left out, those of seeds without a real cell and a ``variant`` cell in
    every run: a run extended by a seed the others lack pooled on the shared seeds without a word."""
    if not (left := row.get("unpaired")):
        return []
    key = lambda k: f"{k[0]}" if k[1] == -1 else f"{k[0]} (fold {k[1]})"
    seeds = sorted(set(row["seeds"]))
    return [f"{row['model']}: pooled on seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}, those with "
            f"a real cell and {'an' if variant[0] in 'aeiou' else 'a'} {variant} cell in every run; left out: "
            + "; ".join(f"{name}'s {variant} cells of seed{'s' if len(ks) > 1 else ''} {', '.join(key(k) for k in ks)}"
                        for name, ks in left.items()) + "."]


def _synthetic_images_pooled(row: dict, variant: str) -> list[str]:
    """How many synthetic images each run's ``variant`` cells trained on, beside the real ones: GAN runs of
    other sizes give mixed cells other shares, which the pooled difference then mixes (found in session 56:
    the archived mixed cells took 1280 of the 1744 synthetic PNEUMONIA images --synthetic-ratio 0.5 asked)."""
    counts = {Path(p["run"]).name: p.get("train_images") for p in row["per_input_run"]}
    if variant not in ("mixed", "synthetic") or not all(counts.values()):   # pooled before the counts were kept
        return []
    # the share in numbers: --synthetic-ratio 0.5 that a small GAN run filled to 0.40 shows as such
    said = lambda pairs: " or ".join(f"{s} synthetic and {r} real images ({s / r:.2f} x real)" if r
                                     else f"{s} synthetic images" for r, s in pairs)
    if len({tuple(map(tuple, c)) for c in counts.values()}) == 1:
        return [f"{row['model']}: each run's {variant} cells trained on {said(next(iter(counts.values())))}."]
    return [f"{row['model']}: the runs' {variant} cells trained on other numbers of synthetic images ("
            + "; ".join(f"{name}: {said(c)}" for name, c in counts.items())
            + "), so the pooled difference mixes those shares."]


def _where_pooled_cells_ran(row: dict, variant: str) -> list[str]:
    """Where a pooled row's real cells and each run's variant cells trained, and a warning where a
    run's pairs cross machines (pooling runs made on several machines is allowed: the recipe is the same)."""
    L = [f"{row['model']}: real cells ran on {machines_line(row['real_machines'])}; "
         + "; ".join(f"{Path(p['run']).name}'s {variant} cells on {machines_line(p['machines'])}"
                     for p in row["per_input_run"]) + "."]
    crossed = [Path(p["run"]).name for p in row["per_input_run"] if set(p["machines"]) != set(row["real_machines"])]
    unknown = any("not recorded" in set(p["machines"]) | set(row["real_machines"]) for p in row["per_input_run"])
    if crossed:
        L.append(f"{row['model']}: in {', '.join(crossed)} a seed's {variant} cell and its real cell trained on "
                 f"{'machines not recorded as the same' if unknown else 'different machines'}, so each pair shares "
                 "the recipe and seed but perhaps not the kernels, and its "
                 "difference also holds whatever the machine changes (retrained on another CPU, a cell's "
                 "accuracy moved within its seed-to-seed spread: docs/STATUS.md, issue #5, session 19).")
    return L


def _which_code_trained(row: dict, variant: str) -> list[str]:
    """A line where a pooled row's cells were trained by more than one genaug commit (as genaug compare
    says of two runs): pooled runs agree in every setting, yet a change of code between them may move
    a run's difference as a change of settings would. Rows pooled before commits were kept say nothing."""
    if "real_commits" not in row:
        return []
    sides = [("real cells", row["real_commits"])] + [
        (f"{Path(p['run']).name}'s {variant} cells", p["commits"]) for p in row["per_input_run"]]
    if len({tuple(c) for _, c in sides}) == 1:
        return []
    return [f"{row['model']}: the cells were trained by other genaug code: "
            + "; ".join(f"{who} by {', '.join(commits)}" for who, commits in sides)
            + ". A change of code may move a run's difference as a change of settings does."]


def run_pool(run_dirs: list[str | Path], variant: str = "mixed", n_boot: int = 1000, out_root: str | Path = "outputs",
             name: str = "", real_from: str | Path | None = None) -> Path:
    """``pool_runs`` as a run of its own, outputs/pool/<timestamp>-<name>/: config.yaml (what was
    pooled), pool.json, pool.md (which ``genaug report`` gathers) and a log; checked before the
    directory is made, so a refused pool leaves nothing behind."""
    result = pool_runs(run_dirs, variant, n_boot, real_from)
    recorded = {"runs": [str(d) for d in run_dirs], "variant": variant, "bootstrap": n_boot}
    run = new_run(out_root, "pool", name, {"pool": {**recorded, **({"real_from": str(real_from)} if real_from else {})}})
    try:
        write_json(run.path("pool.json"), result)
        atomic_write_document(run.path("pool.md"), format_pool(result))
        logging.getLogger("genaug").info("pooled %d benchmark runs (%s against real)", len(run_dirs), variant)
        run.save_manifest(finished=True, device="cpu")   # numpy resampling only
    finally:
        run.close()
    return run.dir


def redo_pool(run_dir: str | Path) -> Path:
    """Write a pool run's pool.md and pool.json again with this genaug, from the benchmark runs, variant and
    resamples its config.yaml recorded, where they were recorded (paths as given then, so run it from the
    same folder). A page written before a later line existed gains it, e.g. how many synthetic images each
    run's cells trained on (session 56); the numbers are the same, the resampling being seeded. The
    manifest keeps when and how it was redone; refused before anything is written."""
    d = Path(run_dir)
    if not d.is_dir():
        raise CheckpointError(f"pool run not found: {d}{missing_run_hint(d, 'pool')}" if not d.exists() else
                              f"{d} is a file, not a run directory{nearby_runs_hint(d)}")
    if (why := not_a_run_of(d, "pool", "genaug pool --redo")) or not (d / "pool.json").is_file():
        raise CheckpointError(f"{d} is not a genaug pool run{why or nearby_runs_hint(d, 'pool') or ' (no pool.json)'}")
    saved = read_run_config(d).get("pool")
    if not (isinstance(saved, dict) and isinstance(saved.get("runs"), list) and isinstance(saved.get("variant"), str)
            and isinstance(saved.get("bootstrap"), int)):
        raise CheckpointError(f"{d}/config.yaml does not record the pooled runs, variant and bootstrap; pool them "
                              "again as a new run (genaug pool RUNS --variant V)")
    try:
        recorded = json.loads((d / "pool.json").read_text(encoding="utf-8"))
        then = {(row["model"], row["train_fraction"]): row for row in recorded["rows"]}
    except (ValueError, KeyError, TypeError):   # what it holds is the check that the numbers stay: not without it
        raise CheckpointError(f"{d}/pool.json does not parse as the pool it wrote; restore it, or pool the runs "
                              "again as a new run (genaug pool RUNS)") from None
    try:
        result = pool_runs(saved["runs"], saved["variant"], saved["bootstrap"], saved.get("real_from"))
    except CheckpointError as exc:   # e.g. a pooled run moved since (archived): name the way on
        raise CheckpointError(f"{exc}; {d} recorded it as one of its runs: pool the runs where they are now as a "
                              "new run (genaug pool RUNS)") from None
    if changed := _cells_changed_since(then, result):
        # its page would then hold other numbers under the run's old date: that is a new pool
        raise CheckpointError(f"the runs {d} pooled hold other cells now ({changed}); pool them as a new run "
                              "(genaug pool RUNS) and keep this one as it was")
    run = open_run(d, "pool")
    run.trains = False   # the manifest keeps the machine that pooled first; which code wrote the page is kept below
    run.manifest.setdefault("redone_by_commit", []).append(git_commit())
    try:
        write_json(run.path("pool.json"), result)
        atomic_write_document(run.path("pool.md"), format_pool(result))
        logging.getLogger("genaug").info("pooled %d benchmark runs again (%s against real)", len(saved["runs"]),
                                         saved["variant"])
        run.save_manifest(finished=True, device="cpu")
    finally:
        run.close()
    return run.dir


def _cells_changed_since(then: dict, result: dict) -> str:
    """Where a pool recomputed from the same runs differs from the rows recorded (by model and train
    fraction; the runs gained seeds, or a cell was trained again), what differs; '' where every row pools
    the same cells to the same numbers."""
    now = {(row["model"], row["train_fraction"]): row for row in result["rows"]}
    if set(then) != set(now):
        return f"rows {sorted(then)} then, {sorted(now)} now"
    for key, old in then.items():
        new = now[key]
        if old.get("seeds") != new["seeds"]:
            return f"{key[0]}: seeds {old.get('seeds')} then, {new['seeds']} now"
        if (old.get("accuracy_real"), old.get("accuracy_variant"), (old.get("accuracy_difference") or {}).get("diff")) != (
                new["accuracy_real"], new["accuracy_variant"], new["accuracy_difference"]["diff"]):
            return f"{key[0]}: the same seeds, other accuracies (a cell trained again)"
    return ""
