"""``load_data``: one entry point from a --data spec to a DataBundle with train/val/test."""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from genaug.data.core import DataBundle
from genaug.data.decode import name_key, safe_name, shown_name
from genaug.data.demo import demo_dataset
from genaug.data.duplicates import duplicate_note, find_duplicates, image_hashes, within_split_note
from genaug.config import closest_name
from genaug.data.folder import (SPLIT_NAMES, THREE_CLASSES, class_folder_names, load_folder_split, ordered_classes,
                                recorded_classes, scan_folder, split_folders, unnamed_patients)
from genaug.data.medmnist import INFO, download, load_npz, manual_steps
from genaug.data.splits import (classes_missing_from_a_side, join_patients_sharing_an_image, patient_overlap,
                                 split_by_patient)
from genaug.data.traits import file_tells, tells_note, split_tells_note
from genaug.errors import ConfigError, DataError
from genaug.inventory import counted

log = logging.getLogger("genaug")
TINY_VAL = 0.01   # a val split under 1% of train (Kaggle's 16 images) is folded back and carved anew


def ensure_val(bundle: DataBundle, fraction: float, seed: int) -> DataBundle:
    """Carve a patient-level, class-stratified validation split from train when val is absent, tiny or lacks a class."""
    train = bundle.splits["train"]
    val = bundle.splits.get("val")
    # found in session 84: a given val/ of one class chose each model's threshold (Youden's J) with no
    # positives to count, and early stopping saw one class; folded into train like a tiny one instead
    lacking = [] if val is None else val.classes_absent(bundle.classes)
    tiny = val is not None and len(val) < TINY_VAL * len(train)
    if val is not None and len(val) > 0 and not tiny and not lacking:
        bundle.val_origin = "given by the data (val folder)"
        bundle.splits = {k: bundle.splits[k] for k in ("train", "val", "test")}
        return bundle
    if val is not None and len(val) > 0:
        from genaug.data.core import ImageSet
        train = ImageSet.concat([train, val])
        had = f"only {counted(len(val), 'image')}" if tiny else f"no images of class {', '.join(lacking)}"
        origin = (f"carved from train by patient ({fraction:.0%}, seed {seed}); the given val "
                  f"split had {had} and was folded into train first")
    else:
        origin = f"carved from train by patient ({fraction:.0%}, seed {seed})"
    # patients that hold one identical image go to one side: else a copy in val is an image trained on
    groups = join_patients_sharing_an_image(train.patients, image_hashes(train))
    rest, carved = split_by_patient(train.labels, groups, fraction, seed)
    if len(carved) == 0:
        raise DataError(f"too few training patients ({len(set(train.patients))}) to carve a validation split")
    _check_carve_leaves_each_class(bundle.classes, train.labels, groups, rest, carved, fraction)
    got = len(carved) / len(train)
    if abs(got - fraction) > max(0.02, fraction / 4):   # whole patients per class: few of them round far
        origin += f"; {len(carved)} of {len(train)} images ({got:.0%}), as whole patients of each class"
    test = bundle.splits["test"]
    bundle.splits = {"train": train.subset(rest), "val": train.subset(carved), "test": test}
    bundle.val_origin = origin
    return bundle


def _check_carve_leaves_each_class(classes: list[str], labels, groups: list[str], rest, carved, fraction: float,
                                   ) -> None:
    """A class whose every training patient went to validation: say so, not that train/CLASS is empty.

    The carve takes at least one patient of each class, so a class of one patient is carved whole
    (found in session 80: the error then said the training split had no NORMAL image while
    train/NORMAL held two). ``groups`` are the patients as carved: those sharing an image count as one.
    A class with no image at all is left to the check of every split's classes."""
    gone = [(name, n) for name, n, lacks_rest in
            classes_missing_from_a_side(classes, np.asarray(labels), groups, rest, carved) if n and lacks_rest]
    if not gone:
        return
    if alone := [name for name, n in gone if n == 1]:
        raise DataError(f"class {alone[0]} has 1 training patient, who cannot be both trained on and validated: "
                        f"add training patients of {alone[0]}, or give a val/ folder beside train/ that holds "
                        f"{alone[0]} images of another patient")
    raise DataError(f"data.val_fraction {fraction:g} carves every training patient of "
                    f"{', '.join(name for name, _ in gone)} into validation, leaving none to train on: lower it "
                    "(0.1 is the default)")


