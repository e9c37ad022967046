"""Run directories, manifests, logs and checkpoints.

Every job writes ``<out_root>/<command>/<timestamp>-<name>/`` holding the resolved
config, a log, a manifest and its artefacts.  Files are written atomically
(temporary file, fsync, rename) so an interrupted run never leaves half a file.
Checkpoints are plain dicts of tensors and builtins that load with
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import json
import shlex
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch

from genaug import __version__, distributed, locks
from genaug.config import closest_name
from genaug.data.decode import alike_path_note, safe_name
from genaug.data.folder import file_in_the_way
from genaug.device import cpu_has_bf16
from genaug.errors import CheckpointError, ConfigError, DiskFull, GenaugError, is_disk_full, is_out_of_memory
from genaug.locks import LOCK_NAME, in_use_by
from genaug.inventory import counted

log = logging.getLogger("genaug")

# The real training images a GAN or autoencoder run learnt from, one data-relative path per line: a
# benchmark reads it to check that its cells' synthetic images or latents drew on no real image those
# cells do not train on themselves.
TRAINING_LIST = "training_images.txt"


def _fsync_replace(tmp: str, path: Path) -> None:
    os.replace(tmp, path)
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Ctrl-C or SIGTERM arriving inside the block takes effect as it ends. The command's handler raises
    where the signal lands: inside torch.save, the zip writer's own cleanup then failed ("unexpected pos")
    and the command ended in that traceback instead of its stop message. Only the main thread can set
    handlers; elsewhere, and where a handler was not set from Python, signals act as before."""
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    if threading.current_thread() is not threading.main_thread() or None in previous.values():
        yield
        return
    caught: list[int] = []
    for s in STOP_SIGNALS:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught:
            signal.raise_signal(caught[0])   # now to the handler the command set


def atomic_write(path: Path, write) -> None:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, fsync, then rename over ``path``;
    a stop signal meanwhile takes effect once the file is in place.

    Under torchrun only rank 0 writes: the other ranks compute the same artefacts and drop them.
    """
    if not distributed.is_main():
        return
    with stop_signals_held():
        _atomic_write(path, write)


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        _raise_disk_full(exc, path)
        if exc.errno is None or exc.filename is None:
            raise
        # named as the file given, not the hidden temporary one beside it (found in session 55: `predict
        # --out /proc/p.csv` said "No such file or directory: /proc/.p.csv.z1qyninr.tmp")
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_replace(tmp, path)
    except BaseException as exc:
        # Writers that stream into a full disk do not all say so: torch.save fails with RuntimeError
        # ("unexpected pos"), np.save's short write with an OSError that has no errno. A write that
        # failed with the disk left (nearly) without free space is taken as a full disk. Measured
        # before the temp file goes, which frees that space again.
        nearly_full = isinstance(exc, (OSError, RuntimeError)) and _free_bytes(path.parent) < 2**20
        Path(tmp).unlink(missing_ok=True)
        _raise_disk_full(exc, path, nearly_full)
        raise


def _free_bytes(folder: Path) -> float:
    room = _disk_room(folder)
    return room[1] if room else float("inf")


def _disk_room(folder: Path) -> tuple[int, int] | None:
    """(block size, bytes free to this user) of the disk ``folder`` is or will be on, read at its nearest
    existing folder; None where that cannot be told."""
    existing = next((p for p in (folder, *folder.parents) if p.is_dir()), None)
    try:
        free = shutil.disk_usage(existing).free
    except (OSError, TypeError):
        return None
    try:
        block = os.statvfs(existing).f_frsize or 4096
    except (OSError, AttributeError):   # no os.statvfs on Windows: NTFS's usual cluster
        block = 4096
    return block, free


def check_room_for_files(folder: Path, n_files: int, flag: str) -> None:
    """Refuse, before any is written, ``n_files`` files (asked for by ``flag``, e.g. '--n 500') into ``folder``
    that cannot fit on its disk. Each file takes at least one block there (4 KiB on ext4 and XFS), so this is a
    bound the files cannot come in under: it never refuses work that would fit. Found in session 70: `gan
    sample --n 100000000` (a few zeros too many) started writing 200 million PNGs into a disk with room for 19
    million, to fail when it was full, with every other program on that disk failing beside it."""
    if (room := _disk_room(folder)) and n_files * room[0] > room[1]:
        block, free = room
        # a flag with a value can ask for fewer; a switch such as --balance cannot (found in session 72)
        remedy = (f"give a smaller {flag.split()[0]}, or --out on a disk with room" if " " in flag else
                  "free space on it, or give --out on a disk with room")
        raise ConfigError(f"{flag} asks for {n_files:,} files in {folder}, at least {_size_text(n_files * block)} "
                          f"on its disk ({block} bytes a file at the least), which has {_size_text(free)} free: {remedy}")


def check_room_for_bytes(folder: Path, n_bytes: int, what: str, remedy: str) -> None:
    """Refuse, before the work that leads to them, ``n_bytes`` of output (``what``) that cannot fit in
    ``folder``'s disk: e.g. an autoencoder's latents, written only after hours of training."""
    if (room := _disk_room(folder)) and n_bytes > room[1]:
        raise ConfigError(f"{what} take {_size_text(n_bytes)} in {folder}, and its disk has {_size_text(room[1])} "
                          f"free: {remedy}")


def _size_text(n: float) -> str:
    """Bytes as a person reads them: 819.2 GB, 98.3 MB, 12.0 kB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 1e3:.1f} kB"


