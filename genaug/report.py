"""Reports: the benchmark's results.csv/json, report.md and report.html with tables and plots, and
``genaug report``'s one document gathered from finished runs (e.g. docs/RESULTS.md)."""
from __future__ import annotations

import csv
import html
import io
import json
import re
import shlex
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from genaug.benchmark import DEPENDENT_VARIANTS, INPUT_RUNS, replicate_key, seed_ensemble, synthetic_shortfall
from genaug.config import Config
from genaug.data import DataBundle
from genaug.data.info import squared_sentence
from genaug.data.traits import NOTE_START as TELLS_NOTE_START
from genaug.errors import CheckpointError
from genaug.jobs import tell
from genaug.locks import in_use_by
from genaug.inventory import counted, read_json_or_none, run_state, seconds_text
from genaug.train import chose_channels_last
from genaug.runs import (Run, atomic_write_document, atomic_write_text, machine_summary, machines_line, machines_of, read_cells, read_manifest,
                         read_run_config, write_json)

# Published figures on this test split, quoted for context; genaug did not measure them.
QUOTED = [
    ("Kermany et al. 2018 (Cell), ImageNet transfer, full size", "92.8%", "0.968"),
    ("MedMNIST v2, ResNet-50 on PneumoniaMNIST", "88.4%", "0.962"),
    ("MedMNIST+, best model at 224 px, ImageNet-pretrained", "91.6%", "0.989"),
    ("MedMNIST+, best model at 64 px, ImageNet-pretrained", "89.3%", "n/a"),
]
QUOTED_3CLASS = [
    ("Kermany et al. 2018 (Cell), bacterial vs viral pneumonia only (a 2-class sub-task, not this 3-class one)",
     "90.7%", "n/a"),
]
# The Kermany test split's images per class (NORMAL, PNEUMONIA; or NORMAL, BACTERIA, VIRUS), also
# PneumoniaMNIST's test split: the quoted figures are set beside a run only when its test split has them.
KERMANY_TEST_COUNTS = ([234, 390], [148, 234, 242])


def is_kermany_test_split(bundle: DataBundle) -> bool:
    counts = np.bincount(bundle.test.labels, minlength=len(bundle.classes)).tolist()
    return sorted(counts) in KERMANY_TEST_COUNTS


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _ensemble(cells: list[dict]) -> tuple[torch.Tensor, torch.Tensor, float]:
    ens = seed_ensemble(cells)
    return ens["test_labels"], ens["test_probs"], ens["threshold"]


def _groups(cells: list[dict], frac: float) -> dict[tuple, list[dict]]:
    g: dict[tuple, list[dict]] = {}
    for c in cells:
        if c["train_fraction"] == frac:
            g.setdefault((c["model"], c["variant"]), []).append(c)
    return g


# each variant one colour in every panel: drawn in the order each panel had, the CNN's panel gave mixed the
# colour the others gave real (found in session 85, in the demo's ROC and threshold plots)
VARIANT_COLORS = {"real": "C0", "mixed": "C1", "encoded": "C2", "synthetic": "C3"}


def variant_color(variant: str) -> str:
    return VARIANT_COLORS.get(variant, f"C{4 + sum(map(ord, variant)) % 6}")


def model_line_style(model: str, models: list[str]) -> dict:
    """Where one plot holds every model's lines: the colour says the variant, the line and marker the model."""
    k = sorted(models).index(model)
    return {"linestyle": ["-", "--", ":", "-."][k % 4], "marker": "osD^v<>p"[k % 8]}


def _per_model_panels(cells, frac, path: Path, height: float, draw, finish) -> bool:
    """One panel per model, one line per variant drawn by ``draw(ax, variant, y, probs, threshold, color)``
    from the variant's seed ensemble, each variant in its colour in every panel; binary tasks only (False, and
    no file, otherwise)."""
    groups = _groups(cells, frac)
    if not groups or len(cells[0]["test_probs"][0]) != 2:
        return False
    plt = _plt()
    models = sorted({m for m, _ in groups})
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), height), squeeze=False)
    for ax, m in zip(axes[0], models):
        for (mm, v), cs in sorted(groups.items()):
            if mm == m:
                draw(ax, v, *_ensemble(cs), variant_color(v))
        finish(ax, m)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_roc(cells, frac, path: Path) -> bool:
    import torchmetrics.functional.classification as tmc

    def draw(ax, variant, y, p, _thr, color):
        fpr, tpr, _ = tmc.binary_roc(p[:, 1], y)
        ax.plot(fpr.numpy(), tpr.numpy(), color=color,
                label=f"{variant} (AUC {tmc.binary_auroc(p[:, 1], y).item():.3f})")

    def finish(ax, model):
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(title=model, xlabel="1 - specificity", ylabel="sensitivity")
        ax.legend(fontsize=8, loc="lower right")

    return _per_model_panels(cells, frac, path, 4, draw, finish)


def plot_threshold_sweep(cells, frac, path: Path) -> bool:
    """Test accuracy of each seed ensemble at every threshold, with the one it used (chosen on
    validation) marked. A diagnosis of how far that choice transfers to the test split, not a
    way to pick one: a threshold read off this plot would be tuned on the test set."""
    grid = torch.linspace(0, 1, 201)

    def draw(ax, variant, y, p, thr, color):
        acc = ((p[:, 1][None, :] >= grid[:, None]).long() == y[None, :]).float().mean(dim=1)
        ax.plot(grid.numpy(), 100 * acc.numpy(), label=variant, color=color)
        ax.plot([thr], [100 * ((p[:, 1] >= thr).long() == y).float().mean().item()], "o", color=color)

    def finish(ax, model):
        ax.set(title=model, xlabel="threshold on P(positive class)", ylabel="test accuracy %")
        ax.legend(fontsize=8, loc="lower center")

    return _per_model_panels(cells, frac, path, 3.6, draw, finish)


