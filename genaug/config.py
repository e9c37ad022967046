"""Configuration: defaults live here, YAML profiles hold only overrides, CLI flags override both.

A profile is a YAML mapping of sections (``data``, ``run``, ``gan``, ``encode``,
``benchmark``) to the keys that differ from the defaults below.  Unknown keys and
values of the wrong type are errors that name the key.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import operator
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genaug.errors import ConfigError, DataError

# Every augmentation the source reports used; each is a switch in benchmark.augmentations.
# Strengths are the reports' usual ones (genaug.train.augment_batch). Horizontal flips are off
# by default: they move the heart to the right, which real chest X-rays (situs inversus aside) never show.
AUGMENTATIONS = ("flip", "rotate", "shift", "zoom", "shear", "brightness", "contrast", "noise", "pca")
DEFAULT_AUGMENTATIONS = "rotate,shift,zoom,brightness,contrast"
SCHEDULES = ("cosine", "step", "exponential", "onecycle", "constant")
EQUALIZERS = ("none", "clahe", "standardize")   # benchmark.equalize (genaug/data/equalize.py)
# data.resize: how an image that is not square becomes the square every model reads
# (genaug.data.decode.to_square). squash stretches it (what every run did before session 81);
# crop keeps the centre square of its short side, as torchxrayvision's XRayCenterCrop does; pad
# letterboxes it in black to its long side, so that nothing is cut away or stretched.
RESIZE_MODES = ("squash", "crop", "pad")


def parse_augmentations(text: str) -> frozenset:
    names = {t.strip() for t in str(text).split(",") if t.strip()}
    bad = sorted(names - set(AUGMENTATIONS))
    if bad:
        near = closest_name(bad[0], AUGMENTATIONS)
        raise ConfigError(f"unknown augmentation {', '.join(bad)}" + (f"; did you mean {near}?" if near else "")
                          + f" (known: {', '.join(AUGMENTATIONS)})", key="benchmark.augmentations")
    return frozenset(names)


@dataclass
class DataConfig:
    data: str = "demo"            # demo | folder in the Kaggle layout | file.npz | medmnist:NAME
    task: str = "binary"          # binary (folder classes) | 3class (normal/bacteria/virus from file names)
    val_fraction: float = 0.1     # share of train patients carved out as validation when val is absent
    split_seed: int = 0           # fixed apart from the training seed: every seed sees the same val/test
    cache_dir: str = ""           # decode-once cache; empty = <out_root>/cache
    demo_train: int = 600         # demo data: training images (val/test scale with it)
    download: bool = False        # medmnist:NAME may fetch its .npz when missing
    resize: str = "squash"        # RESIZE_MODES: how an image that is not square is made square
    classes: str = ""             # comma-separated classes to keep ("COVID,Normal"), the rest left out; "": all


@dataclass
class RunConfig:
    seed: int = 0
    device: str = "auto"          # auto | cpu | cuda | cuda:N | mps
    out_root: str = "outputs"
    name: str = ""
    threads: int = 0              # torch CPU threads; 0 = torch's default
    amp: bool = True              # bf16 autocast for classifiers on CUDA; on the CPU only with cpu_amp
    # bf16 autocast for classifiers on the CPU too (with amp). On an AMX Xeon the cpu profile's CNN and DenseNet-121
    # cells trained 2.3x and 1.6x as fast per epoch (docs/PERFORMANCE.md (p)); CPUs without AMX or AVX512-BF16
    # emulate bf16; and bf16 does not give fp32's numbers, so it is off unless asked
    cpu_amp: bool = False
    # The GAN and the autoencoder in fp32 on the CPU in the channels-last layout (in bf16 they always are): a
    # real-data GAN 1.13x and autoencoder 1.23x as fast as in the contiguous layout every run trained in before
    # session 77 (docs/PERFORMANCE.md (s)); off unless asked, so that an earlier fp32 run rerun gives its numbers
    # (over five paired GAN seeds no difference in FID was detected, session 78, (t))
    channels_last: bool = False
    tensorboard: bool = False     # event files under <run>/tensorboard (needs the tensorboard package)
    deterministic: bool = True    # deterministic algorithms: same seed, same numbers on CPU (see device.py for GPUs)
    # A benchmark cell writes its whole training state (a stopped cell resumes at the epoch after the last
    # write) after an epoch once this many seconds have passed since its last write; 0: after every epoch. On
    # the demo's 32 px images ResNet-34's 341 MB state took about as long to write as an epoch to train.
    state_every_s: float = 30.0


@dataclass
class GanConfig:
    image_size: int = 64          # 64, or 128 (one more block each side)
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    epochs: int = 25
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    real_label: float = 0.9       # one-sided label smoothing
    ema_decay: float = 0.999      # upper bound; ramped by (1+step)/(10+step)
    ema_start: int = 200          # steps before the EMA starts averaging (early weights are noise)
    diffaug: bool = False         # differentiable augmentation (translation, cutout, brightness)
    per_class: bool = False       # one unconditional model per class instead of one conditional model
    conditioning: str = "channels"  # how D sees the class: channels (label planes) | acgan (auxiliary class head)
    aux_weight: float = 1.0       # acgan: weight of the class loss beside the real/fake loss
    n: int = 1280                 # images written per class
    fid_features: str = "domain"  # domain (a classifier trained here) | inception (needs torch-fidelity weights)
    # resamplings of the images behind the synthetic FID's bootstrap spread (0: none); each costs one
    # FID: milliseconds on the 256-d domain features, about 3 s on one CPU core at Inception's 2048-d
    fid_bootstrap: int = 100
    eval_images: int = 500        # cap on real/synthetic images per class used by the quality report
    judge_epochs: int = 10        # epochs of the real-trained classifier used for features and fidelity
    nearcopy_quantile: float = 0.01  # near-copy threshold: this quantile of held-out real->train distances
    max_loss: float = 50.0        # a GAN loss above this is a blow-up
    sync_batchnorm: bool = False  # under torchrun on GPUs: BatchNorm statistics over the global batch
    # train on this share of the training patients, the very ones benchmark --train-fraction keeps, so a
    # low-data benchmark cell can be given a GAN that saw no real image the cell does not train on
    train_fraction: float = 1.0


@dataclass
class EncodeConfig:
    image_size: int = 224
    latent_channels: int = 256
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    checkpoint: str = ""          # reuse a trained autoencoder instead of training
    overwrite: bool = False
    baseline_size: int = 0        # area-downsample/bicubic-upsample baseline; 0 = image_size / 4 (56 at 224)
    train_fraction: float = 1.0   # train on this share of the training patients (as gan.train_fraction); all are encoded
    # Pixel-augmented copies of each train/val image encoded besides the plain one. Latents cannot be
    # rotated, zoomed or re-lit, so without them the latent CNN trains on a near-fixed set and
    # overfits; the benchmark draws one of the 1 + views encodings per image per epoch.
    views: int = 0


@dataclass
class BenchmarkConfig:
    models: str = "cnn,resnet34,densenet121"
    variants: str = "real,mixed,encoded"
    image_size: int = 64
    epochs: int = 15
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 4
    # Early stopping may end a run only after this share of the epochs. Under the cosine schedule the
    # val loss swings while the learning rate is high: at 10% of the Kermany data patience 4 ended
    # all three CNN seeds at epoch 5 with their best at epoch 1 (43-66% test accuracy), and one
    # full-data seed at epoch 8 with its best at epoch 4 (docs/STATUS.md #5). 0 = from the start.
    early_stop_after: float = 0.5
    seeds: int = 1
    synthetic_ratio: float = 0.5
    balance: bool = False
    train_fractions: str = "1.0"   # e.g. 0.1,0.25,1.0: real training data kept, by patient
    gan_run: str = ""
    encode_run: str = ""
    pretrained: bool = False
    weights_dir: str = ""         # where torchvision ImageNet weights lie, for --pretrained
    augment: bool = True          # master switch for the augmentations below
    augmentations: str = DEFAULT_AUGMENTATIONS  # any of AUGMENTATIONS: + flip, shear, noise, pca (AlexNet lighting)
    schedule: str = "cosine"      # one of SCHEDULES
    folds: int = 1                # K >= 2: K-fold cross-validation grouped by patient over train+val
    bootstrap: int = 1000
    latent_epochs: int = 0        # 0 = same as epochs
    # Most epochs of named pixel models, e.g. "resnet34=12"; the others train `epochs`. A deep network
    # from scratch may need more passes than a small CNN: in the demo, ResNet-34 sat at chance through
    # epoch 6 in 4 of 6 cells and learnt in 6 of 6 given 12.
    model_epochs: str = ""
    save_models: bool = False     # write models/<cell>.pt per cell, for genaug predict and explain
    # Regularizers of the training loss, off by default. Tried against the test split's low specificity:
    # validation comes from the training split's patients, and the threshold chosen there sits too low
    # for the test children (docs/STATUS.md #5, session 13).
    label_smoothing: float = 0.0  # share of each target spread over the classes
    mixup: float = 0.0            # Beta(alpha, alpha) of mixup between images of a batch; 0 = off
    # Decay of an exponential moving average of the weights, with BatchNorm statistics recomputed for it
    # after each epoch, which validation scores and the cell keeps (e.g. 0.99: a half-life of about 70
    # steps); 0 = off, the trained weights themselves.
    ema: float = 0.0
    # Test-time augmentation: validation and test probabilities averaged over the plain input and this many
    # copies augmented as the cell trains (the same K transforms for every image); 0 = off. Training and
    # early stopping are untouched; the threshold is chosen on the averaged validation probabilities.
    tta: int = 0
    # Per-image contrast equalization of every pixel model's input (train, val, test, predict): one of
    # EQUALIZERS. Tried against the same shortfall (genaug/data/equalize.py); on the Kermany data it
    # changed neither the CNN nor DenseNet-121 measurably (docs/STATUS.md, session 41). Encoded cells
    # read latents.
    equalize: str = "none"

    def epochs_for(self, model: str, latent: bool = False) -> int:
        """The most epochs of ``model``'s cells: ``latent_epochs`` for the latent CNN, else ``model_epochs``'s."""
        if latent:
            return self.latent_epochs or self.epochs
        return parse_model_epochs(self.model_epochs).get(model, self.epochs)

    def min_epochs(self, epochs: int) -> int:
        """The epoch from which early stopping counts patience in a run of ``epochs``."""
        return int(round(self.early_stop_after * epochs))


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# a tuple, not a set: with several bad values the first named is the same from one run to the next
_POSITIVE = (
    "gan.image_size", "gan.nz", "gan.ngf", "gan.ndf", "gan.epochs", "gan.batch_size", "gan.n",
    "gan.eval_images", "gan.judge_epochs", "gan.max_loss", "encode.image_size", "encode.latent_channels",
    "encode.batch_size", "encode.epochs", "benchmark.image_size", "benchmark.batch_size", "benchmark.seeds",
    "benchmark.epochs", "benchmark.patience", "data.demo_train", "gan.lr", "encode.lr", "benchmark.lr",
)

# numpy takes seeds from 0 and torch up to 2**64 - 1; 2**32 - 1 spans every seed a user types. Out of
# range they failed with numpy's or torch's traceback, once the run directory was made
_SEED_RANGE = ("from 0 to 4294967295", lambda v: 0 <= v < 2 ** 32)

# Resamplings a bootstrap may take. Found in session 71 (`compare --bootstrap`) and 72 (these keys): a slip of
# a few zeros ran out of memory, or, in a benchmark's report, resampled for days after every cell had trained
# (4 ms a resampling of 624 test images). 100,000 already fix an interval's ends far finer than the tenth of a
# point reported; FID's spread, at 0.2-3 s a resampling, is known to within 1% from 10,000
MAX_BOOTSTRAP = 100_000
MAX_FID_BOOTSTRAP = 10_000

# found in session 72: `--seeds 1000000000` planned a billion cells, using up the memory before any trained
# (and was told to lower --image-size); a thousand repeats of each cell is past any study's need
MAX_SEEDS = 1000

# found in session 73: `--threads 100000` ended in "libgomp: Out of memory allocating 800008 bytes" (exit 1, the new
# run left behind); 10,000 still started on 2 CPUs. More threads than CPUs only slow training (jobs.start_job says
# so), and no machine genaug runs on has a thousand
MAX_THREADS = 1024

# Keys with bounds other than > 0: what the key must be (as the error says it), and the test. A value
# outside them would otherwise train for nothing (encode.epochs 0 wrote an untrained autoencoder) or
# fail only after hours of training (benchmark.bootstrap 0 broke the report, once every cell had run).
_BOUNDED = {
    "run.seed": _SEED_RANGE,
    "data.split_seed": _SEED_RANGE,
    "run.threads": (f"from 0 (torch's default) to {MAX_THREADS}", lambda v: 0 <= v <= MAX_THREADS),
    "run.state_every_s": (">= 0 (0: after every epoch)", lambda v: v >= 0),
    "data.val_fraction": ("in (0, 1)", lambda v: 0 < v < 1),
    "gan.train_fraction": ("in (0, 1]", lambda v: 0 < v <= 1),
    "encode.train_fraction": ("in (0, 1]", lambda v: 0 < v <= 1),
    "gan.beta1": ("in [0, 1)", lambda v: 0 <= v < 1),
    "gan.real_label": ("in (0, 1] (the real target, 0.9 for one-sided smoothing)", lambda v: 0 < v <= 1),
    "gan.ema_decay": ("in [0, 1)", lambda v: 0 <= v < 1),
    "gan.ema_start": (">= 0", lambda v: v >= 0),
    "gan.aux_weight": (">= 0", lambda v: v >= 0),
    "gan.nearcopy_quantile": ("in (0, 1)", lambda v: 0 < v < 1),
    "gan.fid_bootstrap": (f"0 (none) or from 2 to {MAX_FID_BOOTSTRAP} resamplings",
                          lambda v: v == 0 or 2 <= v <= MAX_FID_BOOTSTRAP),
    # the classifiers' BatchNorm cannot train on one image where pooling has left one value a channel:
    # the latent CNN's head ended a benchmark in a ValueError traceback after its other cells had trained
    "benchmark.batch_size": ("at least 2 (BatchNorm trains on two images a batch or more)", lambda v: v >= 2),
    "encode.views": ("between 0 and 32", lambda v: 0 <= v <= 32),
    "encode.baseline_size": (">= 0 (0: image_size / 4)", lambda v: v >= 0),
    "benchmark.weight_decay": (">= 0", lambda v: v >= 0),
    "benchmark.early_stop_after": ("in [0, 1] (a share of the epochs)", lambda v: 0 <= v <= 1),
    "benchmark.synthetic_ratio": (">= 0", lambda v: v >= 0),
    "benchmark.folds": ("1 (one val split) or K >= 2", lambda v: v >= 1),
    "benchmark.latent_epochs": (">= 0 (0: as benchmark.epochs)", lambda v: v >= 0),
    "benchmark.seeds": (f"from 1 to {MAX_SEEDS} (repeats of each cell)", lambda v: 1 <= v <= MAX_SEEDS),
    # the demo draws every image into memory at once: a slip of zeros ran out of it, told to lower --image-size
    "data.demo_train": ("from 1 to 100000 (the demo data is a quick check: give --data for more)",
                        lambda v: 1 <= v <= 100_000),
    "benchmark.bootstrap": (f"from 10 to {MAX_BOOTSTRAP} resamplings", lambda v: 10 <= v <= MAX_BOOTSTRAP),
    "benchmark.label_smoothing": ("in [0, 1)", lambda v: 0 <= v < 1),
    "benchmark.mixup": (">= 0 (a Beta alpha such as 0.2; 0: off)", lambda v: v >= 0),
    "benchmark.ema": ("in [0, 1) (a decay such as 0.99; 0: off)", lambda v: 0 <= v < 1),
    "benchmark.tta": ("between 0 and 64 (augmented copies per image; 0: off)", lambda v: 0 <= v <= 64),
}


def check_seed(value: int, what: str) -> int:
    """``value`` if it is a seed every generator takes, else a ConfigError naming ``what`` (a flag)."""
    if not _SEED_RANGE[1](value):
        raise ConfigError(f"{what} must be {_SEED_RANGE[0]}, got {value}")
    return value


def check_run_name(name: str) -> str:
    """A run's ``--name`` names one folder, after the time stamp, inside the command's folder."""
    if any(c in name for c in "/\\\0"):
        raise ConfigError(f"--name (config key 'run.name') must be a plain name, without '/', got {name!r}; "
                          "use --out for the folder the run goes in")
    return name


MAX_RUN_NAME_BYTES = 200


def check_new_run_name(name: str) -> str:
    """A new run's ``--name``: a plain name (check_run_name) that a shell takes unquoted. Runs named
    before this check keep their names: it is not applied to saved configs, so they still resume."""
    check_run_name(name)
    # the commands genaug prints name the run's folder (--resume RUN, --gan-run RUN): a space or a
    # quote in it would split or break each of them when pasted into a shell
    if bad := sorted({c for c in name if not (c.isalnum() or c in "_-.+=@%,:")}):
        shown = ", ".join("a space" if c == " " else repr(c) for c in bad)
        plain = "".join(c if c not in bad else "-" for c in name).strip("-")
        # the name as Python writes it: a newline in it broke the one-line error in two (session 67)
        raise ConfigError(f"--name (config key 'run.name') {name!r} holds {shown}, which a shell would need quoted "
                          f"in every command that names the run; use letters, digits and - _ . + = @ % , : "
                          + (f"(e.g. {plain!r})" if plain else "(or leave --name out)"))
    # the run's folder is <time stamp>-<name>[-N] (and superseded-<that> beside cells moved by --supersede);
    # a folder name holds 255 bytes, and a longer --name failed as "File name too long: <path>" (session 58)
    if (size := len(name.encode("utf-8"))) > MAX_RUN_NAME_BYTES:
        raise ConfigError(f"--name (config key 'run.name') is {size} bytes long; a run's folder adds its time stamp to "
                          f"the name, and a folder name holds at most 255 bytes: use at most {MAX_RUN_NAME_BYTES}")
    return name


def closest_name(word, names, cutoff: float = 0.75) -> str | None:
    """The known name a mistyped ``word`` most likely meant (for "did you mean ...?"), or None. Case is
    not a typo difflib sees through: '--profile CPU' found no 'cpu' (session 54)."""
    lowered = {str(n).lower(): n for n in names}
    near = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[near[0]] if near else None


def closest_choice(word, choices) -> str | None:
    """``closest_name`` for a setting's few choices, also seeing a choice grown into another word
    ('padding', 'cropped', 'center-crop', 'zero-pad'), which difflib rates too far from 'pad' to name it."""
    if near := closest_name(word, choices):
        return near
    typed = str(word).strip().lower()
    grown = [c for c in choices if len(c) >= 3 and (typed.startswith(c.lower()) or typed.endswith(c.lower()))]
    return grown[0] if len(grown) == 1 else None


# Keys that hold comma-separated lists on the command line (--models cnn,resnet34); in YAML they may
# also be written as lists, and model_epochs as a mapping ({resnet34: 12})
COMMA_LISTS = {"benchmark.models", "benchmark.variants", "benchmark.train_fractions", "benchmark.augmentations",
               "data.classes"}


def _coerce(key: str, value: Any, typ: type) -> Any:
    if key in COMMA_LISTS and isinstance(value, list) and all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    if key == "benchmark.model_epochs" and isinstance(value, dict) and all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in (*value, *value.values())):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif typ is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        # nan passes every bound (each comparison is False) and inf passes ">= 0": `benchmark --lr nan`
        # and `--synthetic-ratio inf` were accepted and set off the benchmark's GAN training
        if number is not None and not math.isfinite(number):
            raise ConfigError(f"config key '{key}' must be a finite number, got {value!r}")
        if number is not None:
            return number
    elif typ is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"config key '{key}' expects {typ.__name__}, got {_shown(value)}")


def _shown(value: Any) -> str:
    """A value as an error quotes it, cut short: YAML aliases nest lists without growing the file, and a 4 KB
    profile's value was printed as a 720 KB line (found in session 73); reprlib never builds the whole repr."""
    import reprlib
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother = 2, 4, 4, 80, 80
    return short.repr(value)


