"""The tests' way of running the command (tests/forkserver.py) gives what a fresh interpreter gives."""
import os
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
    before = dict(forkserver.served)
    r = forkserver.run_command(["data", "info", "--no-such-flag"])
    assert r.returncode == 2 and "+- Error --" in r.stderr and "─" not in r.stderr   # the box in ASCII
    assert forkserver.served == {**before, "fresh": before["fresh"] + 1}


@pytest.mark.skipif(os.environ.get("GENAUG_TESTS_SUBPROCESS") == "1", reason="every command runs fresh")
def test_what_in_process_training_leaves_in_the_environment_still_forks(monkeypatch):
    import sys
    # where the two come from: seeding, and torch's inductor config as deterministic algorithms load it
    probe = ("import os, torch; from genaug.device import seed_everything; seed_everything(3); "
             "torch.use_deterministic_algorithms(True, warn_only=True); "
             "print(os.environ.get('PYTHONHASHSEED'), bool(os.environ.get('TORCHINDUCTOR_CACHE_DIR')))")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHASHSEED", "TORCHINDUCTOR_CACHE_DIR")}
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert r.stdout.split() == ["3", "True"], r.stderr[-2000:]
    monkeypatch.setenv("PYTHONHASHSEED", "3")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/tmp/torchinductor_a-test")
    before = dict(forkserver.served)
    assert forkserver.run_command(["--help"]).returncode == 0
    assert forkserver.served == {**before, "forked": before["forked"] + 1}
