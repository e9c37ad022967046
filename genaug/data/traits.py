"""Traits of the image files themselves (size, shape, pixel format, file format) that tell the classes
apart. Where one class was scanned at another hospital or exported by another tool, a classifier can learn
that in place of the disease, and a test split drawn from the same files shares the trait, so its accuracy
does not show it (shortcut learning: Zech et al. 2018, DeGrave et al. 2021). Only file headers are read."""
from __future__ import annotations

import os
from collections import Counter

import numpy as np
from PIL import Image

from genaug.data.decode import header_mode, is_dicom, is_tiff, require_pydicom

MIN_IMAGES = 100       # fewer, and a lookup over a few bands may seem to tell classes by chance (2% of random
                       # 40-image sets did, none of 300 at 100)
MAX_BANDS = 10         # bands a numeric trait is cut into (quantiles), so that each holds many images
IMAGES_PER_BAND = 20
MAX_HEADERS = 10_000   # files read at most (evenly spaced); 5,840 took 0.4 s here from a warm disk cache
NOTE_START = "the classes differ in their files"   # how the note begins, for the reports' "In short"
TRAIT_NAMES = {"size": "image size", "aspect": "aspect ratio", "mode": "pixel format", "format": "file format"}


def read_header(path: str) -> tuple[int, int, str, str] | None:
    """(width, height, pixel format, file format) from a file's header (no pixels decoded), or None where it
    cannot be read (the loader counts such files already). A DICOM header without Columns or Rows gives 0 for
    them. The file format is the codec's (JPEG, PNG), not the name's: .jpg and .jpeg hold the same pixels."""
    if is_dicom(path):
        try:
            ds = require_pydicom().dcmread(path, stop_before_pixels=True)
            return (int(ds.get("Columns") or 0), int(ds.get("Rows") or 0),
                    f"DICOM {ds.get('PhotometricInterpretation', '?')} {ds.get('BitsStored', '?')}-bit", "DICOM")
        except Exception:   # a damaged header
            return None
    try:
        with Image.open(path) as im:
            return im.size[0], im.size[1], header_mode(im), im.format or "?"
    except Exception:
        if is_tiff(path):   # one Pillow cannot open, which genaug reads through tifffile
            try:
                import tifffile
                with tifffile.TiffFile(path) as tif:
                    page = tif.pages[0]
                    return page.imagewidth, page.imagelength, f"TIFF {page.dtype} x{page.samplesperpixel}", "TIFF"
            except Exception:
                pass
    return None


def band_of(values: np.ndarray, n_bands: int) -> np.ndarray:
    """Each value's quantile band (0 .. at most n_bands - 1); equal values share a band."""
    cuts = np.unique(np.quantile(values, np.linspace(0, 1, n_bands + 1)[1:-1]))
    return np.searchsorted(cuts, values, side="right")


