"""TIFFs that Pillow does not decode, or decodes wrong, read through tifffile (a scikit-image dependency): 64-bit
floats, which Pillow does not open (until session 76 such a file was skipped as "not an image"), and colour of
more than 8 bits stored a plane at a time (PlanarConfiguration 2), which it garbled."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from genaug.data.decode import MAX_PIXELS, MIN_SIDE, UnreadableImage, colour_to_gray, numbers_to_gray, stored_bits

MIN_IS_WHITE, MIN_IS_BLACK, RGB = 0, 1, 2   # PhotometricInterpretation


def tiff_to_gray_uint8(path: str) -> np.ndarray:
    """A single-page TIFF's pixels as 8-bit grayscale, read the way genaug reads those Pillow decodes: depth from
    the largest value (floats stretched), MinIsWhite turned, the orientation tag applied."""
    import tifffile
    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.pages) > 1:
                raise UnreadableImage(f"multi-frame image ({len(tif.pages)} frames); give single images")
            page = tif.pages[0]
            h, w = page.imagelength, page.imagewidth
            if w * h > MAX_PIXELS:
                raise UnreadableImage(f"{w}x{h} pixels exceeds the {MAX_PIXELS:,}-pixel guard")
            if min(w, h) < MIN_SIDE:
                raise UnreadableImage(f"too small ({w}x{h})")
            photometric, samples = int(page.photometric), int(page.samplesperpixel)
            by_planes = int(page.planarconfig) == 2
            orientation = page.tags[274].value if 274 in page.tags else 1
            arr = page.asarray()
    except UnreadableImage:
        raise
    except Exception as exc:   # tifffile raises its own errors, ValueError and more on damaged or exotic files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnreadableImage(f"a TIFF neither Pillow nor tifffile decodes ({reason[:100]})") from None
    if samples > 1 and by_planes and arr.ndim == 3 and arr.shape[0] == samples:
        arr = np.moveaxis(arr, 0, -1)   # stored a plane at a time: tifffile gives (samples, height, width)
    if photometric == RGB and samples >= 3:
        colour = arr[..., :3]
        floating = np.issubdtype(colour.dtype, np.floating)
        bits = 8 if floating else stored_bits(float(colour.max()))
        # float colour stretched over all three channels together, so that their balance holds
        gray = colour_to_gray(numbers_to_gray(colour, True) if floating else colour, bits)
    elif photometric in (MIN_IS_WHITE, MIN_IS_BLACK):
        plane = arr[..., 0] if samples > 1 else arr   # the gray of gray+alpha
        gray = numbers_to_gray(plane, np.issubdtype(plane.dtype, np.floating))
        if photometric == MIN_IS_WHITE:
            gray = 255 - gray
    else:
        raise UnreadableImage(f"a TIFF of PhotometricInterpretation {photometric} with {samples} samples a pixel, "
                              "which genaug does not read; save it as an ordinary grayscale TIFF or PNG")
    # turned as the Pillow path turns its images: by Pillow's own exif_transpose
    view = Image.fromarray(gray)
    view.getexif()[274] = orientation
    return np.asarray(ImageOps.exif_transpose(view), dtype=np.uint8)