def plot_confusions(cells, frac, classes, path: Path) -> None:
    from genaug.metrics import predictions
    import torchmetrics.functional.classification as tmc
    groups = _groups(cells, frac)
    plt = _plt()
    keys = sorted(groups)
    cols = min(4, len(keys))
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys):
        y, p, thr = _ensemble(groups[key])
        cm = tmc.multiclass_confusion_matrix(predictions(p, thr if len(classes) == 2 else None), y,
                                             num_classes=len(classes)).numpy()
        ax.axis("on")
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):   # white on the dark cells, where black could not be read
            ax.text(j, i, str(v), ha="center", va="center", fontsize=9, color="white" if v > cm.max() / 2 else "black")
        ax.set(title=f"{key[0]} / {key[1]}", xticks=range(len(classes)), yticks=range(len(classes)),
               xlabel="predicted", ylabel="true")
        ax.set_xticklabels([c[:10] for c in classes], fontsize=7)   # PNEUMONIA whole, not PNEUMO
        ax.set_yticklabels([c[:10] for c in classes], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(cells, frac, path: Path) -> None:
    groups = _groups(cells, frac)
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    models = sorted({m for m, _ in groups})
    for (m, v), cs in sorted(groups.items()):
        first = sorted(cs, key=lambda c: c["seed"])[0]
        h = first["history"]
        ep = [r["epoch"] for r in h]
        # a marker per epoch: a cell that stopped after one epoch is a point, which a bare line leaves unseen
        style = {"label": f"{m}/{v}", "markersize": 3, "color": variant_color(v), **model_line_style(m, models)}
        axes[0].plot(ep, [r["train_loss"] for r in h], **style)
        axes[1].plot(ep, [r["val_loss"] for r in h], **style)
        best = [r["val_loss"] for r in h if r["epoch"] == first.get("best_epoch")]
        if best:   # the epoch whose weights were restored and tested
            axes[1].plot([first["best_epoch"]], best, marker="o", markersize=9, fillstyle="none",
                         color=variant_color(v))
    axes[0].set(title="training loss (first seed)", xlabel="epoch")
    axes[1].set(title="validation loss (real val split; ring: the epoch tested)", xlabel="epoch")
    for ax in axes:   # epochs are whole numbers: no tick at epoch 1.2
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fractions(table: list[dict], path: Path) -> bool:
    fracs = sorted({r["train_fraction"] for r in table})
    if len(fracs) < 2:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    models = sorted({r["model"] for r in table})
    for (m, v) in sorted({(r["model"], r["variant"]) for r in table}):
        rows = sorted((r for r in table if r["model"] == m and r["variant"] == v), key=lambda r: r["train_fraction"])
        ax.errorbar([r["train_fraction"] for r in rows], [r["accuracy_thr_mean"] for r in rows],
                    yerr=[r["accuracy_thr_std"] for r in rows], capsize=3, label=f"{m}/{v}", color=variant_color(v),
                    **model_line_style(m, models))
    ax.set(xscale="log", xlabel="share of real training patients", ylabel="test accuracy (val threshold)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _pm(r, metric, view="thr", pct=False):
    """mean ± std over seeds (and folds); a single run has no spread, so none is shown."""
    m, s = r[f"{metric}_{view}_mean"], r[f"{metric}_{view}_std"]
    k = 100 if pct else 1
    fmt = "{:.1f}" if pct else "{:.3f}"
    if r.get("replicates", len(r["seeds"])) < 2:
        return fmt.format(k * m) + " (1 run)"
    return f"{fmt.format(k * m)} ± {fmt.format(k * s)}"


def _runs(r: dict) -> str:
    """How many runs a row or comparison pools: seeds, or seeds x folds under K-fold."""
    return f"{len(r['seeds'])}x{len(r['folds'])}" if r.get("folds") else str(len(r["seeds"]))


def results_csv(table: list[dict]) -> str:
    cols = ["model", "variant", "train_fraction", "seeds", "n_train", "n_train_synthetic",
            "accuracy_thr_mean", "accuracy_thr_std", "accuracy_half_mean", "accuracy_half_std",
            "roc_auc_thr_mean", "roc_auc_thr_std", "sensitivity_thr_mean", "specificity_thr_mean",
            "f1_macro_thr_mean", "ece_val_mean", "ece_test_mean", "accuracy_ci95_seed_ensemble",
            "roc_auc_ci95_seed_ensemble", "seconds_per_epoch_mean", "epochs_mean", "train_images_per_second_mean"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in table:
        w.writerow([";".join(map(str, r[c])) if isinstance(r[c], list) else r[c] for c in cols])
    return buf.getvalue()


def write_report(run: Run, cfg: Config, bundle: DataBundle, summary: dict, cells: list[dict],
                 gan_dir: Path | None, enc_dir: Path | None) -> None:
    table, comps = summary["table"], summary["comparisons"]
    write_json(run.path("results.json"), {"config": cfg.to_dict(), "data": bundle.summary(), **summary})
    atomic_write_text(run.path("results.csv"), results_csv(table))
    fracs = sorted({c["train_fraction"] for c in cells})
    main_frac = max(fracs) if fracs else 1.0
    figs = []
    if cells:
        if plot_roc(cells, main_frac, run.path("roc.png")):
            figs.append(("ROC curves (seed-ensemble probabilities, real test split)", "roc.png"))
        if plot_threshold_sweep(cells, main_frac, run.path("threshold_sweep.png")):
            # a diagnosis only: a threshold chosen from this plot would be tuned on the test set
            figs.append(("Threshold transfer: test accuracy at every threshold, the dot at the one chosen on "
                         "validation (diagnosis only)", "threshold_sweep.png"))
        plot_confusions(cells, main_frac, bundle.classes, run.path("confusion.png"))
        figs.append(("Confusion matrices, " + ("most probable class" if len(bundle.classes) > 2
                                               else "at the validation-chosen threshold"), "confusion.png"))
        plot_curves(cells, main_frac, run.path("training_curves.png"))
        figs.append(("Training curves", "training_curves.png"))
        if plot_fractions(table, run.path("train_fraction.png")):
            figs.append(("Accuracy against the share of real training data", "train_fraction.png"))
    if gan_dir is not None:
        grids = sorted(Path(gan_dir).glob("samples/*_epoch_*.png"))
        if grids:
            shutil.copyfile(grids[-1], run.path("synthetic_samples.png"))
        if run.path("synthetic_samples.png").is_file():   # copied earlier, if the GAN run is gone now
            figs.append((f"Synthetic samples (last epoch of {Path(gan_dir).name}; one row per class)",
                         "synthetic_samples.png"))
    if enc_dir is not None and (Path(enc_dir) / "reconstructions.png").is_file():
        # the grid shows real X-rays: an archive (genaug archive) keeps it out, and a report
        # rewritten inside one must not bring it back
        if not run.path("archived.json").is_file():
            shutil.copyfile(Path(enc_dir) / "reconstructions.png", run.path("reconstructions.png"))
        if run.path("reconstructions.png").is_file():
            figs.append(("Autoencoder: test originals (top) and reconstructions (bottom)", "reconstructions.png"))
    short = in_short(table, comps, cfg.benchmark.image_size, len(bundle.classes) > 2, summary["notes"])
    md = format_markdown(cfg, bundle, table, comps, summary["notes"], figs, gan_dir, enc_dir, short,
                         bool(synthetic_shortfall(cells, bundle.classes, cfg.benchmark)))
    atomic_write_document(run.path("report.md"), md)
    atomic_write_document(run.path("report.html"), markdown_to_html(md, f"genaug benchmark: {bundle.name}"))
    print(md, flush=True)
    if short:   # the answer again where the terminal ends, after the long report
        tell("In short:\n" + "\n".join(short).replace("**", ""))


def ensemble_section(table: list[dict], multi: bool = False) -> list[str]:
    """Markdown lines for the seed-ensemble table (rows with more than one run), or none; ``multi``:
    more than two classes, where the prediction is the most probable class and there is no threshold."""
    pooled = [r for r in table if r["replicates"] > 1 and "seed_ensemble" in r]
    if not pooled:
        return []
    L = ["", "## Seed ensembles (the runs of a row pooled: probabilities averaged)", "",
         "One classifier made of all the row's runs, so it costs their training time together; compare it "
         "with the single-run means above only as that. Its threshold is chosen on the pooled validation "
         "probabilities where the cells kept them, otherwise it is the mean of the runs' thresholds.", "",
         f"| model | variant | train frac | runs | {'accuracy %' if multi else 'accuracy % (val thr)'} | 95% CI | ROC-AUC | 95% CI | "
         "sensitivity | specificity | threshold (from) |", "|---" * 11 + "|"]
    for r in pooled:
        e, ci, ca = r["seed_ensemble"], r["accuracy_ci95_seed_ensemble"], r["roc_auc_ci95_seed_ensemble"]
        sens = "–" if e.get("sensitivity") is None else f"{e['sensitivity']:.3f}"
        spec = "–" if e.get("specificity") is None else f"{e['specificity']:.3f}"
        thr_text = "" if e["threshold"] is None else f"{e['threshold']:.3f} "
        L.append(f"| {r['model']} | {r['variant']} | {r['train_fraction']:g} | {_runs(r)} | "
                 f"{100 * e['accuracy']:.1f} | {100 * ci[0]:.1f}–{100 * ci[1]:.1f} | {e['roc_auc']:.3f} | "
                 f"{ca[0]:.3f}–{ca[1]:.3f} | {sens} | {spec} | {thr_text}({e['threshold_from']}) |")
    return L


def calibration_text(mean: float, std: float | None = None) -> str:
    """'0.114 ± 0.007' (or '0.114' without ``std``); '–' where no cell kept the probabilities."""
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.3f}" + (f" ± {std:.3f}" if std is not None else "")


def calibration_section(table: list[dict], classes: list[str]) -> list[str]:
    """Markdown lines for each row's expected calibration error on validation and on test."""
    rows = [r for r in table if "ece_test_mean" in r]
    if not rows:
        return []
    multi = len(classes) > 2
    what = (f"each cell's probability of {classes[1]} and how often {classes[1]} occurs among the images given "
            "about that probability" if not multi
            else "each cell's probability of its most probable class and how often that class is right")
    chose, carry = ("epoch", ".") if multi else (
        "epoch and threshold", ", so a threshold chosen on validation may not carry there (the threshold transfer "
                               "plot below shows where it lands).")
    L = ["", "## Calibration (expected calibration error)", "",
         f"The gap between {what}, averaged over 15 equal-width bins of probability, each weighted by its share "
         f"of the images (0: calibrated); mean ± std over the row's runs. Validation chose each cell's {chose}, so "
         "its figure is the favourable one. A test figure well above it says that validation's probabilities do "
         f"not describe the test split{carry}", "",
         "| model | variant | train frac | runs | ECE validation | ECE test |", "|---" * 6 + "|"]
    for r in rows:
        L.append(f"| {r['model']} | {r['variant']} | {r['train_fraction']:g} | {_runs(r)} | "
                 f"{calibration_text(r['ece_val_mean'], r['ece_val_std'])} | "
                 f"{calibration_text(r['ece_test_mean'], r['ece_test_std'])} |")
    return L


# Said under every paired table: what the interval and p-value count as chance
PAIRED_TEST_NOTE = (
    "Interval and p resample the paired seeds as well as the test images (a multi-bootstrap), so they "
    "include how much the difference moves from one training seed to the next, not only which test "
    "images were drawn; with few seeds they are rough. With one seed the interval resamples test images "
    "and p is McNemar's exact test. McNemar by seed: the median and range of the seeds' own tests. "
    "results.json also has the difference for these trained models as they are (`these_runs`). The last "
    "column pairs the same cells at the fixed threshold 0.5 (binary tasks): a difference at the validation "
    "threshold that is not there at 0.5, or the reverse, lies in where validation put the thresholds, not in "
    "how the models rank the images (ROC-AUC).")


def _p(value: float, resamples: int | None = None) -> str:
    return f"< {1 / resamples:.2g}" if value == 0 and resamples else f"{value:.3g}"


def difference_with_interval(d: dict, with_p: bool = False) -> str:
    """'+0.3 (-1.7 to +2.3)', or with ``with_p`` '+0.3 (-1.7 to +2.3, p 0.77)', for a
    paired_bootstrap_diff result, in accuracy points."""
    p = f", p {_p(d['p_value'], d.get('resamples'))}" if with_p else ""
    return f"{100 * d['diff']:+.1f} ({100 * d['ci'][0]:+.1f} to {100 * d['ci'][1]:+.1f}{p})"


def _interval_word(d: dict) -> str:
    """Which way a 95% interval points: 'better', 'worse' or 'open' (it holds 0)."""
    return "better" if d["ci"][0] > 0 else "worse" if d["ci"][1] < 0 else "open"


def threshold_clause(comp: dict) -> str:
    """'; at the fixed threshold 0.5 it is ...' where the difference at 0.5 points another way than
    at the validation thresholds (a gain there gone at 0.5, say, because validation put one side's
    thresholds badly, or a loss at 0.5 that the thresholds undo); '' where both agree or 0.5 is not
    measured (more than two classes)."""
    half = comp.get("accuracy_difference_at_0.5")
    if not half or _interval_word(half) == _interval_word(comp["accuracy_difference"]):
        return ""
    return (f"; at the fixed threshold 0.5 it is {difference_with_interval(half)}, so the verdict rests on "
            "where the thresholds are put")


def at_half_column(comp: dict) -> str:
    """The 'at threshold 0.5: difference (95% CI)' cell of a paired comparison row ('—' without one)."""
    half = comp.get("accuracy_difference_at_0.5")
    return difference_with_interval(half) if half else "—"


def paired_columns(comp: dict) -> str:
    """The difference, interval, p and McNemar-by-seed cells of a paired comparison row."""
    d = comp["accuracy_difference"]
    by_seed = [m["p_value"] for m in comp["mcnemar_per_seed"]]
    seeds = (_p(by_seed[0]) if len(by_seed) == 1 else
             f"median {_p(float(np.median(by_seed)))} ({_p(min(by_seed))}–{_p(max(by_seed))})")
    resamples = d.get("resamples") if comp["pairs"] > 1 else None
    return (f"{100 * d['diff']:+.1f} | {100 * d['ci'][0]:+.1f} to {100 * d['ci'][1]:+.1f} | "
            f"{_p(d['p_value'], resamples)} | {seeds}")


VARIANT_WORDS = {"mixed": "mixed (real + synthetic)", "synthetic": "synthetic only (trained on synthetic, tested on real)",
                 "encoded": "encoded (latent CNN)"}


def pooled_variant_words(row: dict, variant: str) -> str:
    """'mixed (real + synthetic at 0.50 x real)': pools of other shares sit side by side in RESULTS.md's
    "In short", where the share was only in each pool's name or far below its table."""
    shares = sorted({s / r for p in row["per_input_run"] for r, s in (p.get("train_images") or []) if r})
    if variant != "mixed" or not shares:   # pooled before the counts were kept, or no real images beside
        return VARIANT_WORDS.get(variant, variant)
    lo, hi = f"{shares[0]:.2f}", f"{shares[-1]:.2f}"
    return f"mixed (real + synthetic at {lo if lo == hi else f'{lo} to {hi}'} x real)"


def verdict(comp: dict, runs_text: str | None = None) -> str:
    """One clause for a paired comparison: the difference, its interval, and what the interval allows.
    Better or worse only where the 95% interval excludes 0 and p < 0.05, no difference where neither,
    borderline where they part; so the words never say more than the table. ONE_RUN_NOTE belongs
    beside any verdict that rests on one run a side. ``runs_text`` says what was paired, where
    "N paired runs" would not (a pooled comparison)."""
    d = comp["accuracy_difference"]
    n = comp["pairs"]
    runs_text = runs_text or f"{n} paired run{'s' if n != 1 else ''}"
    return (f"{100 * d['diff']:+.1f} points of accuracy (95% CI {100 * d['ci'][0]:+.1f} to {100 * d['ci'][1]:+.1f}, "
            f"{runs_text}): **{verdict_word(comp)}**")


def verdict_word(comp: dict) -> str:
    """'better', 'worse', 'no difference detected' or 'borderline (p …)', as ``verdict`` says it."""
    d = comp["accuracy_difference"]
    lo, hi = 100 * d["ci"][0], 100 * d["ci"][1]
    excludes_zero, significant = lo > 0 or hi < 0, d["p_value"] < 0.05
    if excludes_zero and significant:
        return "better" if lo > 0 else "worse"
    if not excludes_zero and not significant:
        return "no difference detected"
    # a percentile interval and its p (or McNemar's, with one run) can part at the 5% edge
    return f"borderline (p {_p(d['p_value'], d.get('resamples') if comp['pairs'] > 1 else None)})"


# A ROC-AUC move this large against the accuracy verdict is called out; smaller ones sit within the
# seed-to-seed spread of ROC-AUC (std up to 0.017 per cell in the archived Kermany runs)
AUC_MARGIN = 0.01

# Said once under verdicts that rest on one run a side
ONE_RUN_NOTE = ("With one paired run, an interval counts which test images were drawn, not how training "
                "varies from seed to seed: add seeds (`--resume` the run with `--seeds 3`) before trusting it.")


INPUT_RUN_NOTE = ("These cells used one {inputs} run. The intervals count classifier seeds and test images, not "
                  "retraining {it}, which can move the differences further: to count it, retrain {it} with "
                  "other `--seed` values, run this benchmark again on each, and `genaug pool` the "
                  "benchmark runs, whose interval counts the retraining too.")


def in_short(table: list[dict], comps: list[dict], image_size: int, multi: bool = False,
             notes: list[str] = ()) -> list[str]:
    """The answer first: the best model on real data and each variant against real, one line each."""
    L = [f"- {n[0].upper()}{n[1:]}" for n in notes if n.startswith("interim report")]
    if any(n.startswith(TELLS_NOTE_START) for n in notes):   # a score that may rest on the files, said first
        L.append("- The classes differ in their files (size, shape or format), not only in what the images show: "
                 "every figure below may rest on that; see the notes.")
    how = "(most probable class)" if multi else "at the validation threshold"
    fracs = sorted({r["train_fraction"] for r in table})
    for f in fracs:
        real = [r for r in table if r["variant"] == "real" and r["train_fraction"] == f]
        if real:
            best = max(real, key=lambda r: r["accuracy_thr_mean"])
            at = f" at train fraction {f:g}" if len(fracs) > 1 or f != 1 else ""
            several = best.get("replicates", 1) > 1
            auc = _pm(best, "roc_auc").replace(" (1 run)", "")
            acc = _pm(best, "accuracy", pct=True).replace(" (1 run)", "")
            L.append(f"- {'Best on' if len(real) > 1 else 'On'} real data{at}: {best['model']}, {acc}% accuracy {how}, "
                     f"ROC-AUC {auc} ({_runs(best) + ' runs' if several else 'one run'}).")
    rows = {(r["model"], r["variant"], r["train_fraction"]): r for r in table}
    for c in comps:
        at = f" at train fraction {c['train_fraction']:g}" if len(fracs) > 1 or c["train_fraction"] != 1 else ""
        L.append(f"- {c['model']}, {VARIANT_WORDS.get(c['variant'], c['variant'])} against real{at}: "
                 f"{verdict(c)}{_comparison_context(c, rows, image_size, multi)}.")
    if any(c["pairs"] == 1 for c in comps):
        L.append(f"- {ONE_RUN_NOTE}")
    inputs = [what for key, what in INPUT_RUNS.items() if any(c["variant"] in DEPENDENT_VARIANTS[key] for c in comps)]
    if inputs:
        several = len(inputs) > 1
        L.append("- " + INPUT_RUN_NOTE.format(inputs=" and one ".join(inputs), it="those runs" if several else "that run"))
    return L


def _comparison_context(c: dict, rows: dict, image_size: int, multi: bool) -> str:
    """What else a reader needs beside a verdict: both ROC-AUCs (and whether ranking contradicts the
    accuracy verdict), inputs that saw more real images than the cells, and the latent CNN's speed."""
    frac, text = c["train_fraction"], ""
    row, base = rows.get((c["model"], c["variant"], frac), {}), rows.get((c["model"], "real", frac), {})
    if "roc_auc_thr_mean" in row and "roc_auc_thr_mean" in base:
        a_auc, b_auc = base["roc_auc_thr_mean"], row["roc_auc_thr_mean"]
        text += f"; ROC-AUC {a_auc:.3f} → {b_auc:.3f}"
        better, worse = c["accuracy_difference"]["ci"][0] > 0, c["accuracy_difference"]["ci"][1] < 0
        if not multi and ((better and b_auc <= a_auc - AUC_MARGIN) or (worse and b_auc >= a_auc + AUC_MARGIN)):
            # accuracy at a threshold and ranking disagree: the difference lies in the threshold
            text += " (ranking points the other way: the accuracy difference lies in where the threshold falls)"
    text += threshold_clause(c)
    if row.get("input_run_within_training") is False:
        text += (f"; its {'autoencoder' if c['variant'] == 'encoded' else 'GAN'} learnt from real images that "
                 "these cells do not train on, so read a gain as an upper bound")
    pixel = rows.get(("cnn", "real", frac))
    if c["variant"] == "encoded" and pixel and row.get("seconds_per_epoch_mean", 0) > 0:
        text += (f"; the latent CNN took {seconds_text(row['seconds_per_epoch_mean'])} s/epoch against "
                 f"{seconds_text(pixel['seconds_per_epoch_mean'])} for the pixel CNN at {image_size} px "
                 f"({pixel['seconds_per_epoch_mean'] / row['seconds_per_epoch_mean']:.1f}x)")
    return text


def format_markdown(cfg, bundle, table, comps, notes, figs, gan_dir, enc_dir, short: list[str],
                    short_of_synthetic: bool = False) -> str:
    """report.md; ``short`` is the In short list (in_short), made once by the caller, which prints it too;
    ``short_of_synthetic``: mixed cells added fewer synthetic images than asked (the notes say how many)."""
    multi = len(bundle.classes) > 2
    L = _setup_lines(cfg.benchmark, bundle, table, multi, short_of_synthetic, cfg.data.resize)
    if short:
        how = "its most probable class" if multi else "its validation-chosen threshold"
        L += ["## In short", ""] + short + ["", f"Accuracy and ROC-AUC are means over each row's runs, on the real "
                                           f"test split, accuracy at {how}; the tables below give the rest.", ""]
    L += _results_lines(cfg.benchmark, table, multi)
    L += ensemble_section(table, multi)
    L += calibration_section(table, bundle.classes)
    L += _per_class_lines(table) if multi else []
    if comps:
        L += ["", "## Each variant against `real` (same model, same test images)", "",
              "| model | variant | train frac | paired runs | accuracy difference (pp) | 95% CI (seeds and images) | "
              "p | McNemar p by seed | at threshold 0.5: difference (95% CI) |", "|---" * 9 + "|"]
        for c in comps:
            L.append(f"| {c['model']} | {c['variant']} | {c['train_fraction']:g} | {c['pairs']} | {paired_columns(c)} | "
                     f"{at_half_column(c)} |")
        L += ["", PAIRED_TEST_NOTE]
    L += _speed_lines(cfg.benchmark, table) + _published_lines(bundle, multi)
    L += ["", "## Inputs", "",
          f"- GAN run: `{gan_dir}`{_trained_in(gan_dir)}" if gan_dir else "- GAN run: none (no mixed/synthetic variant)",
          f"- Encode run: `{enc_dir}`{_trained_in(enc_dir)}" if enc_dir else "- Encode run: none (no encoded variant)"]
    if notes:
        L += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    for title, f in figs:
        L += ["", f"## {title}", "", f"![{title}]({f})"]
    return "\n".join(L) + "\n"


def _trained_in(input_run) -> str:
    """", trained in bf16 ..." for a GAN or encode run whose networks trained under --cpu-amp (its metrics.json),
    and ", trained ... channels-last ..." for one that --channels-last trained, which the cells' own settings do
    not tell; "" for fp32 in the contiguous layout, or a run (or folder) that does not say."""
    metrics = read_json_or_none(Path(input_run) / "metrics.json")
    if not isinstance(metrics, dict):
        return ""
    precision = metrics.get("training_precision")
    said = [f"{precision} on the CPU (--cpu-amp)"] if precision not in (None, "fp32") else []
    if chose_channels_last(metrics):
        said.append("fp32 in the channels-last memory layout (--channels-last)" if not said else
                    "its fp32 epochs channels-last (--channels-last)")
    return f", trained in {', '.join(said)}" if said else ""


def _setup_lines(b, bundle, table, multi: bool, short_of_synthetic: bool = False,
                 resize: str = "squash") -> list[str]:
    """The title, a warning for demo data, and how the cells were tested, validated and trained."""
    s = bundle.summary()["splits"]
    L = [f"# genaug benchmark: {bundle.name}", ""]
    if bundle.synthetic:
        L += ["**Data: the built-in demo phantoms. They are synthetic pictures, not X-rays; these numbers say "
              "the pipeline runs, not how a model does on patients.**", ""]
    if b.folds > 1:
        val_text = (f"Validation: {b.folds}-fold cross-validation over the {s['train']['images'] + s['val']['images']} "
                    "real train+val images, grouped by patient; each cell validates on one fold and trains on the "
                    "others, and the table pools seeds × folds. Training: the other folds")
    else:
        val_text = (f"Validation: {s['val']['images']} real images ({bundle.val_origin}), the same for every "
                    f"cell. Training: {s['train']['images']} real images")
    start = b.min_epochs(b.epochs)
    wait = f", counted from epoch {start}" if start > 0 else ""
    L += [f"Test: the real `test` split, {s['test']['images']} images of {s['test']['patients']} patients "
          f"({_class_mix(s, bundle.classes)}), the same for every cell. {val_text} before any train-fraction "
          "subsampling.", "",
          f"Pixel models at {b.image_size} px, {_epochs_max(b.epochs)} (patience {b.patience}{wait}); the seeds of each "
          f"cell are in the table.{squared_sentence(resize)}{_training_differences(b, table)} Mixed = real + synthetic "
          f"({_mixed_share(b, short_of_synthetic)}). "
          + ("Threshold chosen on validation (Youden's J); the 0.5 threshold is shown beside it. The positive class "
             f"is {bundle.classes[-1]}: sensitivity is its recall, specificity {bundle.classes[0]}'s, and the "
             f"threshold cuts P({bundle.classes[-1]})." if not multi
           else f"{len(bundle.classes)} classes: the prediction is the most probable class (no threshold to "
                "choose); ROC-AUC is the macro one-vs-rest mean, and sensitivity and "
                "specificity are macro means over classes, per class below."), ""]
    return L


def _class_mix(splits: dict, classes: list[str], margin: float = 0.05) -> str:
    """The test split's images per class, and for two classes, where the first's share differs from
    training's by more than ``margin``, both shares: accuracy counts each class by its share, so the same
    sensitivity and specificity give another accuracy on test than on validation (the Kermany test split is
    37.5% NORMAL, its training split 25.7%)."""
    test, train = splits["test"]["per_class"], splits["train"]["per_class"]
    said = ", ".join(f"{c} {test.get(c, 0)}" for c in classes)
    if len(classes) != 2 or not sum(test.values()) or not sum(train.values()):
        return said
    here, there = test[classes[0]] / sum(test.values()), train[classes[0]] / sum(train.values())
    if abs(here - there) <= margin:
        return said
    return (f"{said}: {classes[0]} {100 * here:.1f}% of them against {100 * there:.1f}% of training's, so its "
            f"accuracy weighs {'specificity' if here > there else 'sensitivity'} more than validation's does")


def _mixed_share(b, short_of_synthetic: bool) -> str:
    """What mixed cells add to the real images, as asked; and where the GAN run had fewer, that they got less."""
    if b.balance:
        return "filled toward balanced classes; the GAN run had too few to fill them, see the notes" if \
            short_of_synthetic else "filled to balance classes"
    return f"{b.synthetic_ratio:g} x real count per class" + (
        " asked; fewer where the GAN run had too few, see the notes" if short_of_synthetic else "")


def _epochs_max(n: int) -> str:
    return f"{counted(n, 'epoch')} max"


def _training_differences(b, table) -> str:
    """Sentences for what trains otherwise than the run's default: other epochs per model or for the latent
    CNN, a training loss with label smoothing or mixup, averaged weights, test-time augmentation, equalized inputs."""
    def epochs_text(who: str, epochs: int) -> str:
        wait = f", counted from epoch {b.min_epochs(epochs)}" if b.min_epochs(epochs) > 0 else ""
        return f" {who}: {_epochs_max(epochs)} (patience {b.patience}{wait})."

    latent_epochs = b.epochs_for("cnn", latent=True)
    pixel_models = list(dict.fromkeys(r["model"] for r in table if r["variant"] != "encoded"))
    text = "".join(epochs_text(m, b.epochs_for(m)) for m in pixel_models if b.epochs_for(m) != b.epochs)
    if latent_epochs != b.epochs and any(r["variant"] == "encoded" for r in table):
        text += epochs_text("The latent CNN (encoded cells)", latent_epochs)
    loss_terms = [f"label smoothing {b.label_smoothing:g}"] * (b.label_smoothing > 0) + \
                 [f"mixup (Beta alpha {b.mixup:g})"] * (b.mixup > 0)
    if loss_terms:   # both change what a cell learns; a reader comparing runs must see them
        text += f" Training loss with {' and '.join(loss_terms)}; validation loss without."
    if b.ema > 0:
        text += (f" Each cell kept an exponential moving average of its weights (decay {b.ema:g}), "
                 "which validation scored and the test read.")
    if b.tta > 0:
        text += (f" Validation and test probabilities were averaged over each image and {b.tta} copies augmented "
                 "as in training (the same copies for every image); the threshold was chosen on those.")
    if b.equalize != "none":
        text += (f" Every pixel model's input, training, validation and test alike, was equalized per "
                 f"image ({b.equalize.upper()}).")
    return text


def _results_lines(b, table, multi: bool) -> list[str]:
    """The main table: one row per model, variant and train fraction, mean ± std over its runs."""
    L = [f"## Results (mean ± std over {'seeds × folds' if b.folds > 1 else 'seeds'})", "",
         f"| model | variant | train frac | {'seeds×folds' if b.folds > 1 else 'seeds'} | n train (synthetic) | "
         + ("accuracy % | " if multi else "accuracy % (val thr) | accuracy % (0.5) | ") +
         # with 3+ classes they are means over the classes (benchmark.MACRO_FALLBACK), as the ROC-AUC is
         ("95% CI acc (ensemble) | ROC-AUC (macro) | 95% CI AUC | sensitivity (macro) | specificity (macro) | "
            if multi else "95% CI acc (ensemble) | ROC-AUC | 95% CI AUC | sensitivity | specificity | ") +
         "macro F1 | s/epoch |",
         "|---" * (13 if multi else 14) + "|"]
    for r in table:
        ci, ca = r["accuracy_ci95_seed_ensemble"], r["roc_auc_ci95_seed_ensemble"]
        # with no threshold to choose, a column at 0.5 would repeat the one before it
        at_half = "" if multi else f"{_pm(r, 'accuracy', 'half', True)} | "
        L.append(f"| {r['model']} | {r['variant']} | {r['train_fraction']:g} | {_runs(r)} | {r['n_train']} "
                 f"({r['n_train_synthetic']}) | {_pm(r, 'accuracy', pct=True)} | {at_half}"
                 f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f} | {_pm(r, 'roc_auc')} | {ca[0]:.3f}–{ca[1]:.3f} | "
                 f"{_pm(r, 'sensitivity')} | {_pm(r, 'specificity')} | {_pm(r, 'f1_macro')} | "
                 f"{seconds_text(r['seconds_per_epoch_mean'])} |")
    return L


def _per_class_lines(table) -> list[str]:
    if not any(r.get("per_class") for r in table):
        return []
    L = ["", "## Per class (test split, mean over runs)", "",
         "| model | variant | train frac | class | precision | recall (sensitivity) | specificity | F1 |",
         "|---" * 8 + "|"]
    for r in table:
        for cls, m in r.get("per_class", {}).items():
            L.append(f"| {r['model']} | {r['variant']} | {r['train_fraction']:g} | {cls} | {m['precision']:.3f} | "
                     f"{m['recall']:.3f} | {m['specificity']:.3f} | {m['f1']:.3f} |")
    return L


def _speed_lines(b, table) -> list[str]:
    """s/epoch of the latent CNN against the pixel CNN, per train fraction, where the run holds both."""
    lat = [r for r in table if r["variant"] == "encoded"]
    pix = {(r["model"], r["train_fraction"]): r for r in table if r["variant"] == "real"}
    speeds = [f"train fraction {r['train_fraction']:g}: {seconds_text(r['seconds_per_epoch_mean'])} against "
              f"{seconds_text(p['seconds_per_epoch_mean'])} ({p['seconds_per_epoch_mean'] / max(r['seconds_per_epoch_mean'], 1e-9):.1f}x)"
              for r in lat if (p := pix.get(("cnn", r["train_fraction"])))]
    if not speeds:
        return []
    return ["", f"Speed in these cells, s/epoch of the latent CNN against the pixel CNN at {b.image_size} px: "
            f"{'; '.join(speeds)}. Encoding time is not included (it is paid once per data set). Cells may have "
            "run under different machine load; `bench/latent_vs_pixel.py` compares the two under the same load."]


def _published_lines(bundle, multi: bool) -> list[str]:
    """Published figures on the Kermany test split, quoted, where that is the test split here."""
    if bundle.synthetic:
        return ["", "Published figures for the Kermany test split are not shown: this run used demo phantoms "
                "(quoted, not measured by genaug, in reports on real data)."]
    if not is_kermany_test_split(bundle):
        return ["", f"Published figures for the Kermany test split are not shown: this test split "
                f"({len(bundle.test)} images) is not that one (624 images: 234 normal, 390 pneumonia)."]
    return ["", "## Published figures on the Kermany test split (quoted, not measured by genaug)", "",
            "| source | accuracy | ROC-AUC |", "|---|---|---|"] + [
        f"| {a} | {b_} | {c} |" for a, b_, c in (QUOTED_3CLASS if multi else QUOTED)]


def markdown_to_html(md: str, title: str) -> str:
    """Just enough Markdown for genaug's own reports: headings, paragraphs, lists, tables, images, bold, code."""
    def inline(t: str) -> str:
        t = html.escape(t)
        t = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r'<img alt="\1" src="\2" style="max-width:100%">', t)
        t = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", t)
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", t)

    out, lines, i = [], md.splitlines(), 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("#"):
            lvl = len(ln) - len(ln.lstrip("#"))
            out.append(f"<h{lvl}>{inline(ln[lvl:].strip())}</h{lvl}>")
        elif ln.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            out.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in rows[0]) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows[2:]]
            out.append("</table>")
            continue
        elif ln.startswith("- "):
            out.append("<ul>")
            while i < len(lines) and lines[i].startswith("- "):
                out.append(f"<li>{inline(lines[i][2:])}</li>")
                i += 1
            out.append("</ul>")
            continue
        elif ln.strip():
            out.append(f"<p>{inline(ln)}</p>")
        i += 1
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


