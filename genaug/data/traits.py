"""Traits of the image files themselves (size, shape, pixel format, file format, JPEG quality) that tell
the classes apart. Where one class was scanned at another hospital or exported by another tool, a classifier
can learn that in place of the disease, and a test split drawn from the same files shares the trait, so its
accuracy does not show it (shortcut learning: Zech et al. 2018, DeGrave et al. 2021). Only file headers are
read. The same headers say where a test split, or new files given to a saved model, come from elsewhere."""
from __future__ import annotations

import os
from collections import Counter
from typing import NamedTuple

import numpy as np
from PIL import Image

from genaug.data.decode import header_mode, is_dicom, is_tiff, require_pydicom

MIN_IMAGES = 100       # fewer, and a lookup over a few bands may seem to tell classes by chance (2% of random
                       # 40-image sets did, none of 300 at 100)
MAX_BANDS = 10         # bands a numeric trait is cut into (quantiles), so that each holds many images
IMAGES_PER_BAND = 20
MAX_HEADERS = 10_000   # files read at most (evenly spaced); 5,840 took 0.4 s here from a warm disk cache
NOTE_START = "the classes differ in their files"   # how the note begins, for the reports' "In short"
TRAIT_NAMES = {"size": "image size", "aspect": "aspect ratio", "mode": "pixel format", "format": "file format",
               "jpeg_quality": "JPEG quality"}


class Header(NamedTuple):
    """What a file's header says of its pixels; the file format is the codec's (JPEG, PNG), not the name's:
    .jpg and .jpeg hold the same pixels."""
    width: int                        # 0 where a DICOM header gives no Columns
    height: int
    mode: str                         # pixel format, as `data info` shows it
    format: str
    jpeg_quality: int | None = None   # the IJG quality whose tables match the file's best (JPEG only)


# the JPEG standard's luminance table (ITU T.81 Annex K), which the IJG library scales by quality
_LUMINANCE = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                       14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
                       92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