def _raise_disk_full(exc: BaseException, path: Path, nearly_full: bool = False) -> None:
    """Raise a full disk (or quota) as a one-line DiskFull naming ``path``; return on any other error."""
    if nearly_full or is_disk_full(exc):
        raise DiskFull(f"no space left on the disk while writing {path} (what was there is unchanged and "
                       "what finished is kept): free some space, then run the command again, with --resume "
                       "RUN_DIR if its run directory was kept") from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    # surrogateescape: file names that are not valid UTF-8 are written back as the bytes they were
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))


def atomic_write_document(path: Path, text: str) -> None:
    """A document people and `genaug report` read (report.md and .html, summary.md, quality.md, pool.md): UTF-8
    text, a byte of a name that is not UTF-8 shown as \\xff. Written back as the byte it was (found in session
    72: a data folder named with a 0xff byte), it stopped `genaug report` and `archive` of the run with a
    UnicodeDecodeError."""
    atomic_write_bytes(path, safe_name(text).encode("utf-8"))


# How each command that writes one --out file knows its own earlier output (the opening 4 KB of it): a rerun
# replaces that, and any other file there, which may be the user's own, stays as it is
OUTPUT_FILE_MARKS = {
    "predict": lambda head: head.startswith("file,prediction,"),
    "report": lambda head: "Generated by `genaug report`" in head,
    "compare": lambda head: head.startswith("# ") and "\nA = `" in head and "\nB = `" in head,
}


def check_output_file(path: str | Path, command: str) -> Path:
    """``--out`` of ``genaug <command>``, checked before the work: a file name (its folders are made when it is
    written) where nothing but this command's own earlier output lies."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder; give a file name in it")
    if blocker := file_in_the_way(path.parent):
        raise ConfigError(f"--out {path}: {blocker} is a file, not a folder; give a file name in a folder")
    # a run's folders hold what genaug reads back (cells/*.json, samples/, latents/): a report written as
    # RUN/cells/new.json stopped every later report, pool and resume of RUN (found in session 72)
    if run_dir := enclosing_run(path.parent):
        inner = run_dir / path.parent.resolve().relative_to(run_dir).parts[0]
        raise ConfigError(f"--out {path} lies inside {inner}, a folder of genaug run {run_dir}: give a file name "
                          f"outside it (in {run_dir} itself, or elsewhere)")
    if path.exists():
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096).decode("utf-8", "replace")
        except OSError as exc:
            raise ConfigError(f"--out {path} exists and cannot be read ({exc.strerror}); give a new file name") from None
        if not OUTPUT_FILE_MARKS[command](head):
            raise ConfigError(f"--out {path} exists and is not the output of an earlier genaug {command}; "
                              "give a new file name (that file is left as it is)")
    return path

def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, format_json(obj) + "\n")


def format_json(obj: Any, indent: int = 2) -> str:
    """JSON as ``json.dumps(indent=2)`` lays it out, except that a list of numbers (or of lists of them, like
    per-image probabilities or a confusion matrix), or any short list of scalars, stays on one line. One number
    a line made each benchmark cell's JSON about 120 KB, a third of it whitespace; the values read back the same
    either way."""
    # One plain round trip first turns tensors, Paths, tuples and non-string keys into what json.dumps writes
    plain = json.loads(json.dumps(obj, default=_json_default))

    def scalars(o) -> list | None:
        """The scalars of a list of scalars or of lists of scalars; None for anything deeper."""
        out = []
        for x in o:
            if isinstance(x, list) and not any(isinstance(y, (dict, list)) for y in x):
                out.extend(x)
            elif isinstance(x, (dict, list)):
                return None
            else:
                out.append(x)
        return out

    def flat(o) -> bool:
        leaves = scalars(o) if isinstance(o, list) else None
        return leaves is not None and (all(not isinstance(x, str) for x in leaves) or len(json.dumps(o)) <= 100)

    def lay(o, level: int) -> str:
        inner, outer = " " * (indent * (level + 1)), " " * (indent * level)
        if isinstance(o, dict) and o:
            items = (f"{inner}{json.dumps(k)}: {lay(v, level + 1)}" for k, v in o.items())
            return "{\n" + ",\n".join(items) + "\n" + outer + "}"
        if isinstance(o, list) and o and not flat(o):
            return "[\n" + ",\n".join(inner + lay(v, level + 1) for v in o) + "\n" + outer + "]"
        return json.dumps(o)

    return lay(plain, 0)


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def atomic_torch_save(obj: dict, path: Path) -> None:
    atomic_write(path, lambda fh: torch.save(obj, fh))


def save_safetensors(state_dict: dict, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Final weights as .safetensors too: a format that holds tensors only, so loading it can run
    no code, readable from other languages and tools. Written atomically like every artefact."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    atomic_write_bytes(path, save(tensors, metadata=metadata))


def load_safetensors(path: str | Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable .safetensors file ({str(exc)[:120]})") from None


def load_checkpoint(path: str | Path, expected_keys: Iterable[str] = (), kind: str = "checkpoint") -> dict:
    """Load with ``weights_only=True`` (no code runs) and check the keys a caller needs."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{kind} {path} is a folder; {checkpoints_in(path)}")
    if not path.is_file():
        raise CheckpointError(f"{kind} not found: {path}{missing_run_hint(path)}")
    if path.suffix == ".safetensors":   # written beside the .pt for other tools: weights only, no settings
        beside = path.with_suffix(".pt")
        raise CheckpointError(f"{kind} {path} holds the weights only, for other tools; give "
                              f"{beside if beside.is_file() else 'the .pt file a genaug run wrote beside it'}")
    with open(path, "rb") as fh:
        head = fh.read(4)
    # torch.save writes a zip archive (legacy files: a pickle, b"\x80"); for anything else torch.load's
    # own message is a bare KeyError such as "101", which tells the user nothing
    if not head.startswith((b"PK\x03\x04", b"\x80")):
        what = "an empty file" if not head else "not a PyTorch checkpoint (neither a zip archive nor a pickle)"
        raise CheckpointError(f"{kind} {path} is {what}"
                              + (_the_right_one(path, kind) or "; give the .pt file a genaug run wrote"))
    try:
        with warnings.catch_warnings():   # a plain pickle's "Detected pickle protocol 4": two lines more beside
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)   # the one-line error
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with code, truncated zip...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # its first sentence: torch's go on with advice cut off mid-phrase (found in session 68: "... there is a
        # high); is it ...")
        first = first.split(". ")[0].rstrip(".")
        first = first if len(first) <= 160 else first[:159] + "…"
        raise CheckpointError(f"{kind} {path} cannot be loaded safely ({first}); "
                              "is it a genaug checkpoint and complete?") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{kind} {path} is not a genaug checkpoint (expected a dict)")
    missing = [k for k in expected_keys if k not in ckpt]
    if missing and (what := CHECKPOINT_KINDS.get(ckpt.get("kind"))):   # a genaug checkpoint of another kind
        raise CheckpointError(f"{kind} {path} is {what}, not {'an' if kind[0] in 'aeiou' else 'a'} {kind}"
                              + _the_right_one(path, kind))
    if missing:
        raise CheckpointError(f"{kind} {path} lacks {', '.join(missing)}; it is not a genaug {kind}")
    return ckpt