# ----------------------------------------------------------------------------- results document

RUN_REPORTS = {"gan": "quality.md", "encode": "summary.md", "benchmark": "report.md", "pool": "pool.md"}


def short_commit(commit: str) -> str:
    """A commit's first 10 hex digits, keeping the '+dirty' (code no commit holds) that cutting it would drop."""
    return commit[:10] + ("+dirty" if commit.endswith("+dirty") and len(commit) > 10 else "")


def _command_line(argv: list[str]) -> str:
    if not argv:
        return "(not recorded)"
    head = "genaug" if Path(argv[0]).name == "genaug" else argv[0]
    return " ".join([head] + [shlex.quote(str(a)) for a in argv[1:]])


def run_manifests(run_dir: Path, manifest: dict) -> list[dict]:
    """``manifest`` (the run's manifest.json) and those of its benchmark shards (each shard keeps its own
    manifest-shardIofN.json beside it, where its process records its resumes, device and updates)."""
    # a damaged shard manifest costs its lines, not the whole report
    return [manifest] + [m for mf in sorted(run_dir.glob("manifest-shard*.json"))
                         if isinstance(m := read_json_or_none(mf), dict)]


def run_commands(run_dir: Path, manifest: dict) -> list[list[str]]:
    """The command that made a run, then every resume in time order, including those run as
    benchmark shards."""
    resumes = []
    for m in run_manifests(run_dir, manifest):
        when, argv = m.get("resumed", []), m.get("resume_argv", [])
        for i, a in enumerate(argv):   # 'resumed' and 'resume_argv' are appended together on each resume
            item = (when[i] if i < len(when) else "", a)
            if item not in resumes:    # a shard's manifest starts as a copy of the main one
                resumes.append(item)
    return [manifest.get("argv", [])] + [a for _, a in sorted(resumes, key=lambda t: t[0])]