def check_patient_disjoint(bundle: DataBundle) -> None:
    """Train and val never share a patient (we made them); a train/test clash is reported as a note."""
    tr, va = bundle.splits["train"].patients, bundle.splits["val"].patients
    clash = patient_overlap(tr, va)
    if clash:
        raise DataError(f"patients in both train and val: {sorted(clash)[:5]}; the given splits leak patients")
    test_clash = patient_overlap(tr + va, bundle.splits["test"].patients)
    if test_clash and bundle.source == "folder":
        bundle.notes.append(
            f"{len(test_clash)} patient {'id occurs' if len(test_clash) == 1 else 'ids occur'} in both train/val "
            f"and the dataset's own test split (e.g. {', '.join(sorted(test_clash)[:3])}); the test split is used "
            "as published and never modified; the ids may be reused numbers (in the Kermany set, person1 is "
            "bacterial in train, viral in test), which the file names alone cannot settle")


def check_data_spec(spec: str, task: str = "binary", classes: str = "") -> None:
    """Refuse a --data that cannot be read, from names alone (no image is opened), so that a command
    which builds models or trains a GAN first says so at once; ``load_data`` makes the same checks, and those of
    --classes (data.classes) where the classes are known before loading (a folder's, the demo's)."""
    if not spec:
        raise DataError("no data given: use --data demo, a folder, a .npz file or medmnist:NAME")
    if spec == "demo":
        chosen_classes(THREE_CLASSES if task == "3class" else ["NORMAL", "PNEUMONIA"], classes, spec)
        return
    if spec.startswith("medmnist:"):
        name = spec.split(":", 1)[1].lower()
        if name not in INFO:
            raise DataError(f"unknown MedMNIST dataset '{name}' (known: {', '.join(INFO)})")
        _check_task(task)
    elif spec.lower().endswith(".npz"):
        if not Path(spec).is_file():
            raise DataError(f"npz file not found: {spec}")
        _check_task(task)
    else:
        if spec.lower() in INFO and not Path(spec).exists():   # the prefix left out (session 67)
            raise DataError(f"data folder not found: {spec}; for the MedMNIST dataset, give --data medmnist:{spec.lower()}")
        # lists files, opens none: classes and empty splits are told at once
        chosen_classes(scan_folder(Path(spec), task)[0], classes, spec)


def check_out_outside_data(out_root: str | Path, spec: str, where: str = "the data folder",
                           holds: str = "runs there (synthetic images among them)") -> None:
    """Refuse an --out inside a --data folder (or another folder of X-rays, ``where``). Runs hold synthetic
    images, plots and reports: genaug reads only the images straight in each class folder, but a tool that
    walks the folder (torchvision's ImageFolder does) would take them for X-rays of the class they sit under."""
    if not spec or spec == "demo" or spec.startswith("medmnist:") or spec.lower().endswith(".npz"):
        return
    data, out = Path(spec).resolve(), Path(out_root).resolve()
    if out == data or data in out.parents:
        default = "" if out == Path("outputs").resolve() else " (the default is outputs)"
        raise ConfigError(f"--out {out_root} is inside {where} {spec}: {holds} would mix with the data, where a "
                          f"tool reading its images could take them for X-rays; give an --out outside it{default}")


def classes_from_spec(spec: str, task: str = "binary") -> list[str] | None:
    """The class names a checked --data spec can hold, from names alone (no image opened); a folder gives
    its class folders, which may include an empty one. None where only the data itself says (a .npz)."""
    if task == "3class":
        return list(THREE_CLASSES)
    if spec == "demo":
        return ["NORMAL", "PNEUMONIA"]
    if spec.startswith("medmnist:"):
        return [str(v) for v in INFO[spec.split(":", 1)[1].lower()]["label"].values()]
    if spec.lower().endswith(".npz"):
        return None
    return class_folder_names(split_folders(Path(spec)))


def resolve_classes(requested: str, classes: list[str]) -> list[str]:
    """'all' or class names, comma-separated, in any case and Unicode form (`name_key`); an unknown name lists the
    classes in the data."""
    if requested.lower() == "all":
        return list(classes)
    wanted = [c.strip() for c in requested.split(",") if c.strip()]
    if not wanted:   # ',' trained a GAN, then wrote no image
        raise ConfigError(f"--class {requested!r} names no class; give one or more of {', '.join(classes)}, or all")
    if len(wanted) > 1 and "all" in (w.lower() for w in wanted):
        raise ConfigError(f"--class {requested!r}: 'all' already takes every class; give it alone, or name classes "
                          f"({', '.join(classes)})")
    out = []
    for w in wanted:
        match = [c for c in classes if name_key(c) == name_key(w)]
        if not match:
            raise ConfigError(f"unknown class '{w}'; the data has: {', '.join(classes)} (or use --class all)")
        if match[0] not in out:   # named twice: its images were written twice over the same files
            out.append(match[0])
    return out


