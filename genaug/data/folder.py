"""Folder datasets in the Kaggle "Chest X-Ray Images (Pneumonia)" layout: ROOT/{train,val,test}/{CLASS}/*."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from genaug.data.cache import decode_cached
from genaug.data.core import ImageSet
from genaug.data.decode import (IMAGE_EXTENSIONS, alike_path_note, dicom_patient, how_names_differ, is_dicom,
                                is_image_file, name_key, safe_name, shown_name)
from genaug.data.splits import (classes_missing_from_a_side, file_as_patient, groups_of_equal_keys,
                                 join_patients_sharing_an_image, labelled_patient, patient_id, split_by_patient)
from genaug.errors import DataError

log = logging.getLogger("genaug")
# the split folder names read, any case; Training/ and Testing/ as some Kaggle sets (brain MRI) name them
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test"}
THREE_CLASSES = ["NORMAL", "BACTERIA", "VIRUS"]
SUPPORTED_FILES = f"supported: {', '.join(IMAGE_EXTENSIONS)}, and DICOM files by their content"


# the sub-folder of a class folder that holds its X-rays where other pictures lie beside them: the COVID-19
# Radiography Database keeps <CLASS>/images/ beside <CLASS>/masks/, COVID-QU-Ex <split>/<CLASS>/images/ beside
# "lung masks/"
IMAGE_FOLDER_NAMES = ("images", "image", "imgs", "img")
# folders named as holding segmentation masks: label maps drawn over the X-rays, of the same names and sizes
MASK_FOLDER_NAMES = ("segmentation", "segmentations", "seg", "annotations")


# why a folder named as masks is passed over, wherever genaug meets one
MASKS_NOT_READ = "masks (by the folder's name), not X-rays: not read"


def is_mask_folder(name: str) -> bool:
    """Whether a folder's name says it holds masks (masks/, lung masks/, ManualMask/, leftMask/), not X-rays:
    found in session 86, the COVID-19 Radiography Database's masks/ were read as X-rays of their class."""
    low = name.lower()
    return "mask" in low or low in MASK_FOLDER_NAMES


def class_image_folder(cdir: Path) -> Path:
    """Where a class folder's images lie: ``cdir`` itself, or, where it holds no image directly but one folder
    named images/ (any case, `IMAGE_FOLDER_NAMES`), that folder."""
    if holds_images(cdir, look_at=-1):
        return cdir
    try:
        inner = [d for d in cdir.iterdir() if d.is_dir() and d.name.lower() in IMAGE_FOLDER_NAMES]
    except OSError:
        return cdir
    return inner[0] if len(inner) == 1 else cdir


def beside_image_folder(cdir: Path, folder: Path, rel_root: Path) -> list[tuple[str, str]]:
    """(path, reason) of what lies in a class folder ``cdir`` beside its image folder ``folder`` (masks/ and
    the like), not read; nothing where the class folder is its own image folder."""
    if folder == cdir:
        return []
    said = []
    for entry in sorted(cdir.iterdir()):
        if entry.name.startswith(".") or entry == folder:
            continue
        rel = safe_name(str(entry.relative_to(rel_root)))
        if entry.is_dir() and is_mask_folder(entry.name):
            said.append((rel, f"{MASKS_NOT_READ}; the class's images are read from {folder.name}/"))
        else:
            said.append((rel, f"beside {folder.name}/, from which the class's images are read: not read"))
    return said


# the names genaug gan and gan sample give the images they write (gan.write_synthetic)
GENAUG_SYNTHETIC_NAME = re.compile(r"^synthetic_.+_\d+_\d{5,}\.png$")
TO_TRAINING = ("synthetic images reach training through genaug benchmark --gan-run, which keeps them out of every "
               "validation and test split")


def genaug_run_around(folder: Path) -> tuple[Path, str] | None:
    """The genaug run ``folder`` is or lies in (up to three levels up: a run's synthetic/<CLASS>/) and the
    command that made it, as typed; None elsewhere. As runs.enclosing_run finds it, here without genaug.runs,
    which imports torch: data checks answer before torch loads."""
    for d in (folder.resolve(), *folder.resolve().parents[:3]):
        if (d / "config.yaml").is_file() and (d / "manifest.json").is_file():
            try:
                command = json.loads((d / "manifest.json").read_text(encoding="utf-8")).get("command")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(command, str):
                return d, command.replace("-", " ")
    return None


def _images(n: int) -> str:
    return f"{n} image{'' if n == 1 else 's'}"


def synthetic_named(rels: list[str]) -> list[str]:
    """The images among ``rels`` named as genaug's synthetic X-rays."""
    return [r for r in rels if GENAUG_SYNTHETIC_NAME.match(Path(r).name)]


def three_class_label(folder_class: str, filename: str) -> str | None:
    """normal / bacterial / viral from the Kermany file names; None when the name says neither."""
    if folder_class.upper() == "NORMAL":
        return "NORMAL"
    name = filename.lower()
    if re.search(r"bacteri", name):
        return "BACTERIA"
    if re.search(r"virus|viral", name):
        return "VIRUS"
    return None