# What each kind of checkpoint genaug writes is, for a file given where another kind was wanted (session 54:
# `gan sample --checkpoint checkpoint-conditional.pt` was told it "lacks generator, nz, ngf, image_size")
CHECKPOINT_KINDS = {"gan": "a GAN's training checkpoint, which genaug gan --resume reads",
                    "judge": "the class-fidelity judge of a GAN run's quality report",
                    "classifier fit": "a benchmark cell's training checkpoint, which genaug benchmark --resume reads",
                    "generator": "a generator", "autoencoder": "an autoencoder", "classifier": "a classifier"}
WANTED_FILES = {"generator checkpoint": ("generator-*.pt", "a genaug gan run"),
                "autoencoder checkpoint": ("autoencoder.pt", "a genaug encode run"),
                "classifier checkpoint": ("models/*.pt", "genaug benchmark --save-models")}


def _the_right_one(path: Path, kind: str) -> str:
    """'; give X' naming the files of the wanted kind in the run ``path`` lies in, where there are some."""
    if kind not in WANTED_FILES:
        return ""
    pattern, writer = WANTED_FILES[kind]
    run = enclosing_run(path) or path.parent
    found = [p for p in sorted(run.glob(pattern)) if p != path]
    return (f"; give {' or '.join(str(p) for p in found[:3])}" if found
            else f"; give the {pattern} file that {writer} wrote")


def checkpoint_in_folder(folder: Path, pattern: str, kind: str, writer: str) -> Path:
    """The checkpoint a folder given in its place stands for: the one ``pattern`` file in it (a run given
    whole, the way runs are named everywhere else); a folder with none or several is refused, naming them."""
    found = sorted(Path(folder).glob(pattern))
    if len(found) == 1 and found[0].is_file():
        return found[0]
    raise CheckpointError(f"{kind} {folder} is a folder; {checkpoints_in(folder, pattern, writer)}")


def checkpoints_in(folder: Path, pattern: str = "*.pt", writer: str = "a genaug run", most: int = 3) -> str:
    """What to give instead of a folder: the checkpoints under it that match ``pattern``."""
    found = sorted(Path(folder).rglob(pattern))
    if not found:
        return f"it holds no {pattern} file; give the .pt file that {writer} wrote"
    names = ", ".join(str(p) for p in found[:most])
    more = f" ({len(found)} in all)" if len(found) > most else ""
    return f"give one of the checkpoints in it: {names}{more}"


@functools.lru_cache(maxsize=None)
def git_commit() -> str:
    """HEAD of genaug's checkout, with '+dirty' when tracked files differ from it (the run used
    code that no commit holds); 'unknown' outside a git checkout. Read once per process: the code
    a process runs is what it imported, even if HEAD moves while it trains (cells take hours)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
        top, head = (out.stdout.splitlines() + ["", ""])[:2]   # lines: a folder's name may hold spaces
        # installed (not -e) into a virtual environment inside some other project's checkout, git finds
        # that project, whose HEAD is not genaug's: only a checkout whose genaug/ is this one counts
        if not head or (Path(top) / "genaug").resolve() != here:
            return "unknown"
        # only the code counts: results archived in the repo (docs/runs) change without changing it
        code = [f":(top){p}" for p in ("genaug", "cli", "configs", "pyproject.toml")]
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *code], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict:
    # from the installed metadata: importing torchvision and torchmetrics to ask takes seconds
    from importlib.metadata import version
    return {"genaug": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": version("torchvision"), "torchmetrics": version("torchmetrics"),
            "numpy": version("numpy")}


def _cpu_name() -> str:
    """The CPU's model name with its family and model numbers: virtual machines often report only
    "AMD EPYC", and the numbers tell one generation from the next."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
            if not line.strip():
                break   # the first processor's block is enough
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def machine_info(device: str | torch.device | None = None, bf16: bool = False) -> dict:
    """Where a computation ran (``device``), or what the machine has (None). The same seed gives
    the same model bit for bit only with the same kernels: PyTorch picks CPU kernels by instruction
    set (AVX2, AVX512, ...) and GPU kernels by device, and results also moved with the CPU model
    (an Intel and an AMD CPU, both AVX512) and the thread count (1 against 2 on one CPU), each from
    the first epoch (docs/STATUS.md #5, sessions 18-19), so these are kept beside every result. Two
    Intel Xeons of other generations (family 6, models 207 and 106, both AVX512) did give the same
    fp32 CNN cells and GAN bit for bit, but not the same bf16 cells: one computes bf16 in hardware, the
    other emulates it (docs/PERFORMANCE.md (s), session 77)."""
    info = {"cpu": _cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads()}
    on_gpu = torch.cuda.is_available() if device is None else str(device).startswith("cuda")
    if on_gpu and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(None if device is None else torch.device(device))
    if bf16 and not on_gpu:   # a computation in bf16 on the CPU (run.cpu_amp) gives other numbers than in fp32
        info["autocast"] = "bf16"
        # and other numbers again where oneDNN emulates it: session 77's Xeon without bf16 hardware matched an
        # AMX Xeon's fp32 cell bit for bit, its bf16 cell not from the first epoch (docs/PERFORMANCE.md (s))
        info["bf16_in_hardware"] = cpu_has_bf16()
    return info