def chosen_classes(available: list[str], wanted: str, spec: str) -> list[str]:
    """The classes of ``available`` that ``wanted`` (data.classes, comma-separated: "COVID,Normal") names, in
    ``available``'s order, each by its own spelling (a name is matched in any case); all of them where
    ``wanted`` is empty. One line for a name the data has not, or fewer than two."""
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    if not names:
        return list(available)
    by_key = {name_key(c): c for c in available}
    if unknown := [w for w in names if name_key(w) not in by_key]:
        near = closest_name(unknown[0], available)
        raise DataError(f"--classes names {unknown[0]!r}, which {spec} has not"
                        + (f" (did you mean {near!r}?)" if near else "") + f"; its classes: {', '.join(available)}")
    kept = {by_key[name_key(w)] for w in names}
    if len(kept) < 2:
        raise DataError(f"--classes {wanted} keeps one class ({kept.pop()}); a classifier needs two or more")
    return [c for c in available if c in kept]


def _keep_classes(bundle: DataBundle, kept: list[str]) -> None:
    """Leave out of every split the images of the classes not in ``kept`` (data.classes), and number the rest
    in ``kept``'s order."""
    if kept == bundle.classes:
        return
    new_label = {bundle.classes.index(c): k for k, c in enumerate(kept)}
    left = {c: 0 for c in bundle.classes if c not in kept}
    for split, s in list(bundle.splits.items()):
        keep = np.flatnonzero(np.isin(s.labels, list(new_label)))
        for lab in s.labels[~np.isin(s.labels, list(new_label))].tolist():
            left[bundle.classes[lab]] += 1
        part = s.subset(keep)
        part.labels = np.array([new_label[k] for k in part.labels.tolist()], dtype=np.int64)
        bundle.splits[split] = part
    bundle.classes = list(kept)
    bundle.notes.append(left_out_note(left))


def left_out_note(left: dict[str, int]) -> str:
    """The note of the images --classes left out, by class: {class: images}."""
    return "left out by --classes (data.classes): " + ", ".join(f"{c} ({counted(n, 'image')})" for c, n in left.items())