def _loose_images(folder: Path, rel_root: Path) -> list[str]:
    """The images lying in ``folder`` itself (not in a sub-folder), relative to ``rel_root``."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:   # a split folder that cannot be listed is told where its classes are read
        return []
    return [str((folder / n).relative_to(rel_root)) for n in names
            if not n.startswith(".") and (folder / n).is_file() and is_image_file(folder / n)]


def _list_class_dir(cdir: Path, skipped: list[tuple[str, str]], rel_root: Path) -> list[str]:
    out = []
    try:
        names = sorted(os.listdir(cdir))
    except OSError as exc:
        skipped.append((safe_name(str(cdir.relative_to(rel_root))), f"cannot list ({exc.strerror})"))
        return out
    for name in names:
        full = cdir / name
        rel = str(full.relative_to(rel_root))
        if name.startswith("."):
            continue
        try:
            if not full.is_file():        # sub-folders, broken links; is_file follows good links
                if full.is_dir():         # its images would otherwise be missing from the counts unsaid
                    skipped.append((safe_name(rel), "a sub-folder: its files are not read (a class's images go "
                                                    "straight in <split>/<CLASS>/)"))
                elif full.is_symlink():
                    skipped.append((safe_name(rel), "broken or looping symbolic link"))
                continue
        except OSError as exc:            # ELOOP and friends
            skipped.append((safe_name(rel), f"unreadable entry ({exc.strerror})"))
            continue
        if not is_image_file(full):
            skipped.append((safe_name(rel), "not an image extension (nor DICOM content)"))
            continue
        if not os.access(full, os.R_OK):
            skipped.append((safe_name(rel), "permission denied"))
            continue
        out.append(rel)
    return out


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".7z", ".rar")


def _subfolder_names(folder: Path) -> set[str]:
    """The splits (train, val, test) whose folders ``folder`` holds, however named; none where it cannot be read."""
    try:
        return {SPLIT_NAMES[e.name.lower()] for e in folder.iterdir() if e.is_dir() and e.name.lower() in SPLIT_NAMES}
    except OSError:
        return set()


def split_folders(root: Path) -> dict[str, Path]:
    """The train/test (and val) folders of a Kaggle-layout root, or a DataError naming what is missing.
    Reads only the root's own entries, so a command can refuse a wrong --data at once."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data folder not found: {root} (expected ROOT/train/<CLASS>/*.jpeg, or use --data demo)"
                        + alike_path_note(root))
    if not root.is_dir():
        if root.name.lower().endswith(ARCHIVE_SUFFIXES):   # Kaggle hands the data out as a zip
            raise DataError(f"--data {root} is an archive: unpack it first (e.g. unzip {root} -d DIR, or "
                            "tar -xf), then give the folder that holds train/ and test/")
        raise DataError(f"--data {root} is neither a folder, a .npz file, 'demo' nor 'medmnist:NAME'")
    split_dirs = {}
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and entry.name.lower() in SPLIT_NAMES:
            split = SPLIT_NAMES[entry.name.lower()]
            if split in split_dirs:   # found in session 84: val/ and valid/ (or Test/ and test/) read one, no word
                raise DataError(f"{split_dirs[split]} and {entry} are both the {split} split: genaug would read "
                                f"only one; merge them into one folder, or move the one that is not data out of {root}")
            split_dirs[split] = entry
    if "train" not in split_dirs and root.name.lower() in SPLIT_NAMES and \
            {"train", "test"} <= _subfolder_names(root.resolve().parent):
        parent = root.resolve().parent
        raise DataError(f"{root} is the {root.name} split of {parent}: give --data {parent} (its train/ and test/ "
                        "folders are read together, so that no test patient reaches training)")
    split_of_class = root.resolve().parent
    if "train" not in split_dirs and split_of_class.name.lower() in SPLIT_NAMES and \
            {"train", "test"} <= _subfolder_names(split_of_class.parent):
        # ROOT/train/NORMAL given: the advice is ROOT, not "lay out its images by a labels CSV"
        raise DataError(f"{root} is the {root.name} class folder of the {split_of_class.name} split of "
                        f"{split_of_class.parent}: give --data {split_of_class.parent} (its train/ and test/ "
                        "folders are read together, so that no test patient reaches training)")
    if "train" not in split_dirs and (classes := flat_class_folders(root)):
        raise DataError(f"{root} holds class folders ({', '.join(classes[:4])}) but no train/ and test/: lay it out "
                        f"with a patient-level test split first: genaug data split {root} --to NEW_FOLDER")
    if "train" not in split_dirs and (classes := _classes_of_patient_folders(root)):
        raise DataError(f"{root} holds class folders of folders ({', '.join(classes[:4])}) but no train/ and test/: "
                        "if each of those folders holds one patient's images, lay it out with a patient-level test "
                        f"split first: genaug data split {root} --patient-folders --to NEW_FOLDER")
    if "train" not in split_dirs and holds_images(root):
        raise DataError(f"{root} holds images but no class folders: give their labels as a CSV and lay them out "
                        f"by patient first: genaug data split {root} --labels LABELS.csv --to NEW_FOLDER "
                        "(genaug data split --help shows the columns it reads; --label-pattern reads labels that "
                        "the file names carry)")
    for required in ("train", "test"):
        if required not in split_dirs:
            # an unpacked download often wraps the data root in a folder of its own (chest_xray/)
            inner = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith((".", "__"))
                     and {"train", "test"} <= _subfolder_names(d)]
            hint = f"; {inner[0]} has both: give --data {inner[0]}" if inner else ""
            if required == "test" and "val" in split_dirs and not inner:
                hint = (f"; if {split_dirs['val'].name}/ holds patients that train/ does not, rename it test/ "
                        "(genaug carves its validation split from train/ by patient)")
            if not hint:   # found in session 85: 'test ' (a trailing space), Test_Set/ or chest_test/ beside train/
                near = [d.name for d in sorted(root.iterdir()) if d.is_dir() and required in d.name.lower()
                        and d not in split_dirs.values()]
                if near:
                    named = ", ".join(f"'{safe_name(n)}/'" for n in near[:3])
                    hint = f"; it holds {named}: if that is the {required} split, rename it {required}/"
            raise DataError(f"no '{required}' folder in {root} (expected ROOT/train/<CLASS>/ and ROOT/test/<CLASS>/)"
                            + hint)
    # found in session 73: test/ as a link to train/ (or a folder inside it) trained on the test images; the
    # provenance check compares paths, train/x and test/x, so only the duplicate note said so
    resolved = {split: d.resolve() for split, d in split_dirs.items()}
    for a, b in [("test", "train"), ("val", "train"), ("test", "val")]:
        if a not in resolved or b not in resolved:
            continue
        ra, rb = resolved[a], resolved[b]
        if ra == rb:
            said = f"the {a} folder {split_dirs[a]} and the {b} folder {split_dirs[b]} are one folder ({ra})"
        elif ra.is_relative_to(rb) or rb.is_relative_to(ra):
            (x, rx), (y, ry) = ((a, ra), (b, rb)) if ra.is_relative_to(rb) else ((b, rb), (a, ra))
            said = f"the {x} folder {split_dirs[x]} lies inside the {y} folder {split_dirs[y]} ({rx} in {ry})"
        else:
            continue
        raise DataError(f"{said}: its images would be trained on and tested on; give each split a folder of its own")
    classes = [(a, c, c.resolve()) for a, d in split_dirs.items() for c in sorted(d.iterdir())
               if c.is_dir() and not c.name.startswith(".")]
    for a, c, rc in classes:   # a class folder that links into another split: test/NORMAL -> ../train/NORMAL
        for b, rb in resolved.items():
            if b != a and rc.is_relative_to(rb):
                raise DataError(f"the class folder {c} of the {a} split is {rc}, in the {b} folder "
                                f"{split_dirs[b]}: its images would be trained on and tested on; give each "
                                "split a folder of its own")
    for i, (a, c, rc) in enumerate(classes):   # train/PNEUMONIA -> NORMAL: each image under both labels
        for b, c2, rc2 in classes[i + 1:]:
            if a == b and (rc.is_relative_to(rc2) or rc2.is_relative_to(rc)):
                raise DataError(f"the class folders {c} and {c2} are one folder, or one inside the other ({rc}, "
                                f"{rc2}): their images would carry both labels; give each class a folder of its own")
    return split_dirs


