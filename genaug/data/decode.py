"""Decoding any supported image file to a square uint8 grayscale array."""
from __future__ import annotations

import os
import sys
import unicodedata
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from genaug.config import RESIZE_MODES

DICOM_EXTENSIONS = (".dcm", ".dicom")
# Netpbm (the MIAS mammograms are .pgm), WebP (some resized Kaggle sets) and JPEG 2000 too: PIL reads them all,
# and until session 76 a folder of them was skipped file by file as "not an image extension"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff") + DICOM_EXTENSIONS + (
    ".pgm", ".pnm", ".ppm", ".webp", ".jp2", ".j2k")
MAX_PIXELS = 64_000_000     # decompression-bomb guard: larger images are skipped, not decoded
MIN_SIDE = 8                # smaller images carry no anatomy worth resizing


class UnreadableImage(Exception):
    """Raised with a short reason for a file that is skipped."""


STANDARD_DEPTHS = (8, 10, 12, 14, 16)   # bits per pixel that X-ray files store in a 16-bit container


def stored_bits(maximum: float) -> int:
    """The smallest standard bit depth that holds ``maximum`` (16 for anything larger)."""
    return next((b for b in STANDARD_DEPTHS if maximum <= 2 ** b - 1), 16)


def stretched(arr: np.ndarray) -> np.ndarray:
    """``arr`` (float64) scaled linearly from its lowest to its highest finite value onto 0-255. NaN, which float
    images store where they have no data (a mask's outside), shows as the lowest value, as does -inf; +inf as
    the highest. An image without a finite value is refused. (Found in session 76: one NaN pixel made a whole
    float TIFF black, without a word.)"""
    finite = np.isfinite(arr)
    if not finite.all():
        if not finite.any():
            raise UnreadableImage("no finite pixel value (all NaN or infinite)")
        lo, hi = float(arr[finite].min()), float(arr[finite].max())
        arr = np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo)
    lo, hi = float(arr.min()), float(arr.max())
    return (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)


WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")   # PIL's modes of 16-bit, 32-bit and float pixels


def numbers_to_gray(arr: np.ndarray, floating: bool) -> np.ndarray:
    """Pixel values of any depth as 8-bit (a gray image, or colour samples stretched together)."""
    arr = np.asarray(arr, dtype=np.float64)
    if floating or arr.min() < 0 or arr.max() > 2 ** 16 - 1:
        # floats, signed integers (a signed 16-bit TIFF opens as I) and 32-bit ones past 16 bits: no standard
        # depth holds them, and until session 76 a signed image lost its negative third to black, a 32-bit
        # one most of itself to white
        arr = stretched(arr)
    else:
        # PIL opens 16-bit PNGs and TIFFs as I;16 or I. X-ray detectors store 10, 12 or 14 bits in that
        # container, so dividing by 257 would leave a 12-bit image 16 grey levels: scale from the
        # smallest standard depth that holds the image's maximum
        arr = arr * (255.0 / (2 ** stored_bits(float(arr.max())) - 1))
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def to_gray_uint8(im: Image.Image) -> np.ndarray:
    """Any PIL mode (L, RGB, RGBA, P, CMYK, 16-bit I;16, 32-bit I, F) to 8-bit grayscale."""
    mode = im.mode
    if mode in WIDE_MODES:
        return numbers_to_gray(np.asarray(im), floating=mode == "F")
    if mode == "CMYK":
        im = im.convert("RGB")
    if im.mode != "L":
        im = im.convert("L")
    return np.asarray(im, dtype=np.uint8)


def require_pydicom():
    try:
        import pydicom
    except ImportError:
        from genaug.errors import DataError
        raise DataError("DICOM files need pydicom: pip install 'genaug[dicom]'") from None
    return pydicom


def has_dicom_preamble(path) -> bool:
    """Whether a file is DICOM by its content: 'DICM' after the 128-byte preamble."""
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


def is_dicom(path) -> bool:
    """A DICOM file by its extension, or, without an image extension, by its content: DICOM media exports
    name files IM000001 (a DICOMDIR's files take no extension) and archives often by their UID
    (1.2.840.113619.2.55.3.604688119.969.1268071029.320). ``path`` must open as given."""
    name = str(path).lower()
    return name.endswith(DICOM_EXTENSIONS) or (not name.endswith(IMAGE_EXTENSIONS) and has_dicom_preamble(path))