def load_data(spec: str, size: int, task: str = "binary", val_fraction: float = 0.1, split_seed: int = 0,
              cache_dir: Path | None = None, demo_train: int = 600, allow_download: bool = False,
              resize: str = "squash", classes: str = "") -> DataBundle:
    """``spec``: 'demo', a folder in the Kaggle layout, a MedMNIST .npz, or 'medmnist:NAME'. Images that are
    not square are made square by ``resize`` (config.RESIZE_MODES). ``classes`` (comma-separated) keeps those
    classes only (`chosen_classes`), before the validation split is carved."""
    if size < 1:   # 0 divided by zero deep in PIL's JPEG draft mode
        raise ConfigError(f"the image size to load at must be at least 1 px, got {size}")
    check_data_spec(spec, task, classes)
    if spec == "demo":
        bundle = demo_dataset(size=size, n_train=demo_train, seed=split_seed)
        if task == "3class":
            _demo_three_class(bundle)
    elif spec.startswith("medmnist:"):
        name = spec.split(":", 1)[1].lower()
        avail = sorted(INFO[name]["files"])
        src = min((s for s in avail if s >= size), default=avail[-1])
        root = Path(cache_dir or "outputs/cache") / "medmnist"
        path = root / INFO[name]["files"][src]
        if not path.is_file():
            if not allow_download:
                # only genaug data info has --download; the training commands read data.download from a profile
                raise DataError(f"{path} is missing; fetch it with genaug data info --data {spec} --size {src} "
                                f"--download --cache-dir {root.parent} (or data.download: true in a profile), or "
                                f"{manual_steps(name, src, path)}")
            path = download(name, src, root)
        bundle = load_npz(path, size, INFO[name]["label"], resize)
    elif spec.lower().endswith(".npz"):
        bundle = load_npz(Path(spec), size, resize=resize)
    else:
        root = Path(spec)
        found, items, skipped = scan_folder(root, task)
        # left out before decoding: COVID-19 Radiography's 6,012 Lung_Opacity images for COVID against Normal
        kept = chosen_classes(found, classes, spec)
        if task != "3class":
            kept = ordered_classes(kept, recorded_classes(root))
        left = {c: sum(label == c for entries in items.values() for _, label in entries)
                for c in found if c not in kept}
        items = {split: [(rel, label) for rel, label in entries if label in kept] for split, entries in items.items()}
        classes = kept
        splits = {}
        for split, entries in items.items():
            if not entries:
                continue
            splits[split] = load_folder_split(root, entries, classes, size, cache_dir, skipped,
                                              desc=f"decode {split} @{size}px", resize=resize)
            if len(splits[split]) == 0:
                mine = {safe_name(r) for r, _ in entries}
                (why, n), = Counter(r for f, r in skipped if f in mine).most_common(1) or [("?", 0)]
                which = f": {why}" if len(entries) == 1 else f"; {'all' if n == len(entries) else n} for: {why}"
                raise DataError(f"split '{split}' of {root} has no readable images "
                                f"({counted(len(entries), 'file')} skipped{which})")
        bundle = DataBundle(name=root.name, source="folder", classes=classes, splits=splits,
                            image_size=size, skipped=skipped)
        if left:
            bundle.notes.append(left_out_note(left))
        paths = [p for s in splits.values() for p in s.paths]
        unnamed = sum(unnamed_patients(s.patients, s.paths) for s in splits.values())
        if unnamed:
            bundle.notes.append(
                f"{unnamed} of {len(paths)} images carry no patient id (in the file name, Kermany style "
                "person123_... or IM-0001-..., NIH 00000001_000.png; or a DICOM PatientID), so each of those "
                "images counts as its own patient: images of one patient may sit in two splits. To split by "
                "patient, give each image's patient to genaug data split, in a table (--labels with "
                "--patient-column) or a folder per patient (--patient-folders): every command reads the folder it "
                "writes by patient.")
        bundle.file_tells, bundle.test_tells, bundle.train_files = file_tells(
            root, paths, np.concatenate([s.labels for s in splits.values()]), len(classes),
            [split == "test" for split, s in splits.items() for _ in s.paths])
        for note in (tells_note(bundle.file_tells, classes), split_tells_note(bundle.test_tells)):
            if note:
                bundle.notes.append(note)
    if bundle.source != "folder":
        _keep_classes(bundle, chosen_classes(bundle.classes, classes, spec))
    ensure_val(bundle, val_fraction, split_seed)
    check_patient_disjoint(bundle)
    bundle.duplicates = find_duplicates(bundle)
    bundle.notes.append(duplicate_note(bundle.duplicates))
    if within := within_split_note(bundle.duplicates):
        bundle.notes.append(within)
    for split, s in bundle.splits.items():
        missing = s.classes_absent(bundle.classes)
        named = ", ".join(map(shown_name, missing))
        # named with the data given: a .npz holds its splits inside, where the user cannot see them
        if missing and split == "train":
            raise DataError(f"the training split of {spec} has no images of class {named}: every "
                            "class needs training images" + _unlisted(split, missing, bundle.skipped))
        if missing and split == "test":
            raise DataError(f"the test split of {spec} has no images of class {named}: every class "
                            "needs test images, or accuracy, specificity and ROC-AUC are undefined"
                            + _unlisted(split, missing, bundle.skipped))
        if missing:
            bundle.notes.append(f"the {split} split has no images of class {named}")
    return bundle


def _unlisted(split: str, missing: list[str], skipped: list[tuple[str, str]]) -> str:
    """'; train/PNEUMONIA: cannot list (Permission denied): ...' where a missing class's folder could not be
    read: found in session 73, such a folder was said to hold no images, unexplained."""
    for path, why in skipped:
        parts = Path(path).parts
        if len(parts) == 2 and SPLIT_NAMES.get(parts[0].lower()) == split and parts[1] in missing and \
                why.startswith("cannot list"):
            return f"; {path}: {why}: make the folder readable (chmod u+rx) or run as a user who may read it"
    return ""


def _check_task(task: str) -> None:
    if task == "3class":
        raise DataError("--task 3class needs Kermany file names (bacteria/virus); MedMNIST files have none")


def _demo_three_class(bundle: DataBundle) -> None:
    from genaug.data.folder import three_class_label
    for s in bundle.splits.values():
        names = [three_class_label(p.split("/")[-2], p.split("/")[-1]) for p in s.paths]
        s.labels = np.array([THREE_CLASSES.index(n) for n in names], dtype=np.int64)
    bundle.classes = list(THREE_CLASSES)