def _apply(cfg: Config, overrides: dict, origin: str, origins: dict | None = None,
           flag_names: dict[str, str] | None = None) -> None:
    """Set ``overrides`` on ``cfg``; ``origins`` (when given) records, per dotted key, where it was set;
    ``flag_names``, as `load_config` takes it, names the flag of a bad value from the command line."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections, got {type(overrides).__name__}")
    sections = {f.name for f in dataclasses.fields(Config)}
    for section, values in overrides.items():
        if section not in sections:
            near = closest_name(section, sections)
            guess = f"did you mean '{near}'? " if near else ""
            raise ConfigError(f"{origin}: unknown section '{section}' ({guess}known: {', '.join(sorted(sections))})")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: section '{section}' must be a mapping")
        obj = getattr(cfg, section)
        types = {f.name: f.type for f in dataclasses.fields(obj)}
        for key, value in values.items():
            if key not in types:
                near = closest_name(key, types)
                guess = f"did you mean '{section}.{near}'? " if near else ""
                raise ConfigError(f"{origin}: unknown key '{section}.{key}' ({guess}known: {', '.join(sorted(types))})")
            typ = {"int": int, "float": float, "str": str, "bool": bool}[types[key]]
            try:
                setattr(obj, key, _coerce(f"{section}.{key}", value, typ))
            except ConfigError as exc:
                if origin == "command line":   # told as validate's errors are: `--lr nan` names --lr
                    raise ConfigError(f"{exc} ({_set_by((flag_names or {}).get(f'{section}.{key}'))})",
                                      key=f"{section}.{key}") from None
                raise ConfigError(f"{origin}: {exc}", key=exc.key) from None
            if origins is not None:
                origins[f"{section}.{key}"] = origin


def validate(cfg: Config) -> Config:
    for dotted in _POSITIVE:
        section, key = dotted.split(".")
        if getattr(getattr(cfg, section), key) <= 0:
            raise ConfigError(f"config key '{dotted}' must be positive, got {getattr(getattr(cfg, section), key)}",
                              key=dotted)
    for dotted, (what, ok) in _BOUNDED.items():
        section, key = dotted.split(".")
        if not ok(value := getattr(getattr(cfg, section), key)):
            raise ConfigError(f"config key '{dotted}' must be {what}, got {value}", key=dotted)
    if cfg.gan.image_size not in (64, 128):
        raise ConfigError(f"config key 'gan.image_size' must be 64 or 128, got {cfg.gan.image_size}", key="gan.image_size")
    if cfg.encode.image_size % 16:
        raise ConfigError(f"config key 'encode.image_size' must be a multiple of 16, got {cfg.encode.image_size}",
                          key="encode.image_size")
    if not (fractions := parse_fractions(cfg.benchmark.train_fractions)):   # ',,' planned a benchmark of no cell
        raise ConfigError(f"config key 'benchmark.train_fractions' names no share: give one or more in (0, 1], "
                          f"e.g. 1.0 or 0.1,0.25,1.0, got '{cfg.benchmark.train_fractions}'", key="benchmark.train_fractions")
    for frac in fractions:
        if not 0 < frac <= 1:
            raise ConfigError(f"config key 'benchmark.train_fractions' values must be in (0, 1], got {frac}",
                              key="benchmark.train_fractions")
    for dotted, value, choices in (("data.task", cfg.data.task, ("binary", "3class")),
                                   ("data.resize", cfg.data.resize, RESIZE_MODES),
                                   ("benchmark.schedule", cfg.benchmark.schedule, SCHEDULES),
                                   ("benchmark.equalize", cfg.benchmark.equalize, EQUALIZERS),
                                   ("gan.conditioning", cfg.gan.conditioning, ("channels", "acgan")),
                                   ("gan.fid_features", cfg.gan.fid_features, ("domain", "inception"))):
        if value not in choices:
            near = closest_choice(value, choices)
            raise ConfigError(f"config key '{dotted}' must be one of {', '.join(choices)}, got '{value}'"
                              + (f"; did you mean '{near}'?" if near else ""), key=dotted)
    if cfg.gan.conditioning == "acgan" and cfg.gan.aux_weight == 0 and not cfg.gan.per_class:
        # the class loss is all an AC-GAN's discriminator tells its generator about classes
        raise ConfigError("config key 'gan.aux_weight' is 0 with gan.conditioning acgan, which leaves the GAN no "
                          "class signal (each class's images would be drawn alike): give a weight above 0 (the cpu "
                          "profile's is 0.3), or conditioning channels", key="gan.aux_weight")
    if not parse_augmentations(cfg.benchmark.augmentations) and cfg.benchmark.augment:
        # ',' trained without augmentation while the run's config said it was on
        raise ConfigError(f"config key 'benchmark.augmentations' names no augmentation, got "
                          f"'{cfg.benchmark.augmentations}': name one or more of {', '.join(AUGMENTATIONS)}, or "
                          "train without any by --no-augment (benchmark.augment false)", key="benchmark.augmentations")
    if cfg.benchmark.tta and not cfg.benchmark.augment:
        # test-time copies are drawn as training draws them; a cell that trained on plain inputs has no such draw
        raise ConfigError(f"config key 'benchmark.tta' is {cfg.benchmark.tta} with training augmentation off "
                          "(benchmark.augment false): test-time copies are augmented as training augments, so "
                          "turn augmentation on or set tta to 0", key="benchmark.tta")
    parse_model_epochs(cfg.benchmark.model_epochs)
    check_run_name(cfg.run.name)
    return cfg


def parse_fractions(text: str) -> list[float]:
    """'0.1,0.25,1.0' as floats, each once, in order: '0.5,0.50' is one fraction, so one cell per seed."""
    try:
        return list(dict.fromkeys(float(t) for t in str(text).split(",") if t.strip()))
    except ValueError:
        raise ConfigError(f"config key 'benchmark.train_fractions' must be numbers like 0.1,0.25,1.0, got '{text}'",
                          key="benchmark.train_fractions") from None


def parse_model_epochs(text: str) -> dict[str, int]:
    """'resnet34=12,densenet121=10' as {model: epochs}; the names are checked against the models where
    the benchmark plans its cells."""
    pairs = {}
    for item in (t.strip() for t in str(text).split(",")):
        if not item:
            continue
        name, _, number = item.partition("=")
        if not name.strip() or not number.strip().isdigit() or int(number) <= 0:
            raise ConfigError(f"config key 'benchmark.model_epochs' must be model=epochs pairs like resnet34=12, "
                              f"got '{text}'", key="benchmark.model_epochs")
        name = name.strip().lower()   # as model names are read: ResNet34 is resnet34
        if pairs.get(name, int(number)) != int(number):   # the last used to win, without a word (session 60)
            raise ConfigError(f"config key 'benchmark.model_epochs' gives {name} two numbers of epochs, "
                              f"{pairs[name]} and {int(number)}, in '{text}': give it one", key="benchmark.model_epochs")
        pairs[name] = int(number)
    return pairs


def installed_profiles() -> Path | None:
    """The folder of the profiles that came with genaug: configs/ installed as `genaug_configs`, which an
    editable install maps back to the repository's configs/."""
    import importlib.util
    spec = importlib.util.find_spec("genaug_configs")
    places = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(places[0]) if places else None


