"""Class labels from a CSV file, for data that comes as one folder of images and a table of labels (the
RSNA pneumonia challenge, NIH ChestX-ray14, a hospital export): ``genaug data split --labels``."""
from __future__ import annotations

import codecs
import csv
import functools
import io
import math
import os
import unicodedata
from collections import Counter
from pathlib import Path

from genaug.data.decode import IMAGE_EXTENSIONS, dicom_patient, is_dicom, is_image_file, safe_name
from genaug.data.folder import (check_split_arguments, files_outside_mask_folders, ordered_classes, path_pattern,
                                patients_by_pattern, refuse_clashing_targets, write_split_folder)
from genaug.data.splits import file_as_patient, patient_id
from genaug.config import closest_name
from genaug.errors import DataError
from genaug.inventory import counted


def parse_class_values(specs: list[str]) -> dict[str, str]:
    """``["NORMAL=0", "PNEUMONIA=1,2"]`` as {label value: class}; ``[]`` keeps each value as its class."""
    values: dict[str, str] = {}
    for spec in specs:
        name, sep, listed = spec.partition("=")
        name = name.strip()
        if not sep or not name or not listed.strip():
            raise DataError(f"--class {spec!r}: give NAME=VALUE[,VALUE...], e.g. --class PNEUMONIA=1")
        for value in (v.strip() for v in listed.split(",")):
            if values.get(value, name) != name:
                raise DataError(f"--class: label value {value!r} is given to both {values[value]} and {name}")
            values[value] = name
    return values


def _valid_class(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


def _delimiter(header: str) -> str:
    """The separator of a labels file, from its header line: a comma, or the semicolon of a spreadsheet
    saved in a locale whose decimal mark is the comma, or a tab (.tsv); a tie goes to the comma."""
    return max((",", ";", "\t"), key=header.count)


def _labels_text(csv_path: Path) -> str:
    """The labels file as text: UTF-8 (a byte-order mark dropped, as Excel writes one), or UTF-16 where it
    starts with its byte-order mark, as Excel saves "Unicode Text"; anything else is refused in one line."""
    raw = Path(csv_path).read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:   # cut short: an odd number of bytes, half a character pair
            raise DataError(f"the labels file {csv_path} starts as UTF-16 text but breaks off at byte {exc.start}: "
                            "save it again, as UTF-8") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # found in session 75: Excel saves "CSV" in the Windows code page, and the codec's own words ended
        # the command; the byte and line say where
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"the labels file {csv_path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}), "
                        "as a spreadsheet saves CSV in a Windows code page: save it as UTF-8 (Excel: Save As, CSV "
                        "UTF-8)") from None


def read_labels(csv_path: Path, image_column: str, label_column: str, patient_column: str | None) -> list[dict]:
    """The CSV's rows as {image, label, patient}; one clear error for a missing file or column."""
    try:
        text = _labels_text(csv_path)
        header, _, rest = text.partition("\n")
        if (hint := header.rstrip("\r")).startswith("sep=") and len(hint) == 5:
            # Excel's hint line ('sep=;'), which some exports write above the header (found in session 75)
            separator, text = hint[4], rest
        else:
            separator = _delimiter(header)
        # skipinitialspace: "file, label" names the column 'label', and a quoted field after the space keeps
        # its comma (found in session 75)
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=separator, skipinitialspace=True)
        reader.fieldnames = columns = [c.strip() for c in reader.fieldnames or []]
        wanted = [c for c in (image_column, label_column, patient_column) if c]
        if missing := [c for c in wanted if c not in columns]:
            by_case = {c.lower(): c for c in columns}   # 'File' for the column 'file'
            near = by_case.get(missing[0].lower()) or closest_name(missing[0], columns)
            raise DataError(f"{csv_path} has no column {', '.join(map(repr, missing))}"
                            + (f"; did you mean {near!r}?" if near else "")
                            + f" (its columns: {', '.join(columns[:12]) or 'none'}); name them with "
                            "--image-column, --label-column and --patient-column")
        return [{"image": (row.get(image_column) or "").strip(), "label": (row.get(label_column) or "").strip(),
                 "patient": (row.get(patient_column) or "").strip() if patient_column else ""}
                for row in reader]
    except (OSError, csv.Error) as exc:
        raise DataError(f"cannot read the labels file {csv_path}: {exc}") from None


