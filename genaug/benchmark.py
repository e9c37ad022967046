"""``genaug benchmark``: classifiers on real, mixed, synthetic and encoded data, tested on the real test split.

Protocol (checked, not assumed):
- test = the data's real test split for every cell; validation = the same real
  patient-level val split for every cell (its latents for the encoded variant);
- synthetic images only ever join the training set, and no test or val image does;
- each (model, variant, train fraction, seed) cell is one JSON file under cells/,
  written atomically; a rerun skips finished cells and continues a cell in progress from
  its last epoch (partial/<cell>.pt), so an interrupted run resumes.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genaug.config import BenchmarkConfig, Config, absolute_data, check_resumed_data, closest_name, config_from_dict, data_differences, parse_fractions, parse_model_epochs, resumed_settings, validate
from genaug.data import DataBundle, ImageSet, check_data_spec, patient_folds, subsample_by_patient
from genaug.data.decode import alike_note
from genaug.data.duplicates import image_hashes
from genaug.data.equalize import equalize_images, equalized_bundle
from genaug.data.splits import join_patients_sharing_an_image
from genaug.cpu_load import load_of_others
from genaug.device import cpu_has_bf16, seed_everything
from genaug.encode import autoencoder_of, gather_rows, load_autoencoder, latent_set, load_latents, run_encode
from genaug import distributed
from genaug.jobs import data_cache_dir, held_out_seen, join_ranks, read_training_list, start_job, tell
from genaug.errors import CheckpointError, ConfigError, DataError, RunInUse
from genaug.gan import TooFewClassImages, run_gan, synthetic_manifest
from genaug.metrics import (bootstrap_ci, calibration_error, choose_threshold, classification_metrics, mcnemar,
                            paired_bootstrap_diff, paired_sign_flip_test, predictions, roc_auc)
from genaug.models import CLASSIFIERS, build_classifier, check_input_size, imagenet_weights_file
from genaug.inventory import counted, duration, run_state, seconds_text
from genaug.locks import in_use_by
from genaug.runs import Run, atomic_torch_save, check_room_for_files, enclosing_run, missing_run_hint, nearby_runs_hint, not_a_run_of, save_safetensors, git_commit, machine_info, machines_of, new_run, open_run, read_cells, read_run_config, running, write_json, write_run_config
from genaug.tracking import Tracker, tracker_for
from genaug.train import (as_tensor, class_weights, fit_classifier, latent_spread, make_ema, predict_probs, uses_autocast,
                          recompute_batchnorm, train_one_epoch)

log = logging.getLogger("genaug")
VARIANTS = ("real", "mixed", "synthetic", "encoded")


@dataclass
class TrainSet:
    x: torch.Tensor
    y: torch.Tensor
    provenance: list[str]          # "real:<path>" or "synthetic:<file>"


def parse_list(text: str, known: tuple, what: str) -> list[str]:
    """Names from a comma list, each once, in order; case does not matter (ResNet34 is resnet34)."""
    items = list(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    if not items:
        raise ConfigError(f"no {what} given (--{what}s or benchmark.{what}s is empty): name at least one of {', '.join(known)}")
    if bad := [t for t in items if t not in known]:
        # a name cut short ('mix', 'resnet') is completed; a near miss ('resnet-34') is matched
        near = " or ".join(k for k in known if k.startswith(bad[0])) or closest_name(bad[0], known, cutoff=0.85)
        raise ConfigError(f"unknown {what} {', '.join(bad)}" + (f"; did you mean {near}?" if near else "")
                          + f" (known: {', '.join(known)})")
    return items

# ----------------------------------------------------------------------------- inputs: GAN and encode runs


def _same_data(run_cfg: dict, cfg: Config, key: str, run_dir) -> None:
    """The input run at ``run_dir`` (``key`` gan_run | encode_run) was made on this benchmark's data and split."""
    what = INPUT_RUNS[key]
    if not isinstance(run_cfg.get("data"), dict):   # a pool's or explain's run: no data of its own
        raise CheckpointError(f"{what} run {run_dir} records no data settings"
                              + (not_a_run_of(run_dir, key.removesuffix("_run"), f"--{key.replace('_', '-')}")
                                 or " (its config.yaml has no data section: restore the file the run wrote)"))
    if differ := data_differences(run_cfg, cfg.to_dict()):
        key = differ[0]
        raise CheckpointError(f"{what} run {run_dir} was made with data.{key}={run_cfg['data'].get(key)!r}, this "
                              f"benchmark uses {getattr(cfg.data, key)!r}; use a matching run or let benchmark train one")
    # the same images, made square another way: a squashed GAN's images mixed among centre crops, or latents of
    # padded images beside pixel cells of cropped ones, would not be the data the report says they are
    if (made := run_cfg["data"].get("resize", "squash")) != cfg.data.resize:
        raise CheckpointError(f"{what} run {run_dir} made its images square by data.resize {made!r}, this benchmark "
                              f"by {cfg.data.resize!r}: give --resize {made}, a run made with --resize "
                              f"{cfg.data.resize}, or let benchmark train one")


def load_synthetic(gan_dir: Path, classes: list[str], size: int) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Synthetic images per class from a GAN run (resized to the benchmark size), with their file names."""
    _, rows = synthetic_manifest(gan_dir)
    by_class: dict[str, list] = {}
    for r in rows:
        if r["class"] not in classes:
            raise CheckpointError(f"GAN run {gan_dir} has class {r['class']}, the data has {', '.join(classes)}"
                                  f"{alike_note(r['class'], classes)}: use a GAN run made on this data")
        by_class.setdefault(r["class"], []).append(r)
    images, names = {}, {}
    for c, rs in by_class.items():
        arrs = []
        for r in rs:
            with Image.open(r["path"]) as im:
                im = im.convert("L")
                if im.size != (size, size):
                    im = im.resize((size, size), Image.BILINEAR)
                arrs.append(np.asarray(im, dtype=np.uint8))
        images[c], names[c] = np.stack(arrs), [r["file"] for r in rs]
    return images, names


def recorded_input_run(run: Run, key: str) -> Path | None:
    """The GAN or encode run (``key`` gan_run | encode_run) this benchmark run has recorded, if any."""
    return own_input_run(run.dir, run.manifest[key]) if run.manifest.get(key) else None


def own_input_run(run_dir: Path, recorded: str) -> Path:
    """A recorded input run, found in ``run_dir``'s inputs/ where the benchmark trained it itself. It was
    recorded as the path it had then, from the directory the command ran in: a run made with --out mv1 and
    moved, or resumed from another directory, said its own GAN run was gone (session 53). An archived
    run's inputs/ holds their reports only (no generator, images or latents): it keeps the recorded path."""
    path = Path(recorded)
    own = Path(run_dir) / "inputs" / path.parent.name / path.name
    mine = path.parent.parent.name == "inputs" and own.is_dir() and not (Path(run_dir) / "archived.json").is_file()
    return own if mine else path


def _resolve_input_run(cfg: Config, run: Run, given: str, key: str, what: str, train) -> Path:
    """A given run (checked to match the data), the one this benchmark trained earlier, or a new one."""
    if given and key in run.inherited and not Path(given).is_dir():
        # the run's own --gan-run, not this command's: "--gan-run DIR not found" would name a flag not given
        raise _input_run_gone(what, key, given)
    if given:
        return check_given_input_run(cfg, given, key, what)
    if recorded := recorded_input_run(run, key):
        if not recorded.is_dir():
            raise _input_run_gone(what, key, recorded)
        return recorded
    tell(f"no --{key.replace('_', '-')} given: training the {what} first")
    try:
        d = train(_sub_config(cfg, run, key.split("_")[0]))
    except TooFewClassImages as exc:
        # the GAN's own advice (--class) is a flag of genaug gan: say what the benchmark can do instead
        raise DataError(f"the GAN this benchmark trains for its mixed and synthetic cells: {exc}; or give --gan-run "
                        "a run of genaug gan, or leave mixed and synthetic out of --variants") from None
    run.save_manifest(**{key: str(d)})
    return d


def _input_run_gone(what: str, key: str, d) -> CheckpointError:
    return CheckpointError(f"this benchmark's {what} run {d} is gone (an archived or moved run?); put it back there, "
                           f"or give --{key.replace('_', '-')} RUN --supersede to train its "
                           f"{'/'.join(DEPENDENT_VARIANTS[key])} cells on another")


def check_given_input_run(cfg: Config, given: str, key: str, what: str) -> Path:
    """A GAN or encode run (``key`` gan_run | encode_run) the user gave, checked to exist and to match the data."""
    d = Path(given)
    if d.is_file():   # its report.md or a checkpoint in it, pasted as the run
        raise CheckpointError(f"--{key.replace('_', '-')} {d} is a file, not a run directory{nearby_runs_hint(d)}")
    if not d.is_dir():
        # runs saved before input runs were stored absolute name them from the folder the run was made in
        relative = "" if d.is_absolute() else f" (a relative path, read from {Path.cwd()})"
        raise CheckpointError(f"--{key.replace('_', '-')} {d} not found{relative}"
                              f"{missing_run_hint(d, key.removesuffix('_run'))}")
    if not (d / "manifest.json").is_file() and (run := enclosing_run(d)):
        # taken as a plain folder, its data settings and the images its GAN or autoencoder learnt from would go
        # unchecked, and pool would count the run and this folder as two input runs
        raise CheckpointError(f"--{key.replace('_', '-')} {d} lies inside the genaug run {run}: give that folder")
    if busy := in_use_by(d):   # its images or latents are not all written yet
        raise RunInUse(f"{what} run {d} is still at work ({busy}): wait for it to finish, then run this again")
    if key == "encode_run":
        try:
            latent_set(d)   # a folder without latents is told before a run is made and the data loaded
        except CheckpointError:
            stopped_before_its_output(d, key, what)
            raise
    if (d / "config.yaml").is_file():
        _same_data(read_run_config(generator_run(d) if key == "gan_run" else d), cfg, key, d)
    if key == "gan_run" and not any(m.is_file() for m in (d / "synthetic" / "manifest.csv", d / "manifest.csv")):
        stopped_before_its_output(d, key, what)   # after the data: a run of other data is told that first
    return d


def stopped_before_its_output(d: Path, key: str, what: str) -> None:
    """Where the input run ``d`` holds no synthetic images or latents because it stopped before it wrote them,
    raise that, with how to finish it. Found in session 55: a GAN run stopped by Ctrl-C was "no synthetic
    images (expected synthetic/manifest.csv from genaug gan)", an autoencoder's "no complete latent set
    (meta.json missing); run genaug encode", neither naming the --resume that finishes it."""
    state = run_state(d)
    if state is None or state.state != "stopped" or state.command not in (
            ("gan", "gan-sample") if key == "gan_run" else ("encode",)):   # another command's run is told so
        return
    made = "synthetic images" if key == "gan_run" else "latents"
    go_on = (f"{state.resume}, then run this again" if state.resume
             else "draw its images again with genaug gan sample, and give that run")
    raise CheckpointError(f"{what} run {d} stopped before its {made} were all written"
                          + (f" ({state.why.removeprefix('stopped: ')})" if state.why else "") + f": {go_on}")


def generator_run(gan_dir: Path) -> Path:
    """The ``genaug gan`` run behind a GAN input: the run itself, or for a ``genaug gan sample``
    output the run whose generator drew it, which holds the data settings and the list of real
    images the generator learnt from."""
    gan_dir = Path(gan_dir)
    try:
        command = json.loads((gan_dir / "manifest.json").read_text(encoding="utf-8")).get("command")
    except (OSError, json.JSONDecodeError):
        return gan_dir          # a plain folder of images, or a run whose manifest other checks report
    if command != "gan-sample":
        return gan_dir
    ckpt = Path(str(read_run_config(gan_dir).get("checkpoint", "")))
    if not (ckpt.parent / "config.yaml").is_file():
        raise CheckpointError(f"{gan_dir} was drawn from {ckpt}, whose genaug gan run is gone or moved; the benchmark "
                              "needs that run to check the data its generator learnt from")
    return ckpt.parent