def find_profile(name_or_path: str) -> Path:
    """A YAML path, or a profile name looked up in ./configs, then in the profiles installed with genaug."""
    p = Path(name_or_path)
    roots = tuple(r for r in (Path.cwd() / "configs", installed_profiles(),
                              Path(__file__).resolve().parent.parent / "configs") if r is not None)
    names = sorted({f.stem for root in roots if root.is_dir() for f in root.glob("*.yaml")})
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():   # --profile cpu.yml meant the profile cpu
            meant = f"; the profile '{p.stem}' is given by its name: --profile {p.stem}" if p.stem in names else ""
            raise ConfigError(f"config file not found: {p}{meant}")
        return p
    for root in roots:
        cand = root / f"{name_or_path}.yaml"
        if cand.is_file():
            return cand
    same = [n for n in names if n.lower() == name_or_path.lower()]
    if len(same) == 1:   # in any case, as --models, --variants and --class are read
        return find_profile(same[0])
    listed = f"(profiles: {', '.join(names) or 'none'}"
    # A path that is not a .yaml file was looked up as a profile's name, and the error read
    # "no configs//tmp/x.yaml"; a run's folder is the likeliest folder given, so its config is named.
    if p.is_dir():
        if (p / "config.yaml").is_file():
            raise ConfigError(f"--config {p} is a folder; its config is {p / 'config.yaml'}: "
                              f"--config {p / 'config.yaml'}")
        raise ConfigError(f"--config {p} is a folder: give a .yaml file or a profile name {listed})")
    if p.exists():
        raise ConfigError(f"--config {p} is not a .yaml file: a config is YAML in a file ending .yaml or .yml, "
                          f"or a profile name {listed})")
    if len(p.parts) > 1:
        raise ConfigError(f"config file not found: {p} {listed}; or give a .yaml path)")
    near = closest_name(name_or_path, names)
    raise ConfigError(f"unknown profile '{name_or_path}': no configs/{name_or_path}.yaml"
                      + (f"; did you mean '{near}'?" if near else "")
                      + f" {listed}; or give a .yaml path)")