def _find_image(images: Path, listed: str, composed=None, by_name=None) -> str | None:
    """The file ``listed`` names under ``images``, relative to it: as written, or with an image extension
    added (RSNA lists patientId, its files are <patientId>.dcm), or in the other Unicode form: ``composed()``
    maps each file's path, composed (NFC), to its path on disk (None where two files share it); it is called
    only for a name not found as written that holds a letter beyond ASCII. A bare file name not found at the
    top is looked up in the folders below: ``by_name()`` maps each file's name, composed, to its path (None
    where two files bear it), called only then."""
    # absolute, so that a listed absolute path inside the folder is found whether SOURCE was given relative
    # or absolute (it was found only for an absolute SOURCE: found in session 67)
    root = os.path.abspath(images)
    listed = listed.replace("\\", "/")   # a table written on Windows
    for candidate in [listed] + [listed + ext for ext in IMAGE_EXTENSIONS]:
        path = os.path.normpath(os.path.join(root, candidate))
        if path.startswith(root + os.sep) and os.path.isfile(path):   # no '../' out of the folder
            return os.path.relpath(path, root)
    if by_name is not None and "/" not in listed:
        # found in session 86: NIH ChestX-ray14 lists '00000001_000.png', its files lie in images_001/images/
        # to images_012/images/, and every row was "a file not under" the folder that holds them all
        for candidate in [listed] + [listed + ext for ext in IMAGE_EXTENSIONS]:
            if found := by_name().get(unicodedata.normalize("NFC", candidate)):
                return found
    if composed is None or listed.isascii():
        return None
    # found in session 75: macOS names files decomposed (NFD), a table typed or exported elsewhere lists them
    # composed (NFC); they print alike, and every such file was "not found under the images"
    by_form = composed()
    for candidate in [listed] + [listed + ext for ext in IMAGE_EXTENSIONS]:
        rel = os.path.relpath(os.path.normpath(os.path.join(root, candidate)), root)
        if found := by_form.get(unicodedata.normalize("NFC", rel)):
            return found
    return None


def _files_by_composed_path(root: str) -> dict[str, str | None]:
    by_form: dict[str, str | None] = {}
    for folder, _, files in os.walk(root):
        for name in files:
            rel = os.path.relpath(os.path.join(folder, name), root)
            key = unicodedata.normalize("NFC", rel)
            by_form[key] = None if key in by_form else rel   # two files one name composed: neither is guessed
    return by_form


def _files_by_name(root: str) -> dict[str, str | None]:
    """Each image file's name under ``root``, composed (NFC), to its path relative to ``root``; None where two
    files bear one name, which is not guessed. Hidden folders (copies in .ipynb_checkpoints/) and folders named
    as masks (Shenzhen's mask/ holds a mask of each X-ray's name) are not looked in."""
    by_name: dict[str, str | None] = {}
    for folder, name in files_outside_mask_folders(root):
        key = unicodedata.normalize("NFC", name)
        by_name[key] = None if key in by_name else os.path.relpath(os.path.join(folder, name), root)
    return by_name


def _not_found_reason(images: Path, listed: str, by_name=None) -> str:
    """Why a listed file was not taken: missing, or a file that lies outside the folder (a '../' path, or an
    absolute one elsewhere), which the user can mend by giving the folder above it as SOURCE."""
    path = os.path.join(os.path.abspath(images), listed.replace("\\", "/"))
    if os.path.isfile(path):
        return "listed in the labels file, outside the images folder (give a SOURCE that holds it)"
    if by_name is not None and "/" not in listed and unicodedata.normalize("NFC", listed) in by_name():
        return "listed by its name alone, which several files under the images bear: list its path"
    return "listed in the labels file, not found under the images"


def _link_name(rel: str) -> str:
    """The name a listed file is linked by: its own where that names its patient (Kermany, NIH), else its
    path made flat, which keeps the patient folders of CheXpert (patient00001/study1/view1_frontal.jpg)
    and MIMIC-CXR (p10/p10000032/s50414267/...) and tells apart files named alike in several folders."""
    name = os.path.basename(rel)
    if patient_id(name) != file_as_patient(name):
        return name
    return rel.replace("/", "_").replace("\\", "_")


def _as_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _class_named(value: str, values: dict[str, str], numbers: dict[float, str]) -> str | None:
    """The class ``--class`` gives ``value``: as written, or by its number. pandas writes an integer column
    that holds a blank as floats, so a table's 1.0 is the 1 of --class PNEUMONIA=1 (found in session 75: no
    row was taken)."""
    if value in values:
        return values[value]
    number = _as_number(value)
    return numbers.get(number) if number is not None else None


