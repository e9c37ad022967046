"""Which process is at work on a run directory.

A process that trains or resumes a run holds a lock file in it, so that a second process resuming
the same run (a second terminal that took the first for dead) is refused instead of training the
same epochs again and clearing the first's temporary files as stale. Locks are ``flock``s: the
kernel drops one when its process ends, SIGKILL included, so a crashed run never stays locked. A
whole-run process holds LOCK_NAME exclusively; benchmark shards hold it shared, each with its own
LOCK_NAME-shard<I>of<N> exclusively. Torch-free, so that ``genaug runs`` answers at once.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import time
from datetime import datetime
from pathlib import Path

from genaug.errors import RunInUse

LOCK_NAME = ".genaug-lock"


def acquire(directory: Path, shard: str | None = None) -> list[int]:
    """Lock run ``directory`` for this process (``shard``, e.g. "1of2": shared with the other shards,
    exclusive of this shard's cells) and return the descriptors that hold it, for ``release``.
    Raises RunInUse, naming the holders, when another process has it."""
    d = Path(directory)
    held: list[int] = []
    wanted = [(LOCK_NAME, fcntl.LOCK_SH if shard else fcntl.LOCK_EX)]
    wanted += [(f"{LOCK_NAME}-shard{shard}", fcntl.LOCK_EX)] if shard else []
    for name, mode in wanted:
        try:
            fd = os.open(d / name, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:   # a read-only run (an archive being reported): it writes nothing to guard
            continue
        try:
            _flock_soon(fd, mode)
        except BlockingIOError:
            os.close(fd)
            release(held)
            holders = [_held_note(d / name)] if name != LOCK_NAME else _holders(d) or ["holder unknown"]
            them = "them" if len(holders) > 1 else "it"
            raise RunInUse(f"run {d}{f' (its shard {_shard_words(shard)})' if name != LOCK_NAME else ''} is in use "
                           f"by {'other genaug processes' if len(holders) > 1 else 'another genaug process'} "
                           f"({'; '.join(holders)}): wait for {them} to finish, or stop {them} first (Ctrl-C; what "
                           "finished is kept); to train one benchmark in several processes, give each --shard I/N"
                           ) from None
        except OSError:   # a filesystem without locks (some network mounts): run unguarded
            os.close(fd)
            continue
        held.append(fd)
        if mode == fcntl.LOCK_EX:   # who holds it, for others' messages; shared holders keep quiet
            note = json.dumps({"pid": os.getpid(), "host": platform.node(), "shard": shard,
                               "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, note.encode(), 0)
    return held


def _flock_soon(fd: int, mode: int, tries: int = 5) -> None:
    """flock without waiting on a holder, but past a look: ``in_use_by`` takes a free lock for a
    moment to see that it is free, and a process starting then must not be refused for it."""
    for i in range(tries):
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if i == tries - 1:
                raise
            time.sleep(0.05)


def release(held: list[int]) -> None:
    for fd in held:
        with contextlib.suppress(OSError):
            os.close(fd)   # closing drops the flock
    held.clear()


def in_use_by(directory: str | Path) -> str:
    """Who is at work on run ``directory`` now ('pid 123 on host h since T'), or '' when no one is."""
    return "; ".join(_holders(Path(directory)))


def holders_since(directory: str | Path) -> float | None:
    """When the earliest process at work on run ``directory`` took it (seconds since the epoch), or None
    when no one is at work or no holder's note says."""
    times = []
    for h in _holder_records(Path(directory)):
        with contextlib.suppress(TypeError, ValueError):
            times.append(datetime.strptime(h.get("since"), "%Y-%m-%dT%H:%M:%S%z").timestamp())
    return min(times) if times else None


def _holders(d: Path) -> list[str]:
    """The holders' notes as text ('pid 123 on host h since T')."""
    return [_note_text(h) for h in _holder_records(d)]


def _holder_records(d: Path) -> list[dict]:
    """The note of each process holding a lock in run ``d``. Shards hold the run's lock shared and say
    who they are in their own files; the run's file then still names whoever held it alone last, so it
    is read only when no shard holds the run."""
    shards = [n for n in (_held_record(p) for p in sorted(d.glob(LOCK_NAME + "-shard*"))) if n is not None]
    whole = _held_record(d / LOCK_NAME) if not shards else None
    return shards or ([whole] if whole is not None else [])


def _shard_words(shard: str | None) -> str:
    return (shard or "").replace("of", "/")


def _held_note(path: Path) -> str:
    """Who holds the lock file ``path`` (from the note its holder wrote), or '' when no one does."""
    h = _held_record(path)
    return "" if h is None else _note_text(h)


def _note_text(h: dict) -> str:
    return (f"pid {h.get('pid', '?')} on {h.get('host', '?')} since {h.get('since', '?')}"
            + (f", shard {_shard_words(h['shard'])}" if h.get("shard") else ""))


def _held_record(path: Path) -> dict | None:
    """The note the holder of lock file ``path`` wrote ({} where it cannot be read), or None when no one
    holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # taken at once: no one holds it
        return None
    except BlockingIOError:
        try:
            h = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            h = {}
        return h if isinstance(h, dict) else {}
    except OSError:
        return None
    finally:
        os.close(fd)