def resolve_gan_run(cfg: Config, run: Run, bundle: DataBundle | None = None, pending: set[str] = frozenset()) -> Path:
    """The GAN run of the mixed and synthetic cells; one the benchmark trains itself writes at least as many
    images of each class as ``pending`` cells ask (the cpu profile's 1280 a class gave 0.5 x 3487 real
    PNEUMONIA images 1280 of 1744 until session 56)."""
    need = synthetic_images_asked(cfg, bundle, pending) if bundle is not None else {}

    def train(sub: Config) -> Path:
        if need and (most := max(need.values())) > sub.gan.n:
            # named by the flag that asked for them: benchmark has no --n (found in session 71)
            check_room_for_files(run.dir, most * len(bundle.classes), ratio_flag(cfg.benchmark))
            name = max(need, key=need.get)
            tell(f"its GAN writes {most} images a class, not gan.n's {sub.gan.n}: the cells ask {most} of {name}")
            sub.gan.n = most
        return run_gan(sub, "all")
    return _resolve_input_run(cfg, run, cfg.benchmark.gan_run, "gan_run", "GAN", train)


def mixed_asks(b: BenchmarkConfig, real: int, largest: int) -> int:
    """The synthetic images a mixed cell adds to a class of ``real`` images: --synthetic-ratio x them, or with
    --balance as many as fill it up to the ``largest`` class."""
    return int(largest - real) if b.balance else int(round(b.synthetic_ratio * real))


def synthetic_images_asked(cfg: Config, bundle: DataBundle, variants) -> dict[str, int]:
    """The most synthetic images of each class that cells of ``variants`` take: mixed cells
    --synthetic-ratio x the real count (or up to the largest class, --balance), synthetic cells the real
    count. Counted on the whole training split (with validation under --folds, whose folds train on both)."""
    counts = np.asarray(bundle.train.class_counts(len(bundle.classes)))
    if cfg.benchmark.folds > 1:
        counts = counts + np.asarray(bundle.val.class_counts(len(bundle.classes)))
    asked = {c: 0 for c in bundle.classes}
    for k, name in enumerate(bundle.classes):
        if "mixed" in variants:
            asked[name] = mixed_asks(cfg.benchmark, int(counts[k]), int(counts.max()))
        if "synthetic" in variants:
            asked[name] = max(asked[name], int(counts[k]))
    return asked


def resolve_encode_run(cfg: Config, run: Run) -> Path:
    return _resolve_input_run(cfg, run, cfg.benchmark.encode_run, "encode_run", "autoencoder", run_encode)


def _sub_config(cfg: Config, run: Run, what: str) -> Config:
    sub = config_from_dict(cfg.to_dict())
    sub.run.out_root = str(run.dir / "inputs")
    sub.run.name = what
    # the benchmark's decode cache, not one of its own under inputs/: each benchmark run decoded the
    # data once more for its GAN and autoencoder (at 224 px, 280 MiB of uint8 for Kermany's train+test)
    sub.data.cache_dir = str(data_cache_dir(cfg).resolve())
    fractions = parse_fractions(cfg.benchmark.train_fractions)
    if len(fractions) == 1 and fractions[0] < 1:
        # one low-data regime: its GAN and autoencoder learn from the same patients only, for as many
        # optimizer steps as on the whole split (the epochs of the profile are sized for the whole split)
        f = fractions[0]
        sub.gan.train_fraction = sub.encode.train_fraction = f
        sub.gan.epochs, sub.encode.epochs = (math.ceil(e / f) for e in (sub.gan.epochs, sub.encode.epochs))
    return sub

# ----------------------------------------------------------------------------- training sets


def build_training_sets(bundle: DataBundle, variant: str, keep: np.ndarray, cfg: Config,
                        synthetic: dict[str, np.ndarray] | None, syn_names: dict[str, list[str]] | None,
                        latents: dict | None) -> tuple[TrainSet, TrainSet, TrainSet]:
    """(train, val, test) for one variant; val and test are always the real splits (or their latents)."""
    tr = bundle.train.subset(keep)
    real_prov = [f"real:{p}" for p in tr.paths]
    if variant == "encoded":
        lat = latents["splits"]
        # the selected rows of the read-only memory-mapped shards are copied into memory, once
        plain, views = lat["train"][0], latents.get("views", {}).get("train")
        if views is not None and cfg.benchmark.augment:   # (N, 1 + views, C, h, w): the plain encoding first
            x = np.empty((len(keep), 1 + views.shape[1], *plain.shape[1:]), dtype=plain.dtype)
            gather_rows(x[:, 0], plain, keep)
            gather_rows(x[:, 1:], views, keep)
        else:
            x = gather_rows(np.empty((len(keep), *plain.shape[1:]), dtype=plain.dtype), plain, keep)
        x_tr, y_tr = torch.from_numpy(x), torch.from_numpy(lat["train"][1][keep])
        val = TrainSet(torch.from_numpy(np.array(lat["val"][0])), torch.from_numpy(lat["val"][1]),
                       [f"real:{p}" for p in bundle.val.paths])
        test = TrainSet(torch.from_numpy(np.array(lat["test"][0])), torch.from_numpy(lat["test"][1]),
                        [f"real:{p}" for p in bundle.test.paths])
        return TrainSet(x_tr, y_tr, real_prov), val, test
    val = TrainSet(as_tensor(bundle.val.images), torch.from_numpy(bundle.val.labels),
                   [f"real:{p}" for p in bundle.val.paths])
    test = TrainSet(as_tensor(bundle.test.images), torch.from_numpy(bundle.test.labels),
                    [f"real:{p}" for p in bundle.test.paths])
    parts_x, parts_y, prov = [], [], []
    if variant in ("real", "mixed"):
        parts_x.append(np.asarray(tr.images))
        parts_y.append(tr.labels)
        prov += real_prov
    if variant in ("mixed", "synthetic"):
        counts = tr.class_counts(len(bundle.classes))
        for c, name in enumerate(bundle.classes):
            avail = synthetic.get(name)
            want = counts[c] if variant == "synthetic" else mixed_asks(cfg.benchmark, counts[c], max(counts))
            if want == 0:
                continue
            if avail is None or len(avail) == 0:
                if variant == "mixed" and not cfg.benchmark.balance:
                    continue   # a GAN of some classes (genaug gan --class PNEUMONIA) augments those; the report says so
                raise CheckpointError(f"the GAN run has no synthetic images of class {name}; rerun genaug gan --class all")
            if want > len(avail):
                log.warning("asked for %d synthetic %s images, the GAN run has %d; using all", want, name, len(avail))
                want = len(avail)
            parts_x.append(avail[:want])
            parts_y.append(np.full(want, c, dtype=np.int64))
            prov += [f"synthetic:{n}" for n in syn_names[name][:want]]
    x = as_tensor(np.concatenate(parts_x))
    return TrainSet(x, torch.from_numpy(np.concatenate(parts_y)), prov), val, test


def check_synthetic_classes(gan_dir: Path, synthetic: dict, bundle: DataBundle, cfg: Config, variants) -> None:
    """A GAN run of some classes only: enough for mixed cells at a --synthetic-ratio (the classes it has are
    augmented, and this says so before any cell trains), not for --balance where it lacks a class to fill,
    nor for train-on-synthetic, which needs every class."""
    tell_synthetic_shortfall(gan_dir, synthetic, bundle, cfg, variants)
    missing = [c for c in bundle.classes if len(synthetic.get(c, ())) == 0]
    if not missing:
        return
    which = f"GAN run {gan_dir} has no synthetic images of {', '.join(missing)}"
    if "synthetic" in variants:
        raise CheckpointError(f"{which}; the synthetic variant trains on synthetic images alone and needs every "
                              "class: train a GAN of all classes (genaug gan --class all)")
    counts = bundle.train.class_counts(len(bundle.classes))
    if "mixed" in variants and cfg.benchmark.balance and (
            short := [c for k, c in enumerate(bundle.classes) if c in missing and counts[k] < max(counts)]):
        raise CheckpointError(f"{which}; --balance fills {', '.join(short)} up to the largest class with synthetic "
                              "images: train a GAN of those classes (genaug gan --class ...), or use --synthetic-ratio")
    if "mixed" in variants:
        tell(f"mixed cells add synthetic images of {', '.join(c for c in bundle.classes if c not in missing)} "
             f"only: {which}")


def tell_synthetic_shortfall(gan_dir: Path, synthetic: dict, bundle: DataBundle, cfg: Config, variants) -> None:
    """Before any cell trains, the classes of which the GAN run has fewer images than the mixed or synthetic
    cells on all the training data ask: they take what there is (said in log.txt alone before session 56)."""
    which = [v for v in ("mixed", "synthetic") if v in variants]
    for name, asked in synthetic_images_asked(cfg, bundle, which).items():
        if 0 < (has := len(synthetic.get(name, ()))) < asked:
            tell(f"note: the {' and '.join(which)} cells ask up to {asked} synthetic {name} images; GAN run {gan_dir} "
                 f"has {has}: they take those {has} (genaug gan sample draws more from its generator)")


def check_balance_adds_images(cfg: Config, bundle: DataBundle, variants: list[str]) -> None:
    """--balance on classes already balanced adds no synthetic image: refused before a GAN trains, not
    reported later as a mixed cell that is a real cell trained again."""
    counts = bundle.train.class_counts(len(bundle.classes))
    if "mixed" in variants and cfg.benchmark.balance and len(set(counts)) == 1:
        raise ConfigError(f"--balance adds no synthetic image: the training classes are already balanced "
                          f"({', '.join(f'{c} {n}' for c, n in zip(bundle.classes, counts))}); use --synthetic-ratio")


def check_provenance(train: TrainSet, val: TrainSet, test: TrainSet, bundle: DataBundle) -> None:
    """Fail loudly if a test or val image, or a synthetic image outside training, leaks anywhere."""
    test_paths = {f"real:{p}" for p in bundle.test.paths}
    val_paths = {f"real:{p}" for p in bundle.val.paths}
    if test.provenance != [f"real:{p}" for p in bundle.test.paths]:
        raise AssertionError("provenance: the test set is not exactly the real test split")
    if val.provenance != [f"real:{p}" for p in bundle.val.paths]:
        raise AssertionError("provenance: the validation set is not exactly the real val split")
    leaked = [p for p in train.provenance if p in test_paths or p in val_paths]
    if leaked:
        raise AssertionError(f"provenance: {len(leaked)} test/val images in training, e.g. {leaked[0]}")
    in_training = set(train.provenance)
    train_patients = {bundle.train.patients[i] for i, p in enumerate(bundle.train.paths)
                      if f"real:{p}" in in_training}
    if train_patients & set(bundle.val.patients):
        raise AssertionError("provenance: a validation patient has images in training")
    if len(train.provenance) != len(train.x):
        raise AssertionError("provenance: one record per training image expected")

# ----------------------------------------------------------------------------- K-fold by patient


class PatientFolds:
    """K folds over train+val pooled, grouped by patient. The images (and the encode run's
    latents, float16 at 14x14x256 per image) are pooled once; each fold is then two index subsets."""

    def __init__(self, bundle: DataBundle, k: int, seed: int, latents: dict | None = None):
        self.bundle, self.k, self.seed, self.latents = bundle, k, seed, latents
        self.pooled = ImageSet.concat([bundle.train, bundle.val])
        # patients that hold one identical image share a fold: a copy in another fold is a validation image trained on
        groups = join_patients_sharing_an_image(self.pooled.patients, image_hashes(self.pooled))
        self.parts = patient_folds(self.pooled.labels, groups, k, seed)
        if latents is not None:   # same pooled order as the images: train, then val
            sp = latents["splits"]
            self.lat_x = np.concatenate([np.asarray(sp["train"][0]), np.asarray(sp["val"][0])])
            self.lat_y = np.concatenate([sp["train"][1], sp["val"][1]])
            vw = latents.get("views")
            self.lat_views = np.concatenate([np.asarray(vw["train"]), np.asarray(vw["val"])]) if vw else None

    def fold(self, i: int) -> tuple[DataBundle, dict | None]:
        """Fold ``i``'s bundle (validation = fold i, training = the others, the same real test split)
        and, with latents, the latents arranged the same way."""
        val_idx = self.parts[i]
        train_idx = np.sort(np.concatenate([p for j, p in enumerate(self.parts) if j != i]))
        splits = {"train": self.pooled.subset(train_idx), "val": self.pooled.subset(val_idx), "test": self.bundle.test}
        origin = f"fold {i + 1} of {self.k} over train+val, grouped by patient (seed {self.seed})"
        data = dataclasses.replace(self.bundle, splits=splits, val_origin=origin)
        if self.latents is None:
            return data, None
        lat = {**self.latents, "splits": {"train": (self.lat_x[train_idx], self.lat_y[train_idx]),
                                          "val": (self.lat_x[val_idx], self.lat_y[val_idx]),
                                          "test": self.latents["splits"]["test"]}}
        if self.lat_views is not None:   # views of the images that train in this fold
            lat["views"] = {"train": self.lat_views[train_idx]}
        return data, lat

