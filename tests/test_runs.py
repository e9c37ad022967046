import os
import pickle

import pytest
import torch

from genaug.errors import CheckpointError
from genaug.runs import atomic_torch_save, load_checkpoint, new_run


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_crafted_pickle_is_refused(tmp_path):
    p = tmp_path / "evil.pt"
    with open(p, "wb") as fh:
        pickle.dump({"model": _Evil()}, fh)
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        load_checkpoint(p)


def test_checkpoint_round_trip_and_missing_keys(tmp_path):
    atomic_torch_save({"model": {"w": torch.ones(2)}, "epoch": 3}, tmp_path / "c.pt")
    assert load_checkpoint(tmp_path / "c.pt", ("model", "epoch"))["epoch"] == 3
    with pytest.raises(CheckpointError, match="lacks optimizer"):
        load_checkpoint(tmp_path / "c.pt", ("optimizer",))
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "bad.pt")
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_run_directories_never_reused(tmp_path):
    a = new_run(tmp_path, "gan", "x", {"a": 1})
    b = new_run(tmp_path, "gan", "x", {"a": 1})
    assert a.dir != b.dir and (a.dir / "config.yaml").is_file() and (b.dir / "manifest.json").is_file()
    a.close()
    b.close()


def test_resume_clears_temporary_files_of_a_killed_write(tmp_path):
    from genaug.runs import new_run, open_run
    run = new_run(tmp_path, "encode", "x", {"a": 1})
    run.close()
    (run.dir / ".checkpoint.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    (run.dir / "checkpoint.pt").write_bytes(b"whole")
    again = open_run(run.dir, "encode")
    again.close()
    assert not list(run.dir.glob("*.tmp")) and (run.dir / "checkpoint.pt").read_bytes() == b"whole"