def _where_line(run_dir: Path, manifest: dict) -> str:
    """', on <machine>' for a run. A benchmark's cells may come from several processes (shards,
    resumes, another machine), and its manifest keeps only the latest one's machine, perhaps a
    --report-only: so where its cells recorded theirs, those are named, with their counts."""
    cells_dir = run_dir / "cells"
    if cells_dir.is_dir():
        where = machines_of(read_cells(cells_dir))
        if any(w != "not recorded" for w in where):
            return ", cells trained on " + machines_line(where)
    return f", on {machine_summary(manifest['machine'])}" if manifest.get("machine") else ""


class NoReport(CheckpointError):
    """A genaug run that has no report to gather: a kind that writes none, or one not finished."""


def _report_file(d: Path) -> tuple[dict, Path]:
    """A run's manifest and the report it wrote; NoReport where it has none, a CheckpointError where it is no run."""
    manifest = read_manifest(d)
    kind = manifest.get("command", "")
    name = RUN_REPORTS.get(kind)
    if name is None:   # gan sample and explain make runs of images, with nothing to report
        raise NoReport(f"{d} is a genaug {kind.replace('-', ' ')} run, which writes no report; leave it out "
                       f"(genaug report gathers {', '.join(RUN_REPORTS)} runs)")
    if not (d / name).is_file():
        # a run still training was told to --resume, which its lock then refuses (session 58)
        if busy := in_use_by(d):
            raise NoReport(f"{d} has no report yet: it is at work ({busy}); gather it once it finishes")
        raise NoReport(f"{d} has no finished report ({name}); finish the run (--resume) first")
    return manifest, d / name


