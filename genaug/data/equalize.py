"""Per-image contrast equalization, applied alike to every image a pixel classifier reads.

The Kermany test children were imaged apart from the training ones, and a threshold chosen on
validation (the training patients) sits too low for them (docs/STATUS.md #5, session 13).
Contrast-limited adaptive histogram equalization (CLAHE, scikit-image's) maps each image onto
a like spread of grey levels, so that exposure and contrast that differ by where and how an
image was taken count for less. It is a preprocessing, not an augmentation: training,
validation, test and `genaug predict` images all get it.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from tqdm import tqdm

from genaug.config import EQUALIZERS
from genaug.data.core import DataBundle


# the grey-level spread of one standard deviation after `standardize`: mean 128 +- 2.7 sd spans 0-255
STANDARD_SPREAD = 48.0


def standardized(images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Each image moved to mean grey 128 and standard deviation `STANDARD_SPREAD` (clipped to 0-255): a global
    exposure or contrast of its own, which differs between where images were taken, no longer reaches the model.
    A flat image stays flat, at 128."""
    out = np.empty(images.shape, dtype=np.uint8)
    for start in range(0, len(images), chunk):
        x = np.asarray(images[start:start + chunk], dtype=np.float32)
        axes = tuple(range(1, x.ndim))
        mean, sd = x.mean(axis=axes, keepdims=True), x.std(axis=axes, keepdims=True)
        out[start:start + chunk] = np.clip(np.rint((x - mean) / np.maximum(sd, 1e-6) * STANDARD_SPREAD + 128), 0, 255)
    return out


def equalize_images(images: np.ndarray, method: str, desc: str = "equalize") -> np.ndarray:
    """(N, H, W) uint8 images equalized by ``method`` into a new uint8 array (the input is left as it is;
    it may be a read-only memory-mapped cache)."""
    if method == "none":
        return images
    if method == "standardize":
        return standardized(images)
    if method != "clahe":
        raise ValueError(f"unknown equalization {method!r} (known: {', '.join(EQUALIZERS)})")
    from skimage.exposure import equalize_adapthist   # skimage loads in about a second: only when asked

    out = np.empty(images.shape, dtype=np.uint8)
    for i in tqdm(range(len(images)), desc=desc, unit="img", leave=False, disable=None if len(images) > 500 else True):
        # equalize_adapthist returns floats in [0, 1]; rounding back to uint8 keeps the pipeline's one dtype
        out[i] = np.rint(equalize_adapthist(np.asarray(images[i])) * 255).astype(np.uint8)
    return out


def equalized_bundle(bundle: DataBundle, method: str) -> DataBundle:
    """``bundle`` with every split's images equalized by ``method`` (the same bundle for "none")."""
    if method == "none":
        return bundle
    splits = {name: dataclasses.replace(s, images=equalize_images(s.images, method, f"{method} {name}"))
              for name, s in bundle.splits.items()}
    return dataclasses.replace(bundle, splits=splits)