class _ProfileLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping: PyYAML keeps the last silently, so a
    profile that sets benchmark.epochs twice would run with whichever came second, unseen."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool, type(None))):
                continue   # a list as a key: PyYAML's own check below refuses it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice (lines {seen[key]} and {key_node.start_mark.line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error as one line: what is wrong and where ('found character '\t' that cannot start any
    token (line 2, column 1)'), with the usual cause of that one, a tab, named."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None and "line" not in problem else ""
    tab = "; indent with spaces, not tabs" if "'\\t'" in problem else ""
    return f"{problem}{where}{tab}"


def read_yaml(path: Path) -> dict:
    try:
        raw = Path(path).read_bytes()
        # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the YAML
        data = yaml.load(raw.decode("utf-8-sig"), Loader=_ProfileLoader)
    except UnicodeDecodeError as exc:   # a file saved as Latin-1 or UTF-16 ended in a traceback
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
                          "save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return data or {}


def _set_by(flag: str | None) -> str:
    """Where a bad value from the command line came from, for its error."""
    return f"set with {flag}" if flag else "set on the command line"


def load_config(profile: str | list[str] | None = None, overrides: dict | None = None,
                flag_names: dict[str, str] | None = None) -> Config:
    """Defaults, then the profile's overrides (a list of profiles: each over the ones before it), then
    ``overrides`` (``{"gan": {"epochs": 3}}``; None values skipped).
    ``flag_names`` maps dotted keys to the flags that set them (``{"benchmark.ema": "--ema"}``), for a bad
    value's error to name the flag the user typed."""
    cfg, origins = Config(), {}
    # `--profile cpu --config mine.yaml` applied mine.yaml alone before session 70, the cpu profile
    # dropped without a word (the two flags are one option, and its last value won)
    for name in [profile] if isinstance(profile, str) else profile or []:
        path = find_profile(name)
        _apply(cfg, read_yaml(path), str(path), origins)
    if overrides:
        clean = {s: {k: v for k, v in d.items() if v is not None} for s, d in overrides.items()}
        _apply(cfg, clean, "command line", origins, flag_names)
    # a shell expands ~ only at the start of a word: --data=~/xray reached here as '~/xray', "not found", and
    # --out=~/runs wrote into ./~/runs; a profile's `data: ~/xray` likewise (found in session 75)
    for section, key in PATH_KEYS:
        part = getattr(cfg, section)
        setattr(part, key, home_expanded(getattr(part, key)))
    cfg.data.data = absolute_data(cfg.data.data)
    # the input runs too: a run given `--encode-run o/encode/X` and resumed from another directory said
    # "--encode-run o/encode/X is not a directory" (session 53)
    cfg.benchmark.gan_run = absolute_data(cfg.benchmark.gan_run)
    cfg.benchmark.encode_run = absolute_data(cfg.benchmark.encode_run)
    cfg.benchmark.weights_dir = absolute_data(cfg.benchmark.weights_dir)   # read again by cells a resume adds
    cfg.encode.checkpoint = absolute_data(cfg.encode.checkpoint)
    try:
        validate(cfg)
    except ConfigError as exc:
        # say where the bad value was set: a profile names the file to edit; a flag, the command line
        origin = origins.get(exc.key or "")
        if origin is None:
            raise
        where = _set_by((flag_names or {}).get(exc.key or "")) if origin == "command line" else f"set in {origin}"
        raise ConfigError(f"{exc} ({where})", key=exc.key) from None
    check_new_run_name(cfg.run.name)   # new names only: a saved config is not loaded here
    return cfg