def machine_summary(info: dict | None) -> str:
    """One line for a report: 'AMD EPYC (family 25, model 1), AVX2, 2 threads'."""
    if not info:
        return "not recorded"
    parts = [info.get("gpu") or info.get("cpu", "?"), info.get("cpu_capability", "?")]
    if not info.get("gpu"):
        threads = info.get("threads", "?")
        parts.append(f"{threads} thread{'' if threads == 1 else 's'}")
    if info.get("autocast"):
        emulated = " (emulated: no AMX or AVX512-BF16)" if info.get("bf16_in_hardware") is False else ""
        parts.append(f"{info['autocast']} autocast{emulated}")
    return ", ".join(str(p) for p in parts)


CELL_KEYS = ("model", "variant", "train_fraction", "seed", "test_at_val_threshold")


def read_cell(path: Path) -> dict:
    """One finished benchmark cell, cells/<key>.json. Cells are written atomically, so one that does
    not parse was edited or damaged afterwards: say which, and how to get it back."""
    retrain = (f"move it out of cells/ and rerun with genaug benchmark --resume "
               f"{shlex.quote(str(Path(path).parent.parent))} to train that cell again")
    try:
        cell = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:   # not JSON, or not UTF-8
        raise CheckpointError(f"benchmark cell {path} is not valid JSON ({exc}); {retrain}") from None
    # every cell genaug has written names what it is and holds its test result; "{}" had ended compare,
    # pool and --report-only in a KeyError traceback
    missing = [k for k in CELL_KEYS if k not in cell] if isinstance(cell, dict) else list(CELL_KEYS)
    if missing:
        raise CheckpointError(f"benchmark cell {path} is not a genaug cell (no {', '.join(missing)}); {retrain}")
    return cell


def read_cells(cells_dir: Path) -> list[dict]:
    """Every finished cell of a benchmark run, in file-name order."""
    return [read_cell(p) for p in sorted(Path(cells_dir).glob("*.json"))]


def machines_of(records: Iterable[dict]) -> dict[str, int]:
    """How many of these records (cells) ran on each machine; those from before genaug kept it:
    'not recorded'."""
    counts: dict[str, int] = {}
    for r in records:
        where = machine_summary(r.get("machine"))
        counts[where] = counts.get(where, 0) + 1
    return counts


def machines_line(counts: dict[str, int]) -> str:
    """machines_of's counts as one line: 'AMD EPYC ..., AVX2, 1 thread (2 cells); not recorded (1 cell)'."""
    return "; ".join(f"{where} ({n} cell{'s' if n != 1 else ''})" for where, n in sorted(counts.items()))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


class Run:
    """One run directory with its log and manifest."""

    def __init__(self, directory: Path, command: str):
        self.dir = Path(directory)
        self.command = command
        self.manifest: dict[str, Any] = {
            "command": command, "argv": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": package_versions(), "git_commit": git_commit(), "host": platform.node(),
        }
        self._handler: logging.Handler | None = None
        self._locks: list[int] = []
        self.manifest_name = "manifest.json"   # shards of one benchmark each keep their own
        # False for a process that only rewrites the report (benchmark --report-only): the manifest's
        # machine stays the one that last trained, which a report names for cells that kept none of their own
        self.trains = True
        # settings a resumed run keeps from its own config.yaml rather than this command's flags, so that an
        # error about one names where it came from, not a flag the user did not give
        self.inherited: set[str] = set()

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    def start_log(self) -> None:
        if not distributed.is_main():   # one log per run, rank 0's
            return
        self._handler = RunLogHandler(self.path("log.txt"), encoding="utf-8", errors="backslashreplace")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root = logging.getLogger("genaug")
        root.addHandler(self._handler)
        root.setLevel(logging.INFO)

    def close(self) -> None:
        if self._handler is not None:
            logging.getLogger("genaug").removeHandler(self._handler)
            self._handler.close()
            self._handler = None
        self.release()

    def hold(self, shard: str | None = None) -> None:
        """Lock the run against a second process resuming it while this one works on it (see
        genaug.locks); ``shard`` (e.g. "1of2") shares it with the other shards. Raises RunInUse."""
        if distributed.is_main():   # under torchrun rank 0 speaks for the run
            self._locks += locks.acquire(self.dir, shard)

    def release(self) -> None:
        locks.release(self._locks)

    def save_manifest(self, **extra: Any) -> None:
        self.manifest.update(extra)
        if self.trains or "machine" not in self.manifest:
            self.manifest["machine"] = machine_info()   # the latest training process's; cells keep their own
            # how OpenMP's idle threads waited (set by the genaug command, or the user): the speed depends on it
            self.manifest["openmp_wait"] = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
                                            if k in os.environ}
        self.manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json(self.path(self.manifest_name), self.manifest)


