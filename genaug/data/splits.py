"""Patient identifiers and patient-level splits.

Images of one patient never straddle two splits: validation is carved from train
by patient, stratified by class and deterministic by seed; test is never touched.
"""
from __future__ import annotations

import re
from pathlib import PurePath

import numpy as np

from genaug.errors import DataError
from genaug.inventory import counted

# <patient>__<file>: the name genaug data split --labels gives a file whose patient a labels CSV names;
# read only in a folder it laid out so (folder.patient_of), since other data may use '__' otherwise
LABELLED_PATIENT = re.compile(r"^(.+?)__.")
_PATIENT_PATTERNS = (
    re.compile(r"^(person\d+)_", re.IGNORECASE),          # person1234_bacteria_5678
    re.compile(r"^(NORMAL2-IM-\d+)-", re.IGNORECASE),     # NORMAL2-IM-1234-0001
    re.compile(r"^(IM-\d+)-", re.IGNORECASE),             # IM-0001-0001
    re.compile(r"^(\d{8})_\d{3}\.\w+$"),                  # NIH ChestX-ray14: 00000001_000.png (patient_follow-up)
    # paths made flat by genaug data split --labels: CheXpert's train/patient00001/study1/view1_frontal.jpg,
    # MIMIC-CXR's files/p10/p10000032/s50414267/<dicom id>.jpg
    re.compile(r"^(?:.*_)?(patient\d+)_study\d+_"),
    re.compile(r"^(?:.*_)?(p\d{8})_s\d{8}_"),
)


def labelled_patient(path: str) -> str | None:
    """The patient of a file named <patient>__<file>, or None."""
    m = LABELLED_PATIENT.match(PurePath(path).name)
    return m.group(1) if m else None


def file_as_patient(path: str) -> str:
    """The patient of a file whose name gives none: the file itself, by its path without the extension.
    Not its name alone: cats/scan_001.png and dogs/scan_001.png, or train/ and test/'s 0001.png, are two
    files of unknown patients, not one patient's two images."""
    return PurePath(path).with_suffix("").as_posix()


def patient_id(path: str) -> str:
    """The patient encoded in a Kermany-style file name; the file itself where none is."""
    stem = PurePath(path).name
    for pat in _PATIENT_PATTERNS:
        m = pat.match(stem)
        if m:
            return m.group(1)
    return file_as_patient(path)


def _patient_labels(labels: np.ndarray, patients: list[str]) -> dict[str, int]:
    """Each patient's majority label (patients here carry one class, but be safe)."""
    votes: dict[str, dict[int, int]] = {}
    for lab, pid in zip(labels.tolist(), patients):
        votes.setdefault(pid, {}).setdefault(lab, 0)
        votes[pid][lab] += 1
    return {pid: max(sorted(v), key=lambda k: v[k]) for pid, v in votes.items()}


