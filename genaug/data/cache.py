"""Decode-once cache: a file list decoded at one resolution, stored as a uint8 .npy for memory-mapping.

The key hashes the absolute root, every file's relative path, size and mtime, and
the resolution, so any change to the inputs gives a new key and the stale entry is
never read.  An entry is complete only when its JSON index exists (written last,
atomically), and the index is checked against the request before use.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import re
import signal
import tempfile
import threading
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genaug.data.decode import UnreadableImage, decode_image, is_compressed_dicom, is_dicom, safe_name
from genaug.errors import DiskFull, is_disk_full

log = logging.getLogger("genaug")
CACHE_VERSION = 5   # 2: 10-14-bit images in 16-bit files scale from their own depth (decode.stored_bits);
                    # 3: EXIF orientation is applied; 4: DICOM palette colour through its table, 16-bit
                    # colour scaled from its depth, files without a meta header read; 5: float images with
                    # NaN or infinite pixels and signed integer images stretched over their range (decode.stretched),
                    # 16-bit colour PNGs and TIFFs and gray+alpha PNGs read at their depth, 16-bit
                    # MinIsWhite TIFFs turned, uncompressed TIFFs turned a quarter read unscrambled, TIFFs of
                    # 16-bit planar colour read through tifffile


def file_signature(root: Path, rel_paths: list[str]) -> list[list]:
    sig = []
    for rel in rel_paths:
        st = os.stat(os.path.join(root, rel))
        sig.append([rel, st.st_size, st.st_mtime_ns])
    return sig


_ENTRY_NAME = re.compile(r"[0-9a-f]{24}")                 # cache_key's names
ENTRY_FIELDS = {"version", "root", "size", "signature"}   # what every version's index holds


def cache_key(root: Path, signature: list[list], size: int, resize: str = "squash") -> str:
    h = hashlib.sha256()
    # resize enters the key only where it is not the squash every entry before it was decoded with, so those
    # entries keep their names (and are read, not decoded again)
    h.update(json.dumps([CACHE_VERSION, str(Path(root).resolve()), size, signature]
                        + ([resize] if resize != "squash" else []), ensure_ascii=True).encode())
    return h.hexdigest()[:24]


# From this many compressed DICOM files in one load, decoding runs in processes: the decoders pydicom
# calls (GDCM, pyjpegls, its own RLE) hold the GIL, so threads decoded one file at a time. On 2 cores,
# 2048 px JPEG-LS files went from 6.4 to 9.9 a second (bench/dicom_decode.py, docs/PERFORMANCE.md (j)).
# Uncompressed DICOM stays in threads, which were faster for it (numpy lets go of the GIL); below this
# count, starting the processes would cost more than it saves.
PROCESSES_FROM = 32


def _decode_all(root: Path, rel_paths: list[str], size: int, out: np.ndarray, desc: str, resize: str = "squash"):
    ok = np.zeros(len(rel_paths), dtype=bool)
    reasons: dict[int, str] = {}
    workers = max(1, min(8, os.cpu_count() or 1))
    bar = tqdm(total=len(rel_paths), desc=desc, unit="img", leave=False, disable=None)
    first = 0   # the files before this one are decoded (by the processes)
    dicoms = [r for r in rel_paths if is_dicom(os.path.join(root, r))]
    if workers > 1 and len(dicoms) >= PROCESSES_FROM and is_compressed_dicom(os.path.join(root, dicoms[0])):
        jobs = [(os.path.join(root, r), size, resize) for r in rel_paths]
        # spawned, not forked: the parent may hold torch's and tqdm's threads, which a fork copies mid-lock.
        # The warning filters whose category is a builtin go along (the CLI's for pydicom): unpickling
        # torch's own would import torch into every worker
        filters = [f for f in warnings.filters if getattr(f[2], "__module__", "") == "builtins"]
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_setup, initargs=(filters,))
        try:
            with _sigint_ignored():   # map submits every job now, and so starts the workers
                results = pool.map(_decode_one, jobs, chunksize=2)
            for image, why in results:
                if image is None:
                    reasons[first] = why
                else:
                    out[first], ok[first] = image, True
                first += 1
                bar.update()
        except BrokenProcessPool:   # a worker killed (out of memory, say): the rest here, in threads
            log.warning("a decoding process died after %d of %d files; decoding the rest in this process",
                        first, len(rel_paths))
        finally:   # on Ctrl-C or an error, drop the files not begun rather than decode them all first
            pool.shutdown(wait=True, cancel_futures=True)

    def work(i: int):
        try:
            out[i] = decode_image(os.path.join(root, rel_paths[i]), size, resize)
            ok[i] = True
        except UnreadableImage as exc:
            reasons[i] = str(exc)
        bar.update()

    with ThreadPoolExecutor(workers) as pool:  # PIL releases the GIL while decoding
        for _ in pool.map(work, range(first, len(rel_paths))):
            pass
    bar.close()
    return ok, reasons


def _decode_one(job: tuple[str, int, str]) -> tuple[np.ndarray | None, str | None]:
    """One file in a worker process: its pixels, or why it is skipped."""
    path, size, resize = job
    try:
        return decode_image(path, size, resize), None
    except UnreadableImage as exc:
        return None, str(exc)


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while workers are started: a process started so keeps ignoring it (Python installs
    its KeyboardInterrupt handler only where SIGINT is not ignored), so Ctrl-C during a worker's imports
    prints no traceback from it; the parent, handling SIGINT again, stops the pool."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _worker_setup(filters: list) -> None:
    """A decoding process: ``filters``, the parent's warning filters of builtin categories (a spawned
    process starts with the defaults), and deaf to Ctrl-C, which reaches every process of the terminal's
    group: the parent stops the pool and says so; a traceback from each worker would bury that line."""
    for action, message, category, module, lineno in reversed(filters):   # compiled patterns, or None
        warnings.filterwarnings(action, getattr(message, "pattern", message) or "", category,
                                getattr(module, "pattern", module) or "", lineno)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _reserve_disk_space(path: str, cache_dir: Path) -> None:
    """Give the new memory-mapped file its blocks now: the file is sparse, and a store into a page the
    full disk cannot back kills the process with SIGBUS (no message, a half-written file left)."""
    if not hasattr(os, "posix_fallocate"):   # macOS, Windows: no way to reserve; a full disk stays fatal
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFull(f"no space left on the disk for the decoded-image cache in {cache_dir} "
                       f"({os.fstat(fd).st_size / 2**20:.0f} MiB): free some space or give --cache-dir "
                       "on another disk") from None
    finally:
        os.close(fd)


def decode_cached(root: Path, rel_paths: list[str], size: int, cache_dir: Path | None,
                  desc: str = "decode", resize: str = "squash") -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Decode ``rel_paths`` under ``root`` at ``size``, made square by ``resize``; return (images, ok_mask,
    skip_reasons).

    ``images`` has one row per requested path (rows of skipped files are zero) and is
    memory-mapped from the cache when ``cache_dir`` is given.
    """
    root = Path(root)
    n = len(rel_paths)
    if cache_dir is None:
        images = np.zeros((n, size, size), dtype=np.uint8)
        ok, reasons = _decode_all(root, rel_paths, size, images, desc, resize)
        return images, ok, reasons

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    signature = file_signature(root, rel_paths)
    key = cache_key(root, signature, size, resize)
    npy, index = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if npy.is_file() and index.is_file():
        try:
            meta = json.loads(index.read_text(encoding="utf-8"))
            images = np.load(npy, mmap_mode="r")
            if (meta.get("signature") == signature and meta.get("size") == size
                    and meta.get("resize", "squash") == resize
                    and images.shape == (n, size, size) and images.dtype == np.uint8):
                ok = np.array(meta["ok"], dtype=bool)
                reasons = {int(k): v for k, v in meta["reasons"].items()}
                log.info("cache hit %s (%d images at %d px)", npy, n, size)
                return images, ok, reasons
            log.warning("cache entry %s does not match its inputs; rebuilding", npy)
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            log.warning("cache entry %s is unreadable; rebuilding", npy)
    index.unlink(missing_ok=True)

    fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".npy", dir=cache_dir)
    os.close(fd)
    try:
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, size, size))
        _reserve_disk_space(tmp, cache_dir)
        ok, reasons = _decode_all(root, rel_paths, size, mm, desc, resize)
        mm.flush()
        del mm
        os.replace(tmp, npy)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    from genaug.runs import atomic_write_text   # here: genaug.runs loads torch, and --data is checked without it
    atomic_write_text(index, json.dumps({"version": CACHE_VERSION, "root": str(root.resolve()),
                                         "size": size, "resize": resize, "signature": signature,
                                         "ok": ok.tolist(),
                                         "reasons": {str(k): v for k, v in reasons.items()}},
                                        ensure_ascii=True))
    _remove_superseded(cache_dir, key, str(root.resolve()), size, rel_paths, resize)
    say_skipped({safe_name(rel_paths[i]): why for i, why in reasons.items()})
    return np.load(npy, mmap_mode="r"), ok, reasons