# names that say "nothing found": such a class is the negative one of two, whatever its place by name
NEGATIVE_CLASS_NAMES = {"normal", "negative", "healthy", "benign", "no finding", "no_finding", "nofinding",
                        "no-finding", "control", "controls", "0", "no", "false", "absent"}
# 'no tumor', 'non-COVID', 'not_fractured': a word apart, since nodule and nonunion are findings
NEGATED_NAME = re.compile(r"^(no|non|not)[\s_-]+\S")


def ordered_classes(classes: list[str], recorded: list[str] | None = None) -> list[str]:
    """The classes in the order genaug gives them their indices; of two, the second is the positive class, whose
    recall is the sensitivity and whose probability the threshold cuts. The order ``genaug data split --labels``
    recorded (its --class order) where it names these classes; else, of two classes, the one named as a negative
    finding (normal, negative, healthy, ...) first; else by name. Before session 85 always by name, so that of
    abnormal/ and normal/ the positive class was normal, and sensitivity was the recall of normal images."""
    classes = sorted(classes)
    if recorded and sorted(recorded) == classes:
        return list(recorded)
    negative = [c for c in classes if name_key(c) in NEGATIVE_CLASS_NAMES or NEGATED_NAME.match(name_key(c))]
    if len(classes) == 2 and len(negative) == 1:
        return negative + [c for c in classes if c != negative[0]]
    return classes


def recorded_classes(root: Path) -> list[str] | None:
    """The classes, in order, that ``genaug data split`` recorded in ``root``/split.json; None without one."""
    classes = (split_record(root) or {}).get("classes")
    return classes if isinstance(classes, list) and all(isinstance(c, str) for c in classes) else None


def refuse_unprintable_class_name(folder: Path) -> None:
    """A class folder's name goes into every table, plot and checkpoint: one whose bytes are not UTF-8 (Linux
    allows any) trained a whole benchmark cell before matplotlib failed to draw it, and a newline in one broke
    every table row it labels (both found in session 73)."""
    name = folder.name
    if safe_name(name) != name:   # it shows a byte that is not UTF-8 (held as a lone surrogate) as \xff
        fault = "is not named in UTF-8"
    elif control := [c for c in name if ord(c) < 32 or ord(c) == 127]:
        fault = f"has a control character ({control[0]!r}) in its name"
    else:
        return
    raise DataError(f"the class folder {safe_name(str(folder))} {fault}: a class name is written into reports, "
                    "plots and checkpoints; rename the folder (in every split)")


def refuse_classes_named_alike(folders: list[Path], where=lambda folder: folder.parent.name) -> None:
    """Two class folders whose names differ only in case or Unicode form (PNEUMONIA beside Pneumonia, from two
    sources merged; Neumonía composed beside Neumonía decomposed, as macOS writes it) would be two classes: in
    one split, a model that splits one class in two (found in session 75), across splits, a class missing
    from each. Each spelling is named with the splits (``where``) that hold it."""
    spellings: dict[str, dict[str, set[str]]] = {}
    for folder in folders:
        spellings.setdefault(name_key(folder.name), {}).setdefault(folder.name, set()).add(where(folder))
    for alike in spellings.values():
        if len(alike) > 1:
            (a, in_a), (b, in_b) = sorted(alike.items())[:2]
            how = how_names_differ(a, b)
            fix = ("name each class's folder alike in every split (merge them, or rename one if they are two classes)"
                   if "Unicode" not in how else "rename the folders so every split spells each class in the "
                   "same bytes (e.g. convmv -f utf8 -t utf8 --nfc -r --notest on the data folder)")
            raise DataError(f"the class folders {shown_name(a)} (in {', '.join(sorted(in_a))}) and {shown_name(b)} "
                            f"(in {', '.join(sorted(in_b))}) {how}: genaug would read them as two classes; {fix}")


