"""The in-memory form of a dataset: uint8 image arrays with labels and patients, per split."""
from __future__ import annotations

import hashlib
import shlex
import unicodedata
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ImageSet:
    """One split: ``images`` is (N, H, W) uint8 (possibly memory-mapped), one row per source image."""

    images: np.ndarray
    labels: np.ndarray
    patients: list[str]
    paths: list[str]

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        n = len(self.images)
        if not (len(self.labels) == len(self.patients) == len(self.paths) == n):
            raise ValueError("ImageSet fields differ in length")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        """A sample is a small dict, as in torchxrayvision."""
        return {"img": self.images[i], "lab": int(self.labels[i]), "patient": self.patients[i],
                "path": self.paths[i]}

    def subset(self, idx) -> "ImageSet":
        idx = np.asarray(idx, dtype=np.int64)
        return ImageSet(np.asarray(self.images[idx]), self.labels[idx],
                        [self.patients[i] for i in idx], [self.paths[i] for i in idx])

    def class_counts(self, n_classes: int) -> list[int]:
        return np.bincount(self.labels, minlength=n_classes).tolist()

    def classes_absent(self, classes: list[str]) -> list[str]:
        """The names of ``classes`` (indexed by label) with no image here."""
        return [c for c, k in zip(classes, self.class_counts(len(classes))) if k == 0]

    @staticmethod
    def concat(sets: list["ImageSet"]) -> "ImageSet":
        return ImageSet(np.concatenate([np.asarray(s.images) for s in sets]),
                        np.concatenate([s.labels for s in sets]),
                        [p for s in sets for p in s.patients], [p for s in sets for p in s.paths])


@dataclass
class DataBundle:
    """A whole dataset at one resolution: train/val/test ImageSets and what was learnt loading it."""

    name: str
    source: str                      # demo | folder | medmnist
    classes: list[str]
    splits: dict[str, ImageSet]
    image_size: int
    synthetic: bool = False          # True for the built-in demo phantoms
    val_origin: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duplicates: dict = field(default_factory=dict)   # cross-split and within-split duplicates (data.duplicates)
    file_tells: list = field(default_factory=list)   # file traits that tell the classes apart (data.traits)
    test_tells: list = field(default_factory=list)   # ... that tell the test split from the others
    train_files: dict = field(default_factory=dict)  # what the files outside test are (traits.files_summary)

    @property
    def train(self) -> ImageSet:
        return self.splits["train"]

    @property
    def val(self) -> ImageSet:
        return self.splits["val"]

    @property
    def test(self) -> ImageSet:
        return self.splits["test"]

    def skipped_note(self, spec: str) -> str:
        """One line on the files the data left unread, for a job's console and report ('' where none is): a
        folder where some images failed to decode trained on the rest, said only in log.txt (session 56)."""
        if not self.skipped:
            return ""
        # an image that failed to decode matters more than a stray notes.txt or an empty class folder
        n, (path, why) = len(self.skipped), next((e for e in self.skipped if "extension" not in e[1]
                                                  and not e[1].startswith("class folder")), self.skipped[0])
        return (f"{n} file{'s' if n > 1 else ''} under {spec} {'were' if n > 1 else 'was'} not read (e.g. {path}: "
                f"{why}); genaug data info --data {shlex.quote(spec)} lists each and why")

    def split_digest(self, form: str | None = None) -> str:
        """Which image each split holds, and its label, as one hash: a resumed run checks by it that its
        data still splits as when it began. Names and labels, not pixels: another JPEG decoder gives
        pixels a grey level apart, and a run moved to another machine must still resume. ``form`` ('NFC',
        'NFD') hashes the names in that Unicode form, to tell names that only changed form."""
        h = hashlib.sha256()
        for split in sorted(self.splits):
            s = self.splits[split]
            paths = [unicodedata.normalize(form, str(p)) if form else str(p) for p in s.paths]
            for path, label in sorted(zip(paths, np.asarray(s.labels).tolist())):
                h.update(f"{split}\t{path}\t{label}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        out = {"name": self.name, "source": self.source, "synthetic": self.synthetic,
               "classes": self.classes, "image_size": self.image_size, "val_origin": self.val_origin,
               "splits": {}, "skipped": len(self.skipped), "notes": list(self.notes),
               "duplicates_across_splits": {k: {"exact": len(v["exact"]), "near": len(v["near"])}
                                            for k, v in self.duplicates.get("pairs", {}).items()},
               "duplicates_within_splits": {
                   k: {"copies": sum(len(g["paths"]) - 1 for g in v),
                       "conflicting_labels": sum(len(set(g["labels"])) > 1 for g in v)}
                   for k, v in self.duplicates.get("within", {}).items()}}
        for split, s in self.splits.items():
            out["splits"][split] = {
                "images": len(s),
                "patients": len(set(s.patients)),
                "per_class": dict(zip(self.classes, s.class_counts(len(self.classes)))),
            }
        return out