def groups_of_equal_keys(keys: list) -> list[list[int]]:
    """The indices of ``keys`` held two or more times, one list per key, in order of first appearance; a key of
    None matches nothing."""
    groups: dict = {}
    for i, key in enumerate(keys):
        if key is not None:
            groups.setdefault(key, []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def join_patients_sharing_an_image(patients: list[str], keys: list) -> list[str]:
    """Each image's patient for splitting, where patients that hold one identical image (equal ``keys``: a hash
    of its bytes or pixels) count as one, named by the first of them in sorted order. A file saved twice under
    two names (scan_001.png and 'scan_001 (1).png', which give no patient, so count as two) or one image under
    two patient ids must not land in two splits. A key of None joins nothing."""
    parent = {p: p for p in patients}

    def root(p: str) -> str:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for group in groups_of_equal_keys(keys):
        for i in group[1:]:
            a, b = sorted((root(patients[group[0]]), root(patients[i])))
            parent[b] = a
    return [root(p) for p in patients]


def split_by_patient(labels, patients: list[str], fraction: float, seed: int):
    """Return (rest_idx, carved_idx): about ``fraction`` of each class's images, whole patients only."""
    labels = np.asarray(labels)
    plabel = _patient_labels(labels, patients)
    counts_by_patient: dict[str, int] = {}
    for pid in patients:
        counts_by_patient[pid] = counts_by_patient.get(pid, 0) + 1
    rng = np.random.default_rng(seed)
    carved: set[str] = set()
    for cls in sorted(set(plabel.values())):
        pids = sorted(p for p, lab in plabel.items() if lab == cls)
        rng.shuffle(pids)
        target = fraction * sum(counts_by_patient[p] for p in pids)
        taken = 0
        for p in pids:
            if taken >= target:
                break
            carved.add(p)
            taken += counts_by_patient[p]
    carved_idx = np.array([i for i, p in enumerate(patients) if p in carved], dtype=np.int64)
    rest_idx = np.array([i for i, p in enumerate(patients) if p not in carved], dtype=np.int64)
    return rest_idx, carved_idx


def classes_missing_from_a_side(classes: list[str], labels, patients: list[str], a_idx, b_idx,
                                ) -> list[tuple[str, int, bool]]:
    """Each class of ``classes`` with no image on side a or side b of a split by patient, as (its name, its
    patients over both sides, whether side a is the one it lacks); a class absent from both sides is listed
    with 0 patients. Empty where each side holds every class."""
    missing = []
    for k, name in enumerate(classes):
        in_a, in_b = (any(labels[i] == k for i in idx) for idx in (a_idx, b_idx))
        if not (in_a and in_b):
            missing.append((name, len({p for p, y in zip(patients, labels) if y == k}), not in_a))
    return missing


def subsample_by_patient(labels, patients: list[str], fraction: float, seed: int) -> np.ndarray:
    """Indices keeping about ``fraction`` of each class's images, by whole patients (for --train-fraction)."""
    if fraction >= 1.0:
        return np.arange(len(patients), dtype=np.int64)
    _, kept = split_by_patient(labels, patients, fraction, seed)
    return kept


def patient_overlap(a: list[str], b: list[str]) -> set[str]:
    return set(a) & set(b)


def patient_folds(labels, patients: list[str], k: int, seed: int) -> list[np.ndarray]:
    """K disjoint index arrays covering every image, whole patients only, each class spread evenly.

    Patients of each class are shuffled by ``seed`` and dealt, largest first, to the fold with
    the fewest images of that class so far, so fold sizes stay close even when some patients
    have many images.
    """
    labels = np.asarray(labels)
    if k < 2:
        raise ValueError("k-fold needs k >= 2")
    plabel = _patient_labels(labels, patients)
    per_class = {c: sum(1 for lab in plabel.values() if lab == c) for c in sorted(set(plabel.values()))}
    fewest = min(per_class.values())
    if fewest < k:   # a fold without a class could not choose a threshold or score a ROC-AUC
        # found in session 68: one patient was told "use --folds 2 or fewer", which it cannot fill either
        fix = f"use --folds {fewest} or fewer" if fewest >= 2 else "use --folds 1 (one validation split)"
        raise DataError(f"{counted(fewest, 'patient')} of one class cannot fill {k} folds (patients "
                        f"per class in train+val: {', '.join(str(n) for n in per_class.values())}): {fix}")
    size: dict[str, int] = {}
    for pid in patients:
        size[pid] = size.get(pid, 0) + 1
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for cls in sorted(set(plabel.values())):
        pids = sorted(p for p, lab in plabel.items() if lab == cls)
        rng.shuffle(pids)
        pids.sort(key=lambda p: -size[p])   # stable: ties keep the shuffled order
        load = [0] * k
        for p in pids:
            f = int(np.argmin(load))
            fold_of[p] = f
            load[f] += size[p]
    return [np.array([i for i, p in enumerate(patients) if fold_of[p] == f], dtype=np.int64) for f in range(k)]