def class_folder_names(split_dirs: dict[str, Path]) -> list[str]:
    """The class folders found in any split folder, sorted (some may hold no image). Hidden folders are
    no class: Jupyter leaves .ipynb_checkpoints/ wherever a notebook opened a file, and it had made a class."""
    folders = [c for d in split_dirs.values() for c in sorted(d.iterdir())
               if c.is_dir() and not c.name.startswith(".")]
    for c in folders:
        refuse_unprintable_class_name(c)
    return sorted({c.name for c in folders})


def scan_folder(root: Path, task: str = "binary"):
    """Return (classes, {split: [(rel_path, class_name)]}, skipped) without decoding anything."""
    root = Path(root)
    split_dirs = split_folders(root)
    folder_classes = class_folder_names(split_dirs)
    if not folder_classes:
        raise DataError(f"no class folders in {split_dirs['train']} (expected e.g. NORMAL/ and PNEUMONIA/)")
    skipped: list[tuple[str, str]] = []
    items: dict[str, list[tuple[str, str]]] = {}
    holding: list[Path] = []   # the class folders that hold images
    for split, sdir in split_dirs.items():
        items[split] = []
        for cls in folder_classes:
            cdir = sdir / cls
            if not cdir.is_dir():
                continue
            folder = class_image_folder(cdir)
            listed = _list_class_dir(folder, skipped, root)
            skipped += beside_image_folder(cdir, folder, root)
            if listed:
                holding.append(cdir)
            for rel in listed:
                if task == "3class":
                    label = three_class_label(cls, Path(rel).name)
                    if label is None:
                        skipped.append((safe_name(rel), "3class: file name says neither bacteria nor virus"))
                        continue
                else:
                    label = cls
                items[split].append((rel, label))
    # found in session 84: an image left in train/ itself, or beside train/ and test/, went unread without a word
    for folder, where in [(root, "beside the split folders"),
                          *[(d, f"in {d.name}/ outside its class folders") for d in split_dirs.values()]]:
        for rel in _loose_images(folder, root):
            skipped.append((safe_name(rel), f"an image {where}: not read (a class's images go in <split>/<CLASS>/)"))
    refuse_classes_named_alike(holding)   # an empty leftover folder beside its class is ignored, as below
    used = {label for entries in items.values() for _, label in entries}
    empty = [c for c in folder_classes if task != "3class" and c not in used]
    for c in empty:
        skipped.append((c, "class folder holds no images in any split; ignored"))
    classes = THREE_CLASSES if task == "3class" else ordered_classes([c for c in folder_classes if c in used],
                                                                      recorded_classes(root))
    for split in ("val", "test"):   # found in session 55: genaug's own synthetic images, split as if real
        if made := synthetic_named([rel for rel, _ in items.get(split, [])]):
            raise DataError(f"the {split} split of {root} holds {_images(len(made))} named as genaug's synthetic "
                            f"X-rays (e.g. {safe_name(made[0])}): validation and test images must be real X-rays; move "
                            f"them out ({TO_TRAINING})")
    for split in ("train", "test"):
        if not items[split]:
            nested = [d for c in folder_classes if (split_dirs[split] / c).is_dir()
                      for d in sorted((split_dirs[split] / c).iterdir())[:20] if d.is_dir() and holds_images(d)]
            raise DataError(f"split '{split}' has no images in {split_dirs[split]} "
                            f"({SUPPORTED_FILES})"
                            + (f"; its class folders hold folders of images ({nested[0].relative_to(root)}/): if each "
                               f"holds one patient's images, lay them out by patient first: genaug data split {root} "
                               "--patient-folders --to NEW_FOLDER" if nested else ""))
    if len(classes) < 2:   # else training runs and fails deep in the metrics
        nested = sorted({sub.name for c in empty for d in split_dirs.values() if (d / c).is_dir()
                         for sub in (d / c).iterdir() if sub.is_dir()})
        raise DataError(f"only one class has images in {root} ({', '.join(classes) or 'none'}); a classifier needs "
                        f"two or more" + (f": {', '.join(empty)} holds folders ({', '.join(nested[:4])}), not images; "
                                          f"put each class's images straight in <split>/<CLASS>/" if nested else ""))
    return classes, items, skipped


def load_folder_split(root: Path, entries: list[tuple[str, str]], classes: list[str], size: int,
                      cache_dir: Path | None, skipped: list[tuple[str, str]], desc: str,
                      resize: str = "squash") -> ImageSet:
    rels = [r for r, _ in entries]
    images, ok, reasons = decode_cached(root, rels, size, cache_dir, desc=desc, resize=resize)
    for i, why in sorted(reasons.items()):
        skipped.append((safe_name(rels[i]), why))
    keep = np.flatnonzero(ok)
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[entries[i][1]] for i in keep], dtype=np.int64)
    # Keep the memmap when nothing was skipped: later epochs read pages, not a copy.
    imgs = images if len(keep) == len(rels) else np.asarray(images[keep])
    named = _named_by_patient(str(root))   # once, not per file
    return ImageSet(imgs, labels, [patient_of(root, rels[i], named) for i in keep], [rels[i] for i in keep])


