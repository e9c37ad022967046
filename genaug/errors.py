"""Errors a user can act on. The CLI prints their message on one line and exits 2."""

from __future__ import annotations

import errno
import sys


class GenaugError(Exception):
    """Base class: the message says what is wrong and what to do."""


class DataError(GenaugError):
    """Missing, empty or unusable input data."""


class ConfigError(GenaugError):
    """Unknown key, bad value or unreadable config file. ``key`` is the dotted config key at fault, when
    one is: the loader then says where its value was set (a profile or the command line)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class CheckpointError(GenaugError):
    """A checkpoint or run directory that is missing, corrupt or does not match."""


class TrainingDiverged(GenaugError):
    """NaN/inf loss or a blown-up GAN; the epochs finished before it are kept."""


class RunInUse(GenaugError):
    """Another live genaug process is training the run this one was asked to resume."""


class DiskFull(GenaugError):
    """No space (or quota) left while writing an artefact; the file being replaced is left as it was."""


def is_disk_full(exc: BaseException) -> bool:
    """An OSError that says the disk (or the user's quota) has no room left."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def is_out_of_memory(exc: BaseException) -> bool:
    """Python's and numpy's MemoryError, torch's CPU allocator failing (a RuntimeError), or a GPU out of memory."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")   # not imported for it: the CLI's light commands never load torch
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    return (oom is not None and isinstance(exc, oom)) or "can't allocate memory" in str(exc)
