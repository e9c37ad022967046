"""MedMNIST .npz files (PneumoniaMNIST format) as a second source, driven by one metadata registry."""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

from genaug.data.core import DataBundle, ImageSet
from genaug.data.decode import to_square
from genaug.errors import DataError

log = logging.getLogger("genaug")
ZENODO = "https://zenodo.org/records/10519652/files"

# One registry drives downloads and loaders (as MedMNIST's own INFO does).
INFO = {
    "pneumoniamnist": {
        "description": "PneumoniaMNIST: Kermany et al. 2018 pediatric chest X-rays, center-cropped and resized.",
        "files": {28: "pneumoniamnist.npz", 64: "pneumoniamnist_64.npz",
                  128: "pneumoniamnist_128.npz", 224: "pneumoniamnist_224.npz"},
        "md5": {28: "28209eda62fecd6e6a2d98b1501bb15f", 64: "8f4eceb4ccffa70c672198ea285246c6",
                128: "05b46931834c231683c68f40c47b2971", 224: "d6a3c71de1b945ea11211b03746c1fe1"},
        "label": {0: "NORMAL", 1: "PNEUMONIA"},
        "n_samples": {"train": 4708, "val": 524, "test": 624},
        "license": "CC BY 4.0",
        "homepage": "https://medmnist.com/",
    },
}


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manual_steps(name: str, size: int, dest: Path) -> str:
    info = INFO[name]
    return (f"download {ZENODO}/{info['files'][size]}?download=1 by hand, check its md5 is "
            f"{info['md5'][size]}, and put it at {dest}")


def download(name: str, size: int, dest_dir: Path, base_url: str | None = None,
             retries: int = 3, timeout: float = 30.0, backoff: float = 1.0) -> Path:
    """Fetch ``name`` at ``size`` into ``dest_dir`` with md5 check and retries; keep a verified file."""
    if name not in INFO:
        raise DataError(f"unknown MedMNIST dataset '{name}' (known: {', '.join(INFO)})")
    info = INFO[name]
    if size not in info["files"]:
        raise DataError(f"{name} comes in sizes {sorted(info['files'])}, not {size}")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / info["files"][size]
    if dest.is_file() and md5_file(dest) == info["md5"][size]:
        return dest
    url = f"{(base_url or os.environ.get('GENAUG_MEDMNIST_URL') or ZENODO).rstrip('/')}/{info['files'][size]}"
    last = ""
    for attempt in range(1, retries + 1):
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest_dir)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, os.fdopen(fd, "wb") as out:
                while block := resp.read(1 << 20):
                    out.write(block)
            got = md5_file(Path(tmp))
            if got != info["md5"][size]:
                last = f"md5 mismatch (got {got})"
            else:
                os.replace(tmp, dest)
                log.info("downloaded %s", dest)
                return dest
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            last = str(getattr(exc, "reason", exc))
        finally:
            Path(tmp).unlink(missing_ok=True)
        log.warning("download attempt %d/%d of %s failed: %s", attempt, retries, url, last)
        if attempt < retries:
            time.sleep(backoff * attempt)
    raise DataError(f"could not download {url} ({last}); {manual_steps(name, size, dest)}")


def _resize_stack(images: np.ndarray, size: int, resize: str = "squash") -> np.ndarray:
    if images.ndim == 4:  # (N, H, W, C): MedMNIST colour sets; take luminance
        images = np.asarray([np.asarray(Image.fromarray(im).convert("L")) for im in images])
    if images.shape[1:] == (size, size):
        return np.ascontiguousarray(images, dtype=np.uint8)
    return np.stack([to_square(im, size, resize) for im in images])


def _npz_split(npz, path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``split``'s images (N, H, W[, C]) uint8 and labels (N,) int64, checked (found in session 68: labels without
    their images, a count that differed, negative or multi-label labels, an empty split, channels first, float or
    16-bit pixels and object arrays each gave a traceback, or were read as something they were not)."""
    where = f"{path}: {split}"
    try:
        images, labels = np.asarray(npz[f"{split}_images"]), np.asarray(npz[f"{split}_labels"])
    except Exception as exc:   # zipfile.BadZipFile, EOFError, ValueError (object arrays), zlib.error, ...
        raise DataError(f"{where} arrays cannot be read ({type(exc).__name__}: {str(exc)[:100]}); save plain numeric "
                        "arrays with numpy.savez") from None
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (3, 4))):
        raise DataError(f"{where}_images has shape {images.shape}; expected (N, H, W) greyscale or (N, H, W, C) with "
                        "C 1, 3 or 4, channels last as MedMNIST stores them")
    if images.dtype != np.uint8:
        raise DataError(f"{where}_images holds {images.dtype} pixels; genaug reads 8-bit images (uint8, 0-255) as "
                        "MedMNIST stores them: convert them first, "
                        + ("e.g. (x * 255).round().astype('uint8') for values in [0, 1]" if images.dtype.kind == "f"
                           else "scaling their range to 0-255"))
    if labels.ndim == 2 and labels.shape[1] > 1:
        raise DataError(f"{where}_labels has shape {labels.shape}: one label per image is needed (multi-label sets "
                        "such as ChestMNIST are not supported)")
    labels = labels.reshape(-1)
    if labels.dtype.kind not in "iub" and not (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
        raise DataError(f"{where}_labels holds {labels.dtype} values that are not whole numbers; give class "
                        "indices 0, 1, ...")
    if len(labels) != len(images):
        raise DataError(f"{where} has {len(images)} images but {len(labels)} labels; give one label per image")
    if len(images) == 0:
        raise DataError(f"{where} has no images; every split given needs some")
    if labels.min() < 0:
        raise DataError(f"{where}_labels holds {int(labels.min())}; class indices start at 0")
    return images, labels.astype(np.int64)


def load_npz(path: Path, size: int, labels: dict[int, str] | None = None, resize: str = "squash") -> DataBundle:
    """Read a MedMNIST-format .npz ({train,val,test}_{images,labels}) at ``size`` px."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"npz file not found: {path}")
    try:
        npz = np.load(path, allow_pickle=False)
        keys = set(npz.files)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable .npz file ({str(exc)[:100]})") from None
    for split in ("train", "val", "test"):
        for kind, other in (("images", "labels"), ("labels", "images")):
            if f"{split}_{kind}" not in keys and (split != "val" or f"val_{other}" in keys):
                raise DataError(f"{path} lacks '{split}_{kind}' (expected MedMNIST keys train_images, train_labels, "
                                "test_images, test_labels and, optionally, val_images with val_labels)")
    splits = {}
    for split in ("train", "val", "test"):
        if f"{split}_images" not in keys:
            continue
        imgs, labs = _npz_split(npz, path, split)
        imgs = _resize_stack(imgs, size, resize)
        # MedMNIST has no patient ids: each image is its own "patient" (the fallback rule).
        names = [f"{split}/{i:05d}" for i in range(len(imgs))]
        splits[split] = ImageSet(imgs, labs, names, names)
    n_classes = int(max(s.labels.max() for s in splits.values())) + 1
    lab = labels or INFO.get(path.stem.split("_")[0], {}).get("label") or {i: str(i) for i in range(n_classes)}
    classes = [lab.get(i, str(i)) for i in range(n_classes)]
    return DataBundle(name=path.stem, source="medmnist", classes=classes, splits=splits, image_size=size,
                      notes=["MedMNIST files carry no patient ids; each image is treated as its own patient"])