class RunLogHandler(logging.FileHandler):
    """The run's log.txt. A record it cannot write (a full disk) is told once, in one line, instead of
    logging's traceback on every record; the work goes on, and what it writes next says if it cannot."""

    _told = False

    def handleError(self, record: logging.LogRecord | None) -> None:
        if not self._told:
            self._told = True
            sys.stderr.write(f"genaug: warning: cannot write {self.baseFilename} ({sys.exc_info()[1]}); "
                             "the run goes on without its log\n")

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:
            self.handleError(None)

    def close(self) -> None:
        try:
            super().close()   # its last flush can fail the same way
        except OSError:
            self.handleError(None)


def new_run(out_root: str | Path, command: str, name: str = "", config: dict | None = None,
            shard: str | None = None) -> Run:
    """Create a fresh run directory, held by this process (``Run.hold``) until it closes; an
    existing one is never reused or overwritten. Under torchrun rank 0 creates it and every rank
    gets its path."""
    if not distributed.is_main():
        return Run(Path(distributed.broadcast_object(None)), command)
    run = _create_run(out_root, command, name, config, shard)
    distributed.broadcast_object(str(run.dir))
    return run


def check_folder_root(root: str | Path, flag: str, what: str) -> None:
    """``root``, a folder made if missing, is not a file or below one."""
    if blocker := file_in_the_way(root):
        raise ConfigError(f"{flag} {root}: {blocker} is a file, not a folder; give the folder {what} go in "
                          "(it is made if missing)")


def _create_run(out_root: str | Path, command: str, name: str, config: dict | None, shard: str | None) -> Run:
    from genaug.config import check_new_run_name   # gan sample, explain and pool take --name without a config
    from genaug.data import check_out_outside_data

    check_new_run_name(name)
    if isinstance(data := (config or {}).get("data"), dict) and isinstance(data.get("data"), str):
        check_out_outside_data(out_root, data["data"])
    check_folder_root(out_root, "--out", "runs")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(out_root) / command
    base.mkdir(parents=True, exist_ok=True)
    stem = f"{stamp}-{name}" if name else stamp
    for i in range(1000):
        d = base / (stem if i == 0 else f"{stem}-{i}")
        try:
            d.mkdir()
            break
        except FileExistsError:
            continue
    else:
        raise CheckpointError(f"cannot create a new run directory under {base}")
    run = Run(d, command)
    run.hold(shard)
    run.start_log()
    if config is not None:
        write_run_config(run, config)
    run.save_manifest()
    return run


@contextlib.contextmanager
def running(run: Run, new: bool) -> Iterator[Run]:
    """Around a command's work on ``run``: a refusal (bad input, a GenaugError) goes into the run's
    log, and a ``new`` run refused before it wrote anything but its config, manifest, log and
    training list is removed, so that a mistyped --data or --class leaves no empty run behind. A
    run that got as far as a checkpoint, a cell or an image is kept, to be resumed. The log is
    closed either way."""
    try:
        yield run
    except GenaugError as exc:
        if not getattr(exc, "stop_logged", False):   # said once, by the innermost run (see below)
            log.error("stopped: %s", exc)
            exc.stop_logged = True
        _remove_if_empty(run, new, exc)
        raise
    except BaseException as exc:
        # a stop (Ctrl-C, SIGTERM) or a failure such as a full disk: the command's last line names the run
        # to resume. The outermost run sets it last: a benchmark's own GAN and autoencoder runs lie in it.
        exc.run_dir = run.dir
        if not getattr(exc, "stop_logged", False) and not (isinstance(exc, SystemExit) and not exc.code):
            # the log is what is left to read later ('genaug runs' shows the run stopped): say why. A
            # benchmark's own GAN and autoencoder logs share its handler, so the innermost run says it once.
            log.error(stop_reason(exc))
            exc.stop_logged = True
        if is_out_of_memory(exc) or is_disk_full(exc):
            # resuming an empty run trains from the start, as running the command again does: found in
            # session 72, `gan --width 100000` left an empty folder it told the user to --resume
            _remove_if_empty(run, new, exc)
        raise
    finally:
        run.close()


def _remove_if_empty(run: Run, new: bool, exc: BaseException) -> None:
    """Remove a ``new`` run stopped by ``exc`` before it wrote anything but its config, manifest, log and
    training list, and record it on ``exc`` for the command's error line."""
    run.close()
    if new and distributed.is_main() and not _written_beyond_start(run.dir):
        shutil.rmtree(run.dir, ignore_errors=True)
        with contextlib.suppress(OSError):   # OUT/<command>/ too, when this run was all it held
            run.dir.parent.rmdir()
        # the command named the folder when it began: its error says it is gone (the outermost run's, last)
        exc.removed_run = run.dir


def stop_reason(exc: BaseException) -> str:
    """Why a command stopped, as its run's log says it: a signal, a closed console, or the error itself."""
    signum = getattr(exc, "signum", None)
    if signum is not None and signum != signal.SIGINT:
        return f"stopped by {signal.Signals(signum).name}"
    if signum is not None or isinstance(exc, KeyboardInterrupt):
        return "stopped: interrupted (Ctrl-C)"
    if isinstance(exc, BrokenPipeError):   # click then exits with status 1 and says nothing
        return "stopped: its console output was closed (a pipe such as '| head' ended before it)"
    if is_disk_full(exc):
        return "stopped: no space left on the disk"
    text = str(exc).strip().splitlines()
    return f"stopped: {type(exc).__name__}{f': {text[0]}' if text else ''}"