_IJG_TABLES = np.stack([np.clip((_LUMINANCE * (5000 // q if q < 50 else 200 - 2 * q) + 50) // 100, 1, 255)
                        for q in range(1, 101)])


def jpeg_quality(table) -> int:
    """The IJG quality (1-100) whose scaled standard luminance table lies nearest ``table`` (64 values).
    Exports of another tool or site often differ in it, and its artefacts are in the pixels."""
    return int(np.abs(_IJG_TABLES - np.asarray(table, dtype=float).ravel()[:64]).sum(axis=1).argmin()) + 1


def read_header(path: str) -> Header | None:
    """A file's ``Header`` (no pixels decoded), or None where it cannot be read (the loader counts such files
    already)."""
    if is_dicom(path):
        try:
            ds = require_pydicom().dcmread(path, stop_before_pixels=True)
            return Header(int(ds.get("Columns") or 0), int(ds.get("Rows") or 0),
                          f"DICOM {ds.get('PhotometricInterpretation', '?')} {ds.get('BitsStored', '?')}-bit", "DICOM")
        except Exception:   # a damaged header
            return None
    try:
        with Image.open(path) as im:
            # Pillow opens a camera's JPEG that holds a second picture as MPO: the same codec for the first
            codec = "JPEG" if im.format == "MPO" else im.format or "?"
            tables = getattr(im, "quantization", None) if codec == "JPEG" else None
            quality = jpeg_quality(tables[0]) if tables and len(tables.get(0, ())) >= 64 else None
            return Header(im.size[0], im.size[1], header_mode(im), codec, quality)
    except Exception:
        if is_tiff(path):   # one Pillow cannot open, which genaug reads through tifffile
            try:
                import tifffile
                with tifffile.TiffFile(path) as tif:
                    page = tif.pages[0]
                    return Header(page.imagewidth, page.imagelength, f"TIFF {page.dtype} x{page.samplesperpixel}",
                                  "TIFF")
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


def _trait_values(headers: list[Header]) -> dict[str, tuple[list | np.ndarray, np.ndarray]]:
    """Each trait's value per image and which images it applies to (a DICOM header may give no size; only a
    JPEG has a quality)."""
    widths = np.array([x.width for x in headers], dtype=float)
    heights = np.array([x.height for x in headers], dtype=float)
    sized = (widths > 0) & (heights > 0)
    every = np.ones(len(headers), dtype=bool)
    quality = np.array([x.jpeg_quality or 0 for x in headers], dtype=float)
    return {"size": (widths * heights, sized), "aspect": (widths / np.maximum(heights, 1), sized),
            "mode": ([x.mode for x in headers], every), "format": ([x.format for x in headers], every),
            "jpeg_quality": (quality, quality > 0)}


def _described(trait: str, values, mine: np.ndarray, headers: list[Header]) -> str:
    """One group's typical value of a trait: a median, or the commonest value and its share."""
    if trait == "size":
        return (f"{np.median([h.width for h, m in zip(headers, mine) if m]):.0f} x "
                f"{np.median([h.height for h, m in zip(headers, mine) if m]):.0f} px")
    if trait == "aspect":
        return f"{np.median(values[mine]):.2f}"
    if trait == "jpeg_quality":
        return f"{np.median(values[mine]):.0f}"
    (value, n), = Counter(v for v, m in zip(values, mine) if m).most_common(1)
    return f"{value} {100 * n / mine.sum():.0f}%"


def class_tells(headers: list, labels, n_classes: int) -> list[dict]:
    """The file traits that alone tell the classes apart for at least halfway from chance to every image:
    [{"trait", "balanced_accuracy", "chance", "by_class": {class index: its median, or commonest value and
    share}}]. ``headers``: ``read_header`` per image (None left out)."""
    keep = [i for i, h in enumerate(headers) if h is not None]
    labels, headers = np.asarray(labels)[keep], [headers[i] for i in keep]
    if len(keep) < MIN_IMAGES or len(np.unique(labels)) < 2:
        return []
    found = []
    for trait, (values, applies) in _trait_values(headers).items():
        if applies.sum() < MIN_IMAGES:
            continue
        which, held = labels[applies], [v for v, a in zip(values, applies) if a]
        if len(set(held)) < 2:
            continue
        if isinstance(values, np.ndarray):
            groups = band_of(np.asarray(held), max(2, min(MAX_BANDS, len(held) // IMAGES_PER_BAND)))
        else:
            index = {v: k for k, v in enumerate(sorted(set(held)))}
            groups = np.array([index[v] for v in held])
        seen = np.unique(which)
        if len(seen) < 2:
            continue
        score = lookup_balanced_accuracy(groups, which, n_classes)
        if score < (1 + 1 / len(seen)) / 2:   # halfway from chance to every image
            continue
        by_class = {int(c): _described(trait, values, applies & (labels == c), headers) for c in seen}
        found.append({"trait": trait, "balanced_accuracy": round(score, 3), "chance": round(1 / len(seen), 3),
                      "by_class": by_class})
    return found


def file_tells(root, paths: list[str], labels, n_classes: int,
               test: list[bool]) -> tuple[list[dict], list[dict], dict]:
    """``class_tells`` for the images at ``paths`` under ``root``, the same for test against the other splits
    (``test``: whether each image is a test image), and ``files_summary`` of the others (what a model trained
    on them learnt from). At most MAX_HEADERS files are read, evenly spaced through ``paths`` (which run split
    by split, class by class): every command loads its data through here, and a large collection on a network
    disk would cost minutes for a share that says the same."""
    picked, headers = sampled_headers([os.path.join(root, p) for p in paths])
    labels, test = np.asarray(labels)[picked], np.asarray(test, dtype=int)[picked]
    return (class_tells(headers, labels, n_classes), class_tells(headers, test, 2),
            files_summary([h for h, t in zip(headers, test) if not t]))


def sampled_headers(paths: list[str]) -> tuple[np.ndarray, list]:
    """The indices of at most MAX_HEADERS of ``paths``, evenly spaced, and those files' headers (``read_header``)."""
    picked = evenly_spaced(len(paths))
    return picked, [read_header(paths[i]) for i in picked]


def evenly_spaced(n: int, most: int | None = None) -> np.ndarray:
    """Indices of at most ``most`` (MAX_HEADERS) of ``n`` items, evenly spaced from the first to the last."""
    most = MAX_HEADERS if most is None else most
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int)) if n else np.array([], dtype=int)


def files_summary(headers: list) -> dict:
    """What a set of files is, for a saved model to compare new images with: counts of formats, pixel formats
    and JPEG qualities, and the range of widths and heights. Plain types: it travels in a checkpoint that
    loads with weights_only."""
    headers = [h for h in headers if h is not None]
    if not headers:
        return {}
    sized = [h for h in headers if h.width > 0 and h.height > 0]
    return {"files": len(headers),
            "formats": dict(Counter(h.format for h in headers)), "modes": dict(Counter(h.mode for h in headers)),
            "jpeg_qualities": {str(q): n for q, n in
                               Counter(h.jpeg_quality for h in headers if h.jpeg_quality).items()},
            "widths": [min(h.width for h in sized), max(h.width for h in sized)] if sized else [],
            "heights": [min(h.height for h in sized), max(h.height for h in sized)] if sized else []}


def unlike_training(trained: dict, headers: list) -> list[str]:
    """How the files given to a saved model differ from those it learnt from (``files_summary``), each a
    phrase; only where most of the new files lie outside everything the training files held, so that a
    mix like training's raises nothing."""
    headers = [h for h in headers if h is not None]
    if not trained or not headers:
        return []
    said = []
    for what, key, of in (("file format", "formats", lambda h: h.format),
                          ("pixel format", "modes", lambda h: h.mode)):
        known = trained.get(key) or {}
        new = Counter(of(h) for h in headers if of(h) not in known)
        if known and sum(new.values()) * 2 > len(headers):
            said.append(f"{what} {', '.join(new)} where the model learnt from {', '.join(known)}")
    qualities = sorted(int(q) for q in trained.get("jpeg_qualities") or {})
    new_q = [h.jpeg_quality for h in headers if h.jpeg_quality]
    if qualities and len(new_q) * 2 > len(headers) and \
            sum(not qualities[0] <= q <= qualities[-1] for q in new_q) * 2 > len(new_q):
        span = f"{qualities[0]}" if qualities[0] == qualities[-1] else f"{qualities[0]}-{qualities[-1]}"
        said.append(f"JPEG quality {np.median(new_q):.0f} (median) where the model learnt from {span}")
    widths, heights = trained.get("widths") or [], trained.get("heights") or []
    sized = [h for h in headers if h.width > 0 and h.height > 0]
    outside = sum(not (widths[0] <= h.width <= widths[1] and heights[0] <= h.height <= heights[1]) for h in sized) \
        if widths and heights else 0
    if sized and outside * 2 > len(sized):
        said.append(f"{np.median([h.width for h in sized]):.0f} x {np.median([h.height for h in sized]):.0f} px "
                    f"(median) where the model learnt from {_span(widths)} x {_span(heights)} px")
    return said


def _span(pair: list[int]) -> str:
    return f"{pair[0]}" if pair[0] == pair[1] else f"{pair[0]}-{pair[1]}"


def unlike_training_note(trained: dict, headers: list) -> str | None:
    """The note `genaug predict` prints where ``unlike_training`` finds a difference, or None."""
    if not (said := unlike_training(trained, headers)):
        return None
    return ("these files differ from those the model learnt from: " + "; ".join(said) + ". They are resized as "
            "training's were, but detail, noise and contrast may differ, and a model's figures from its test split "
            "need not carry to them: check its predictions against labels from this source (genaug threshold sets "
            "a threshold for it)")


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


def labelled_tells_note(headers: list, labels, classes: list[str]) -> str | None:
    """The note `genaug threshold` prints where its labelled images' classes differ in their files, or None:
    images of one class gathered from one source and the other's from another (a folder of PACS exports
    beside a teaching set) score apart for where they came from, so the threshold and the figures measured
    on them may rest on the source, not on the disease."""
    if not (tells := class_tells(headers, labels, len(classes))):
        return None
    return (f"{NOTE_START} here: {_told_apart(tells, classes)}. Where each class's images came from another "
            "source, the threshold chosen and the figures printed may rest on the source rather than on what the "
            "images show: label images of every class from the source the model will read")


def _told_apart(tells: list[dict], names: list[str]) -> str:
    """'image size (median: A ..., B ...) alone tells them apart for 88% of images, ... (balanced accuracy
    ...)'."""
    same_chance = len({t["chance"] for t in tells}) == 1
    parts = []
    for i, t in enumerate(tells):
        what = ", ".join(f"{names[c]} {v}" for c, v in t["by_class"].items())
        kind = {"size": "median", "aspect": "width:height, median",
                "jpeg_quality": "IJG scale, median"}.get(t["trait"], "mostly")
        chance = "" if same_chance else f" ({100 * t['chance']:.0f}% by chance)"
        parts.append(f"{TRAIT_NAMES[t['trait']]} ({kind}: {what})" + (" alone tells them apart for" if i == 0 else "")
                     + f" {100 * t['balanced_accuracy']:.0f}%" + (" of images" if i == 0 else "") + chance)
    odds = f"; {100 * tells[0]['chance']:.0f}% by chance" if same_chance else ""
    return ", ".join(parts) + f" (balanced accuracy of a lookup by that trait alone{odds})"