def say_skipped(skipped: dict[str, str], named: int = 20) -> None:
    """Warn of files that could not be decoded: the first ``named`` one by one, then every one counted by
    reason (a folder of 5,000 files a missing decoder cannot read would otherwise print 5,000 lines)."""
    for name, why in list(skipped.items())[:named]:
        log.warning("skipped %s: %s", name, why)
    if len(skipped) > named:
        log.warning("skipped %d more; all %d by reason (each file is in the run's manifest.json and in "
                    "`genaug data info --json`):", len(skipped) - named, len(skipped))
        for why, n in Counter(skipped.values()).most_common():
            log.warning("  %7d  %s", n, why)


def _remove_superseded(cache_dir: Path, key: str, root: str, size: int, rel_paths: list[str],
                       resize: str = "squash") -> None:
    """Delete the entries the one just written (``key``) replaces, which no request can match again:
    the same files of the same root at the same size and resize, decoded when one of them differed, and entries
    of another cache version. Others (another split, size or root) stay. A process still reading a
    deleted entry keeps its memory map (the file is gone from the folder, not from the process).
    Only genaug's own entries are judged (a key's name, an index with its fields): --cache-dir may name
    a folder that holds the user's own files, and a .json/.npy pair of theirs was once deleted here."""
    for index in cache_dir.glob("*.json"):
        if index.stem == key or not _ENTRY_NAME.fullmatch(index.stem):
            continue
        try:
            meta = json.loads(index.read_text(encoding="utf-8"))
            if not (isinstance(meta, dict) and ENTRY_FIELDS <= meta.keys()):
                continue
            superseded = meta.get("version") != CACHE_VERSION or (
                meta.get("root") == root and meta.get("size") == size and meta.get("resize", "squash") == resize
                and [entry[0] for entry in meta.get("signature", [])] == rel_paths)
        except (OSError, ValueError, TypeError, IndexError, AttributeError):
            continue   # not ours to judge: a rebuild of that entry will replace it
        if superseded:
            log.info("removing superseded cache entry %s", index.with_suffix(".npy"))
            index.unlink(missing_ok=True)   # first: an entry without its index is never read
            index.with_suffix(".npy").unlink(missing_ok=True)