def results_document(run_dirs: list[Path], title: str = "Results", left_out: list[str] | None = None) -> str:
    """One Markdown document from finished runs' own reports, each under the commands that made it.

    Nothing is recomputed or typed in: the text is each run's quality.md / summary.md /
    report.md as the run wrote it, with figures turned into references into the run.

    A run without a report (still at work, stopped, or a gan sample run) is left out and named in the
    document and in ``left_out`` when some other run has one: `genaug report outputs/benchmark/*`
    while one run trains gathers the rest. A folder that is no run is refused, as a mistyped path.
    """
    found, missing = [], []
    for d in map(Path, run_dirs):
        try:
            found.append((d, *_report_file(d)))
        except NoReport as exc:
            missing.append(exc)
    if not found:
        raise missing[0]
    intro = [f"# {title}", "",
             f"Generated by `genaug report` on {time.strftime('%Y-%m-%d')} from {counted(len(found), 'run')}; edit the "
             "runs, not this file. Figures named below are in each run's directory.", ""]
    if missing:
        intro += [f"Left out: {counted(len(missing), 'run')} without a report:", ""] + [f"- {e}" for e in missing] + [""]
        if left_out is not None:
            left_out += [str(e) for e in missing]
    L = []
    # each benchmark and pool report's "In short" lines, gathered at the top: pools first, newest
    # first, since their intervals count retraining the GAN or autoencoder and a later pool holds more runs
    answers: list[str] = []
    pooled: list[tuple[str, list[str]]] = []
    pools, benches = _gathered_pools(found), {d.name: d for d, m, _ in found if m.get("command") == "benchmark"}
    pooled_in = _pooled_in(pools)
    pooled_since = _seeds_added_since(pools, benches)
    for d, manifest, report in found:
        kind = manifest.get("command", "")
        cmds = run_commands(d, manifest)
        # a sharded run's manifest.json is the first shard's at its start: its shards' hold the rest
        every = run_manifests(d, manifest)
        updated = max((str(m["updated"]) for m in every if m.get("updated")), default="?")
        device = ", ".join(dict.fromkeys(str(m["device"]) for m in every if m.get("device"))) or "?"
        L += [f"## `genaug {kind}`: {d.name}", "", "```bash"] + [_command_line(c) for c in cmds] + ["```", "",
              f"Started {manifest.get('started', '?')}, last updated {updated}; genaug commit "
              f"`{short_commit(str(manifest.get('git_commit', '?')))}`"
              + "".join(f", written again by `{short_commit(str(c))}`" for c in manifest.get("redone_by_commit", [])[-1:])
              + f", torch {manifest.get('versions', {}).get('torch', '?')}, "
              f"device {device}" + _where_line(d, manifest) + ".", ""]
        L += _unfinished_note(d)
        # a run's report written before session 72 may hold a name's byte that is not UTF-8 as it was
        text = report.read_text(encoding="utf-8", errors="backslashreplace")
        short = _section(text, "## In short")
        if short and kind == "pool":
            pooled.append((str(manifest.get("started", "")), [f"### {d.name}", ""] + short
                           + pooled_since.get(d.name, []) + [""]))
        elif short:
            answers += [f"### {d.name}", ""] + short + pooled_in.get(d.name, []) + [""]
        for line in text.splitlines():
            if line.startswith("#"):
                line = "##" + line          # the run's headings sit below this run's heading
            m = re.fullmatch(r"!\[(.*)\]\((.*)\)", line.strip())
            if m:
                line = f"*Figure: {m.group(1)} (`{m.group(2)}` in the run directory).*"
            L.append(line)
        L.append("")
    intro += _answers_by_question(pools, benches, pooled_since)
    if pooled or answers:
        intro += ["## In short, run by run", "", "Copied from each benchmark (and pool) report's own \"In short\"; the runs' "
                  "sections below hold the tables, settings and caveats.", ""]
        if pooled and answers:
            intro += ["Pool runs come first, newest first: each pools benchmark runs that differ only in their GAN (or "
                      "autoencoder) run, so its interval counts retraining that run, which the interval of one "
                      "benchmark run does not. Then the other runs, in the order given.", ""]
        for _, lines in sorted(pooled, key=lambda t: t[0], reverse=True):
            intro += lines
        intro += answers
    return "\n".join(intro + L)