def _written_beyond_start(d: Path) -> bool:
    start = re.compile(r"(config\.yaml|log\.txt|manifest(-shard\d+of\d+)?\.json|" + re.escape(TRAINING_LIST)
                       + "|" + re.escape(LOCK_NAME) + r"(-shard\d+of\d+)?)")
    return any(p.is_file() and not start.fullmatch(p.relative_to(d).as_posix()) for p in d.rglob("*"))


def write_run_config(run: Run, config: dict) -> None:
    """The resolved config as the run's config.yaml (rewritten when a resumed run is extended)."""
    atomic_write_text(run.path("config.yaml"), _yaml_dump(config))


def read_manifest(directory: str | Path, command: str = "") -> dict:
    """A run's manifest.json; a CheckpointError where the folder is no run (naming the run it lies
    inside, or the runs it holds, of ``command`` where one is wanted) or its manifest is corrupt (not JSON,
    not UTF-8, or naming no command)."""
    d = Path(directory)
    mf = d / "manifest.json"
    if not d.exists():   # was "is not a genaug run (no manifest.json)" of a mistyped path (session 67)
        raise CheckpointError(f"run not found: {d}{missing_run_hint(d, command)}")
    if not mf.is_file():
        raise CheckpointError(f"{d} is not a genaug run (no manifest.json){nearby_runs_hint(d, command)}")
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
    except ValueError:   # not JSON, or not even UTF-8 text (which had ended in a UnicodeDecodeError traceback)
        manifest = None
    # every run's manifest names the command that made it from the start: without one it was damaged
    if not isinstance(manifest, dict) or not isinstance(manifest.get("command"), str) or not manifest["command"]:
        raise CheckpointError(f"run manifest {mf} is corrupt: restore the file the run wrote (e.g. from an archive "
                              "of the run), or move the run away")
    return manifest


def open_run(directory: str | Path, command: str, clear_stale: bool = True, hold: bool = True,
             shard: str | None = None) -> Run:
    """Reopen an existing run (for --resume), held by this process (``Run.hold``, as ``shard`` when
    given) until it closes; ``hold=False`` to only read it. ``clear_stale=False`` where other
    processes may be writing into it (benchmark shards): their temporary files are live, not stale."""
    d = Path(directory)
    if d.is_file():   # the report.md or checkpoint a run printed, pasted as the run
        raise CheckpointError(f"{d} is a file, not a run directory{nearby_runs_hint(d)}")
    if not d.is_dir():
        raise CheckpointError(f"run directory not found: {d}{missing_run_hint(d, command)}")
    manifest = read_manifest(d, command)   # a folder that is no run is refused before a lock or log is written into it
    run = Run(d, command)
    run.manifest.update(manifest)
    made_by = run.manifest.get("command")
    if made_by and made_by != command:   # resuming into it would write this command's files among that run's
        raise CheckpointError(f"{d} was made by genaug {as_typed(made_by)}, not genaug {command}: give --resume a run "
                              f"of genaug {command} (under <out>/{command}/)")
    if not (d / "config.yaml").is_file():   # every run writes it first: a folder without it is no run of
        # genaug's, however its manifest.json reads, and nothing is written into it or cleared from it
        raise CheckpointError(f"{d} is not a genaug run (no config.yaml){nearby_runs_hint(d)}")
    if hold:   # before anything is cleared or written: the run may be another process's at work
        run.hold(shard)
    # a process killed inside atomic_write leaves its temporary file; the target itself is whole
    for stale in (d.rglob(".*.tmp") if clear_stale and distributed.is_main() else ()):
        stale.unlink(missing_ok=True)
    run.manifest.setdefault("resumed", []).append(time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    run.manifest.setdefault("resume_argv", []).append(sys.argv)
    run.start_log()
    return run


def latest_run(out_root: str | Path, command: str) -> Path | None:
    base = Path(out_root) / command
    if not base.is_dir():
        return None
    dirs = sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: p.name)
    return dirs[-1] if dirs else None


# What an archive leaves out: weights and latents are large and can be remade; images that show
# real X-rays (the autoencoder's originals beside their reconstructions, the memorization pairs of
# synthetic images and their nearest training images, Grad-CAM overlays) are data that must not
# travel with results.
ARCHIVE_SKIP_DIRS = {"partial": "unfinished training state", "models": "weights", "latents": "latents",
                     "synthetic": "synthetic image files", "tensorboard": "event logs", "cache": "data cache"}
ARCHIVE_SKIP_SUFFIXES = {".pt": "weights", ".safetensors": "weights", ".npy": "arrays", ".npz": "arrays",
                         ".tmp": "unfinished write"}
ARCHIVE_REAL_PIXELS = ("reconstructions.png", "memorization-*.png", "*_gradcam.png")
# the GAN's or autoencoder's list of training files: the data's own file names, kept with the data
ARCHIVE_SKIP_FILES = {"training_images.txt": "names the real training files"}
ARCHIVE_MAX_BYTES = 2_000_000


def _archive_skip(rel: Path, size: int, last_grids: set[Path]) -> str | None:
    """Why ``rel`` (a file inside a run) stays out of an archive, or None to copy it."""
    for part in rel.parts[:-1]:
        if part in ARCHIVE_SKIP_DIRS:
            return ARCHIVE_SKIP_DIRS[part]
    if rel.suffix in ARCHIVE_SKIP_SUFFIXES:
        return ARCHIVE_SKIP_SUFFIXES[rel.suffix]
    if any(rel.match(p) for p in ARCHIVE_REAL_PIXELS):
        return "shows real X-rays"
    if str(rel) in ARCHIVE_SKIP_FILES:
        return ARCHIVE_SKIP_FILES[str(rel)]
    if rel.parent.name == "samples" and rel not in last_grids:
        return "earlier epoch's sample grid"
    if size > ARCHIVE_MAX_BYTES:
        return f"over {ARCHIVE_MAX_BYTES // 1_000_000} MB"
    return None