def is_image_file(path) -> bool:
    """A file genaug reads: an image extension, or DICOM content."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS) or has_dicom_preamble(path)


def dicom_patient(path: str) -> str | None:
    """The PatientID a DICOM file's header gives (pixels not read), or None."""
    pydicom = require_pydicom()
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"])
    except Exception:   # unreadable: the decoder says why, when it skips the file
        return None
    pid = str(ds.get("PatientID", "") or "").strip()
    return pid or None


def _first_line(exc: Exception, limit: int = 120) -> str:
    text = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else type(exc).__name__
    return text[:limit]


def _read_dicom(path: str):
    """The dataset of ``path``. Files written without the 128-byte preamble and file meta header (as older
    systems and some exports write them) are read too, but only where that finds pixel data: forced
    reading accepts almost any bytes."""
    pydicom = require_pydicom()
    try:
        return _with_transfer_syntax(pydicom.dcmread(path))
    except pydicom.errors.InvalidDicomError as exc:
        first = exc
    except Exception as exc:
        raise UnreadableImage(f"not a readable DICOM file ({_first_line(exc, 100)})") from None
    try:
        ds = pydicom.dcmread(path, force=True)
        if "PixelData" in ds:
            return _with_transfer_syntax(ds)
    except Exception:
        pass
    raise UnreadableImage(f"not a readable DICOM file ({_first_line(first, 100)})") from None


def _with_transfer_syntax(ds):
    """``ds`` with a transfer syntax to decode its pixels by. A file without one in its meta header can only
    hold uncompressed pixels, in the encoding pydicom found the dataset in."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return ds
    implicit, little = ds.original_encoding
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                              ExplicitVRLittleEndian if little is not False else ExplicitVRBigEndian)
    return ds


def _undecoded(ds, exc: Exception) -> str:
    """Why pixel data could not be decoded: pydicom names each decoder it tried on the lines after its first,
    which is where the useful part is (e.g. 'gdcm - requires gdcm>=3.0.10')."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = "; ".join(lines[1:]) or (lines[0] if lines else type(exc).__name__)
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    compressed = syntax is not None and syntax.is_compressed
    what = f"'{syntax.name}' pixel data" if compressed else "pixel data"
    hint = ""
    if compressed:
        try:
            import gdcm  # noqa: F401
        except ImportError:
            hint = "; pip install 'genaug[dicom]' adds GDCM, which decodes most compressed DICOM"
    return f"DICOM {what} not decoded ({detail[:240]}){hint}"


def is_tiff(path: str) -> bool:
    """Whether a file starts as a TIFF or BigTIFF does, in either byte order."""
    try:
        with open(path, "rb") as f:
            return f.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    except OSError:
        return False


def colour_to_gray(arr: np.ndarray, bits: int) -> np.ndarray:
    """RGB pixels of ``bits`` bits per sample (8, 16 or 32 in DICOM) to 8-bit grayscale."""
    if bits > 8:
        arr = np.rint(arr.astype(np.float64) * (255.0 / (2.0 ** bits - 1)))
    return np.asarray(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).convert("L"), dtype=np.uint8)


def is_compressed_dicom(path: str) -> bool:
    """Whether a DICOM file's pixel data is compressed (JPEG, JPEG-LS, JPEG 2000, RLE), from its header."""
    pydicom = require_pydicom()
    try:
        meta = pydicom.filereader.read_file_meta_info(path)
    except Exception:   # unreadable: the decoder says why, when it skips the file
        return False
    syntax = meta.get("TransferSyntaxUID")
    return syntax is not None and syntax.is_compressed


def dicom_to_gray_uint8(path: str) -> np.ndarray:
    """A single-frame DICOM image as 8-bit grayscale: modality rescale, then the VOI window or LUT the
    file carries, stretched to 0..255, and MONOCHROME1 (white is low) turned the usual way round. Colour
    images (RGB, YBR, a palette) turn grey as any other colour image does."""
    ds = _read_dicom(path)
    try:
        return _dicom_gray(ds)
    except UnreadableImage:
        raise
    except Exception as exc:   # a header value pydicom reads but cannot use (e.g. NumberOfFrames '1A')
        raise UnreadableImage(f"DICOM header not understood ({_first_line(exc)})") from None