def profile_that_sets(profiles: list[str], section: str, key: str) -> str | None:
    """Which of ``profiles`` (applied in order) gave ``section.key`` its value: the last that sets it."""
    for name in reversed(profiles):
        values = read_yaml(find_profile(name)).get(section)
        if isinstance(values, dict) and key in values:
            return name
    return None


def _is_path(spec: str) -> bool:
    return spec != "demo" and not spec.startswith("medmnist:")


PATH_KEYS = (("data", "data"), ("data", "cache_dir"), ("run", "out_root"), ("benchmark", "gan_run"),
             ("benchmark", "encode_run"), ("benchmark", "weights_dir"), ("encode", "checkpoint"))


def home_expanded(path: str) -> str:
    """``path`` with a leading ``~`` or ``~user`` made the home folder it names, as a shell does at the start
    of a word; anything else as it is."""
    return os.path.expanduser(path) if isinstance(path, str) and path.startswith("~") else path


def absolute_data(spec: str) -> str:
    """A relative data folder or .npz (or a GAN or encode run given to a benchmark) that exists, made
    absolute: a run saves it so, and its saved config then names it from any working directory (resumed
    there, or checked as another run's GAN or encode run). A missing path stays as typed, for the error
    to quote."""
    if spec and _is_path(spec) and not os.path.isabs(spec) and os.path.exists(spec):
        return os.path.abspath(spec)
    return spec