def _without_left_out_figures(text: str, rel: Path, skipped: list[tuple[str, str]]) -> str:
    """The text of report ``rel`` with each picture beside it that the archive leaves out (Markdown
    ``![..](name)`` or HTML ``<img src="name">``) replaced by a note saying why it is missing."""
    for f, why in skipped:
        if Path(f).parent != rel.parent or Path(f).suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        name = Path(f).name
        note = f"({name} is not in this archive: {why})"
        text = re.sub(r"!\[[^\]]*\]\(" + re.escape(name) + r"\)", lambda _: note, text)
        text = re.sub(r'<img [^>]*src="' + re.escape(name) + r'"[^>]*>', lambda _: html.escape(note), text)
    return text


def _check_same_run(src: Path, dest: Path) -> None:
    """An archive already at ``dest`` must be of this run (archiving again updates it): another run of the
    same folder name, from another --out or machine, would be merged into it file by file."""
    if not (dest / "manifest.json").is_file():
        return
    ours = read_manifest(src)
    try:
        theirs = read_manifest(dest)
    except CheckpointError:
        theirs = {}
    if (theirs.get("started"), theirs.get("host")) != (ours.get("started"), ours.get("host")):
        raise CheckpointError(f"{dest} holds another run of the same name (started {theirs.get('started', '?')} on "
                              f"{theirs.get('host', '?')}; this one {ours.get('started', '?')} on {ours.get('host', '?')}): "
                              "archive to another --to, or move that archive away first")