def _pool_question(recorded: dict, row: dict, benches: dict[str, Path]) -> tuple:
    """What a pool row asks, as a sortable key and its words: task, model, variant (with its share of
    synthetic images), train fraction and the pixel models' size, read from its first benchmark run's
    config (the gathered copy, else the path the pool recorded; '?' where neither is at hand)."""
    first = Path(str(recorded["runs"][0]))
    cfg = {}
    for where in (benches.get(first.name), first):
        if where is not None and (where / "config.yaml").is_file():
            try:
                cfg = read_run_config(where)
                break
            except CheckpointError:
                pass
    task = {"binary": "binary", "3class": "3-class"}.get(str((cfg.get("data") or {}).get("task")), "task ?")
    size = (cfg.get("benchmark") or {}).get("image_size", "?")
    variant = str(row.get("variant", recorded.get("variant", "?")))
    words = pooled_variant_words(row, variant)
    if variant == "mixed" and words == VARIANT_WORDS["mixed"]:
        words = "mixed (real + synthetic, share not recorded in the pool)"
    frac = row.get("train_fraction", 1.0)
    text = (f"{task}: {row.get('model', '?')}, {words}" + (f", train fraction {frac:g}" if frac != 1 else "")
            + f", pixel models at {size} px")
    order = -float(frac) if isinstance(frac, (int, float)) else 0.0   # all the training data first
    return (task != "binary", task, str(row.get("model", "")), words, order, str(size)), text