def check_resumed_data(spec: str, run_dir) -> None:
    """A resumed run reads its own data path; where that is gone, say how to give it back (the run
    cannot be pointed elsewhere: its cells, GAN and autoencoder runs are checked against that path)."""
    if not _is_path(spec) or os.path.exists(spec):
        return
    where = "" if os.path.isabs(spec) else " from the folder it was made in"
    raise DataError(f"run {run_dir} reads its data from {spec}{where}, which is not there now: put the data back "
                    f"at that path, or a symbolic link to where it lies now (ln -s NEW_PATH {spec}), and resume again")


# data keys that decide which images are test and validation: runs compared, pooled or feeding one
# another must agree on them
SAME_DATA_KEYS = ("data", "task", "split_seed", "val_fraction", "classes")


def data_differences(a: dict, b: dict) -> list[str]:
    """The SAME_DATA_KEYS on which two saved configs' ``data`` sections differ; a key a config saved before it
    existed (data.classes, session 86) holds its default."""
    default = DataConfig()
    alike = {"data": same_data_source, "classes": same_classes}
    return [k for k in SAME_DATA_KEYS if not alike.get(k, operator.eq)(
        a.get("data", {}).get(k, getattr(default, k)), b.get("data", {}).get(k, getattr(default, k)))]


def same_classes(a: Any, b: Any) -> bool:
    """Whether two data.classes keep the same classes: 'COVID,Normal' and 'normal, covid' do."""
    def kept(v):
        return frozenset(w.strip().casefold() for w in v.split(",") if w.strip()) if isinstance(v, str) else v
    return kept(a) == kept(b)