def archive_run(directory: str | Path, dest_root: str | Path) -> tuple[Path, list[str], list[tuple[str, str]]]:
    """Copy a run's results to ``dest_root/<command>/<run name>/``: config, manifests, log, metrics,
    cells, reports and plots, without weights, latents, synthetic image files, unfinished state or
    pictures of real X-rays. Archived again, it updates the files it holds and deletes none. JSON is
    laid out as ``write_json`` writes it (one list of numbers a line); its values are unchanged.

    An archived benchmark run can be resumed like any run (finished cells are kept; cells that
    need a GAN or encode run that was not archived ask for it), and ``genaug report`` reads it.
    Returns (archive directory, files copied, [(file left out, why)]).
    """
    src = Path(directory)
    if src.exists() and not (src / "manifest.json").is_file():   # read_manifest tells a path that is not there
        raise CheckpointError(f"{src} is not a genaug run (no manifest.json){nearby_runs_hint(src) or '; give a run directory'}")
    command = read_manifest(src)["command"]
    check_folder_root(dest_root, "--to", "archives")
    dest = Path(dest_root) / command / src.name
    if dest.resolve() == src.resolve() or src.resolve() in dest.resolve().parents:
        raise CheckpointError(f"the archive {dest} would be the run itself or inside it; choose another --to")
    _check_same_run(src, dest)
    # a lock file belongs to the process at work on the run, not to its results: neither copied nor listed
    files = sorted(p for p in src.rglob("*") if p.is_file() and not p.is_symlink() and not p.name.startswith(LOCK_NAME))
    grids: dict[tuple[Path, str], Path] = {}
    for p in files:    # the newest grid per sample series (e.g. conditional_epoch_020.png)
        if p.parent.name == "samples" and "_epoch_" in p.name:
            grids[(p.parent, p.name.rsplit("_epoch_", 1)[0])] = p.relative_to(src)
    last_grids = set(grids.values())
    decisions = [(p, p.relative_to(src), _archive_skip(p.relative_to(src), p.stat().st_size, last_grids))
                 for p in files]
    skipped = [(str(rel), why) for _, rel, why in decisions if why]
    # every file read before any is written: a file that may not be read stopped the copy part way, leaving an
    # archive without its record that looked whole (found in session 73)
    unreadable = []
    for p, rel, why in decisions:
        try:
            if not why:
                p.open("rb").close()
        except OSError as exc:
            unreadable.append(f"{rel}: {exc.strerror}")
    if unreadable:
        raise CheckpointError(f"cannot read {counted(len(unreadable), 'file')} of {src} ({unreadable[0]}): make "
                              f"{'it' if len(unreadable) == 1 else 'them'} readable, then archive again; nothing "
                              "was written")
    copied = []
    for p, rel, why in decisions:
        if why:
            continue
        data = p.read_bytes()
        if rel.suffix in (".md", ".html"):   # a report must not point at a picture the archive left out
            # surrogateescape: a name's byte that is not UTF-8 (a report before session 72) is kept as it was
            data = _without_left_out_figures(data.decode("utf-8", "surrogateescape"), rel, skipped).encode(
                "utf-8", "surrogateescape")
        elif rel.suffix == ".json":          # a run written before format_json: the same values, a third smaller
            try:
                data = (format_json(json.loads(data)) + "\n").encode("utf-8")
            except ValueError:               # not JSON after all: copied as it is
                pass
        atomic_write_bytes(dest / rel, data)
        copied.append(str(rel))
    # a skipped folder (thousands of synthetic images, say) is listed once, with its file count
    listed: dict[str, dict] = {}
    for f, why in skipped:
        parts = Path(f).parts
        top = next((i for i, d in enumerate(parts[:-1]) if d in ARCHIVE_SKIP_DIRS), None)
        name = f if top is None else "/".join(parts[:top + 1]) + "/"
        listed.setdefault(name, {"file": name, "why": why, "files": 0})["files"] += 1
    record = {"from": str(src), "archived": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "left_out": list(listed.values())}
    try:   # an archive archived again: what the first archive left out is missing here too, so it stays listed
        record["earlier"] = json.loads((src / "archived.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    if busy := in_use_by(src):   # a run still training: the archive is a snapshot of what it had finished
        record["still_at_work"] = busy
    write_json(dest / "archived.json", record)
    return dest, copied, skipped


def _yaml_dump(obj: dict) -> str:
    import yaml
    return yaml.safe_dump(obj, sort_keys=False)


def not_a_run_of(directory: str | Path, wanted: str, flag: str) -> str:
    """For an input-run error: where ``directory`` is a genaug run of another command, a clause that says
    so ("; it is a genaug encode run: --gan-run takes a genaug gan run's folder"), else ''."""
    made_by = command_of(directory)
    if made_by is None or made_by in (wanted, f"{wanted}-sample"):   # gan sample's runs serve too
        return ""
    return f"; it is a genaug {as_typed(made_by)} run: {flag} takes a genaug {wanted} run's folder"


def command_of(directory: str | Path) -> str | None:
    """The command whose run ``directory`` is, as its manifest names it; None where that cannot be read."""
    try:
        made_by = json.loads((Path(directory) / "manifest.json").read_text(encoding="utf-8"))["command"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return made_by if isinstance(made_by, str) else None


def each_once(paths) -> list[Path]:
    """``paths`` in the order given, each run once however it was spelt (``R``, ``R/``, ``./R``, a link to
    it): shell globs overlap (`genaug report outputs/benchmark/* outputs/benchmark/2026*`), and a run given
    twice was gathered (or archived) twice (found in session 55)."""
    seen, out = set(), []
    for p in map(Path, paths):
        if (real := p.resolve()) not in seen:
            seen.add(real)
            out.append(p)
    return out


def as_typed(command: str) -> str:
    """A run's command as the user types it: the runs of `genaug gan sample` are gan-sample runs, under
    <out>/gan-sample/ (found in session 55: "was made by genaug gan-sample", a command there is not)."""
    return command.replace("-", " ")


def enclosing_run(directory: str | Path) -> Path | None:
    """The run that ``directory`` lies inside (its cells/, synthetic/ or latents/), if any."""
    return next((d for d in Path(directory).resolve().parents[:3]
                 if (d / "config.yaml").is_file() and (d / "manifest.json").is_file()), None)


def missing_run_hint(directory: str | Path, command: str = "") -> str:
    """For a 'run not found' error: the runs beside where ``directory`` would be (of ``command`` where one
    is wanted) whose names it begins (a name cut short when copied) or that it nearly spells, or the path it
    spells in another Unicode form or case; else ''."""
    d = Path(directory)
    if there := alike_path_note(d):
        return there
    try:
        runs = sorted(e.name for e in d.parent.iterdir() if (e / "manifest.json").is_file()
                      and (not command or command_of(e) in (command, f"{command}-sample")))
    except OSError:
        return ""
    near = [n for n in runs if n.startswith(d.name)] if d.name else []
    if not near and (close := closest_name(d.name, runs, cutoff=0.85)):
        near = [close]
    if not near:
        return ""
    shown = ", ".join(str(d.parent / n) for n in near[:3]) + (f" ({len(near)} in all)" if len(near) > 3 else "")
    return f"; did you mean {shown}?"


def nearby_runs_hint(directory: str | Path, command: str = "") -> str:
    """For a 'not a genaug run' error: where ``directory`` lies inside a run (its cells/ or synthetic/ given
    for the run), a clause naming that run; where it holds runs (the run root, or one command's folder of it:
    `genaug report docs/runs/pool` for `docs/runs/pool/*`, session 60), of ``command`` where one is wanted,
    a clause naming how to give them; else ''."""
    if run := enclosing_run(directory):
        return f"; it lies inside the run {run}: give that folder"
    d = Path(directory)
    # two levels down at most: OUT/<command>/<run>; a deeper search of a large folder given by mistake would crawl
    held = sorted(m.parent for pattern in ("*/manifest.json", "*/*/manifest.json") for m in d.glob(pattern)
                  if (m.parent / "config.yaml").is_file()
                  and (not command or command_of(m.parent) in (command, f"{command}-sample"))) if d.is_dir() else []
    if not held:
        return ""
    if len(held) == 1:
        return f"; it holds one run, {held[0]}: name that folder"
    globs = sorted({f"{run.parent}/*" for run in held})
    return (f"; it holds {len(held)} runs: name runs, not the folder above them, e.g. {held[0]}, "
            f"or {' '.join(globs[:3])}{' ...' if len(globs) > 3 else ''} for all")


def data_learnt_from(directory: Path) -> str | None:
    """The --data of the run at ``directory`` (a GAN run beside its generator, a benchmark run above its
    models/), or None where ``directory`` is no readable run: a checkpoint copied away from its run says
    nothing of the data it learnt from."""
    try:
        spec = read_run_config(directory).get("data", {}).get("data")
    except (CheckpointError, AttributeError):
        return None
    return spec if isinstance(spec, str) else None


def read_run_config(directory: Path) -> dict:
    import yaml
    p = Path(directory) / "config.yaml"
    if not p.is_file():
        raise CheckpointError(f"{directory} is not a genaug run (no config.yaml){nearby_runs_hint(directory)}")
    try:
        cfg = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        raise CheckpointError(f"run config {p} does not parse{f' (line {where.line + 1})' if where else ''}: it was "
                              "edited or damaged after the run wrote it; restore it (the command that made the "
                              "run is under argv in its manifest.json)") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"run config {p} is not a mapping of settings; restore the file the run wrote")
    return cfg
