"""``genaug data info``: what a data source holds, before any training."""
from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from genaug.data.core import DataBundle
from genaug.data.decode import padded, shown_width
from genaug.data.folder import split_record
from genaug.data.traits import read_header

SKIPPED_LISTED = 20   # skipped files named one by one in the text summary


def original_image_stats(root: Path, rel_paths: list[str], limit: int = 100_000) -> dict:
    """Sizes and modes read from file headers only (no decoding)."""
    sizes, modes = Counter(), Counter()
    for rel in rel_paths[:limit]:
        if (header := read_header(os.path.join(root, rel))) is not None:
            sizes[f"{header.width}x{header.height}" if header.width and header.height else "unknown"] += 1
            modes[header.mode] += 1
    return {"sizes": dict(sizes.most_common(5)), "distinct_sizes": len(sizes), "modes": dict(modes),
            "counted": sum(sizes.values()), **not_square(sizes)}


def not_square(sizes: Counter) -> dict:
    """How many of the images counted by "WxH" size are not square, and the widest ratio among them: every
    image is resized to a square, so these are squeezed."""
    # a header may give no number ("unknown": an empty DICOM Columns): such sizes are not judged
    shapes = [(tuple(map(int, wh.split("x"))), n) for wh, n in sizes.items() if re.fullmatch(r"\d+x\d+", wh)]
    oblong = [(max(w, h) / min(w, h), n) for (w, h), n in shapes if w != h and min(w, h) > 0]
    return {"not_square": sum(n for _, n in oblong),
            "widest_aspect": round(max((r for r, _ in oblong), default=1.0), 2)}


def squared_sentence(resize: str) -> str:
    """' Images that are not square were ...' for a run's report, where they were made square otherwise than
    by the squash every run before session 81 used; '' for squash."""
    return {"crop": " Images that are not square were cut to the centred square of their short side "
                    "(--resize crop), then resized.",
            "pad": " Images that are not square were centred on a black square of their long side "
                   "(--resize pad), then resized."}.get(resize, "")


def made_square(resize: str, size: int) -> str:
    """What ``resize`` (config.RESIZE_MODES) does to an image that is not square, as a reader needs it."""
    if resize == "crop":
        return (f"each is cut to the centred square of its short side (--resize crop), then resized to {size} x "
                f"{size} px; what lies beyond it is not seen")
    if resize == "pad":
        return (f"each is centred on a black square of its long side (--resize pad), then resized to {size} x "
                f"{size} px")
    return (f"every image is resized to a {size} x {size} px square, its aspect ratio not kept (--resize crop "
            "or pad keeps it)")


def data_info(bundle: DataBundle, root: Path | None = None, resize: str = "squash") -> dict:
    info = bundle.summary()
    info["resize"] = resize
    if root is not None and bundle.source == "folder":
        rels = [p for s in bundle.splits.values() for p in s.paths]
        info["original_images"] = original_image_stats(root, rels)
    info["file_tells"], info["test_file_tells"] = bundle.file_tells, bundle.test_tells
    info["skipped_files"] = [{"path": p, "reason": r} for p, r in bundle.skipped]
    made = split_record(root) if root is not None else None
    if made and made.get("splits_as_given"):
        info["test_origin"] = (f"as given in {made.get('source')}, laid out by its patient folders with genaug "
                               "data split")
    elif made:
        info["test_origin"] = (f"held out by patient with genaug data split from {made.get('source')} "
                               f"({100 * made.get('test_fraction', 0):g}%, seed {made.get('seed')}"
                               + _patients_from(made) + ")")
    return info


def _patients_from(made: dict) -> str:
    """'; patients from ...' where the split took them from other than the file names and DICOM headers."""
    if made.get("patient_folders") is True:
        return "; patients from its patient folders"
    if column := (made.get("labels") or {}).get("patient_column"):
        return f"; patients from the labels file's {column} column"
    return ""


def format_info(info: dict) -> str:
    lines = [f"data: {info['name']} ({info['source']}){'  [SYNTHETIC demo phantoms, not real X-rays]' if info['synthetic'] else ''}",
             f"classes: {', '.join(info['classes'])}    working size: {info['image_size']} px"]
    # each class's column as wide as its name as shown (肺炎 takes four columns) or its largest count
    widths = {c: max([shown_width(c)] + [len(str(s["per_class"][c])) for s in info["splits"].values()])
              for c in info["classes"]}
    header = f"  {'split':<6} {'images':>7} {'patients':>9}  " + "  ".join(padded(c, widths[c], right=True)
                                                                       for c in info["classes"])
    lines.append(header)
    for split, s in info["splits"].items():
        lines.append(f"  {split:<6} {s['images']:>7} {s['patients']:>9}  "
                     + "  ".join(f"{s['per_class'][c]:>{widths[c]}}" for c in info["classes"]))
    lines.append(f"validation split: {info['val_origin']}")
    if "test_origin" in info:
        lines.append(f"test split: {info['test_origin']}")
    if "original_images" in info:
        o = info["original_images"]
        lines.append(f"original sizes: {o['sizes']} ({o['distinct_sizes']} distinct); modes: {o['modes']}")
        if o.get("not_square"):   # a resize to a square squeezes them: the heart of a 2:3 film comes out wider
            lines.append(f"shapes: {o['not_square']} of {o['counted']} images are not square (up to "
                         f"{o['widest_aspect']:g}:1); {made_square(info.get('resize', 'squash'), info['image_size'])}")
    lines.append(f"skipped files: {info['skipped']}")
    for item in info["skipped_files"][:SKIPPED_LISTED]:
        lines.append(f"  - {item['path']}: {item['reason']}")
    if info["skipped"] > SKIPPED_LISTED:   # the rest, counted by reason: thousands of lines would hide the cause
        lines.append(f"  ... and {info['skipped'] - SKIPPED_LISTED} more; all {info['skipped']} by reason:")
        for why, n in Counter(item["reason"] for item in info["skipped_files"]).most_common():
            lines.append(f"  {n:>7}  {why}")
    for note in info["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)
