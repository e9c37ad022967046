"""The tests' way of running the command (tests/forkserver.py) gives what a fresh interpreter gives."""
import subprocess

import pytest

import forkserver
from conftest import make_folder_dataset


@pytest.mark.parametrize("args", [
    ["--help"],
    ["gan", "--lr", "inf"],                      # a user's error: one line, exit 2
    ["benchmark", "--models", "cnn,nope"],
    ["data", "info", "--no-such-flag"],          # click's usage error, in its box
    ["data", "info", "{data}"],                  # a command that reads files and prints a table
])
def test_forked_command_prints_and_exits_as_a_fresh_interpreter_does(tmp_path, args):
    data = make_folder_dataset(tmp_path / "xray", {"train": 4, "test": 2})
    args = [a.format(data=data) for a in args]
    forked = forkserver.run_command(args, cwd=tmp_path)
    fresh = forkserver._fresh_interpreter(args, str(tmp_path), timeout=300)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert forked.stdout or forked.stderr   # each said something to compare


def test_a_command_past_its_timeout_is_stopped_and_the_next_one_runs(tmp_path, tiny):
    with pytest.raises(subprocess.TimeoutExpired):   # a GAN on the demo data: some seconds
        forkserver.run_command(["gan", "--profile", tiny, "--out", tmp_path / "o"], timeout=1)
    r = forkserver.run_command(["gan", "--lr", "inf"])
    assert r.returncode == 2 and "must be a finite number" in r.stderr


def test_a_setting_read_as_the_interpreter_starts_gets_a_fresh_interpreter(monkeypatch):
    forkserver.run_command(["--help"])   # the server is up, started without it
    monkeypatch.setenv("PYTHONIOENCODING", "ascii")   # a forked child would keep the server's UTF-8 console
    r = forkserver.run_command(["data", "info", "--no-such-flag"])
    assert r.returncode == 2 and "+- Error --" in r.stderr and "─" not in r.stderr   # the box in ASCII