# ----------------------------------------------------------------------------- one cell


def cell_key(model: str, variant: str, fraction: float, seed: int, fold: int | None = None) -> str:
    key = f"{model}__{variant}__f{fraction:g}__seed{seed}"
    return key if fold is None else f"{key}__fold{fold}"


def run_cell(model_name: str, variant: str, fraction: float, seed: int, train: TrainSet, val: TrainSet,
             test: TrainSet, bundle: DataBundle, cfg: Config, device, save_to: Path | None = None,
             fold: int | None = None, tracker: Tracker | None = None, partial: Path | None = None,
             autoencoder: dict | None = None) -> dict:
    """Train and test one cell; ``partial`` is where its fit keeps the state to resume from; ``autoencoder``
    is saved with an encoded cell's model (`autoencoder_for_predict`), so that it reads images."""
    b = cfg.benchmark
    seed_everything(seed)
    latent = variant == "encoded"
    in_ch = train.x.shape[-3]   # latents may carry views: (N, views, C, h, w)
    model = build_classifier(model_name, len(bundle.classes), in_ch, latent=latent, pretrained=b.pretrained,
                             weights_dir=b.weights_dir, image_size=train.x.shape[-1])
    epochs = b.epochs_for(model_name, latent)
    amp = uses_autocast(cfg.run, device)
    fit = fit_classifier(model, train.x, train.y, val.x, val.y, len(bundle.classes), epochs, b.batch_size, b.lr,
                         b.weight_decay, b.patience, augment=b.augment, seed=seed, device=device,
                         desc=cell_key(model_name, variant, fraction, seed, fold), amp=amp,
                         schedule=b.schedule, augmentations=b.augmentations, tracker=tracker,
                         min_epochs=b.min_epochs(epochs), checkpoint=partial, state_every=cfg.run.state_every_s,
                         say_epochs=True, label_smoothing=b.label_smoothing, mixup=b.mixup, ema_decay=b.ema)
    tta = tta_arguments(b, train.x)
    p_val = predict_probs(model, val.x, device=device, amp=amp, **tta)
    p_test = predict_probs(model, test.x, device=device, amp=amp, **tta)
    thr = choose_threshold(val.y, p_val)
    at_half = classification_metrics(test.y, p_test, bundle.classes, None)
    at_thr = classification_metrics(test.y, p_test, bundle.classes, thr)
    t0 = time.perf_counter()
    predict_probs(model, test.x, device=device, amp=amp)
    infer = len(test.x) / max(time.perf_counter() - t0, 1e-9)
    if save_to is not None:
        ckpt = classifier_checkpoint(model, model_name, bundle, cfg, train.x.shape[-3:], thr, variant, seed, tta)
        if latent:
            if autoencoder is None:
                raise ConfigError("an encoded cell's model is saved with its autoencoder, and none was given")
            ckpt["autoencoder"] = autoencoder
        atomic_torch_save(ckpt, save_to)
    if save_to is not None and not latent:   # one state dict per file: the pixel models'
        save_safetensors(model.state_dict(), save_to.with_suffix(".safetensors"),
                         {"kind": "classifier", "model_name": model_name, "classes": ",".join(bundle.classes),
                          "image_size": str(int(train.x.shape[-1])), "equalize": b.equalize})
    return {"model": model_name, "variant": variant, "train_fraction": fraction, "seed": seed, "fold": fold,
            "val_origin": bundle.val_origin, "n_train": len(train.x), "n_train_synthetic": sum(p.startswith("synthetic:") for p in train.provenance),
            "train_class_counts": train_class_counts(train, bundle.classes),
            "n_val": len(val.x), "n_test": len(test.x), "input_shape": list(train.x.shape[-3:]),
            "latent_views": int(train.x.shape[1]) - 1 if train.x.dim() == 5 else 0,
            "threshold": thr, "test_at_0.5": at_half, "test_at_val_threshold": at_thr,
            "val_roc_auc": roc_auc(val.y, p_val), "history": fit.history, "epochs_run": fit.epochs_run,
            "best_epoch": fit.best_epoch, "train_seconds": fit.train_seconds,
            "seconds_per_epoch": fit.train_seconds / max(fit.epochs_run, 1),
            "train_images_per_second": fit.images_per_second, "inference_images_per_second": infer,
            "test_probs": p_test.tolist(), "test_labels": test.y.tolist(),
            # kept so that the seeds of a cell can be pooled later (seed_ensembles) with a threshold from validation
            "val_probs": p_val.tolist(), "val_labels": val.y.tolist(),
            "params": sum(p.numel() for p in model.parameters()),
            # cells accumulate across reruns, shards and machines: keep their provenance
            "genaug_commit": git_commit(), "device": str(device), "machine": machine_info(device, amp),
            "precision": "bf16" if amp else "fp32"}


def tta_arguments(b, train_x: torch.Tensor) -> dict:
    """`predict_probs`'s test-time augmentation arguments for a cell (none with ``b.tta`` 0): its training
    augmentations, and for latents the training latents' channel spread that their noise is scaled by."""
    if not b.tta:
        return {}
    spread = latent_spread(train_x) if train_x.is_floating_point() else None
    return {"tta": b.tta, "augmentations": b.augmentations, "spread": spread, "seed": 0}


def classifier_checkpoint(model, name: str, bundle: DataBundle, cfg: Config, input_shape, threshold,
                          variant: str, seed: int, tta: dict | None = None) -> dict:
    """What `genaug predict` needs to preprocess new images the way the model was trained, and to
    average over the same test-time copies (``tta``, `tta_arguments`) its threshold was chosen on."""
    return {"kind": "classifier", "model_name": name, "model": model.state_dict(), "classes": bundle.classes,
            "task": cfg.data.task, "in_channels": int(input_shape[0]), "image_size": int(input_shape[-1]),
            "threshold": threshold, "variant": variant, "seed": seed, "config": cfg.to_dict(),
            # the latents of an encoded cell came from unequalized images
            "equalize": "none" if variant == "encoded" else cfg.benchmark.equalize,
            # how images not square were made square (an encoded cell's autoencoder run made them alike: checked)
            "resize": cfg.data.resize,
            # what its training files were, for predict to say where new files differ (folder data only)
            **({"training_files": bundle.train_files} if bundle.train_files else {}),
            **({"tta": tta} if tta else {})}


def autoencoder_for_predict(enc_dir: Path, latent_meta: dict) -> dict:
    """The encoder an encoded cell's saved model needs to read images, as a plain dict; checked to be the one
    that wrote the latents the cell trains on."""
    path = autoencoder_of(enc_dir)
    # load_autoencoder checks it is an autoencoder of the latents' input size and channel count
    model, _ = load_autoencoder(path, latent_meta.get("image_size"), (latent_meta.get("latent_shape") or [None])[0])
    return {"model": model.state_dict(), "image_size": model.image_size, "latent_channels": model.latent_channels,
            "checkpoint": str(path)}


# ----------------------------------------------------------------------------- aggregate


MACRO_FALLBACK = {"sensitivity": "recall_macro", "specificity": "specificity_macro"}


def cell_calibration(cell: dict, split: str) -> float:
    """Expected calibration error of a cell's ``split`` ('val' or 'test') probabilities; NaN where the
    cell kept none."""
    probs, labels = cell.get(f"{split}_probs"), cell.get(f"{split}_labels")
    if not probs or labels is None:
        return float("nan")
    return calibration_error(torch.tensor(labels), torch.tensor(probs))


def calibration_over(cells: list[dict], split: str) -> tuple[float, float]:
    """Mean and standard deviation of the cells' calibration errors on ``split``, over those that kept
    its probabilities (NaN, 0 where none did). From the cells' own probabilities, so cells written before
    calibration was reported have it too."""
    vals = np.array([cell_calibration(c, split) for c in cells], dtype=float)
    vals = vals[np.isfinite(vals)]
    mean = float(vals.mean()) if len(vals) else float("nan")
    return mean, float(vals.std(ddof=1)) if len(vals) > 1 else 0.0


def aggregate(cells: list[dict], classes: list[str], n_boot: int) -> dict:
    """Per (model, variant, fraction): mean ± std over seeds, bootstrap CIs; paired tests against real."""
    groups: dict[tuple, list[dict]] = {}
    for c in cells:
        groups.setdefault((c["model"], c["variant"], c["train_fraction"]), []).append(c)
    table, comparisons = [], []
    for (model, variant, frac), cs in sorted(groups.items()):
        cs = sorted(cs, key=replicate_key)
        row = {"model": model, "variant": variant, "train_fraction": frac,
               "seeds": sorted({c["seed"] for c in cs}), "replicates": len(cs)}
        if any(c.get("fold") is not None for c in cs):
            row["folds"] = sorted({c["fold"] for c in cs if c.get("fold") is not None})
        for metric in ("accuracy", "roc_auc", "sensitivity", "specificity", "f1_macro"):
            for view, key in (("thr", "test_at_val_threshold"), ("half", "test_at_0.5")):
                # with more than two classes sensitivity and specificity are the macro means over classes
                vals = np.array([c[key].get(metric, c[key].get(MACRO_FALLBACK.get(metric, ""), np.nan))
                                 for c in cs], dtype=float)
                row[f"{metric}_{view}_mean"] = float(np.nanmean(vals))
                row[f"{metric}_{view}_std"] = float(np.nanstd(vals, ddof=1)) if len(vals) > 1 else 0.0
        for split in ("val", "test"):
            row[f"ece_{split}_mean"], row[f"ece_{split}_std"] = calibration_over(cs, split)
        ens = seed_ensemble(cs)
        thr = ens["threshold"] if len(classes) == 2 else None
        ci = bootstrap_ci(ens["test_labels"], ens["test_probs"], thr, n=n_boot, seed=0)
        row["accuracy_ci95_seed_ensemble"], row["roc_auc_ci95_seed_ensemble"] = ci["accuracy_ci"], ci["roc_auc_ci"]
        pooled = classification_metrics(ens["test_labels"], ens["test_probs"], classes, thr)
        row["seed_ensemble"] = {"accuracy": pooled["accuracy"], "roc_auc": pooled["roc_auc"],
                                "sensitivity": pooled.get("sensitivity"), "specificity": pooled.get("specificity"),
                                "threshold": thr, "threshold_from": ens["threshold_from"] if thr is not None
                                else "none: the most probable class"}
        row["seconds_per_epoch_mean"] = float(np.mean([c["seconds_per_epoch"] for c in cs]))
        row["train_seconds_mean"] = float(np.mean([c["train_seconds"] for c in cs]))
        row["epochs_mean"] = float(np.mean([c["epochs_run"] for c in cs]))
        row["train_images_per_second_mean"] = float(np.mean([c["train_images_per_second"] for c in cs]))
        row["n_train"], row["n_train_synthetic"] = cs[0]["n_train"], cs[0]["n_train_synthetic"]
        if variant != "real":   # False: the GAN or autoencoder saw real images these cells do not train on
            row["input_run_within_training"] = all(c.get("input_run_within_training", frac >= 1) for c in cs)
        row["per_class"] = {
            cls: {m: float(np.mean([c["test_at_val_threshold"][f"{m}_per_class"][cls] for c in cs]))
                  for m in ("precision", "recall", "specificity", "f1")}
            for cls in classes if all(cls in c["test_at_val_threshold"].get("f1_per_class", {}) for c in cs)}
        table.append(row)
    for (model, variant, frac), cs in sorted(groups.items()):
        base = {replicate_key(c): c for c in groups.get((model, "real", frac), [])}
        if variant == "real" or not base:
            continue
        pairs = [(base[replicate_key(c)], c) for c in sorted(cs, key=replicate_key) if replicate_key(c) in base]
        if pairs:
            comparisons.append({"model": model, "variant": variant, "train_fraction": frac, "against": "real",
                                **paired_comparison(pairs, n_boot)})
    return {"table": table, "comparisons": comparisons}


