"""Exact and near-duplicate images across train, val and test: leakage between splits makes every number a lie.
Identical images within one split matter too: a test image held twice is scored twice, and one held under
two classes has a wrong label whatever a model answers.

Exact: identical decoded pixels at the working size. Near: the cosine similarity of
mean-centred 16x16 thumbnails at or above NEAR_THRESHOLD *and* a mean absolute pixel
difference at the working size of at most NEAR_MAD grey levels. On the Kermany chest
X-rays the most similar test/train pair of different images scores 0.982 on thumbnails; a
copy resized and re-saved as JPEG (quality 70) differs by 0.45 grey levels at 64 px, while
distinct demo phantoms, smooth enough to pass the thumbnail test, differ by 8 or more.
"""
from __future__ import annotations

import hashlib

import numpy as np

from genaug.data.core import DataBundle, ImageSet
from genaug.data.splits import groups_of_equal_keys

NEAR_THRESHOLD = 0.995
NEAR_MAD = 3.0
PAIRS = (("train", "val"), ("train", "test"), ("val", "test"))


def thumbnails(images: np.ndarray, size: int = 16) -> "torch.Tensor":
    """(N, size*size) unit vectors: area-downsampled, mean-centred images."""
    # imported here, so that genaug.data loads without torch and a command can check --data at once
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(np.array(images, dtype=np.float32, copy=True)).unsqueeze(1)
    t = F.adaptive_avg_pool2d(x, size).flatten(1)
    t = t - t.mean(1, keepdim=True)
    return t / t.norm(dim=1, keepdim=True).clamp_min(1e-6)


def image_hashes(s: ImageSet) -> list[str]:
    """A hash of each image's decoded pixels at the working size: equal for identical images."""
    return [hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest() for im in s.images]


def find_duplicates(bundle: DataBundle, threshold: float = NEAR_THRESHOLD, chunk: int = 1024) -> dict:
    """Pairs of images in different splits that are identical or nearly so, per split pair ("pairs"); and
    groups of identical images within each split ("within": paths, labels and patients of each group)."""
    import torch
    splits = {k: v for k, v in bundle.splits.items() if len(v)}
    hashes = {k: image_hashes(v) for k, v in splits.items()}
    thumbs = {k: thumbnails(v.images) for k, v in splits.items()}
    out: dict = {"threshold": threshold, "pairs": {}, "within": {}}
    for k, s in splits.items():
        groups = groups_of_equal_keys(hashes[k])   # images of the split with identical pixels
        if groups:
            out["within"][k] = [{"paths": [s.paths[i] for i in g],
                                 "labels": [bundle.classes[int(s.labels[i])] for i in g],
                                 "patients": [s.patients[i] for i in g]} for g in groups]
    for a, b in PAIRS:
        if a not in splits or b not in splits:
            continue
        index = {h: i for i, h in enumerate(hashes[a])}
        exact_j = [j for j, h in enumerate(hashes[b]) if h in index]
        exact = [(splits[a].paths[index[hashes[b][j]]], splits[b].paths[j]) for j in exact_j]
        exact_j, near = set(exact_j), []
        for s in range(0, len(thumbs[b]), chunk):
            sim = thumbs[b][s:s + chunk] @ thumbs[a].T
            best, arg = sim.max(1)
            for j in torch.nonzero(best >= threshold).flatten().tolist():
                if s + j in exact_j:
                    continue
                i = int(arg[j])
                mad = float(np.abs(splits[a].images[i].astype(np.int16) - splits[b].images[s + j].astype(np.int16)).mean())
                if mad <= NEAR_MAD:
                    near.append((splits[a].paths[i], splits[b].paths[s + j], round(float(best[j]), 4)))
        out["pairs"][f"{a}-{b}"] = {"exact": exact, "near": near}
    return out


def within_split_note(found: dict) -> str | None:
    """None where no split holds an image twice."""
    within = found.get("within", {})
    if not within:
        return None
    parts, conflicts, patients = [], [], []
    for split, groups in within.items():
        copies = sum(len(g["paths"]) - 1 for g in groups)
        parts.append(f"{split} {copies} (in {len(groups)} {'group' if len(groups) == 1 else 'groups'})")
        for g in groups:
            named = [f"{p} ({c})" for p, c in zip(g["paths"], g["labels"])]
            if len(set(g["labels"])) > 1:
                conflicts.append(" = ".join(named))
            elif len(set(g["patients"])) > 1:
                patients.append(" = ".join(g["paths"]))
    note = ("identical images within a split, each copy counted again in training or in the test figures: "
            + ", ".join(parts))
    if patients:
        note += (f"; {len(patients)} of those groups {'holds' if len(patients) == 1 else 'hold'} two patients' "
                 f"names, so one of the patients is probably misnamed, e.g. {'; '.join(patients[:2])}")
    if conflicts:
        note += (f". CONFLICTING LABELS: {len(conflicts)} {'image is' if len(conflicts) == 1 else 'images are'} "
                 f"held under two classes, e.g. {'; '.join(conflicts[:2])}: one label of each is wrong; "
                 "correct it before trusting results")
    else:
        note += "; remove the copies to count each image once"
    return note


def duplicate_note(found: dict) -> str:
    parts, examples = [], []
    for pair, d in found["pairs"].items():
        parts.append(f"{pair}: {len(d['exact'])} exact, {len(d['near'])} near")
        examples += [f"{x} ~ {y}" for x, y, *_ in (d["exact"] + d["near"])[:2]]
    total = sum(len(d["exact"]) + len(d["near"]) for d in found["pairs"].values())
    head = (f"duplicate check across splits (identical pixels, or 16x16 thumbnail cosine >= {found['threshold']} "
            f"and mean pixel difference <= {NEAR_MAD:g} grey levels): "
            + "; ".join(parts))
    if total:
        head += f". LEAKAGE: e.g. {'; '.join(examples[:3])}; remove them from one split before trusting results"
    return head
