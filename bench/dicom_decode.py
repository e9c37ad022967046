"""What the first load of a folder of clinical-size DICOM X-rays costs, by how the files are stored.

Takes --n real X-rays (--data, default ../shared/data/chest_xray_224; the built-in demo phantoms where
it is absent), scales each to --side px square (2048: a typical CR/DX detector), adds detector-like
noise (sigma --noise grey levels of 4095) and stores it as 12-bit MONOCHROME2 DICOM in each transfer
syntax genaug reads (uncompressed, RLE lossless, JPEG-LS lossless, JPEG 2000 lossless), and, for
comparison, the same image as an 8-bit JPEG (quality 95) and a 16-bit PNG. All of it goes to a
temporary folder, deleted at the end. Then it times genaug's own first load of each format
(genaug.data.cache.decode_cached without a cache: its thread pool, what `gan`, `encode` and
`benchmark` do once per data folder and resolution) at --size px, and checks that every lossless
DICOM decodes to the same pixels as the uncompressed one.

    python bench/dicom_decode.py [--data DIR] [--n 48] [--side 2048] [--size 64] [--noise 6]
                                 [--threads-only]

--threads-only decodes DICOM in threads as genaug did before session 37, rather than compressed DICOM in
processes (genaug.data.cache.PROCESSES_FROM files or more).

Prints, per format: megabytes per file, images/s, the time the Kermany training split (5,216 images)
would take at that pace, and the largest difference from the uncompressed DICOM's pixels. Encoders
for JPEG-LS (pyjpegls) and JPEG 2000 (pylibjpeg-openjpeg) are not genaug dependencies; a format whose
encoder is missing is printed as such. Decoding uses what is installed (GDCM, with genaug[dicom]).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from genaug.data import cache
from genaug.data.cache import decode_cached

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import dicom_dataset  # noqa: E402  (the test suite's DICOM writer; needs the test extra)

KERMANY_TRAIN = 5216


def source_images(data: Path, n: int, side: int, noise: float) -> list[np.ndarray]:
    """``n`` 12-bit images of ``side`` px: real X-rays where ``data`` exists, else demo phantoms."""
    every = sorted(data.glob("train/*/*.jpeg")) if data.is_dir() else []
    files = every[:: max(1, len(every) // n)][:n]   # spread over both classes
    if files:
        small = [np.asarray(Image.open(f).convert("L"), dtype=np.float64) for f in files]
        print(f"source: {len(small)} X-rays from {data}")
    else:
        from genaug.data.demo import demo_dataset
        small = [im.astype(np.float64) for im in demo_dataset(224, n_train=n, seed=0).splits["train"].images[:n]]
        print(f"source: {len(small)} demo phantoms ({data} not found)")
    rng = np.random.default_rng(0)
    out = []
    for im in small:
        big = np.asarray(Image.fromarray(im.astype(np.float32), "F").resize((side, side), Image.BICUBIC))
        big = big * (4095 / 255) + rng.normal(0, noise, big.shape)
        out.append(np.clip(np.rint(big), 0, 4095).astype(np.uint16))
    return out


def write_format(fmt: str, images: list[np.ndarray], folder: Path) -> str | None:
    """Write every image in ``fmt`` under ``folder``; the reason it cannot, or None."""
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless
    syntax = {"DICOM RLE lossless": RLELossless, "DICOM JPEG-LS lossless": JPEGLSLossless,
              "DICOM JPEG 2000 lossless": JPEG2000Lossless}
    folder.mkdir(parents=True)
    for i, px in enumerate(images):
        name = folder / f"IM-{i:04d}-0001"
        if fmt == "JPEG (8-bit, q95)":
            Image.fromarray((px >> 4).astype(np.uint8)).save(name.with_suffix(".jpeg"), quality=95)
        elif fmt == "PNG (16-bit)":
            Image.fromarray(px).save(name.with_suffix(".png"))
        else:
            ds = dicom_dataset(px, f"P{i}", modality="DX")
            if fmt in syntax:
                try:
                    ds.compress(syntax[fmt], px)
                except Exception as exc:   # no encoder installed for it
                    return str(exc).splitlines()[0][:100]
            ds.save_as(name.with_suffix(".dcm"), enforce_file_format=True)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/chest_xray_224"))
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--side", type=int, default=2048)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--noise", type=float, default=6.0)
    ap.add_argument("--threads-only", action="store_true")
    args = ap.parse_args()
    if args.threads_only:
        cache.PROCESSES_FROM = 10 ** 9
    images = source_images(args.data, args.n, args.side, args.noise)
    print(f"{len(images)} images of {args.side}x{args.side} px, 12 bits, noise sigma {args.noise}; "
          f"loaded at {args.size} px by genaug's decoder on {os.cpu_count()} CPUs, DICOM in "
          f"{'threads' if args.threads_only else 'threads, compressed DICOM in processes'}")
    formats = ["DICOM uncompressed", "DICOM RLE lossless", "DICOM JPEG-LS lossless", "DICOM JPEG 2000 lossless",
               "JPEG (8-bit, q95)", "PNG (16-bit)"]
    import importlib.util
    found = [m for m in ("gdcm", "jpeg_ls", "openjpeg", "libjpeg") if importlib.util.find_spec(m)]
    print(f"DICOM decoders installed besides pydicom's own and Pillow: {', '.join(found) or 'none'} "
          "(pydicom tries GDCM first where it can decode the syntax)")
    tmp = Path(tempfile.mkdtemp(prefix="genaug-dicom-bench-"))
    reference = None
    print(f"\n| format | MB per file | images/s | {KERMANY_TRAIN:,} images | max pixel difference from uncompressed DICOM |")
    print("|---|---|---|---|---|")
    try:
        for k, fmt in enumerate(formats):
            folder = tmp / str(k)
            why = write_format(fmt, images, folder)
            if why:
                print(f"| {fmt} | - | - | - | not written: {why} |")
                continue
            rels = sorted(p.name for p in folder.iterdir())
            mb = sum((folder / r).stat().st_size for r in rels) / len(rels) / 1e6
            t0 = time.perf_counter()
            out, ok, reasons = decode_cached(folder, rels, args.size, None, desc=fmt)
            took = time.perf_counter() - t0
            if not ok.all():
                print(f"| {fmt} | {mb:.2f} | - | - | {int((~ok).sum())} skipped: {next(iter(reasons.values()))} |")
                continue
            out = np.asarray(out).astype(int)
            if reference is None:
                reference = out
            # JPEG and PNG are scaled by their bit depth, DICOM by its window or range: not comparable
            diff = int(np.abs(out - reference).max()) if fmt.startswith("DICOM") else "-"
            per_s = len(rels) / took
            whole = KERMANY_TRAIN / per_s
            print(f"| {fmt} | {mb:.2f} | {per_s:.1f} | {whole / 60:.1f} min | {diff} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