def _dicom_gray(ds) -> np.ndarray:
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows * cols > MAX_PIXELS:
        raise UnreadableImage(f"{cols}x{rows} pixels exceeds the {MAX_PIXELS:,}-pixel guard")
    if min(rows, cols) < MIN_SIDE:
        raise UnreadableImage(f"too small ({cols}x{rows})" if "PixelData" in ds else "DICOM file without pixel data")
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise UnreadableImage(f"multi-frame DICOM ({ds.NumberOfFrames} frames); give single images")
    try:
        arr = ds.pixel_array
    except Exception as exc:   # e.g. a compressed transfer syntax whose decoder is not installed
        raise UnreadableImage(_undecoded(ds, exc)) from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":   # pixels are indices into the file's colour table, not intensities
        rgb = apply_color_lut(arr, ds)
        return colour_to_gray(rgb, 8 * rgb.dtype.itemsize)   # the table's entries are 8 or 16 bits
    if arr.ndim == 3:   # colour (pydicom gives YBR as RGB)
        return colour_to_gray(arr, int(ds.get("BitsStored", 8) or 8))
    arr = stretched(np.asarray(apply_voi_lut(apply_modality_lut(arr, ds), ds), dtype=np.float64))
    if photometric == "MONOCHROME1":
        arr = 255.0 - arr
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def decode_image(path: str, size: int, resize: str = "squash") -> np.ndarray:
    """Read ``path`` and make it (size, size) by ``resize`` (``to_square``); raise UnreadableImage with a reason
    to skip it."""
    gray = dicom_to_gray_uint8(path) if is_dicom(path) else _pil_to_gray_uint8(path, size)
    return to_square(gray, size, resize)


def to_square(gray: np.ndarray, size: int, resize: str = "squash") -> np.ndarray:
    """(H, W) uint8 as (size, size) uint8. ``resize`` (config.RESIZE_MODES) says what becomes of an image that
    is not square: ``squash`` stretches it to the square, ``crop`` keeps the centred square of its short side,
    ``pad`` centres it on a black square of its long side. A square image is only resized, whichever is given."""
    if resize not in RESIZE_MODES:   # a caller's slip: the config and checkpoints are checked before this
        raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    h, w = gray.shape
    if h != w and resize == "crop":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        gray = gray[top:top + side, left:left + side]
    elif h != w and resize == "pad":
        side = max(h, w)
        canvas = np.zeros((side, side), dtype=np.uint8)
        top, left = (side - h) // 2, (side - w) // 2
        canvas[top:top + h, left:left + w] = gray
        gray = canvas
    if gray.shape != (size, size):
        gray = np.asarray(Image.fromarray(np.ascontiguousarray(gray)).resize((size, size), Image.BILINEAR),
                          dtype=np.uint8)
    return gray


