"""What every job does first: seed, threads, device, the data at its resolution, the run manifest."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import unicodedata
from pathlib import Path

import torch

from genaug import distributed
from genaug.config import Config
from genaug.data import DataBundle, load_data
from genaug.errors import DataError
from genaug.data.splits import subsample_by_patient
from genaug.data.traits import tells_note, split_tells_note
from genaug.device import cpu_has_bf16, emulated_bf16_note, resolve_device, seed_everything, set_deterministic
from genaug.inventory import counted
from genaug.runs import TRAINING_LIST, Run, atomic_write_text, enclosing_run
from genaug.train import uses_autocast

log = logging.getLogger("genaug")


def tell(msg: str, key: str = "") -> None:
    """To the console (rank 0) and to the run's log: a batch job's output and the log both keep the
    record (start, data, results, times), and ``genaug runs`` reads progress from the log. ``key``
    names the benchmark cell a line is about, since shards share one log."""
    distributed.say(msg, flush=True)
    log.info(f"{key}: {msg.strip()}" if key else msg.strip())


def data_line(summary: dict, size: int, device: torch.device) -> str:
    """One line on what a job learns from (``DataBundle.summary()``) and where: told before the first
    epoch, which on a CPU can be many minutes away."""
    counts = ", ".join(f"{k} {v['images']} images of {counted(v['patients'], 'patient')}"
                       for k, v in summary["splits"].items())
    n = torch.get_num_threads()
    threads = f", {n} thread{'s' if n > 1 else ''}" if device.type == "cpu" else ""
    classes = summary["classes"]
    return (f"data: {summary['name']}{' (synthetic, not X-rays)' if summary['synthetic'] else ''}, "
            f"{len(classes)} classes ({', '.join(classes)}) at {size} px: {counts}; on {device}{threads}")


def data_cache_dir(cfg: Config) -> Path:
    return Path(cfg.data.cache_dir) if cfg.data.cache_dir else Path(cfg.run.out_root) / "cache"


def load_bundle(cfg: Config, size: int) -> DataBundle:
    return load_data(cfg.data.data, size, cfg.data.task, cfg.data.val_fraction, cfg.data.split_seed,
                     data_cache_dir(cfg), cfg.data.demo_train, cfg.data.download, cfg.data.resize, cfg.data.classes)


def join_ranks(cfg: Config) -> None:
    """Under torchrun, join the process group before the run directory is made (rank 0 makes it)."""
    distributed.init_from_env(resolve_device(cfg.run.device))


def usable_cpus() -> int:
    """CPUs this process may run on (a container or taskset may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def start_job(cfg: Config, run: Run, size: int) -> tuple[torch.device, DataBundle]:
    seed_everything(cfg.run.seed)
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    # a process that trains nothing (benchmark --report-only) needs no accelerator: a run trained on a GPU is
    # reported on a laptop, and the manifest keeps the device its cells trained on
    device = distributed.init_from_env(resolve_device(cfg.run.device)) if run.trains else torch.device("cpu")
    # before the data, which can take minutes to decode the first time: where to look, and what
    # --resume takes should the job be stopped
    tell(f"genaug {run.command}: {run.dir}")
    if device.type == "cpu" and cfg.run.threads > (cpus := usable_cpus()) and enclosing_run(run.dir) is None:
        # each thread waits on the others at every operation, so threads beyond the CPUs slow training (said
        # once: not again for the GAN and autoencoder a benchmark trains inside its own run)
        tell(f"note: --threads {cfg.run.threads} on {counted(cpus, 'CPU')}: threads beyond the CPUs usually slow "
             f"training; give --threads {cpus} or fewer")
    if run.command in ("benchmark", "encode", "gan") and device.type == "cpu" and uses_autocast(cfg.run, device) \
            and enclosing_run(run.dir) is None and not (run.command != "benchmark" and run.manifest.get("finished")):
        # a GAN or an autoencoder a benchmark trains inside its own run trains in bf16 too (trains_in_cpu_bf16),
        # and is told of here, once; a finished GAN or autoencoder run given again trains nothing (found in
        # session 76: `gan --resume FINISHED --cpu-amp` said its GAN trained in bf16 while it only rewrote its report)
        what = {"benchmark": "the classifiers (and a GAN or autoencoder this run trains) compute",
                "encode": "the autoencoder trains", "gan": "the GAN trains"}[run.command]
        tell(f"note: {what} in bf16 on this CPU (--cpu-amp)" + ("" if cpu_has_bf16() else f"; {emulated_bf16_note()}"))
    if note := cpu_only_flags_note(run.command, cfg.run, device):
        if enclosing_run(run.dir) is None and not run.manifest.get("finished"):
            tell(note)
    with distributed.main_first():   # under torchrun rank 0 builds the decode cache, the others read it
        bundle = load_bundle(cfg, size)
    # after the data: switching to deterministic kernels imports torch's compiler (about a second),
    # and bad data should be told at once
    set_deterministic(cfg.run.deterministic, device)
    summary, digest = bundle.summary(), bundle.split_digest()
    # a report of a run whose data changed keeps the record of the data its cells were trained on
    same = ({"data": summary, "split_digest": digest}
            if data_unchanged(run, summary, digest, cfg.data.data, bundle.split_digest) else {})
    trained_on = {"device": str(device), "world_size": distributed.world_size()} if run.trains else {}
    run.save_manifest(**same, **trained_on, skipped=[{"path": p, "reason": r} for p, r in bundle.skipped])
    tell(data_line(summary, size, torch.device(device)))
    if note := bundle.skipped_note(cfg.data.data):
        tell(f"note: {note}")
    for note in (tells_note(bundle.file_tells, bundle.classes), split_tells_note(bundle.test_tells)):
        if note:   # before hours of training, not in the report only
            tell(f"note: {note}")
    return device, bundle


def cpu_only_flags_note(command: str, run_cfg, device) -> str | None:
    """A note where `gan` or `encode` is given --cpu-amp or --channels-last on a GPU, where neither applies: the
    GAN and the autoencoder train there in fp32 and the contiguous layout, as they always have (their bf16 and
    channels-last on CUDA are unmeasured). Without it a user who asked for either would not learn it did nothing."""
    if command not in ("gan", "encode") or torch.device(device).type == "cpu":
        return None
    flags = [f for f, on in (("--cpu-amp", run_cfg.cpu_amp), ("--channels-last", run_cfg.channels_last)) if on]
    if not flags:
        return None
    what = {"gan": "the GAN", "encode": "the autoencoder"}[command]
    return (f"note: {' and '.join(flags)} {'apply' if len(flags) > 1 else 'applies'} on a CPU only; on "
            f"{torch.device(device).type} {what} trains in fp32 in the contiguous layout, as it always has")


def data_unchanged(run: Run, summary: dict, digest: str, spec: str, digest_in_form=None) -> bool:
    """Whether a resumed run's data splits as it did when the run began (a new run's: True); a change is
    refused where the run trains, and said where it only reports. Found in session 71: images added to
    the data folder before a --resume put the new seed's cells on another validation split, pooled with
    the old ones as one cell. Runs recorded before the digest was (session 71) are checked by their counts."""
    before = run.manifest.get("data")
    if not isinstance(before, dict):   # a new run, or one stopped before its data was read
        return True
    counts = _split_image_counts(before), _split_image_counts(summary)
    changed = "; ".join(f"{k} {counts[0].get(k, 0)} images then, {counts[1].get(k, 0)} now"
                        for k in dict.fromkeys([*counts[0], *counts[1]]) if counts[0].get(k) != counts[1].get(k))
    was = run.manifest.get("split_digest")
    if not changed and (was == digest if was else _per_class(before) == _per_class(summary)):
        return True
    # "no longer splits as", not "has changed": a genaug that reads or skips files otherwise moves the split too
    then, now = before.get("classes") or [], summary.get("classes") or []
    if not changed and then != now and sorted(then) == sorted(now):   # session 85 put a negative class first
        what = (f"run {run.dir} gave its classes the order {', '.join(then)}, and this genaug gives them "
                f"{', '.join(now)} (of two, a class named as a negative finding now comes first, so that "
                "sensitivity is the other's recall)")
        # refused even where it only reports: its cells' labels and probabilities are by the old order
        raise DataError(f"{what}: its cells would be read, and new ones trained, by the other order; resume it "
                        "with the genaug that began it, or start a new run")
    was_form = None if changed else _form_renamed_from(before, summary, was, digest, digest_in_form)
    if was_form:
        now = {"NFC": "decomposed, NFD, as macOS writes names", "NFD": "composed, NFC"}[was_form]
        then = {"NFC": "composed, NFC", "NFD": "decomposed, NFD"}[was_form]
        why = (f"the same counts; the names are those the run began with, in another Unicode form: {now}, where "
               f"they were {then}")
    else:
        why = "the same counts, other files or labels: renamed, replaced or moved between classes"
    what = f"the data at {spec} no longer splits as when run {run.dir} began ({changed or why})"
    if not run.trains:   # a report of the cells it holds: they stand as they were trained
        tell(f"note: {what}; this reports the cells trained before it")
        return False
    back = f" (convmv -f utf8 -t utf8 --{was_form.lower()} -r --notest on the data folder)" if was_form else ""
    raise DataError(f"{what}: the cells it holds were trained on the splits as they were, and cells trained now "
                    f"would not be; put the data back as it was{back}, or start a new run on the data as it is now")


def _form_renamed_from(before: dict, summary: dict, was: str | None, digest: str, digest_in_form) -> str | None:
    """The Unicode form ('NFC' or 'NFD') the data's names were in when the run began, where they changed
    only in form since: data copied to a Mac and back is named decomposed (NFD), printed as it was, and the
    refusal could say only "renamed" (found in session 75). Told by class names that differ only in form,
    or by the split digest of the names in the other form."""
    classes = before.get("classes") or [], summary.get("classes") or []
    for form in ("NFC", "NFD"):
        if len(classes[0]) == len(classes[1]) and classes[0] != classes[1] and \
                [unicodedata.normalize(form, c) for c in classes[1]] == classes[0]:
            return form
        if was and digest_in_form and digest_in_form(form) == was != digest:
            return form
    return None


def _split_image_counts(summary: dict) -> dict[str, int]:
    """Images a split holds; a validation split carved from train counts with it, as its folder holds them."""
    n = {k: v.get("images") for k, v in (summary.get("splits") or {}).items() if isinstance(v, dict)}
    if str(summary.get("val_origin", "")).startswith("carved") and "train" in n and "val" in n:
        n = {"train+val": n.pop("train") + n.pop("val"), **n}
    return n


def _per_class(summary: dict) -> dict:
    return {k: v.get("per_class") for k, v in (summary.get("splits") or {}).items() if isinstance(v, dict)}


def training_subset(cfg: Config, run: Run, bundle: DataBundle, fraction: float, who: str) -> DataBundle:
    """``bundle`` with its training split cut to ``fraction`` of the patients of each class: the same
    patients that ``benchmark --train-fraction`` keeps (one shuffle per class, taken from the front,
    so a smaller fraction's patients lie inside a larger one's). Val and test stay whole. The files
    kept are listed in the run's TRAINING_LIST; ``who`` learns from them (said on the console)."""
    keep = subsample_by_patient(bundle.train.labels, bundle.train.patients, fraction, cfg.data.split_seed)
    sub = dataclasses.replace(bundle, splits={**bundle.splits, "train": bundle.train.subset(keep)})
    atomic_write_text(run.path(TRAINING_LIST), training_list_text(sub.train.paths))
    run.save_manifest(train_fraction=fraction, train_images=len(sub.train))
    if fraction < 1:   # found in session 71: 0.0001 gave an autoencoder 4 images without a word
        tell(f"{who} learns from {fraction:g} of the training patients: {learnt_from_text(len(sub.train), len(bundle.train))}")
    return sub


def learnt_from_text(kept: int, of: int) -> str:
    return f"{kept} of the {of} images"


# A file name may hold a newline or bytes that are not UTF-8: the list holds one JSON string a line under
# this first line. Lists written before it (plain lines) are still read. Found in session 67: a name not in
# UTF-8 stopped the reading with a UnicodeDecodeError, and one with a newline was recorded as two files.
TRAINING_LIST_HEADER = "# genaug training list: one JSON string per line"


def training_list_text(paths) -> str:
    return "".join(f"{line}\n" for line in [TRAINING_LIST_HEADER, *(json.dumps(p) for p in paths)])


def read_training_list(run_dir: Path) -> set[str] | None:
    """The training files a GAN or encode run recorded; None for runs made before it was recorded
    (they all learnt from the whole training split)."""
    path = Path(run_dir) / TRAINING_LIST
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8", errors="surrogateescape").split("\n")
    if lines[0] == TRAINING_LIST_HEADER:
        return {json.loads(line) for line in lines[1:] if line}
    return {line for line in lines if line}


def held_out_seen(learnt_from: set[str] | None, bundle: DataBundle,
                  splits: tuple[str, ...] = ("val", "test")) -> dict[str, list[str]]:
    """The images of each held-out split that a GAN or autoencoder learnt from (sorted; only splits
    with any): a model made on another split (another --task, --val-fraction or split seed) saw them."""
    seen = learnt_from or set()
    found = {split: sorted(p for p in bundle.splits[split].paths if p in seen) for split in splits}
    return {split: paths for split, paths in found.items() if paths}