def _gathered_pools(found: list[tuple[Path, dict, Path]]) -> list[tuple[Path, dict, dict]]:
    """The gathered pool runs as (directory, manifest, pool.json), each pool.json read once for the tables and
    pointers built from it. One edited by hand or cut short (not a mapping with a list of runs) is left out
    of those only: its pool.md is gathered as written."""
    pools = []
    for d, manifest, _ in found:
        recorded = read_json_or_none(d / "pool.json") if manifest.get("command") == "pool" else None
        if isinstance(recorded, dict) and isinstance(recorded.get("runs"), list):
            pools.append((d, manifest, recorded))
    return pools


def _answers_by_question(pools: list[tuple[Path, dict, dict]], benches: dict[str, Path],
                         pooled_since: dict[str, list[str]]) -> list[str]:
    """RESULTS.md's first table: every gathered pool's rows, grouped by the question they answer, so that
    a reader meets each question's answers side by side, the one with the most pairs first. Before it the
    answers stood one pool after another (32 pools by session 62), and those to one question (say
    DenseNet-121 mixed at 0.5 x, seven pools) were found only by reading them all. Every number is the
    pool's own, from its pool.json, formatted as its pool.md formats it."""
    groups: dict[tuple, tuple[str, list[tuple]]] = {}
    for d, manifest, recorded in pools:
        if not (isinstance(recorded.get("rows"), list) and recorded["runs"]):
            continue
        what = str(recorded.get("input", "GAN"))
        for row in recorded["rows"]:
            try:
                key, text = _pool_question(recorded, row, benches)
                diff = row["accuracy_difference"]
                half = (row.get("at_0.5") or {}).get("accuracy_difference")
                notes = (["its runs have gained seeds since"] if d.name in pooled_since else []) + (
                    ["made while a run was at work"] if recorded.get("at_work") else [])
                cells = [f"{d.name}" + (f" ({'; '.join(notes)})" if notes else ""),
                         f"{counted(int(row['input_runs']), what + ' run')} × {counted(len(row['seeds']), 'seed')}",
                         f"{100 * row['accuracy_real']:.1f} → {100 * row['accuracy_variant']:.1f}",
                         difference_with_interval(diff), f"**{verdict_word(row)}**",
                         difference_with_interval(half) if half else "—"]
                pairs = int(row["pairs"])
            except (AttributeError, KeyError, TypeError, IndexError, ValueError):
                continue   # a pool.json cut short or edited by hand: its pool.md is still gathered below
            groups.setdefault(key, (text, []))[1].append((pairs, str(manifest.get("started", "")), cells))
    if not groups:
        return []
    L = ["## Pooled answers, question by question", "",
         "Every pool run gathered here, one row per model it pooled, grouped by what it asks: the task, the model, "
         "the variant against real (with the share of synthetic images its cells trained on), the train fraction "
         "and the pixel models' size. Within a question the pool with the most pairs (input runs × classifier "
         "seeds) comes first, then the newest. Each row is the pool's own numbers, at each cell's validation "
         "threshold and, last, at the fixed threshold 0.5; its section below says which runs it pooled.", "",
         "| question | pool | input runs × seeds | accuracy % real → variant | variant − real, points (95% CI) | "
         "verdict | at 0.5, points (95% CI) |", "|---" * 7 + "|"]
    for key in sorted(groups):
        text, rows = groups[key]
        rows.sort(key=lambda r: r[1], reverse=True)          # newest first among equals, then
        rows.sort(key=lambda r: r[0], reverse=True)          # the most pairs first (a stable sort keeps the first)
        for i, (_, _, cells) in enumerate(rows):
            L.append(f"| {text if i == 0 else ''} | " + " | ".join(cells) + " |")
    return L + [""]