def _pil_to_gray_uint8(path: str, size: int) -> np.ndarray:
    """Any image PIL reads, as 8-bit grayscale near ``size`` (JPEGs are downscaled while decoding).

    Opened from a file object, not a path: given a path, Pillow maps an uncompressed TIFF into memory, and for one
    whose orientation tag turns it a quarter (5-8) it laid the stored rows out at the turned width, scrambling
    the image, without a word (Pillow 13; found in session 76). A file object is read instead of mapped."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open(path, "rb") as file, Image.open(file) as im:   # not by path: see the docstring
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise UnreadableImage(f"{w}x{h} pixels exceeds the {MAX_PIXELS:,}-pixel guard")
                if min(w, h) < MIN_SIDE:
                    raise UnreadableImage(f"too small ({w}x{h})")
                # a multi-page TIFF (or animated PNG) would have given its first page alone, unsaid;
                # which page is the X-ray is not for genaug to guess, as for a multi-frame DICOM
                if (frames := getattr(im, "n_frames", 1)) > 1:
                    raise UnreadableImage(f"multi-frame image ({frames} frames); give single images")
                if im.format == "TIFF" and im.tag_v2.get(284) == 2 and _tiff_bits(im) > 8:
                    # colour of 16 bits stored a plane at a time: Pillow unpacks it a byte a sample, garbling
                    # it without a word (found in session 76); tifffile reads it
                    from genaug.data.tiff import tiff_to_gray_uint8
                    return tiff_to_gray_uint8(path)
                if im.format == "JPEG":
                    im.draft(im.mode, (size, size))  # let libjpeg downscale by 1/2..1/8 while decoding
                rawmode = _rawmode(im) if im.format in ("PNG", "TIFF") else None
                # TIFF's PhotometricInterpretation 0, MinIsWhite: Pillow inverts 8-bit such files, not wider ones
                min_is_white = im.format == "TIFF" and im.mode in WIDE_MODES and im.tag_v2.get(262) == 0
                im.load()
                if rawmode in _16BIT_REDECODE:
                    im = _16bit_as_gray(path, im, rawmode)
                # a photographed or exported film often carries its rotation in EXIF, as viewers show it;
                # the pixels as stored would lie on their side
                gray = to_gray_uint8(ImageOps.exif_transpose(im))
                if min_is_white:   # read as stored until session 76: such an X-ray came out as its negative
                    gray = 255 - gray
    except UnreadableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableImage("decompression-bomb guard (image too large)") from None
    except UnidentifiedImageError:
        if is_tiff(path):   # a TIFF Pillow does not decode (planar colour, 64-bit float): tifffile reads it
            from genaug.data.tiff import tiff_to_gray_uint8
            return tiff_to_gray_uint8(path)
        raise UnreadableImage("not an image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnreadableImage(f"corrupt or unreadable ({reason[:100]})") from None
    return gray


# Pillow decodes a 16-bit colour (PNG, TIFF) or gray+alpha (PNG) image to 8 bits by keeping the high byte of each
# sample, which left 12-bit data 16 grey levels, all near black (found in session 76). Decoding the file once more
# with an unpacker of the same width that keeps the low bytes (the other byte order's), or every byte (RGBA for
# gray+alpha: high and low byte of the gray, then of the alpha), gives the samples whole; PNG's row filters undo
# alike, as they read the same bytes a pixel back.
_NOT_NATIVE = "B" if sys.byteorder == "little" else "L"   # the byte order opposite to ;16N's
_16BIT_REDECODE = {f"{mode};16{order}": f"{mode};16{other}" for mode in ("RGB", "RGBA")
                   for order, other in (("B", "L"), ("L", "B"), ("N", _NOT_NATIVE))} | {"LA;16B": "RGBA"}


def header_mode(im: Image.Image) -> str:
    """An opened image's PIL mode, with "16-bit" where PIL's mode keeps only 8 bits of samples stored with 16
    (colour and gray+alpha PNGs and TIFFs, which genaug reads at their depth), for `genaug data info`."""
    wide = _rawmode(im) in _16BIT_REDECODE or (im.format == "TIFF" and _tiff_bits(im) > 8
                                               and im.mode not in WIDE_MODES)
    return f"{im.mode} 16-bit" if wide else im.mode


def _tiff_bits(im: Image.Image) -> int:
    """A TIFF's largest BitsPerSample (8 where the tag is missing or malformed)."""
    bits = im.tag_v2.get(258, 8)
    try:
        return int(max(bits) if isinstance(bits, tuple) else bits)
    except (TypeError, ValueError):
        return 8


def _rawmode(im: Image.Image) -> str | None:
    """The raw mode of a single-tile image, as Pillow will unpack it (None for several tiles or none)."""
    if len(im.tile) != 1:
        return None
    args = im.tile[0].args
    return args if isinstance(args, str) else (args[0] if args and isinstance(args[0], str) else None)


def _16bit_as_gray(path: str, high: Image.Image, rawmode: str) -> Image.Image:
    """A 16-bit colour or gray+alpha image (``high``: as Pillow decoded it, high bytes; ``rawmode``: Pillow's for
    it) as an 8-bit grayscale image scaled from the smallest standard depth holding its maximum, as a 16-bit
    grayscale file is, its EXIF kept."""
    with open(path, "rb") as file, Image.open(file) as im:
        again = _16BIT_REDECODE[rawmode]
        im.tile = [im.tile[0]._replace(args=again if isinstance(im.tile[0].args, str)
                                       else (again, *im.tile[0].args[1:]))]
        im.load()
        second = np.asarray(im).astype(np.uint16)
    if rawmode == "LA;16B":
        samples = (second[..., 0] << 8) | second[..., 1]
        gray = numbers_to_gray(samples, floating=False)   # as a 16-bit grayscale file
    else:
        samples = (np.asarray(high)[..., :3].astype(np.uint16) << 8) | second[..., :3]
        gray = colour_to_gray(samples, stored_bits(float(samples.max())))
    out = Image.fromarray(gray)
    out.getexif().update(high.getexif())   # its orientation (a PNG's eXIf chunk, a TIFF's own tag), for exif_transpose
    return out