def paired_comparison(pairs: list[tuple[dict, dict]], n_boot: int) -> dict:
    """B against A over paired cells (same test images, same seed).

    ``accuracy_difference``: the mean difference with an interval and p-value that resample the
    paired seeds as well as the test images, so they answer "does recipe B train better models than
    A", seed to seed; with one seed, the interval resamples images and p is the exact McNemar test.
    ``these_runs``: the same difference for these trained models as they are (images resampled
    only; p from the exact test over images). ``mcnemar_per_seed``: each seed's own McNemar test."""
    cells_a, cells_b = [a for a, _ in pairs], [b for _, b in pairs]
    correct_a, correct_b = correct_rows(cells_a), correct_rows(cells_b)
    diff = paired_bootstrap_diff(correct_a, correct_b, n=n_boot, seed=0)
    per_seed = [{"seed": b["seed"], **mcnemar(ca, cb)} for (_, b), ca, cb in zip(pairs, correct_a, correct_b)]
    if len(pairs) == 1:
        diff.update(p_value=per_seed[0]["p_value"], p_from="exact McNemar test")
    else:
        diff["p_from"] = "the bootstrap over seeds and test images"
    these = paired_bootstrap_diff(correct_a, correct_b, n=n_boot, seed=0, resample_runs=False)
    # the same cells at the fixed threshold 0.5 (binary): where validation put each cell's threshold can
    # make or unmake a difference that ranking (ROC-AUC) does not show
    at_half = None
    if is_binary(cells_a[0]):
        at_half = paired_bootstrap_diff(correct_rows(cells_a, at_half=True), correct_rows(cells_b, at_half=True),
                                        n=n_boot, seed=0)
    return {"seeds": sorted({b["seed"] for _, b in pairs}), "pairs": len(pairs), "accuracy_difference": diff,
            "accuracy_difference_at_0.5": at_half,
            "these_runs": {"ci": these["ci"], "p_value": paired_sign_flip_test(correct_a, correct_b)["p_value"],
                           "p_from": "exact sign-flip test over test images (seeds averaged per image)"},
            "mcnemar_per_seed": per_seed}


def seed_ensemble(cells: list[dict]) -> dict:
    """The replicates of one cell pooled into one classifier: their test (and validation) probabilities
    averaged. Its threshold is chosen on the pooled validation probabilities, as each cell's is on its
    own; cells written before validation probabilities were kept, or on different validation images
    (K-fold), fall back to the mean of the cells' own thresholds, and say so."""
    y = torch.tensor(cells[0]["test_labels"])
    probs = torch.tensor(np.mean([c["test_probs"] for c in cells], axis=0))
    same_val = all("val_probs" in c for c in cells) and all(c["val_labels"] == cells[0]["val_labels"] for c in cells)
    if same_val:
        val_probs = torch.tensor(np.mean([c["val_probs"] for c in cells], axis=0))
        thr, how = choose_threshold(torch.tensor(cells[0]["val_labels"]), val_probs), "pooled validation"
    else:
        thr, how = float(np.mean([c["threshold"] for c in cells])), "mean of the runs' thresholds"
    return {"test_labels": y, "test_probs": probs, "threshold": thr, "threshold_from": how}


def replicate_key(cell: dict) -> tuple[int, int]:
    """What pairs two cells of one model: the same seed (and the same fold under K-fold)."""
    fold = cell.get("fold")
    return (cell["seed"], -1 if fold is None else fold)


def _correct(cell: dict, at_half: bool = False) -> np.ndarray:
    """Which test images the cell got right, at its validation threshold (or at 0.5: ``at_half``)."""
    probs = torch.tensor(cell["test_probs"])
    thr = cell["threshold"] if probs.shape[1] == 2 and not at_half else None
    return (predictions(probs, thr) == torch.tensor(cell["test_labels"])).numpy()


def correct_rows(cells, at_half: bool = False) -> np.ndarray:
    """``_correct`` of each cell, one row per cell (the layout the paired bootstraps take)."""
    return np.stack([_correct(c, at_half) for c in cells])


def is_binary(cell: dict) -> bool:
    """Whether a cell's classifier has two classes (a threshold to choose) rather than several."""
    return len(cell["test_probs"][0]) == 2

# ----------------------------------------------------------------------------- the job


# What a resumed benchmark may add to (more seeds, models, variants, fractions, or input runs
# where none was fixed); everything else decides how a cell trains and stays as first run.
EXTENDABLE = ("models", "variants", "seeds", "train_fractions", "gan_run", "encode_run", "save_models")


# The variants whose cells are trained on an input run's output, by the key naming that run.
DEPENDENT_VARIANTS = {"gan_run": ("mixed", "synthetic"), "encode_run": ("encoded",)}
INPUT_RUNS = {"gan_run": "GAN", "encode_run": "autoencoder"}   # the input runs, as messages name them

# Settings that only some variants read: a difference there leaves the other variants' cells as
# they were (genaug compare says so instead of offering it as a cause).
VARIANT_ONLY_SETTINGS = {**DEPENDENT_VARIANTS, "synthetic_ratio": ("mixed",), "balance": ("mixed",),
                         "latent_epochs": ("encoded",)}


def resumed_config(saved: dict, given: dict, run: Run, extend: bool = True,
                   supersede: bool = False) -> tuple[Config, list[tuple[str, str, str]]]:
    """The saved config with the extendable benchmark keys that were given on the command line,
    and the input runs replaced as (key, old, new).

    A given value for any other benchmark key must equal the saved one: cells trained with
    other settings would not be comparable with those already in the run. Another GAN or
    encode run replaces the fixed one only with ``supersede``.
    """
    cfg = config_from_dict(saved)
    b = cfg.benchmark
    replaced = []
    for key, value in given.items():
        if value is None or value == getattr(b, key):
            continue
        if key in EXTENDABLE and not extend:
            raise ConfigError(f"benchmark run {run.dir} has {key}={getattr(b, key)!r}; shards of one run must share "
                              f"its cells, so extend it first (to {key}={value!r}): the same command with --extend-only "
                              "instead of --shard, then start the shards")
        if key not in EXTENDABLE:
            raise ConfigError(f"benchmark run {run.dir} was made with {key}={getattr(b, key)!r}; a resumed run keeps "
                              f"its training settings (start a new run to use {key}={value!r})")
        if key in DEPENDENT_VARIANTS and (fixed := getattr(b, key) or recorded_input_run(run, key)):
            if Path(str(value)).resolve() == Path(str(fixed)).resolve():
                continue
            if not supersede:
                raise ConfigError(f"benchmark run {run.dir} already uses {key.replace('_', '-')} {fixed}; "
                                  "start a new run, or add --supersede to move its "
                                  f"{'/'.join(DEPENDENT_VARIANTS[key])} cells aside and retrain them on the new one")
            replaced.append((key, str(fixed), str(value)))
        setattr(b, key, absolute_data(value) if key in DEPENDENT_VARIANTS else value)
    return validate(cfg), replaced