def _pooled_in(gathered_pools: list[tuple[Path, dict, dict]]) -> dict[str, list[str]]:
    """For each benchmark run whose cells a gathered pool run pooled, by run name: a line that points
    to those pools, so that one GAN's verdict is read beside the one that counts retraining it."""
    pools: dict[str, dict[tuple[str, str], list[tuple[str, str]]]] = {}
    for d, manifest, recorded in gathered_pools:
        key = (str(recorded.get("variant", "?")), str(recorded.get("input", "GAN")))
        for run in recorded["runs"]:
            pools.setdefault(Path(str(run)).name, {}).setdefault(key, []).append(
                (str(manifest.get("started", "")), d.name))
    lines: dict[str, list[str]] = {}
    for name, by_variant in pools.items():
        for (variant, input_run), where in sorted(by_variant.items()):
            names = ", ".join(pool for _, pool in sorted(where, reverse=True))
            those = (("its interval counts", "that answer", "above") if len(where) == 1
                     else ("their intervals count", "those answers", "above, newest first"))
            lines.setdefault(name, []).append(
                f"- Its {variant} cells are pooled, with those trained on other {input_run} runs, in {names} "
                f"({those[2]}): {those[0]} retraining the {input_run}; read {those[1]} before this one.")
    return lines


def _seeds_added_since(gathered_pools: list[tuple[Path, dict, dict]], benches: dict[str, Path]) -> dict[str, list[str]]:
    """For each gathered pool run whose benchmark runs (all gathered too) now hold seeds that would pair
    and that it did not pool, by pool name: a line that says so and names the newer gathered pools of
    the same runs that count them. A pool's page keeps its day's numbers (--redo refuses to change
    them), so without this its answer read as the runs' answer after they gained seeds (session 62:
    a 2-seed pool sat beside its runs' third seed with no word of it)."""
    cells: dict[str, list[dict]] = {}

    def seeds_pairing(runs: list[str], others: list[str], variant: str, model: str, frac: float) -> set[int]:
        # as genaug pool pairs them: a real cell in any of the runs and a variant cell in each input run
        def keys(run: str, of_variant: str) -> set[tuple[int, int]]:
            return {replicate_key(c) for c in cells[run]
                    if (c.get("model"), c.get("variant"), c.get("train_fraction")) == (model, of_variant, frac)}
        real = set().union(*(keys(r, "real") for r in runs + others))
        return {k[0] for k in real.intersection(*(keys(r, variant) for r in runs))}

    pools = []   # (started, name, variant, input runs, {(model, fraction): seeds pooled}, {...: seeds pairing now})
    for d, manifest, recorded in gathered_pools:
        if not isinstance(recorded.get("rows"), list):
            continue
        runs = [Path(str(r)).name for r in recorded["runs"]]
        others = [Path(str(r)).name for r in (recorded.get("real_only_runs") or [])
                  + ([recorded["real_cells_run"]] if recorded.get("real_cells_run") else [])]
        if not all(run in benches for run in runs + others):   # a run not gathered: nothing to tell
            continue
        for run in runs + others:
            if run not in cells:
                cells[run] = read_cells(benches[run] / "cells") if (benches[run] / "cells").is_dir() else []
        variant = str(recorded.get("variant", "mixed"))
        then = {(str(r.get("model")), r.get("train_fraction")): set(r["seeds"])
                for r in recorded["rows"] if isinstance(r, dict) and isinstance(r.get("seeds"), list)}
        now = {group: seeds_pairing(runs, others, variant, *group) for group in then}
        pools.append((str(manifest.get("started", "")), d.name, variant, sorted(runs), then, now))
    lines: dict[str, list[str]] = {}
    for started, name, variant, runs, then, now in pools:
        added = {group: sorted(now[group] - then[group]) for group in then if now[group] - then[group]}
        if not added:
            continue
        newer = [n for s, n, v, rs, seeds, _ in sorted(pools, key=lambda p: (p[0], p[1]), reverse=True)
                 if s > started and (v, rs) == (variant, runs)
                 and all(set(more) <= seeds.get(group, set()) for group, more in added.items())]
        what = "; ".join(model + (f" at train fraction {frac:g}" if isinstance(frac, float) and frac != 1 else "")
                         + f": {'seed' if len(more) == 1 else 'seeds'} {', '.join(map(str, more))}"
                         for (model, frac), more in added.items())
        lines[name] = [f"- Its runs now hold cells that pair with real ones and that it did not pool ({what}): "
                       "this answer is without them. " + (f"{', '.join(newer)} (above) pools the same runs with them."
                                           if newer else "Pool the runs again (genaug pool) for an answer with them.")]
    return lines


def _unfinished_note(d: Path) -> list[str]:
    """For a run that has a report but is not finished (at work on cells added since, or stopped before
    them, or an interim --report-only): the commands listed above it ask for more than it holds."""
    state = run_state(d)
    if state is None or state.state == "finished":
        return []
    who = f" ({state.holder})" if state.holder else ""
    done = re.sub(r", about \S+ left$", "", state.progress.split("; ")[0])   # an estimate goes stale in a document
    return [f"**{state.state.capitalize()}{who}, {done or 'progress unknown'}:** the run is not finished; the "
            "report below holds what was done when it was written.", ""]


def _section(markdown: str, heading: str) -> list[str]:
    """The list lines under ``heading`` up to the next heading (none if the heading is absent)."""
    lines = markdown.splitlines()
    if heading not in lines:
        return []
    out = []
    for line in lines[lines.index(heading) + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("- "):
            out.append(line)
    return out