def safe_name(path: str) -> str:
    """A printable form of a path, or of text that holds paths: file names need not be valid UTF-8, and Python
    holds each byte that is not as a lone surrogate, which a UTF-8 file cannot hold; shown as \\xff."""
    try:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:   # a lone surrogate that is no escaped byte
        return path.encode("utf-8", "backslashreplace").decode("utf-8")


def shown_width(text: str) -> int:
    """How many columns a terminal gives ``text``: two for a wide character (CJK: 肺炎 takes four), none for a
    combining mark; tables padded by len() put a column out of line after such a name."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def padded(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` shown columns, on the left when ``right`` (right-aligned)."""
    fill = " " * max(0, width - shown_width(text))
    return fill + text if right else text + fill


def name_key(name: str) -> str:
    """What two class names share where a user reads them as one: case folded, and composed (NFC), since macOS
    writes names decomposed (NFD) and a keyboard types them composed; the two print alike. Spaces at either
    end do not count: 'NORMAL ' beside NORMAL/ (found in session 85) prints as it does."""
    return unicodedata.normalize("NFC", name).strip().casefold()


def shown_name(name: str) -> str:
    """A name as a message shows it: quoted where it starts or ends with a space, which would not show."""
    return f"'{name}'" if name != name.strip() else name


def how_names_differ(a: str, b: str) -> str | None:
    """How two class names a user would read as one differ ('differ only in case', 'print alike but differ in
    Unicode form ...'), or None where they are one name, or two. macOS writes names decomposed (NFD: "i" and a
    combining accent), most Linux tools composed (NFC: "í"): the two print alike, so a message that a split
    lacked one named a folder the user could see there (session 75)."""
    if a == b or name_key(a) != name_key(b):
        return None
    spaces = "spaces at their start or end"
    if a.strip() == b.strip():
        return f"differ only in {spaces}"
    also = f" and in {spaces}" if a != a.strip() or b != b.strip() else ""
    a, b = a.strip(), b.strip()
    if a.casefold() == b.casefold():
        return f"differ only in case{also}" if not also else f"differ in case{also}"
    forms = "Unicode form (one composed, NFC, one decomposed, NFD, as macOS writes names)"
    same_case = unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b)
    return f"print alike but differ in {forms}{also}" if same_case else f"differ in case and in {forms}{also}"


def alike_note(name: str, names: list[str]) -> str:
    """' (Neumonía and Neumonía print alike but ...)' where ``name`` is one of ``names`` spelt otherwise; else ''."""
    told = [f"{shown_name(name)} and {shown_name(other)} {how}" for other in names
            if (how := how_names_differ(name, other))]
    return f" ({'; '.join(told)})" if told else ""


def alike_path(path) -> str | None:
    """The path on disk that ``path``, not found, spells otherwise only in case or Unicode form, component by
    component (``Radiografías`` typed composed, NFC, for a folder macOS named decomposed, NFD); None where
    there is none, or more than one. Found in session 75: such a folder was "not found", though ls shows it."""
    text = os.path.normpath(os.fspath(path))
    found, changed = [], False   # the names on disk, from the root (or the current folder) down
    for part in (p for p in text.split(os.sep) if p):
        here = os.path.join(os.sep if text.startswith(os.sep) else os.curdir, *found)
        if not os.path.lexists(os.path.join(here, part)):
            try:
                alike = [e for e in os.listdir(here) if name_key(e) == name_key(part)]
            except OSError:
                return None
            if len(alike) != 1:
                return None
            part, changed = alike[0], True
        found.append(part)
    return os.path.join(os.sep if text.startswith(os.sep) else "", *found) if changed else None


def alike_path_note(path) -> str:
    """'; P is there, its name spelt in another Unicode form or case: ...' for a path not found, else ''; for a
    path that begins with a ~ the shell left alone (it expands one only at the start of a word, so not in
    --resume=~/runs/X), the home folder's path."""
    text = os.fspath(path)
    if text.startswith("~") and os.path.lexists(home := os.path.expanduser(text)):
        return (f"; {safe_name(home)} is there: a shell makes ~ the home folder only at the start of a word, not "
                "after '=' or in quotes, so give that path (or the option, a space, then ~/...)")
    there = alike_path(path)
    return (f"; {safe_name(there)} is there, its name spelt in another Unicode form or case: give that path (a shell's "
            "tab completion spells it as it is)") if there else ""