def supersede_cells(run: Run, key: str, old: str, new: str) -> set[str]:
    """Move the cells that were trained on input run ``old`` to superseded-<old name>/ (kept, not
    deleted, and out of the report), and record the replacement in the manifest."""
    aside = run.path(f"superseded-{Path(old).name}")
    moved = []
    for path in sorted(run.path("cells").glob("*.json")):
        variant = path.name.split("__")[1]   # cell_key: model__variant__f<fraction>__seed<n>[__fold<k>]
        if variant in DEPENDENT_VARIANTS[key]:
            aside.mkdir(exist_ok=True)
            path.rename(aside / path.name)
            moved.append(variant)
    run.manifest[key] = new
    run.manifest.setdefault("superseded", []).append(
        {"key": key, "old": old, "new": new, "cells_moved": len(moved), "to": aside.name,
         "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    run.save_manifest()
    distributed.say(f"{key.replace('_', '-')}: {old} -> {new}; {counted(len(moved), 'cell')} trained on the old one "
                    f"moved to {aside.name}/ and retrained", flush=True)
    return set(moved)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'I/N' (1-based) -> (I-1, N); None for no sharding."""
    if not text:
        return None
    try:
        i, n = (int(t) for t in str(text).split("/"))
    except ValueError:
        i = n = 0
    if not (n >= 1 and 1 <= i <= n):
        raise ConfigError(f"--shard expects I/N with 1 <= I <= N, e.g. 1/2, got '{text}'")
    return i - 1, n


def run_benchmark(cfg: Config, resume: str | None = None, given: dict | None = None, shard: str | None = None,
                  supersede: bool = False, report_only: bool = False, extend_only: bool = False) -> Path:
    """A new benchmark run, or ``resume`` one: finished cells are kept and ``given`` (the flags the
    user passed, by config section) may add seeds, models, variants or train fractions to it, or with
    ``supersede`` replace its GAN or encode run (the cells trained on the old one are moved aside);
    given data and run flags may change only how it runs (RESUME_MAY_CHANGE).

    ``shard`` 'I/N' trains only cells I, I+N, I+2N, ... of the run's fixed cell order, so N
    processes or machines sharing the run directory split the work without locks: every cell
    is its own atomically written file, and whichever shard finds all cells present writes
    the report.

    ``report_only`` writes the report of ``resume`` from the cells finished so far and trains
    nothing, e.g. while its shards still run; the report lists the cells it lacks.

    ``extend_only`` records what ``given`` adds to ``resume`` (and checks its input runs) and
    trains nothing: shards must share one cell list, so a run is extended before they start.
    """
    part = parse_shard(shard)
    given = given or {}
    flags = {k: v for k, v in given.get("benchmark", {}).items() if v is not None}
    check_run_mode(shard, part, resume, flags, supersede, report_only, extend_only)
    join_ranks(cfg)
    # the cells this process trains: the whole run's, or its shard's (which other shards' processes share)
    held_as = f"{part[0] + 1}of{part[1]}" if part is not None and part[1] > 1 else None
    if resume:
        run, cfg = _reopen_benchmark(cfg, resume, given, flags, part, held_as, supersede, report_only, extend_only)
        if extend_only:
            try:
                return _recorded_extension(cfg, run)
            finally:
                run.close()
    else:
        run = _new_benchmark(cfg, part, held_as)
    if part is not None:
        run.manifest_name = f"manifest-shard{part[0] + 1}of{part[1]}.json"
        keep_earlier_shard_resumes(run)
        run.save_manifest(shard=f"{part[0] + 1}/{part[1]}")
    with running(run, new=not resume):
        return _benchmark(cfg, run, part, report_only)


def check_run_mode(shard: str | None, part, resume: str | None, flags: dict, supersede: bool, report_only: bool,
                   extend_only: bool) -> None:
    """--report-only, --extend-only and --shard each go with --resume (a first shard excepted), and not together."""
    if report_only and (not resume or part is not None or flags or supersede):
        raise ConfigError("--report-only reports a run as it is: give it --resume RUN and no --shard, "
                          "--supersede or benchmark settings")
    if extend_only and (not resume or part is not None or report_only or not (flags or supersede)):
        raise ConfigError("--extend-only adds cells to a run without training them: give it --resume RUN and the "
                          "seeds, models, variants, train fractions or input runs to add, and no --shard or --report-only")
    if part is not None and part[0] > 0 and not resume:
        # shards cooperate only inside one run directory, and each new run gets its own: a second
        # shard started fresh would train its cells into a run that can never be complete
        raise ConfigError(f"--shard {shard} without --resume would start a run of its own with only its cells: "
                          f"start --shard 1/{part[1]} first (it creates the run), then give that run: "
                          f"--resume RUN --shard {shard}")


def _reopen_benchmark(cfg: Config, resume: str, given: dict, flags: dict, part, held_as: str | None,
                      supersede: bool, report_only: bool, extend_only: bool) -> tuple[Run, Config]:
    """The run to resume and its own settings, with what ``flags`` add (and ``supersede`` replaces) recorded."""
    # another process may be writing into the run (a shard): leave its temporary files alone
    run = open_run(resume, "benchmark", clear_stale=part is None and not report_only, hold=not report_only,
                   shard=held_as)
    run.trains = not report_only
    saved = read_run_config(run.dir)
    cfg, replaced = resumed_config(saved, flags, run, extend=part is None, supersede=supersede)
    run.inherited = {key for key in INPUT_RUNS if not flags.get(key)}
    # --save-models added to a run made without it: the weights of the cells it has are gone
    if flags.get("save_models") and not saved.get("benchmark", {}).get("save_models") and (
            done := len(list(run.path("cells").glob("*.json")))):
        distributed.say(f"--save-models: the {counted(done, 'cell')} done earlier saved no model, and a resumed run "
                        "does not retrain them; cells trained from now on save theirs (for every cell's model, "
                        "start a new run with --save-models)", flush=True)
    trained_on = cfg.run.device
    cfg = resumed_settings(cfg, {s: given.get(s) for s in ("data", "run")}, run.dir)
    if report_only:   # trains nothing: results.json's config keeps the device the cells trained on
        cfg.run.device = trained_on
    if not extend_only:   # it reads no data; --report-only reads the splits for the report's notes
        check_resumed_data(cfg.data.data, run.dir)
    if not (report_only or extend_only):
        check_data_spec(cfg.data.data, cfg.data.task, cfg.data.classes)
    check_input_sizes(cfg)
    if extend_only:   # checked before the extension is written, as a fresh run's would be
        for key, what in INPUT_RUNS.items():
            if flags.get(key):
                check_given_input_run(cfg, flags[key], key, what)
        _require_given_input_runs(cfg, run, parse_list(cfg.benchmark.variants, VARIANTS, "variant"), (0, 2))
    if part is None and not report_only:
        moved = set()
        if distributed.is_main():
            for key, old, new in replaced:
                moved |= supersede_cells(run, key, old, new)
        moved = distributed.broadcast_object(moved)   # also holds the other ranks until the cells are moved
        have = cfg.benchmark.variants.split(",")
        cfg.benchmark.variants = ",".join(have + sorted(moved - set(have)))
        write_run_config(run, cfg.to_dict())
    return run, cfg


def _new_benchmark(cfg: Config, part, held_as: str | None) -> Run:
    """A new run, made only once the data, the settings and the input runs given have been checked."""
    # the data first: a mistyped --data is told from its name, before any model is built
    check_data_spec(cfg.data.data, cfg.data.task, cfg.data.classes)
    check_input_sizes(cfg)
    variants = set(parse_list(cfg.benchmark.variants, VARIANTS, "variant"))
    if "mixed" in variants and not cfg.benchmark.balance and cfg.benchmark.synthetic_ratio == 0:
        raise ConfigError("--synthetic-ratio 0 adds no synthetic image, so mixed cells would be real cells trained "
                          "again: give a ratio above 0 (e.g. 0.5) or --balance, or leave mixed out of --variants")
    for key, what in INPUT_RUNS.items():
        # refused before a run directory exists, so a mistyped run leaves nothing behind
        if getattr(cfg.benchmark, key) and variants & set(DEPENDENT_VARIANTS[key]):
            check_given_input_run(cfg, getattr(cfg.benchmark, key), key, what)
        elif getattr(cfg.benchmark, key):   # most likely a forgotten --variants, not a wish
            distributed.say(f"genaug: note: --{key.replace('_', '-')} is not read: no "
                            f"{' or '.join(DEPENDENT_VARIANTS[key])} variant in --variants {cfg.benchmark.variants}",
                            file=sys.stderr, flush=True)
    run = new_run(cfg.run.out_root, "benchmark", cfg.run.name, cfg.to_dict(), shard=held_as)
    if part is not None and part[1] > 1:
        distributed.say(f"other shards join this run with: genaug benchmark --resume {shlex.quote(str(run.dir))} "
                        f"--shard 2/{part[1]} (... {part[1]}/{part[1]})", flush=True)
    return run


def _recorded_extension(cfg: Config, run: Run) -> Path:
    b = cfg.benchmark
    plan = plan_cells(cfg, parse_list(b.models, CLASSIFIERS, "model"), parse_list(b.variants, VARIANTS, "variant"),
                      parse_fractions(b.train_fractions), None, False)
    left = sum(not run.path("cells", f"{k}.json").is_file() for k in plan.keys)
    run.save_manifest(planned_cells=plan.keys)
    distributed.say(f"recorded {counted(len(plan.keys), 'cell')} in {run.dir}, {left} of them to train: start the "
                    f"shards (genaug benchmark --resume {shlex.quote(str(run.dir))} --shard 1/N, ..., --shard N/N)", flush=True)
    return run.dir


def check_input_sizes(cfg: Config) -> None:
    """Each pixel model must take the benchmark's image size (and have its ImageNet weights at hand, where
    --pretrained), and ``model_epochs`` name known models: found
    out before a run directory is made, or a GAN or autoencoder trained, for nothing."""
    b = cfg.benchmark
    if set(parse_list(b.variants, VARIANTS, "variant")) - {"encoded"}:
        for model in parse_list(b.models, CLASSIFIERS, "model"):
            check_input_size(model, b.image_size)
            if b.pretrained:   # found in session 68: told at the model's first cell, after the GAN had trained
                imagenet_weights_file(model, b.weights_dir)
    if bad := sorted(set(parse_model_epochs(b.model_epochs)) - set(CLASSIFIERS)):
        raise ConfigError(f"config key 'benchmark.model_epochs' names unknown model {', '.join(bad)} "
                          f"(known: {', '.join(CLASSIFIERS)})")


def keep_earlier_shard_resumes(run: Run) -> None:
    """A shard run again under the same I/N rewrites its manifest: keep the earlier runs of it in
    the record (the report lists every command that trained the run's cells)."""
    old = run.path(run.manifest_name)
    if not old.is_file():
        return
    try:
        earlier = json.loads(old.read_text(encoding="utf-8"))
    except ValueError:   # not JSON or not UTF-8: nothing to keep
        return
    if not isinstance(earlier, dict):
        return
    pairs = list(zip(earlier.get("resumed", []), earlier.get("resume_argv", [])))
    mine = list(zip(run.manifest.get("resumed", []), run.manifest.get("resume_argv", [])))
    merged = sorted(set(map(lambda t: (t[0], tuple(t[1])), pairs + mine)))
    run.manifest["resumed"] = [w for w, _ in merged]
    run.manifest["resume_argv"] = [list(a) for _, a in merged]


@dataclass
class CellPlan:
    """Every cell of a benchmark in its fixed order, and which of them this process trains."""
    todo: list[tuple]          # (fold, fraction, variant, model, seed offset)
    keys: list[str]            # cell_key of each, the name of its cells/<key>.json
    mine: set[int]             # indices this process trains (a shard takes every N-th)
    skipped_models: list[str]  # pixel models the encoded variant has no cell for


def plan_cells(cfg: Config, models: list[str], variants: list[str], fractions: list[float],
               part: tuple[int, int] | None, report_only: bool) -> CellPlan:
    b = cfg.benchmark
    fold_ids = list(range(b.folds)) if b.folds > 1 else [None]
    todo = [(k, f, v, m, s) for k in fold_ids for f in fractions for v in variants for m in models
            for s in range(b.seeds) if not (v == "encoded" and m != "cnn")]
    skipped = sorted({m for m in models if m != "cnn"}) if "encoded" in variants else []
    mine = set() if report_only else set(range(len(todo))) if part is None else set(range(part[0], len(todo), part[1]))
    keys = [cell_key(m, v, f, cfg.run.seed + s, k) for k, f, v, m, s in todo]
    return CellPlan(todo, keys, mine, skipped)


def _require_given_input_runs(cfg: Config, run: Run, variants: list[str], part) -> None:
    """Each shard would otherwise train its own GAN or autoencoder, and cells would differ in input;
    under torchrun the GAN/autoencoder would be trained by every rank inside a benchmark."""
    if part is None and not distributed.launched():
        return
    how = "--shard" if part is not None else "torchrun"
    for var, key, flag in (("mixed", "gan_run", "--gan-run"), ("synthetic", "gan_run", "--gan-run"),
                           ("encoded", "encode_run", "--encode-run")):
        if var in variants and not (getattr(cfg.benchmark, key) or run.manifest.get(key)):
            raise ConfigError(f"{how} with the {var} variant needs {flag}: train it once "
                              f"(genaug {'gan' if key == 'gan_run' else 'encode'}) and give it")


@dataclass
class CellInputs:
    """What the cells still to train need from the GAN and encode runs (None where no such cell is left)."""
    gan_dir: Path | None = None
    enc_dir: Path | None = None
    synthetic: dict | None = None
    syn_names: dict | None = None
    latents: dict | None = None
    learnt_from: dict | None = None   # {"gan"|"encode": set of real training paths that run learnt from}
    autoencoder: dict | None = None   # what an encoded cell's saved model needs to read images (--save-models)


def load_cell_inputs(cfg: Config, run: Run, bundle: DataBundle, pending: set[str]) -> CellInputs:
    # only cells still to train need the GAN's images or the latents: a run whose mixed cells are
    # done (or an archived run, which keeps neither) reports and adds real cells without them
    inp = CellInputs()
    if {"mixed", "synthetic"} & pending:
        inp.gan_dir = resolve_gan_run(cfg, run, bundle, pending)
        inp.synthetic, inp.syn_names = load_synthetic(inp.gan_dir, bundle.classes, cfg.benchmark.image_size)
        # synthetic images meet the classifier as the real ones do
        inp.synthetic = {c: equalize_images(a, cfg.benchmark.equalize, f"{cfg.benchmark.equalize} synthetic {c}")
                         for c, a in inp.synthetic.items()}
        check_synthetic_classes(inp.gan_dir, inp.synthetic, bundle, cfg, pending)
    if "encoded" in pending:
        inp.enc_dir = resolve_encode_run(cfg, run)
        inp.latents = load_latents(inp.enc_dir)
        _check_latents_match(inp.latents, bundle, inp.enc_dir)
        if cfg.benchmark.save_models:
            inp.autoencoder = autoencoder_for_predict(inp.enc_dir, inp.latents["meta"])
    # the real training images each input run learnt from (runs that did not record it used them all)
    inp.learnt_from = {"gan": inp.gan_dir and (read_training_list(generator_run(inp.gan_dir)) or set(bundle.train.paths)),
                       "encode": inp.enc_dir and (read_training_list(inp.enc_dir) or set(bundle.train.paths))}
    return inp


def time_left(took: list[tuple], left: list[tuple]) -> str:
    """'N cells left here, about T at this pace'. ``took`` holds (kind, planned, seconds) of each cell this
    process trained, ``left`` (kind, planned) of each cell to come, where a kind is (model, latent) and planned
    is the cell's estimate from its model's timed step (``say_planned_time``; 1 for every cell where none was
    timed, as under torchrun). Each cell left is its plan times the ratio of seconds taken to seconds planned
    among the cells of its kind so far (early stopping, a share of the training data, a mixed cell's extra
    images scale with it), or, for a kind not trained yet, among all cells so far. Before session 85 a model
    not trained yet counted at the mean of the others: after the demo's first CNN cell (2 s), "6 cells left
    here, about 13s" for cells that took three minutes. Empty when nothing is left."""
    if not left:
        return ""

    def pace(cells):
        return sum(t for _, _, t in cells) / max(sum(p for _, p, _ in cells), 1e-12)

    every = pace(took)
    by_kind = {kind: pace([c for c in took if c[0] == kind]) for kind, _, _ in took}
    est = sum(planned * by_kind.get(kind, every) for kind, planned in left)
    untimed = any(kind not in by_kind for kind, _ in left)
    planned = any(p != 1 for _, p in left) or any(p != 1 for _, p, _ in took)
    guess = (" (models not trained yet counted from their timed steps)" if planned else
             " (models not trained yet counted at the mean)") if untimed else ""
    return f"{len(left)} cell{'s' if len(left) > 1 else ''} left here, about {duration(est)} at this pace{guess}"


def timing_batch(batch_size: int, device) -> int:
    """Images per timed step: at most 16 on a CPU, so a 224 px DenseNet-121 there is timed in seconds, where
    a step's cost grows with its images. A GPU step costs about the same at 16 images as at 64 while the kernel
    launches, not the arithmetic, take the time (DenseNet-121 on an H200: 931 images/s at 64 px, 972 at 224),
    so there the training batch is timed: at 16 the estimate for 224 px cells was 3.6-3.8x the time they took."""
    return batch_size if torch.device(device).type == "cuda" else max(2, min(batch_size, 16))


def seconds_per_training_image(model_name: str, latent: bool, sample_shape: tuple, n_classes: int, cfg: Config,
                               device) -> float:
    """What one training image costs this model on ``device``, timed now: one warm-up and two timed steps of
    the benchmark's own training loop on random data, of `timing_batch` images each.
    ``sample_shape``: one pixel image (1, H, W), or one latent with its views."""
    b = cfg.benchmark
    batch = timing_batch(b.batch_size, device)
    model = build_classifier(model_name, n_classes, sample_shape[-3], latent=latent, image_size=sample_shape[-1]).to(device)
    data = (torch.randn(batch, *sample_shape).half() if latent
            else torch.randint(0, 256, (batch, *sample_shape), dtype=torch.uint8))
    labels = torch.arange(batch) % n_classes
    opt = torch.optim.AdamW(model.parameters(), lr=b.lr)
    weights = class_weights(labels.numpy(), n_classes).to(device)
    gen = torch.Generator().manual_seed(0)
    spread = latent_spread(data) if latent else None
    ema = make_ema(model, b.ema) if b.ema > 0 else None   # its update is part of each step
    best = float("inf")
    amp = uses_autocast(cfg.run, device)
    for step in range(3):
        t0 = time.perf_counter()
        train_one_epoch(model, opt, data, labels, weights, batch, gen, device, b.augment, "timing",
                        amp=amp, augmentations=b.augmentations, spread=spread,
                        label_smoothing=b.label_smoothing, mixup=b.mixup, ema=ema)
        if ema is not None:   # and each epoch's pass of the training images for the average's statistics
            recompute_batchnorm(ema.module, data, device, batch, amp)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)   # the step's kernels may still be queued
        if step:   # the first step warms up allocators and kernels
            best = min(best, time.perf_counter() - t0)
    return best / batch


def planned_seconds(cells: list[tuple], per_image: dict, n_train: int, n_val: int, epochs_for,
                    synthetic_share: float, n_test: int = 0, tta: int = 0) -> float:
    """An estimate for training ``cells`` ((fold, fraction, variant, model, seed) tuples): every cell at
    its most epochs, ``epochs_for(model, latent)``, each epoch its training images at ``per_image[(model, latent)]`` seconds plus a
    validation pass over ``n_val`` images, counted at a third of that (forward only). A mixed cell trains on
    (1 + ``synthetic_share``) times its real images. Each cell ends with forward passes over validation and
    ``n_test`` test images, 1 + ``tta`` times each (test-time copies), and the test once more for its speed."""
    total = 0.0
    for _, frac, variant, model, _ in cells:
        latent = variant == "encoded"
        images = n_train * frac * (1 + synthetic_share if variant == "mixed" else 1)
        scored = (1 + tta) * (n_val + n_test) + n_test if n_test else 0
        total += (epochs_for(model, latent) * (images + n_val / 3) + scored / 3) * per_image[(model, latent)]
    return total


def say_planned_time(cfg: Config, bundle: DataBundle, device, cells: list[tuple], inp: CellInputs) -> dict:
    """Before the first cell: about how long the cells left here take at their full epochs, from a step of
    each model timed now. Returns each cell's own estimate, by its cell tuple, from which ``time_left`` tells
    the time left after each cell, scaled by the cells' own times ({} where nothing was timed)."""
    if not cells or distributed.launched():
        return {}
    b = cfg.benchmark
    per_image = {}
    with load_of_others() as others:
        for _, _, variant, model, _ in cells:
            latent = variant == "encoded"
            if (model, latent) not in per_image:
                if latent:
                    meta = inp.latents["meta"]
                    shape = tuple(([1 + meta["views"]] if meta.get("views") else []) + list(meta["latent_shape"]))
                else:
                    shape = (1, b.image_size, b.image_size)
                per_image[(model, latent)] = seconds_per_training_image(model, latent, shape, len(bundle.classes),
                                                                        cfg, device)
    counts = bundle.train.class_counts(len(bundle.classes))
    share = (max(counts) * len(counts) - sum(counts)) / sum(counts) if b.balance else b.synthetic_ratio
    each = {cell: planned_seconds([cell], per_image, len(bundle.train), len(bundle.val), b.epochs_for, share,
                                  len(bundle.test), b.tta) for cell in cells}
    est = sum(each.values())
    # "about", not "at most": on an H200 three 224 px DenseNet-121 cells estimated at 4m55s took 6m40s at their
    # full epochs (session 53); the timed steps leave out part of a real epoch's work (not profiled: perhaps the
    # short last batch, cuDNN choosing kernels for new shapes). The time left is told again after each cell.
    tell(f"{len(cells)} cell{'s' if len(cells) > 1 else ''} to train here: about "
         f"{duration(est) if est >= 1 else 'a second'} on {device} if every cell runs all its epochs (a training "
         "step of each model timed now; early stopping often ends cells sooner)")
    if note := busy_note(others["cores"], device):
        tell(note)
    if hint := cpu_amp_hint(est, device, cfg.run):
        tell(hint)
    return each


def busy_note(cores: float | None, device, threads: int | None = None) -> str | None:
    """Where other processes kept busy, while a CPU timed the steps, more of the cores than this run's
    ``threads`` (torch's) leave free, by half a core or more: the estimate holds their load. Session 85's "about
    47m47s" for cells that took 32m31s may have been timed so: on another machine (an AMD EPYC, session 86) the
    same command said 29m27s to 34m53s idle and 44m00s beside two busy processes."""
    if cores is None or torch.device(device).type != "cpu":
        return None
    n = os.cpu_count() or 1
    spare = max(0, n - (threads or torch.get_num_threads()))
    if cores < spare + 0.5:
        return None
    return (f"note: other processes kept about {cores:.1f} of this machine's {n} cores busy while the steps were "
            "timed: the estimate counts their load, and these cells run slower while it lasts")


def cpu_amp_hint(seconds: float, device, run_cfg) -> str | None:
    """For cells planned to take ten minutes or more in fp32 on a CPU that computes bf16 in hardware: that
    --cpu-amp would take less. Off by default, since it changes the numbers; a user on such a CPU should
    still know it is there."""
    if seconds < 600 or torch.device(device).type != "cpu" or not run_cfg.amp or run_cfg.cpu_amp or \
            not cpu_has_bf16():
        return None
    return ("note: this CPU computes bf16 in hardware (AMX or AVX512-BF16): --cpu-amp trains the classifiers "
            "faster (docs/PERFORMANCE.md (p)), though not to the same numbers as fp32, so give it to every run "
            "of a comparison or to none")


def train_cells(cfg: Config, run: Run, bundle: DataBundle, device, plan: CellPlan, inp: CellInputs) -> None:
    """Train this process's cells that have no cells/<key>.json yet, each written as it finishes."""
    b = cfg.benchmark
    cells_dir = run.path("cells")
    tracker = tracker_for(cfg, run)
    # cells come grouped by fold, then (fraction, variant): build and check each group's sets once
    data_for, sets_for, sets, within = None, None, None, None
    fold_data, fold_lat = bundle, inp.latents
    folds = PatientFolds(bundle, b.folds, cfg.data.split_seed, inp.latents) if b.folds > 1 else None
    n = len(plan.todo)
    took: list[tuple] = []   # (kind, planned, seconds) of each cell trained here: for the time left
    # one line, not one per cell: a resumed run of a hundred cells would bury its first new one
    if kept := sum((cells_dir / f"{key}.json").is_file() for key in plan.keys):
        distributed.say(f"{kept} of {n} cells done earlier, kept", flush=True)
    planned = say_planned_time(cfg, bundle, device, [plan.todo[j] for j in sorted(plan.mine)
                                                     if not (cells_dir / f"{plan.keys[j]}.json").is_file()], inp)

    def kind_and_plan(cell):
        return (cell[3], cell[2] == "encoded"), planned.get(cell, 1.0)
    try:
        for i, ((fold, frac, variant, model, s), key) in enumerate(zip(plan.todo, plan.keys), 1):
            path = cells_dir / f"{key}.json"
            if path.is_file():   # done earlier, or by another shard meanwhile
                continue
            if i - 1 not in plan.mine:
                continue
            if fold is not None and data_for != fold:
                fold_data, fold_lat = folds.fold(fold)
                data_for, sets_for = fold, None
            if sets_for != (frac, variant):
                keep = subsample_by_patient(fold_data.train.labels, fold_data.train.patients, frac,
                                            cfg.data.split_seed)
                sets = build_training_sets(fold_data, variant, keep, cfg, inp.synthetic, inp.syn_names, fold_lat)
                check_provenance(*sets, fold_data)
                within = inputs_within_training(variant, inp.learnt_from, fold_data.train.subset(keep).paths,
                                                bundle.train.paths, frac, inp.gan_dir, inp.enc_dir)
                sets_for = (frac, variant)
            train, val, test = sets
            n_syn = sum(p.startswith("synthetic:") for p in train.provenance)
            # "(0 synthetic)" on every real and encoded cell said nothing
            told = {"encoded": " (as latents)", "mixed": f" ({n_syn} synthetic)", "synthetic": " (all synthetic)"}
            tell(f"[{i}/{n}] {key}: {len(train.x)} training images{told.get(variant, '')}")
            save_to = run.path("models", f"{key}.pt") if b.save_models else None
            partial = run.path("partial", f"{key}.pt")   # a cell takes hours on a CPU: keep its epochs
            partial.parent.mkdir(exist_ok=True)
            if partial.is_file():
                tell(f"    continuing from {partial}", key)
            started = time.perf_counter()
            cell = run_cell(model, variant, frac, cfg.run.seed + s, train, val, test, fold_data, cfg, device,
                            save_to, fold, tracker, partial, inp.autoencoder)
            took.append((*kind_and_plan(plan.todo[i - 1]), time.perf_counter() - started))
            if within is not None:
                cell["input_run_within_training"] = within
            write_json(path, cell)
            partial.unlink(missing_ok=True)
            m = cell["test_at_val_threshold"]
            # three classes have no threshold to choose: the most probable class is the prediction
            at_half = f" (0.5: {cell['test_at_0.5']['accuracy']:.3f})" if len(bundle.classes) == 2 else ""
            tell(f"    test accuracy {m['accuracy']:.3f}{at_half}, ROC-AUC {m['roc_auc']:.3f}, "
                 f"{seconds_text(cell['seconds_per_epoch'])} s/epoch", key)
            left = [kind_and_plan(plan.todo[j]) for j in sorted(plan.mine) if j >= i
                    and not (cells_dir / f"{plan.keys[j]}.json").is_file()]
            if did_not_learn(cell, len(bundle.classes)):
                more = more_epochs_hint(b, model, variant == 'encoded')
                what, remedy = (
                    (f"scores near chance, though they rank validation images (ROC-AUC {cell['val_roc_auc']:.3f})",
                     f"A new run with more epochs for it ({more}) may train it") if ranks_validation(cell) else
                    ("did not learn", f"A new run at a lower --lr (this one's is {b.lr:g}), or with more epochs for "
                                      f"it ({more}), may train it"))
                tell(f"    {what}: the training loss never fell clearly below chance "
                     f"(ln {len(bundle.classes)} = {math.log(len(bundle.classes)):.3f}); the report names it. "
                     f"{remedy}", key)
            tell(f"    took {duration(took[-1][2])}" + (f"; {time_left(took, left)}" if left else ""), key)
    finally:
        tracker.close()


def report_notes(run: Run, bundle: DataBundle, cells: list[dict], plan: CellPlan, missing: list[str],
                 b: BenchmarkConfig, gan_dir, enc_dir, data_spec: str) -> list[str]:
    """What a reader of the report must know to read its tables right, in the order they matter."""
    notes = list(bundle.notes) + ([note] if (note := bundle.skipped_note(data_spec)) else [])
    if missing:   # only a --report-only report gets here with cells missing
        notes.insert(0, f"interim report: {len(missing)} of {len(plan.todo)} planned cells are not trained yet "
                        f"({', '.join(missing)}); each row counts the seeds it has")
    if b.folds > 1 and (gan_dir is not None or enc_dir is not None):
        notes.append("K-fold: the GAN and the autoencoder were trained on the original training split, "
                     "which overlaps the other folds' validation parts; that touches validation "
                     "(early stopping, threshold), never the test split")
    for sup in run.manifest.get("superseded", []):
        notes.append(f"{'/'.join(DEPENDENT_VARIANTS[sup['key']])} cells were retrained on {sup['new']}; "
                     f"the {sup['cells_moved']} trained on {sup['old']} are kept in {sup['to']}/ and are "
                     "not in these tables")
    notes += did_not_learn_notes(cells, len(bundle.classes))
    notes += subsample_notes(cells)
    notes += synthetic_shortfall_notes(cells, bundle.classes, b) + train_on_synthetic_shortfall_notes(cells, bundle.classes)
    notes += class_mix_notes(cells, bundle.classes)
    notes += unpaired_notes(run, cells)
    if not b.balance:   # --balance adds nothing to the largest class by design
        notes += unaugmented_class_notes(cells, bundle.classes)
    notes += machine_notes(cells) + precision_notes(cells)
    if any(c["variant"] == "mixed" for c in cells):
        notes.append("mixed cells run the same epochs as real cells over real + synthetic images, so they "
                     "take proportionally more optimizer steps (see n_train): the comparison is at equal "
                     "epochs, not equal compute")
    notes += run.manifest.get("notes", [])   # what was done to the run by hand, said where it is read
    view_counts = sorted({c.get("latent_views", 0) for c in cells if c["variant"] == "encoded"})
    if view_counts and view_counts != [0]:
        notes.append("encoded cells train on 1 + " + "/".join(map(str, view_counts)) + " encodings per "
                     "image (the plain one and pixel-augmented views written by genaug encode --views), "
                     "one drawn per image per epoch; 0 means the plain latents only")
    if b.equalize != "none" and any(c["variant"] == "encoded" for c in cells):
        notes.append(f"encoded cells read the encode run's latents, made from images without {b.equalize.upper()} "
                     "equalization; the pixel models' inputs had it")
    if plan.skipped_models:
        notes.append(f"encoded variant runs only the latent CNN ('cnn'); {', '.join(plan.skipped_models)} "
                     "take pixels and have no encoded cell")
    return notes


def _benchmark(cfg: Config, run: Run, part: tuple[int, int] | None = None, report_only: bool = False) -> Path:
    from genaug.report import write_report

    b = cfg.benchmark
    variants = parse_list(b.variants, VARIANTS, "variant")
    plan = plan_cells(cfg, parse_list(b.models, CLASSIFIERS, "model"), variants, parse_fractions(b.train_fractions),
                      part, report_only)
    run.manifest["planned_cells"] = plan.keys   # saved with the data summary: genaug runs counts what is left
    _require_given_input_runs(cfg, run, variants, part)
    device, bundle = start_job(cfg, run, b.image_size)
    check_balance_adds_images(cfg, bundle, variants)
    cells_dir = run.path("cells")
    cells_dir.mkdir(exist_ok=True)
    pending = {plan.todo[i][2] for i in plan.mine if not (cells_dir / f"{plan.keys[i]}.json").is_file()}
    if pending - {"encoded"}:   # encoded cells read the encode run's latents, not these pixels
        bundle = equalized_bundle(bundle, b.equalize)
    inp = load_cell_inputs(cfg, run, bundle, pending)
    check_input_runs_serve_cells(cfg, bundle, plan, inp, cells_dir)
    train_cells(cfg, run, bundle, device, plan, inp)
    if not distributed.is_main():   # rank 0 merges the cells and writes the report
        return run.dir
    # a resume that trains only some variants still reports (and keeps recording) the others' input runs
    gan_dir = inp.gan_dir or recorded_input_run(run, "gan_run")
    enc_dir = inp.enc_dir or recorded_input_run(run, "encode_run")
    missing = sorted(k for k in set(plan.keys) if not (cells_dir / f"{k}.json").is_file())
    if part is not None and missing:
        verb = "is" if len(missing) == 1 else "are"
        tell(f"shard {part[0] + 1}/{part[1]} finished its cells; {len(missing)} of {len(plan.todo)} cells {verb} "
             "still with other shards. The last shard to finish writes the report (or run "
             f"genaug benchmark --resume {shlex.quote(str(run.dir))} once all are done).")
        run.save_manifest(finished_shard=True)
        return run.dir
    cells = read_cells(cells_dir)
    # a run given --gan-run/--encode-run records it in its config only: a --report-only, which loads no input
    # run, said "GAN run: none (no mixed/synthetic variant)" of mixed cells (found in session 56)
    given = {k: Path(v) for k in DEPENDENT_VARIANTS if (v := getattr(b, k))
             and any(c["variant"] in DEPENDENT_VARIANTS[k] for c in cells)}
    gan_dir, enc_dir = gan_dir or given.get("gan_run"), enc_dir or given.get("encode_run")
    summary = aggregate(cells, bundle.classes, b.bootstrap)
    summary["notes"] = report_notes(run, bundle, cells, plan, missing, b, gan_dir, enc_dir, cfg.data.data)
    write_report(run, cfg, bundle, summary, cells, gan_dir, enc_dir)
    done = {"finished": True} if not missing else {}
    if not missing:   # every cell is in, so no shard is training: no epoch state is left to resume from
        try:
            run.path("partial").rmdir()
        except OSError:   # absent, or holding a file that a user should see
            pass
    run.save_manifest(**done, cells=len(cells), missing_cells=len(missing), gan_run=str(gan_dir) if gan_dir else None,
                      encode_run=str(enc_dir) if enc_dir else None)
    return run.dir


def check_input_runs_serve_cells(cfg: Config, bundle: DataBundle, plan: CellPlan, inp: CellInputs,
                                 cells_dir: Path) -> None:
    """Refuse before any cell trains, not hours later when the first mixed or encoded cell comes up,
    a GAN or encode run that learnt from real images these cells must not see: validation or test
    images (an input run made on another split, e.g. an autoencoder reused across --task), or, at a
    train fraction, images outside the cells' own patients. ``train_cells`` checks each group again."""
    todo = [plan.todo[i] for i in sorted(plan.mine) if not (cells_dir / f"{plan.keys[i]}.json").is_file()]
    # under --folds validation is pooled into the folds, where train_cells notes any overlap
    held = ("test",) if cfg.benchmark.folds > 1 else ("val", "test")
    for key, d in (("gan", inp.gan_dir), ("encode", inp.enc_dir)):
        clash = held_out_seen((inp.learnt_from or {}).get(key), bundle, held)
        if clash:
            paths = sorted(p for ps in clash.values() for p in ps)
            raise ConfigError(f"the {key} run {d} learnt from {counted(len(paths), 'image')} that this benchmark "
                              f"holds out as {', '.join(sorted(clash))} (e.g. {paths[0]}): its model was trained on another split "
                              f"(another --task, --val-fraction or split seed); train one on this benchmark's split")
    if cfg.benchmark.folds > 1:   # each fold has its own training images: checked fold by fold
        return
    for frac, variant in sorted({(t[1], t[2]) for t in todo}):
        keep = subsample_by_patient(bundle.train.labels, bundle.train.patients, frac, cfg.data.split_seed)
        inputs_within_training(variant, inp.learnt_from, bundle.train.subset(keep).paths, bundle.train.paths,
                               frac, inp.gan_dir, inp.enc_dir)


def inputs_within_training(variant: str, learnt_from: dict, cell_train: list[str], whole_train: list[str],
                           fraction: float, gan_dir, enc_dir) -> bool | None:
    """Whether the GAN or autoencoder behind a cell learnt only from real images the cell trains on
    itself (None for real cells). An input run that saw the whole training split may serve any cell,
    and the report then reads the cell's gain as an upper bound; one trained on a share of it
    (``--train-fraction``) must lie inside the cell's own training images, or the cell is refused."""
    key = {"mixed": "gan", "synthetic": "gan", "encoded": "encode"}.get(variant)
    if key is None:
        return None
    seen = learnt_from[key]
    within = seen <= set(cell_train)
    if not within and seen != set(whole_train):
        d = gan_dir if key == "gan" else enc_dir
        raise ConfigError(f"the {key} run {d} learnt from {len(seen - set(cell_train))} real training images that "
                          f"the {variant} cells at --train-fraction {fraction:g} do not train on; give a run made "
                          f"with --train-fraction {fraction:g} or smaller, or one made on the whole training split")
    return within


def train_class_counts(train: TrainSet, classes: list[str]) -> dict[str, dict[str, int]]:
    """Training images per class, real and synthetic: {class: {"real": n, "synthetic": n}}."""
    synthetic = torch.tensor([p.startswith("synthetic:") for p in train.provenance], dtype=torch.bool)
    return {name: {"real": int(((train.y == c) & ~synthetic).sum()), "synthetic": int(((train.y == c) & synthetic).sum())}
            for c, name in enumerate(classes)}


def class_mix_notes(cells: list[dict], classes: list[str], margin: float = 0.05) -> list[str]:
    """Say where a variant trains on another class mix than the real cells at the same train fraction
    (a GAN run with fewer images of a class than asked, or --balance): sensitivity, specificity and
    the validation threshold can move with the mix as well as with the images. Cells recorded before
    ``train_class_counts`` existed are left out."""
    shares: dict[tuple, list[float]] = {}
    for c in cells:
        counts = c.get("train_class_counts")
        if counts and c["variant"] != "encoded":   # encoded cells train on the real images' latents
            total = sum(v["real"] + v["synthetic"] for v in counts.values())
            shares.setdefault((c["train_fraction"], c["variant"]), []).append(
                [(counts[k]["real"] + counts[k]["synthetic"]) / max(total, 1) for k in classes])
    notes = []
    for (frac, variant), s in sorted(shares.items()):
        real = shares.get((frac, "real"))
        if variant == "real" or real is None:
            continue
        mine, base = np.mean(s, axis=0), np.mean(real, axis=0)
        if np.max(np.abs(mine - base)) > margin:
            at = f" at train fraction {frac:g}" if frac != 1 else ""
            mix = lambda v: ", ".join(f"{k} {100 * x:.0f}%" for k, x in zip(classes, v))
            notes.append(f"{variant} cells{at} train on another class mix than real cells ({mix(mine)}, against "
                         f"{mix(base)}): a GAN run with fewer images of a class than asked, or of some classes "
                         "only, or --balance, makes that; their sensitivity, specificity and threshold can move "
                         "with the mix as well as with the images")
    return notes


def unpaired_notes(run: Run, cells: list[dict]) -> list[str]:
    """Variant cells with no real cell of the same model and train fraction: the benchmark's answer is a
    comparison with real, so say how to get the real cells."""
    real = {(c["model"], c["train_fraction"]) for c in cells if c["variant"] == "real"}
    alone = sorted({(c["model"], c["variant"], c["train_fraction"]) for c in cells
                    if c["variant"] != "real" and (c["model"], c["train_fraction"]) not in real})
    if not alone:
        return []
    rows = ", ".join(f"{m} {v}" + (f" at {f:g}" if f != 1 else "") for m, v, f in alone)
    return [f"{rows}: no real cell of the same model and train fraction, so no comparison with real; add them with "
            f"genaug benchmark --resume {shlex.quote(str(run.dir))} --variants real,{','.join(sorted({v for _, v, _ in alone}))}"]

def synthetic_shortfall(cells: list[dict], classes: list[str], b: BenchmarkConfig) -> dict[float, dict]:
    """Where mixed cells add fewer synthetic images than --synthetic-ratio (or --balance) asks, the GAN run
    having no more of a class (each cell then takes all it has): {train fraction: {class: (added, asked,
    real)}}, or {train fraction: {"": (added, asked, real)}} in all for cells recorded before their class
    counts were. Found in session 56: the cpu profile's GAN writes 1280 images a class, 0.5 x 3487 real
    PNEUMONIA images asks 1744, and the reports said "0.5 x real count per class"."""
    short: dict[float, dict] = {}
    for c in cells:
        if c["variant"] != "mixed":
            continue
        counts = c.get("train_class_counts")
        if counts:
            real = {k: counts[k]["real"] for k in classes if k in counts}
            for k, n in real.items():
                asked = mixed_asks(b, n, max(real.values()))
                if 0 < counts[k]["synthetic"] < asked:   # none at all: a GAN of some classes (unaugmented_class_notes)
                    short.setdefault(c["train_fraction"], {})[k] = (counts[k]["synthetic"], asked, n)
        elif not b.balance:
            added = c["n_train_synthetic"]
            real_n = c["n_train"] - added
            if added < b.synthetic_ratio * real_n - len(classes):   # beyond each class's rounding
                short.setdefault(c["train_fraction"], {})[""] = (added, int(round(b.synthetic_ratio * real_n)), real_n)
    return short


def ratio_flag(b: BenchmarkConfig) -> str:
    """The flag that sets how many synthetic images a mixed cell adds, as the user gave it."""
    return "--balance" if b.balance else f"--synthetic-ratio {b.synthetic_ratio:g}"


def synthetic_shortfall_notes(cells: list[dict], classes: list[str], b: BenchmarkConfig) -> list[str]:
    asked_by = ratio_flag(b)
    notes = []
    for frac, by_class in sorted(synthetic_shortfall(cells, classes, b).items()):
        at = f" at train fraction {frac:g}" if frac != 1 else ""
        what = "; ".join(f"{k} {added} of {asked} asked ({added / max(real, 1):.2f} x its {real} real images)" if k else
                         f"{added} of about {asked} asked in all ({added / max(real, 1):.2f} x the {real} real images)"
                         for k, (added, asked, real) in by_class.items())
        notes.append(f"mixed cells{at} add fewer synthetic images than {asked_by} asks, the GAN run having no more: "
                     f"{what}. genaug gan sample draws more from its generator, and --gan-run takes that run")
    return notes


def train_on_synthetic_shortfall_notes(cells: list[dict], classes: list[str]) -> list[str]:
    """Synthetic cells train on as many images of each class as the real cells have real ones, where the GAN
    run has them: say where it had fewer (found in session 56: 1280 PNEUMONIA against 3487 real)."""
    real_at = {c["train_fraction"]: {k: v["real"] for k, v in c["train_class_counts"].items()}
               for c in cells if c["variant"] in ("real", "mixed") and c.get("train_class_counts")}
    real_total_at = {c["train_fraction"]: c["n_train"] - c["n_train_synthetic"] for c in cells
                     if c["variant"] == "real" and "n_train" in c}
    short: dict[float, dict] = {}
    for c in cells:
        if c["variant"] != "synthetic":
            continue
        if c.get("train_class_counts") and (real := real_at.get(c["train_fraction"])):
            for k in classes:
                if 0 < (got := c["train_class_counts"].get(k, {}).get("synthetic", 0)) < real.get(k, 0):
                    short.setdefault(c["train_fraction"], {})[k] = (got, real[k])
        elif not c.get("train_class_counts") and c.get("n_train", 0) < real_total_at.get(c["train_fraction"], 0):
            short.setdefault(c["train_fraction"], {})[""] = (c["n_train"], real_total_at[c["train_fraction"]])
    return [f"synthetic cells{f' at train fraction {frac:g}' if frac != 1 else ''} train on fewer images than real "
            "cells, the GAN run having no more: " + "; ".join(f"{k} {got} synthetic against {real} real" if k else
                                                             f"{got} synthetic images against {real} real in all"
                                                             for k, (got, real) in by_class.items())
            + ". genaug gan sample draws more from its generator, and --gan-run takes that run"
            for frac, by_class in sorted(short.items())]


def unaugmented_class_notes(cells: list[dict], classes: list[str]) -> list[str]:
    """Name the classes mixed cells added no synthetic image to (a GAN run of some classes only)."""
    none = sorted({k for c in cells if c["variant"] == "mixed" for k, v in (c.get("train_class_counts") or {}).items()
                   if v["synthetic"] == 0}, key=classes.index)
    if not none or len(none) == len(classes):
        return []
    return [f"mixed cells add synthetic images of {', '.join(c for c in classes if c not in none)} only, none of "
            f"{', '.join(none)}: the GAN run has none of {'that class' if len(none) == 1 else 'those classes'}"]


def machine_notes(cells: list[dict]) -> list[str]:
    """Cells of one run can be trained on several machines (--shard, --resume elsewhere): their
    seconds per epoch then measure the machines as much as the data."""
    where = machines_of(cells)
    if len([w for w in where if w != "not recorded"]) < 2:
        return []
    return ["cells ran on more than one machine or thread count (" + "; ".join(f"{w}: {n} cell{'s' if n != 1 else ''}"
                                                           for w, n in sorted(where.items()))
            + "), so their seconds per epoch compare machines as well as variants"]


def precision_notes(cells: list[dict]) -> list[str]:
    """The cells that computed in bf16 on a CPU (--cpu-amp): a reader of the tables should know, and where some
    did and some did not, that seeds of one cell are then not the same computation."""
    bf16 = sum((c.get("machine") or {}).get("autocast") == "bf16" for c in cells)
    if not bf16:
        return []
    share = "every cell" if bf16 == len(cells) else f"{bf16} of {len(cells)} cells (the rest in fp32)"
    return [f"{share} computed in bf16 on the CPU (--cpu-amp): faster on a CPU with AMX, and not the same numbers "
            "as fp32"]


def did_not_learn(cell: dict, n_classes: int) -> bool:
    """A cell whose training loss never fell clearly below chance: class-weighted cross-entropy at
    uniform predictions is ln K, and a model that learnt anything goes well under it within an epoch
    or two (AlexNet's seed 0 on the Kermany data sat at 0.693-0.698 for 10 epochs)."""
    lowest = lowest_train_loss(cell)
    return lowest is not None and lowest > 0.95 * math.log(n_classes)


def ranks_validation(cell: dict) -> bool:
    """Whether a cell's model orders validation images well (ROC-AUC >= 0.9), whatever its loss: after
    one epoch on tiny data the loss can sit at chance while the ranking is already perfect, and "did
    not learn" beside a test ROC-AUC of 1.000 read as a contradiction. (A network barely moved from its
    initial weights ranked the demo's validation at 0.79, the stuck AlexNet cell the Kermany data's at
    0.435, so a ranking alone says little below 0.9.)"""
    auc = cell.get("val_roc_auc")
    return auc is not None and not math.isnan(auc) and auc >= 0.9


def lowest_train_loss(cell: dict) -> float | None:
    losses = [h["train_loss"] for h in cell.get("history", []) if "train_loss" in h]
    return min(losses) if losses else None


def more_epochs_hint(b: BenchmarkConfig, model: str, latent: bool) -> str:
    """Where to give a model more epochs, e.g. for a cell that did not learn in its own."""
    twice = 2 * b.epochs_for(model, latent)
    return f"benchmark.latent_epochs: {twice} in a profile" if latent else \
        f"benchmark.model_epochs: {model}={twice} in a profile"


def did_not_learn_notes(cells: list[dict], n_classes: int) -> list[str]:
    """Name the cells that never learnt: a row's mean ± std counts them, and hides why it is low."""
    stuck = [c for c in cells if did_not_learn(c, n_classes)]
    if not stuck:
        return []

    def named(group: list[dict], validation: bool) -> str:
        return "; ".join(f"{c['model']} {c['variant']} seed {c['seed']}"
                         + (f" fold {c['fold']}" if c.get("fold") is not None else "")
                         + (f" at train fraction {c['train_fraction']:g}" if c["train_fraction"] != 1 else "")
                         + f" (training loss never under {lowest_train_loss(c):.3f}, "
                         + (f"validation ROC-AUC {c['val_roc_auc']:.3f}, test " if validation else "test ")
                         + f"ROC-AUC {c['test_at_val_threshold']['roc_auc']:.3f})" for c in group)

    chance = f"chance is ln {n_classes} = {math.log(n_classes):.3f}"
    remedy = ("another seed, or a new run at a lower learning rate (e.g. --lr 1e-4: a run keeps its own) or with more "
              "epochs for the model (benchmark.model_epochs in a profile, e.g. resnet34=12), may train such a model")
    notes = []
    if none := [c for c in stuck if not ranks_validation(c)]:
        notes.append(f"did not learn: {named(none, False)}; {chance}. Their rows' means and spreads count them; {remedy}")
    if barely := [c for c in stuck if ranks_validation(c)]:
        notes.append(f"scores near chance: {named(barely, True)}; {chance}. They rank images, but their probabilities "
                     "barely left chance, so where the validation threshold falls decides their accuracy; their rows' "
                     f"means and spreads count them; more epochs for the model ({_epochs_keys(barely)} in a profile) "
                     "may train them")
    return notes


def _epochs_keys(cells: list[dict]) -> str:
    """The profile key that sets these cells' epochs: the latent CNN's differs from the pixel models'."""
    latent = {c["variant"] == "encoded" for c in cells}
    if latent == {True}:
        return "benchmark.latent_epochs"
    return "benchmark.model_epochs" + (", or benchmark.latent_epochs for encoded cells," if True in latent else "")


def subsample_notes(cells: list[dict]) -> list[str]:
    """What a reader must know about cells whose GAN or autoencoder learnt from real training images
    that the cells themselves do not train on (the whole split, at train fraction < 1): they see
    those images indirectly. Cells recorded before ``input_run_within_training`` existed all did."""
    dependent = [c for c in cells if c["variant"] in ("mixed", "synthetic", "encoded")]
    used = sorted({c["variant"] for c in dependent if not c.get("input_run_within_training", c["train_fraction"] >= 1)})
    fair = sorted({(c["variant"], c["train_fraction"]) for c in dependent
                   if c["train_fraction"] < 1 and c.get("input_run_within_training")})
    notes = []
    if fair:   # said outright, since it is what makes a low-data gain believable
        notes.append(f"{', '.join(f'{v} cells at train fraction {f:g}' for v, f in fair)}: the GAN or autoencoder "
                     "behind them learnt only from real images that these cells train on (checked against its "
                     "training_images.txt), so their difference from real is not inflated by images real cells "
                     "never see")
    if used:
        notes.append(f"{'/'.join(used)} cells at train fraction < 1 use a GAN or autoencoder trained on the whole "
                     "real training split, so they draw indirectly on real images that their real-only counterparts "
                     "do not see; read their gain over real at small fractions as an upper bound (genaug gan/encode "
                     "--train-fraction makes inputs that see only a cell's own images)")
    return notes


def _check_latents_match(latents: dict, bundle: DataBundle, enc_dir: Path) -> None:
    meta = latents["meta"]
    if meta["classes"] != bundle.classes:
        notes = "".join(alike_note(c, bundle.classes) for c in meta["classes"] if c not in bundle.classes)
        raise CheckpointError(f"encode run {enc_dir} has classes {', '.join(meta['classes'])}, the data has "
                              f"{', '.join(bundle.classes)}{notes}: use an encode run made on this data")
    import csv
    d = Path(enc_dir)
    mf = (d / "latents" / "manifest.csv") if (d / "latents").is_dir() else d / "manifest.csv"
    rows = list(csv.DictReader(mf.open(encoding="utf-8", errors="surrogateescape")))
    for split, s in bundle.splits.items():
        paths = [r["path"] for r in rows if r["split"] == split]
        if paths != s.paths:
            raise CheckpointError(f"encode run {enc_dir} encoded a different {split} split than this benchmark "
                                  "loads (other data, seed or val fraction); use a matching run")