def patient_of(root: Path, rel: str, named: bool | None = None) -> str:
    """The patient a name genaug gave (<patient>__<file>, in a folder laid out from a labels CSV's patient
    column; ``named``: whether ``root`` is one, looked up when None), else a DICOM file's PatientID where its
    header has one, else the patient its file name gives."""
    if named is None:
        named = _named_by_patient(str(root))
    pid = labelled_patient(rel) if named else None
    if pid is None and is_dicom(Path(root) / rel):
        pid = dicom_patient(str(Path(root) / rel))
    return pid or patient_id(rel)


def split_record(root: Path | str) -> dict | None:
    """ROOT/split.json as ``genaug data split`` wrote it, or None."""
    try:
        made = json.loads((Path(root) / "split.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return made if isinstance(made, dict) else None


def _named_by_patient(root: str) -> bool:
    """Whether ``root`` is a folder ``genaug data split --labels --patient-column`` (or ``--patient-folders``, or
    ``--patient-pattern``) laid out (its split.json says so), whose files are named <patient>__<file>."""
    made = split_record(root) or {}
    return bool((made.get("labels") or {}).get("patient_column")) or made.get("patient_folders") is True or \
        bool(made.get("patient_pattern"))


def unnamed_patients(patients: list[str], paths: list[str]) -> int:
    """How many images count as patients of their own, for want of a patient in the name or header (a DICOM
    file named by the PatientID its header carries, as the RSNA pneumonia challenge's are, has one)."""
    return sum(pid == file_as_patient(p) for pid, p in zip(patients, paths))


def holds_images(folder: Path, look_at: int = 50) -> bool:
    """Whether ``folder`` itself holds an image file, among the first ``look_at`` files listed (a folder of
    many thousands is not read through to say so; -1: all of them)."""
    try:
        for i, entry in enumerate(os.scandir(folder)):
            if 0 <= look_at <= i:
                break
            if entry.is_file() and not entry.name.startswith(".") and is_image_file(entry.path):
                return True
    except OSError:
        pass
    return False


def _classes_of_patient_folders(root: Path) -> list[str]:
    """The folders of ``root`` that hold no image themselves but folders that do (ROOT/<CLASS>/<PATIENT>/), where
    ``root`` has two or more such folders and no split folder; else []."""
    try:
        folders = [e for e in sorted(Path(root).iterdir()) if e.is_dir() and not e.name.startswith(".")]
        if any(d.name.lower() in SPLIT_NAMES for d in folders):
            return []
        found = [d.name for d in folders if not holds_images(d)
                 and any(holds_images(e) for e in list(d.iterdir())[:20] if e.is_dir() and not e.name.startswith("."))]
    except OSError:
        return []
    return found if len(found) >= 2 else []


def flat_class_folders(root: Path) -> list[str]:
    """The class folders of a root that holds ROOT/<CLASS>/<image> with no train/ or test/ folder."""
    try:
        subdirs = [e for e in sorted(Path(root).iterdir()) if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return []
    if any(d.name.lower() in SPLIT_NAMES for d in subdirs):
        return []
    classes = [d for d in subdirs if holds_images(class_image_folder(d), look_at=-1)]
    for d in classes:
        refuse_unprintable_class_name(d)
    refuse_classes_named_alike(classes, where=lambda folder: str(folder.parent))
    return [d.name for d in classes]


def files_outside_mask_folders(root: str | Path):
    """Each file below ``root`` as (folder, name), in order, hidden folders (copies in .ipynb_checkpoints/) and
    folders named as masks (`is_mask_folder`) not walked into."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not is_mask_folder(d))
        for name in sorted(files):
            yield folder, name


def path_pattern(pattern: str, flag: str, example: str):
    """``pattern`` compiled, as a function of a path ('/'-separated) to the text it finds there: its first group,
    else its whole match, "" where it finds none; one line naming ``flag`` (and ``example``, a pattern and what it
    reads) where ``pattern`` is no regular expression."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise DataError(f"{flag} '{pattern}' is not a regular expression ({exc}); e.g. {example}") from None

    def found(rel: str) -> str:
        m = compiled.search(rel)
        return (m.group(1) if m and compiled.groups else m.group(0) if m else None) or ""
    return found


def patients_by_pattern(pattern: str, rels: list[str]) -> list[str]:
    """Each file's patient, read from its path relative to the source (``rels``, '/'-separated) by the regular
    expression ``pattern`` (``data split --patient-pattern``): its first group, else its whole match, searched
    anywhere in the path. One line where the pattern is no regular expression, or leaves a file without a
    patient: a pattern meant to name every patient that misses some would split those files as patients of their
    own. A '/' or '__' in a patient is made '_', as the linked name <patient>__<file> is read back."""
    patient_in = path_pattern(pattern, "--patient-pattern",
                              "'^(patient\\d+)_' reads patient17 from patient17_view2.png")
    found = [re.sub("_{2,}", "_", patient_in(Path(rel).as_posix()).replace("/", "_").replace("\\", "_")).strip()
             for rel in rels]
    if missed := [rel for rel, pid in zip(rels, found) if not pid]:
        raise DataError(f"--patient-pattern '{pattern}' finds no patient in {_images(len(missed))} of "
                        f"{len(rels)} (e.g. {safe_name(Path(missed[0]).as_posix())}; it is searched in each path "
                        "relative to SOURCE): give a pattern that matches every file")
    return found


def write_patient_split(source: Path, dest: Path, test_fraction: float = 0.2, seed: int = 0,
                        patient_folders: bool = False, patient_pattern: str | None = None) -> dict:
    """Lay ``source`` (ROOT/<CLASS>/<image>) out as ``dest``/{train,test}/<CLASS>/<image>, whole patients
    in one split, about ``test_fraction`` of each class's images in test.

    With ``patient_folders``, ``source`` is ROOT/<CLASS>/<PATIENT>/<image> (images may lie deeper, in study
    folders): each image below a patient's folder is linked as <CLASS>/<PATIENT>__<its path there made flat>,
    and split.json says so, so that every later command reads the patient from the name, as after
    ``--labels --patient-column``.

    Files are hard-linked where the file system allows, else copied; ``source`` is only read, and
    ``dest`` must not exist (it appears whole, renamed from a temporary folder, or not at all). The split
    is written to ``dest``/split.json so that it can be checked and redone: the same source, fraction
    and seed give the same split."""
    source, dest = Path(source), Path(dest)
    if patient_folders and source.is_dir() and _subfolder_names(source):
        return _lay_out_given_splits(source, dest)
    classes = ordered_classes(_classes_to_split(source, dest, test_fraction, patient_folders))
    skipped: list[tuple[str, str]] = []
    rels, labels, patients, targets = [], [], [], []
    for k, cls in enumerate(classes):
        if patient_folders:
            if not (images := _patient_folder_images(source, cls, skipped)):
                raise DataError(f"the patient folders of {source / cls} hold no images ({SUPPORTED_FILES})")
            for rel, patient, below in images:
                rels.append(rel)
                labels.append(k)
                patients.append(patient)
                targets.append(f"{cls}/{patient}__{below}")
            continue
        folder = class_image_folder(source / cls)
        skipped += beside_image_folder(source / cls, folder, source)
        for rel in _list_class_dir(folder, skipped, source):
            rels.append(rel)
            labels.append(k)
            targets.append(f"{cls}/{Path(rel).name}")   # <CLASS>/images/x.png is linked as <CLASS>/x.png
            patients.append(patient_of(source, rel, named=False))   # class folders: no split.json to read per file
    extra = {"patient_folders": True} if patient_folders else None
    if patient_pattern:
        patients = patients_by_pattern(patient_pattern, rels)
        targets = [f"{t.split('/')[0]}/{pid}__{Path(t).name}" for t, pid in zip(targets, patients)]
        extra = {"patient_pattern": patient_pattern}
    refuse_clashing_targets(targets)   # patient_a/b_c.png beside patient_a/b/c.png, say
    return write_split_folder(source, dest, classes, rels, targets, labels, patients, skipped, test_fraction, seed,
                              unnamed=0 if patient_folders or patient_pattern else unnamed_patients(patients, rels),
                              extra=extra)


def refuse_clashing_targets(targets: list[str], fix: str = "rename one of them", what: str = "files") -> None:
    """One line where two files would be linked under one name in a split folder (the second link would fail)."""
    if len(set(targets)) < len(targets):
        dup = Counter(targets).most_common(1)[0][0]
        raise DataError(f"two {what} would both be linked as {dup}; {fix}")


def _lay_out_given_splits(source: Path, dest: Path) -> dict:
    """``source``/<split>/<CLASS>/<PATIENT>/... laid out as ``dest``/<split>/<CLASS>/<PATIENT>__<path made flat>,
    each split kept as given: data that comes split, a folder per patient, read by patient like any other."""
    check_split_arguments(source, dest, 0.5)
    split_dirs = split_folders(source)
    classes = ordered_classes(class_folder_names(split_dirs))
    skipped: list[tuple[str, str]] = []
    rels, labels, patients, targets, given = [], [], [], [], {}
    for split, sdir in sorted(split_dirs.items(), key=lambda kv: ("train", "val", "test").index(kv[0])):
        given[split] = []
        for k, cls in enumerate(classes):
            if not (sdir / cls).is_dir():
                continue
            for rel, patient, below in _patient_folder_images(source, f"{sdir.name}/{cls}", skipped):
                given[split].append(len(rels))
                rels.append(rel)
                labels.append(k)
                patients.append(patient)
                targets.append(f"{cls}/{patient}__{below}")
        if not given[split]:
            raise DataError(f"the patient folders of {sdir} hold no images ({SUPPORTED_FILES})")
    for idx in given.values():
        refuse_clashing_targets([targets[i] for i in idx])
    return write_split_folder(source, dest, classes, rels, targets, labels, patients, skipped, 0.0, 0, unnamed=0,
                              extra={"patient_folders": True}, given=given)


def _patient_folder_images(source: Path, cls: str, skipped: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(path relative to ``source``, patient, path below the patient's folder made flat) of each image below
    ``source``/``cls``/<PATIENT>/, at any depth; images straight in the class folder, files that are no image
    and links to folders (one may lead back up) are listed in ``skipped``."""
    found = []
    refuse_image_folders_as_patients(source / cls)
    for rel in _loose_images(source / cls, source):
        skipped.append((safe_name(rel), "an image outside the patient folders: not read (with --patient-folders "
                                        "a class's images go in <CLASS>/<PATIENT>/)"))
    for folder in sorted((source / cls).iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        patient = folder.name.replace("__", "_")   # a name is cut at its first '__' when read back
        for here, dirs, _ in os.walk(folder):
            said: list[tuple[str, str]] = []
            found += [(rel, patient, Path(rel).relative_to(folder.relative_to(source)).as_posix().replace("/", "_"))
                      for rel in _list_class_dir(Path(here), said, source)]
            for d in dirs:
                if (Path(here) / d).is_symlink():
                    said.append((safe_name(str((Path(here) / d).relative_to(source))),
                                 "a link to a folder: not followed"))
            skipped += [(rel, why) for rel, why in said if not why.startswith("a sub-folder")]
            skipped += [(safe_name(str((Path(here) / d).relative_to(source))), MASKS_NOT_READ)
                        for d in sorted(dirs) if is_mask_folder(d)]
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not is_mask_folder(d))
    return found


def refuse_image_folders_as_patients(cdir: Path) -> None:
    """One line where the folders of a class folder given as patient folders are its images/ and masks/ (the
    COVID-19 Radiography Database's layout), or a masks/ beside the patients': with --patient-folders each would
    have been one patient, the masks read as X-rays of their class (found in session 86)."""
    names = sorted(d.name for d in cdir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if any(n.lower() in IMAGE_FOLDER_NAMES for n in names):
        held = ", ".join(f"{safe_name(n)}/" for n in names[:4])
        raise DataError(f"{safe_name(str(cdir))} holds {held}: folders of images and masks, not one folder per "
                        "patient; give it without --patient-folders, which reads each class's images/ and leaves its "
                        "masks aside")
    if masks := [n for n in names if is_mask_folder(n)]:
        raise DataError(f"{safe_name(str(cdir / masks[0]))} is named as a folder of masks, not of one patient's "
                        "X-rays: move it out of the class folder (with --patient-folders each folder there is a "
                        "patient)")


HEAD_BYTES = 1 << 16


def _sha1(path: Path, limit: int = -1) -> str:
    with open(path, "rb") as f:
        return hashlib.sha1(f.read(limit)).hexdigest()


def identical_file_keys(source: Path, rels: list[str]) -> list[str | None]:
    """A key per file, equal for files with identical bytes, None for a file that no other matches (or that
    cannot be read). Only files that share their size with another are read, first their first 64 KiB and in
    full only where those match too: a collection of distinct X-rays is not read whole to find none."""
    sizes: list[int | None] = []
    for r in rels:
        try:
            sizes.append(os.stat(source / r).st_size)
        except OSError:
            sizes.append(None)
    heads: dict[int, tuple] = {}
    same_size = Counter(sizes)
    for i, n in enumerate(sizes):
        if n and same_size[n] > 1:   # empty files (a download cut off) are no image, so no copy of one
            try:
                heads[i] = (n, _sha1(source / rels[i], HEAD_BYTES))
            except OSError:
                pass
    shared = Counter(heads.values())
    keys: list[str | None] = [None] * len(rels)
    for i, head in heads.items():
        if shared[head] > 1:
            try:
                keys[i] = head[1] if head[0] <= HEAD_BYTES else _sha1(source / rels[i])
            except OSError:
                pass
    return keys


def joined_by_identical_files(source: Path, rels: list[str], patients: list[str]) -> tuple[list[str], dict]:
    """The patients to split by (those that hold one identical file joined as one), and what was joined: how
    many patient ids, and a few of the files that joined them."""
    keys = identical_file_keys(source, rels)
    groups = join_patients_sharing_an_image(patients, keys)
    examples = [[rels[i] for i in idx] for idx in groups_of_equal_keys(keys) if len({patients[i] for i in idx}) > 1]
    return groups, {"patients": len(set(patients)) - len(set(groups)), "examples": examples[:5]}


def write_split_folder(source: Path, dest: Path, classes: list[str], rels: list[str], targets: list[str],
                       labels: list[int], patients: list[str], skipped: list[tuple[str, str]], test_fraction: float,
                       seed: int, unnamed: int, extra: dict | None = None,
                       given: dict[str, list[int]] | None = None) -> dict:
    """Split the images ``source``/``rels`` by ``patients`` and link each to ``dest``/<split>/``targets[i]``
    (<CLASS>/<name>), all at once: ``dest`` appears whole, renamed from a temporary folder, or not at all.
    ``given`` ({split: indices}) keeps the source's own splits instead (no fraction, no seed)."""
    check_real_images(source, rels)
    if given is not None:
        sides, joined = given, {"patients": 0, "examples": []}
    else:
        # patients that hold one identical file go to one side: a copy in test is an image trained on
        groups, joined = joined_by_identical_files(source, rels, patients)
        train_idx, test_idx = split_by_patient(np.array(labels), groups, test_fraction, seed)
        check_both_splits_hold_each_class(classes, labels, groups, train_idx, test_idx, test_fraction)
        sides = {"train": train_idx, "test": test_idx}
    dest.parent.mkdir(parents=True, exist_ok=True)
    # a folder of its own: two splits started at once into one --to must not share (and delete) it
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)   # mkdtemp's folder is private; the data folder it becomes need not be
    try:
        for split, idx in sides.items():
            for i in idx:
                target = tmp / split / targets[i]
                target.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(source / rels[i], target)
        summary = {
            "source": str(source.resolve()), **(extra or {}),
            **({"splits_as_given": True} if given is not None else {"test_fraction": test_fraction, "seed": seed}),
            "classes": classes,
            "images": {s: {c: int(sum(labels[i] == k for i in idx)) for k, c in enumerate(classes)}
                       for s, idx in sides.items()},
            "patients": {s: len({patients[i] for i in idx}) for s, idx in sides.items()},
            "files_without_patient_id": unnamed,
            "patients_joined_by_identical_files": joined,
            "skipped": [{"path": p, "reason": why} for p, why in skipped],
            "test_files": sorted(targets[i] for i in sides["test"]),
        }
        (tmp / "split.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        try:
            os.replace(tmp, dest)
        except OSError:
            if dest.exists():
                raise DataError(f"{dest} appeared while the split was written (another genaug data split?); "
                                "it was left as it is") from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def check_real_images(source: Path, rels: list[str]) -> None:
    """Refuse to split images genaug made into train and test, where its synthetic X-rays would be tested on as
    real ones. Found in session 55: `genaug data split RUN/synthetic --to D` wrote D, and a benchmark on D tested
    on synthetic images, as the reports genaug grew from did."""
    if around := genaug_run_around(source):
        run, command = around
        made = "synthetic X-rays" if command in ("gan", "gan sample") else "plots, overlays and samples"
        raise DataError(f"{source} lies in the genaug {command} run {run}: its images are genaug's own ({made}), "
                        f"not X-rays to split into train and test; {TO_TRAINING}")
    if made := synthetic_named(rels):
        raise DataError(f"{_images(len(made))} in {source} {'is' if len(made) == 1 else 'are'} named as genaug's "
                        f"synthetic X-rays (e.g. {safe_name(made[0])}): split real X-rays only; {TO_TRAINING}")


def check_both_splits_hold_each_class(classes: list[str], labels: list[int], patients: list[str], train_idx,
                                      test_idx, test_fraction: float) -> None:
    """A split that leaves a class without training or test images is refused before anything is written:
    `--test-fraction 0.9` on a small folder wrote a train split of 0 images."""
    if not (missing := classes_missing_from_a_side(classes, labels, patients, train_idx, test_idx)):
        return
    name, n_patients, not_in_train = missing[0]
    if n_patients < 2:
        raise DataError(f"class {name} has images of {n_patients} patient only, who cannot be in both train "
                        "and test: add images of more patients of it")
    which, then = ("training", "a smaller") if not_in_train else ("test", "a larger")
    raise DataError(f"--test-fraction {test_fraction:g} leaves class {name} no {which} image (it has "
                    f"{n_patients} patients): give {then} --test-fraction")


def file_in_the_way(folder: str | Path) -> Path | None:
    """The file at ``folder`` or at the nearest of its parents that exists, where that is no folder: then
    ``folder`` cannot be made, and the OS would say only "Not a directory" or "File exists" of a path
    below it (``genaug archive --to`` a file, ``report --out FILE/r.md``: found in session 56)."""
    nearest = next((p for p in (Path(folder), *Path(folder).parents) if p.exists()), None)
    return nearest if nearest is not None and not nearest.is_dir() else None


def check_split_arguments(source: Path, dest: Path, test_fraction: float) -> None:
    """One line for a fraction out of range, or a ``dest`` that exists, lies below a file or inside ``source``."""
    if not 0 < test_fraction < 1:
        raise DataError(f"--test-fraction {test_fraction:g} must be between 0 and 1 (e.g. 0.2)")
    if dest.exists() or dest.is_symlink():
        raise DataError(f"{dest} already exists; name a new folder (nothing is ever written over)")
    if blocker := file_in_the_way(dest.parent):   # it said "File exists: <that file>" (session 56)
        raise DataError(f"--to {dest}: {blocker} is a file, not a folder; name a new folder in a folder")
    if dest.resolve().is_relative_to(source.resolve()):
        raise DataError(f"{dest} lies inside {source}; name a folder outside it")


def _classes_to_split(source: Path, dest: Path, test_fraction: float, patient_folders: bool = False) -> list[str]:
    """The class folders ``write_patient_split`` lays out, once its arguments are checked."""
    if not source.is_dir():
        raise DataError(f"{source} is not a folder (expected ROOT/<CLASS>/*.jpeg)")
    check_split_arguments(source, dest, test_fraction)
    if patient_folders:
        return _patient_folder_classes(source)
    classes = flat_class_folders(source)
    if not classes and holds_images(source):   # found in session 86: the Shenzhen set's CXR_png/, labels in names
        raise DataError(f"{source} holds images but no class folders: give their labels as a table (--labels "
                        "LABELS.csv), or, where each image's name carries its label, as a pattern (--label-pattern, "
                        "e.g. '_(\\d)\\.png$' for CHNCXR_0001_1.png)")
    if not classes:
        raise DataError(f"{source} holds no class folders of images (expected ROOT/<CLASS>/*.jpeg; a root that "
                        "already has train/ and test/ needs no split)")
    folders = sorted(d.name for d in source.iterdir() if d.is_dir() and not d.name.startswith("."))
    if empty := [c for c in folders if c not in classes]:
        inner = sorted(d.name for d in (source / empty[0]).iterdir() if d.is_dir())
        raise DataError(f"class folder {source / empty[0]} holds no images directly"
                        + (f" (it holds folders: {', '.join(inner[:4])})" if inner else "")
                        + f"; put each class's images straight in {source}/<CLASS>/, or move the folder out"
                        + (", or, if each of its folders holds one patient's images, give --patient-folders"
                           if inner else ""))
    if len(classes) < 2:
        raise DataError(f"{source} holds one class folder ({classes[0]}); a classifier needs two or more")
    return classes


def _patient_folder_classes(source: Path) -> list[str]:
    """The class folders of ROOT/<CLASS>/<PATIENT>/: every folder of ``source`` that is not hidden, each
    holding at least one folder."""
    folders = [d for d in sorted(source.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    for d in folders:
        refuse_unprintable_class_name(d)
    refuse_classes_named_alike(folders, where=lambda folder: str(folder.parent))
    if bare := [d for d in folders if not any(e.is_dir() and not e.name.startswith(".") for e in d.iterdir())]:
        raise DataError(f"class folder {bare[0]} holds no patient folders; --patient-folders reads "
                        f"{source}/<CLASS>/<PATIENT>/ (without it, a class's images lie straight in {source}/<CLASS>/)")
    if len(folders) < 2:
        held = f"one class folder ({folders[0].name})" if folders else "no class folders"
        raise DataError(f"{source} holds {held}; a classifier needs two or more")
    return [d.name for d in folders]


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        # to the file itself: Linux's link() links a symbolic link as such, and a relative one would then
        # point nowhere from its new folder (os.link's follow_symlinks does not change that here)
        os.link(os.path.realpath(src), dst)
    except OSError:      # another file system, or one without hard links
        shutil.copy2(src, dst)