def lookup_balanced_accuracy(groups: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """Balanced accuracy of the best guess a lookup table can make from ``groups`` alone: each group names the
    class it holds most of relative to that class's size (a plain majority would name the large class
    everywhere and hide a trait of the small one). Classes without images are left out of the mean."""
    table = np.zeros((groups.max() + 1, n_classes))
    np.add.at(table, (groups, labels), 1)
    sizes = table.sum(axis=0)
    present = sizes > 0
    guess = np.argmax(np.where(present, table / np.maximum(sizes, 1), -1), axis=1)[groups]
    return float(np.mean([np.mean(guess[labels == c] == c) for c in np.flatnonzero(present)]))


def class_tells(headers: list, labels, n_classes: int) -> list[dict]:
    """The file traits that alone tell the classes apart for at least halfway from chance to every image:
    [{"trait", "balanced_accuracy", "chance", "by_class": {class index: its median, or its commonest value and share}}].
    ``headers``: ``read_header`` per image (None left out)."""
    keep = [i for i, h in enumerate(headers) if h is not None]
    labels = np.asarray(labels)[keep]
    if len(keep) < MIN_IMAGES or len(np.unique(labels)) < 2:
        return []
    w = np.array([headers[i][0] for i in keep], dtype=float)
    h = np.array([headers[i][1] for i in keep], dtype=float)
    sized = (w > 0) & (h > 0)   # a DICOM header may give no size: it counts for the formats only
    numeric = {"size": w * h, "aspect": w / np.maximum(h, 1)}
    categorical = {"mode": [headers[i][2] for i in keep], "format": [headers[i][3] for i in keep]}
    n_bands = max(2, min(MAX_BANDS, len(keep) // IMAGES_PER_BAND))
    found = []
    for trait in ("size", "aspect", "mode", "format"):
        if trait in numeric:
            values = numeric[trait][sized]
            if len(values) < MIN_IMAGES or np.all(values == values[0]):
                continue
            groups, which = band_of(values, n_bands), labels[sized]
        else:
            names = categorical[trait]
            if len(set(names)) < 2:
                continue
            index = {v: k for k, v in enumerate(sorted(set(names)))}
            groups, which = np.array([index[v] for v in names]), labels
        seen = np.unique(which)
        if len(seen) < 2:
            continue
        score = lookup_balanced_accuracy(groups, which, n_classes)
        if score < (1 + 1 / len(seen)) / 2:   # halfway from chance to every image
            continue
        by_class = {}
        for c in seen:
            mine = labels == c
            if trait == "size":
                by_class[int(c)] = f"{np.median(w[mine & sized]):.0f} x {np.median(h[mine & sized]):.0f} px"
            elif trait == "aspect":
                by_class[int(c)] = f"{np.median(numeric['aspect'][mine & sized]):.2f}"
            else:
                (value, n), = Counter(v for v, m in zip(categorical[trait], mine) if m).most_common(1)
                by_class[int(c)] = f"{value} {100 * n / mine.sum():.0f}%"
        found.append({"trait": trait, "balanced_accuracy": round(score, 3), "chance": round(1 / len(seen), 3),
                      "by_class": by_class})
    return found


def file_tells(root, paths: list[str], labels, n_classes: int, test: list[bool]) -> tuple[list[dict], list[dict]]:
    """``class_tells`` for the images at ``paths`` under ``root``, and the same for test against the other
    splits (``test``: whether each image is a test image). At most MAX_HEADERS files are read, evenly spaced
    through ``paths`` (which run split by split, class by class): every command loads its data through here,
    and a large collection on a network disk would cost minutes for a share that says the same."""
    picked = np.unique(np.linspace(0, len(paths) - 1, min(len(paths), MAX_HEADERS)).round().astype(int)) \
        if paths else np.array([], dtype=int)
    headers = [read_header(os.path.join(root, paths[i])) for i in picked]
    labels, test = np.asarray(labels)[picked], np.asarray(test, dtype=int)[picked]
    return class_tells(headers, labels, n_classes), class_tells(headers, test, 2)


def tells_note(tells: list[dict], classes: list[str]) -> str | None:
    """One note for ``data info`` and the reports, or None where no trait tells the classes apart."""
    if not tells:
        return None
    return (f"{NOTE_START}, not only in what the images show: {_told_apart(tells, classes)}. A classifier can "
            "learn such a trait in place of the disease (or whatever else differs between the classes' sources), "
            "and a test split drawn from the same files shares it, so its accuracy would not show that: check "
            "where each class's files came from (scanner, hospital, export)")


def split_tells_note(tells: list[dict]) -> str | None:
    """The note where the test split's files differ from the others' (``file_tells``' second list), or None."""
    if not tells:
        return None
    return ("the test split's files differ from those of train and val: " + _told_apart(tells, ["train/val", "test"])
            + ". The test split may come from another source (scanner, hospital, time): its figures say how a model "
            "carries there, and a threshold chosen on validation may not carry (compare the calibration on "
            "validation and on test in a benchmark's report)")


def _told_apart(tells: list[dict], names: list[str]) -> str:
    """'image size (median: A ..., B ...) alone tells them apart for 88% of images, ... (balanced accuracy ...)'."""
    same_chance = len({t["chance"] for t in tells}) == 1
    parts = []
    for i, t in enumerate(tells):
        what = ", ".join(f"{names[c]} {v}" for c, v in t["by_class"].items())
        kind = {"size": "median", "aspect": "width:height, median"}.get(t["trait"], "mostly")
        chance = "" if same_chance else f" ({100 * t['chance']:.0f}% by chance)"
        parts.append(f"{TRAIT_NAMES[t['trait']]} ({kind}: {what})" + (" alone tells them apart for" if i == 0 else "")
                     + f" {100 * t['balanced_accuracy']:.0f}%" + (" of images" if i == 0 else "") + chance)
    odds = f"; {100 * tells[0]['chance']:.0f}% by chance" if same_chance else ""
    return ", ".join(parts) + f" (balanced accuracy of a lookup by that trait alone{odds})"