def _match_rows(rows: list[dict], images: Path, values: dict, separator: str | None):
    """The labels file's rows matched to files under ``images``: ({file: (class, patient)}, skipped,
    label values no class names, files missing, files given two classes, rows lacking an image or label)."""
    skipped: list[tuple[str, str]] = []
    other_values: Counter = Counter()
    found: dict[str, tuple[str, str]] = {}   # file -> (class, patient)
    conflicts: set[str] = set()
    missing = 0
    blank = 0
    # the folder's files by their path composed: listed once, on the first name that needs it
    composed = functools.cache(lambda: _files_by_composed_path(os.path.abspath(images)))
    by_name = functools.cache(lambda: _files_by_name(os.path.abspath(images)))
    numbers = {n: c for v, c in values.items() if (n := _as_number(v)) is not None}
    for row in rows:
        if not row["image"] or not row["label"]:
            blank += 1
            continue
        # NIH ChestX-ray14 lists findings as 'Effusion|Pneumonia': with a separator, the class whose
        # values are among them
        named = [v.strip() for v in row["label"].split(separator)] if separator else [row["label"]]
        matched = sorted({c for v in named if (c := _class_named(v, values, numbers))} if values else set(named))
        if not matched:
            other_values[row["label"]] += 1
            continue
        for cls in matched:
            if not _valid_class(cls):
                raise DataError(f"label {cls!r} cannot name a class folder; map it with --class NAME={cls}")
        rel = _find_image(images, row["image"], composed, by_name)
        if rel is None:
            missing += 1
            if missing <= 20:
                skipped.append((safe_name(row["image"]), _not_found_reason(images, row["image"], by_name)))
            continue
        if len(matched) > 1 or (rel in found and found[rel][0] != matched[0]):
            conflicts.add(rel)
        found.setdefault(rel, (matched[0], row["patient"]))
    for rel in sorted(conflicts):   # a file the table gives two classes is left out, not guessed
        skipped.append((safe_name(rel), f"the labels file gives it two classes ({found.pop(rel)[0]} and another)"))
    if missing > 20:
        skipped.append((f"... {missing - 20} more", "listed in the labels file, not found under the images"))
    return found, skipped, other_values, missing, conflicts, blank


def _link_targets(images: Path, rels: list[str], found: dict) -> tuple[list[str], list[str], int]:
    """Where each file is linked (<CLASS>/<patient>__<name>, or <CLASS>/<name>), its patient, and how many
    files carry no patient and so count as their own."""
    patients, targets, unnamed = [], [], 0
    for rel in rels:
        name = _link_name(rel)
        cls, listed_patient = found[rel]
        pid = listed_patient.replace("/", "_").replace("\\", "_")
        targets.append(f"{cls}/{pid}__{name}" if pid else f"{cls}/{name}")
        if not pid and is_dicom(images / rel):
            pid = dicom_patient(str(images / rel)) or ""
        # else from the name the file is linked as, which every later command reads: the path made flat
        # keeps CheXpert's patient00001/ and MIMIC-CXR's p10000032/ folders in it
        patients.append(pid or patient_id(name))
        unnamed += not pid and patients[-1] == file_as_patient(name)
    return targets, patients, unnamed


def labels_from_pattern(images: Path, pattern: str) -> tuple[list[dict], list[str]]:
    """Rows as a labels file would give them for the image files below ``images`` whose path (relative to it,
    '/'-separated) the regular expression ``pattern`` finds a label in (its first group, else the match): the
    Shenzhen and Montgomery tuberculosis sets name each X-ray CHNCXR_0001_0.png, MCUCXR_0001_1.png, the last
    digit its finding, with no table. Hidden folders and folders named as masks are not read. Returns the rows
    and the paths in which it found none."""
    label_in = path_pattern(pattern, "--label-pattern", "'_(\\d)\\.png$' reads 1 from CHNCXR_0001_1.png")
    rows, unmatched = [], []
    for folder, name in files_outside_mask_folders(images):
        path = os.path.join(folder, name)
        if name.startswith(".") or not is_image_file(Path(path)):
            continue
        rel = Path(os.path.relpath(path, images)).as_posix()
        if label := label_in(rel):
            rows.append({"image": rel, "label": label, "patient": ""})
        else:
            unmatched.append(rel)
    if not rows:
        example = f" (e.g. {safe_name(unmatched[0])})" if unmatched else ""
        raise DataError(f"--label-pattern '{pattern}' finds no label in the {counted(len(unmatched), 'image')} under "
                        f"{images}{example}: give a pattern whose first group is each image's label")
    return rows, unmatched


