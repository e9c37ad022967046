"""Decoding any supported image file to a square uint8 grayscale array."""
from __future__ import annotations

import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MAX_PIXELS = 64_000_000     # decompression-bomb guard: larger images are skipped, not decoded
MIN_SIDE = 8                # smaller images carry no anatomy worth resizing


class UnreadableImage(Exception):
    """Raised with a short reason for a file that is skipped."""


STANDARD_DEPTHS = (8, 10, 12, 14, 16)   # bits per pixel that X-ray files store in a 16-bit container


def stored_bits(maximum: float) -> int:
    """The smallest standard bit depth that holds ``maximum`` (16 for anything larger)."""
    return next((b for b in STANDARD_DEPTHS if maximum <= 2 ** b - 1), 16)


def to_gray_uint8(im: Image.Image) -> np.ndarray:
    """Any PIL mode (L, RGB, RGBA, P, CMYK, 16-bit I;16, 32-bit I, F) to 8-bit grayscale."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        if mode == "F":
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        else:
            # PIL opens 16-bit PNGs and TIFFs as I;16 or I. X-ray detectors store 10, 12 or 14 bits in that
            # container, so dividing by 257 would leave a 12-bit image 16 grey levels: scale from the
            # smallest standard depth that holds the image's maximum
            arr = arr * (255.0 / (2 ** stored_bits(float(arr.max())) - 1))
        return np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if mode == "CMYK":
        im = im.convert("RGB")
    if im.mode != "L":
        im = im.convert("L")
    return np.asarray(im, dtype=np.uint8)


def decode_image(path: str, size: int) -> np.ndarray:
    """Read ``path`` and resize to (size, size); raise UnreadableImage with a reason to skip it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise UnreadableImage(f"{w}x{h} pixels exceeds the {MAX_PIXELS:,}-pixel guard")
                if min(w, h) < MIN_SIDE:
                    raise UnreadableImage(f"too small ({w}x{h})")
                if im.format == "JPEG":
                    im.draft(im.mode, (size, size))  # let libjpeg downscale by 1/2..1/8 while decoding
                im.load()
                gray = to_gray_uint8(im)
    except UnreadableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableImage("decompression-bomb guard (image too large)") from None
    except UnidentifiedImageError:
        raise UnreadableImage("not an image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnreadableImage(f"corrupt or unreadable ({reason[:100]})") from None
    if gray.shape != (size, size):
        gray = np.asarray(Image.fromarray(gray).resize((size, size), Image.BILINEAR), dtype=np.uint8)
    return gray


def safe_name(path: str) -> str:
    """A printable form of a path (file names need not be valid UTF-8)."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")