def data_differences_text(a: dict, b: dict, differ: list[str]) -> str:
    """``data_differences`` as a reader needs it: "data.task 'binary' against '3class'"."""
    default = DataConfig()
    return "; ".join(f"data.{k} {a.get('data', {}).get(k, getattr(default, k))!r} against "
                     f"{b.get('data', {}).get(k, getattr(default, k))!r}" for k in differ)


def same_data_source(a: Any, b: Any) -> bool:
    """Whether two recorded ``data.data`` name one source. Paths compare resolved; a relative one
    (saved by runs before paths were stored absolute) resolves against the working directory."""
    if a == b:
        return True
    if not (isinstance(a, str) and isinstance(b, str) and _is_path(a) and _is_path(b)):
        return False
    return os.path.realpath(a) == os.path.realpath(b)


# What the command line may change when a run is resumed: where and how it runs, not what it
# computes (seed, data, sizes, epochs...), or its finished parts and its new ones would not match.
RESUME_MAY_CHANGE = {"run.device", "run.threads", "run.tensorboard", "run.amp", "run.cpu_amp", "run.state_every_s", "data.cache_dir", "data.download",
                     "encode.overwrite"}
RESUME_IGNORES = {"run.out_root", "run.name"}   # the run directory is given; these name new ones


def resumed_settings(saved: Config, given: dict, run_dir) -> Config:
    """``saved`` (a run's own config) with the flags given to resume it (``{"run": {"device": "cuda"}}``,
    None for a flag not given): those in RESUME_MAY_CHANGE replace the saved value; any other must
    equal it, or the resume is refused with a one-line error rather than silently ignored."""
    clean = {s: {k: v for k, v in d.items() if v is not None} for s, d in given.items() if d}
    asked = Config()
    _apply(asked, clean, "command line")   # the given values, coerced to the config's types
    cfg = config_from_dict(saved.to_dict())
    for section, values in clean.items():
        for key in values:
            dotted, new = f"{section}.{key}", getattr(getattr(asked, section), key)
            old = getattr(getattr(cfg, section), key)
            if dotted in RESUME_MAY_CHANGE:
                setattr(getattr(cfg, section), key, new)
            elif dotted not in RESUME_IGNORES and new != old and not (
                    dotted == "data.data" and same_data_source(new, old)):
                more = ""
                if dotted == "gan.n":   # more images of a trained GAN need no new training
                    gen = Path(run_dir) / f"generator-{'<CLASS>' if cfg.gan.per_class else 'conditional'}.pt"
                    seed = f" --seed {cfg.run.seed}" if cfg.run.seed else ""   # the same seed: its images come first
                    more = f"; or draw them from its generator: genaug gan sample --checkpoint {gen} --n {new}{seed}"
                raise ConfigError(f"run {run_dir} was made with {dotted}={old!r}; a resumed run keeps it "
                                  f"(start a new run to use {new!r}{more})")
    if not cfg.data.cache_dir and not Path(cfg.run.out_root).is_dir():
        # made on another machine (or its root since moved): the decode cache goes under the run root given
        # here (--out, default outputs), not into a new folder at the other machine's path. A GPU machine's
        # run, made under /tmp/tmp.X/runs there, had its --report-only here write 280 MiB to /tmp/tmp.X/runs/cache.
        cfg.data.cache_dir = str(Path(asked.run.out_root) / "cache")
    return validate(cfg)


def config_from_dict(d: dict) -> Config:
    """Rebuild a Config from a saved ``to_dict`` (e.g. from a checkpoint); unknown keys are errors."""
    cfg = Config()
    bench = d.get("benchmark") if isinstance(d, dict) else None
    if isinstance(bench, dict) and "early_stop_after" not in bench:
        # saved before the key existed: those runs stopped early from the start, and a resumed run
        # must train its new cells the way it trained its old ones
        d = {**d, "benchmark": {**bench, "early_stop_after": 0.0}}
    _apply(cfg, d, "saved config")
    return validate(cfg)