def write_labelled_split(images: Path, csv_path: Path | None, dest: Path, image_column: str, label_column: str,
                         patient_column: str | None = None, class_specs: list[str] | None = None,
                         test_fraction: float = 0.2, seed: int = 0, separator: str | None = None,
                         patient_pattern: str | None = None, label_pattern: str | None = None) -> dict:
    """Lay the images a labels CSV lists out as ``dest``/{train,test}/<CLASS>/, whole patients in one split.

    Each file is linked as <CLASS>/<patient>__<name> where ``patient_column`` names the patient (so that
    every later command reads the patient from the name), else as <CLASS>/<name>, its patient read from
    its DICOM header or that name (``_link_name``). ``class_specs`` (NAME=VALUE[,VALUE]) maps label
    values to classes; rows with other values are left out and counted. With ``separator``, a label holds
    several values (NIH's 'Effusion|Pneumonia'), and a row takes the class its values name; a row whose
    values name two classes is left out. With ``label_pattern`` in place of ``csv_path``, each image's label
    comes from its path (`labels_from_pattern`). ``dest``/split.json records it."""
    images, dest = Path(images), Path(dest)
    if not images.is_dir():
        raise DataError(f"{images} is not a folder (give the folder the labels file's image paths are relative to)")
    check_split_arguments(images, dest, test_fraction)
    values = parse_class_values(class_specs or [])
    unmatched: list[str] = []
    if label_pattern:
        rows, unmatched = labels_from_pattern(images, label_pattern)
        csv_path = f"the names under {images}"
    else:
        csv_path = Path(csv_path)
        rows = read_labels(csv_path, image_column, label_column, patient_column)
    found, skipped, other_values, missing, conflicts, blank = _match_rows(rows, images, values, separator)
    if not found:
        why = [f"{n} {one if n == 1 else more}" for n, one, more in (
            (missing, f"lists a file not under {images}", f"list a file not under {images}"),
            (len(conflicts), "file is given two classes", "files are given two classes"),
            (blank, "lacks an image or a label", "lack an image or a label"),
            (sum(other_values.values()), "has a label no --class names", "have labels no --class names")) if n]
        held = ", ".join(f"{v!r} ({counted(n, 'row')})" for v, n in other_values.most_common(6))
        raise DataError(f"no image to lay out from {csv_path} ({counted(len(rows), 'row')}: {'; '.join(why) or 'none'}"
                        + (f"; the labels held: {held}" if other_values else "") + ")")
    present = {cls for cls, _ in found.values()}
    # the order --class gave them (the first is the negative class of a binary task), else by name
    classes = [c for c in dict.fromkeys(values.values()) if c in present] if values else ordered_classes(list(present))
    if len(classes) < 2:
        raise DataError(f"the labels in {csv_path} give one class ({classes[0]}); a classifier needs two or more"
                        + (f" (values left out: {', '.join(map(repr, list(other_values)[:5]))})" if other_values else ""))
    rels = sorted(found)
    if patient_pattern:   # each file's patient from its path, as a --patient-column would give it
        found = {rel: (found[rel][0], pid) for rel, pid in zip(rels, patients_by_pattern(patient_pattern, rels))}
    targets, patients, unnamed = _link_targets(images, rels, found)
    refuse_clashing_targets(targets, "give --patient-column, or rename them", "listed files")
    extra = {"labels": {"file": None if label_pattern else str(csv_path.resolve()),
                        **({"label_pattern": label_pattern, "files_without_label": len(unmatched)} if label_pattern
                           else {}),
                        "image_column": image_column, "label_column": label_column,
                        "patient_column": patient_column, "classes": values or None, "separator": separator,
                        "rows": len(rows), "values_left_out": dict(other_values.most_common()),
                        # split.json names the first 20 files not found; these count them all, and the rows
                        # that were left out without a name to list
                        "files_not_found": missing, "files_given_two_classes": len(conflicts),
                        "rows_without_image_or_label": blank},
             **({"patient_pattern": patient_pattern} if patient_pattern else {})}
    labels_of = {c: k for k, c in enumerate(classes)}
    return write_split_folder(images, dest, classes, rels, targets, [labels_of[found[r][0]] for r in rels],
                              patients, skipped, test_fraction, seed, unnamed=unnamed, extra=extra)
