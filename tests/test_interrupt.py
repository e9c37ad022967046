"""Interrupted work loses nothing: SIGKILL a real `genaug` process mid-training, resume, finish.

The process is killed as soon as its first epoch checkpoint is on disk, while later epochs
are still training; the resumed run must finish with whole outputs and no temp files.
"""
import json
import os
import signal
import subprocess
import time

import pytest
import torch

from conftest import TINY
from forkserver import console_command
from test_cli import genaug, only_run

EPOCHS = 40  # many short epochs: the kill lands while training is still going


def _start(args, stderr=subprocess.DEVNULL):
    cmd = console_command() + [str(a) for a in args]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, text=True)


def _long_profile(tmp_path, epochs=EPOCHS):
    """The tiny profile with ``epochs`` epochs for the GAN and the autoencoder."""
    prof = tmp_path / "long.yaml"
    text = TINY.replace("ndf: 8\n  epochs: 2\n", f"ndf: 8\n  epochs: {epochs}\n").replace(
        "epochs: 1\n  batch_size: 16\nbenchmark", f"epochs: {epochs}\n  batch_size: 16\nbenchmark")
    assert text.count(f"epochs: {epochs}") == 2, "TINY changed shape: the GAN and encode epochs were not both set"
    prof.write_text(text)
    return prof


def _kill_after_first_checkpoint(proc, out, command, checkpoint):
    deadline = time.time() + 300
    while time.time() < deadline:
        runs = [d for d in (out / command).glob("*") if d.is_dir()] if (out / command).is_dir() else []
        if runs and (runs[0] / checkpoint).is_file():
            break
        assert proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return runs[0]


@pytest.mark.slow
@pytest.mark.parametrize("command,checkpoint,epoch_key", [
    ("encode", "checkpoint.pt", "epoch"),
    ("gan", "checkpoint-conditional.pt", "epoch"),
])
def test_sigkill_then_resume_finishes_whole(tmp_path, command, checkpoint, epoch_key):
    prof = _long_profile(tmp_path)
    out = tmp_path / "o"
    proc = _start([command, "--data", "demo", "--profile", prof, "--out", out])
    run = _kill_after_first_checkpoint(proc, out, command, checkpoint)
    killed_at = torch.load(run / checkpoint, weights_only=True)[epoch_key]
    assert 1 <= killed_at < EPOCHS
    # the epochs done, as genaug runs tells them without torch (the history is written just before the
    # checkpoint, so it may hold one epoch more)
    from genaug.inventory import run_state
    done = int(run_state(run).progress.split()[0])
    assert killed_at <= done <= killed_at + 1 and run_state(run).state == "stopped"
    r = genaug(command, "--resume", run)
    assert r.returncode == 0, r.stderr[-2000:]
    assert torch.load(run / checkpoint, weights_only=True)[epoch_key] == EPOCHS
    assert json.loads((run / "metrics.json").read_text())
    assert not [p for p in run.rglob("*") if ".tmp" in p.name], "a temporary file was left behind"
    log = (run / "log.txt").read_text()
    assert "resum" in log


def _without_timings(obj):
    """Results minus wall-clock fields (seconds, images/s, dates, paths), which no seed fixes."""
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items()
                if not any(t in k for t in ("second", "per_s", "time", "commit", "path", "dir", "date", "root"))}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


@pytest.mark.slow
@pytest.mark.parametrize("command, result, extra", [
    ("encode", "metrics.json", []),
    ("gan", "metrics.json", []),
    ("benchmark", "results.json", ["--variants", "real"]),
])
def test_same_seed_same_metrics_on_cpu(tmp_path, command, result, extra, tiny):
    metrics = []
    for i in range(2):
        r = genaug(command, "--data", "demo", "--profile", tiny, "--seed", 3, "--out", tmp_path / f"o{i}", *extra)
        assert r.returncode == 0, r.stderr[-2000:]
        metrics.append(json.loads((only_run(tmp_path / f"o{i}", command) / result).read_text()))
    assert _without_timings(metrics[0]) == _without_timings(metrics[1])
    assert metrics[0]   # something was compared


@pytest.mark.slow
@pytest.mark.parametrize("signum,code,said", [(signal.SIGINT, 130, "interrupted"),
                                              (signal.SIGTERM, 143, "stopped by SIGTERM")])
def test_ctrl_c_or_sigterm_stops_with_a_message_and_resume_finishes(tmp_path, signum, code, said):
    prof = _long_profile(tmp_path)
    out = tmp_path / "o"
    proc = _start(["encode", "--data", "demo", "--profile", prof, "--out", out], stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("encode/*/checkpoint.pt")):
        assert proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code and f"genaug: {said}; finished epochs" in err and "Traceback" not in err
    run = only_run(out, "encode")
    assert f"rerun with genaug encode --resume {run}\n" in err   # the run by its path, not a placeholder
    # the log, read long after the console is gone, says why the run stopped
    assert (run / "log.txt").read_text().endswith(f" ERROR {'stopped by SIGTERM' if signum == signal.SIGTERM else 'stopped: interrupted (Ctrl-C)'}\n")
    assert genaug("encode", "--resume", run).returncode == 0
    assert json.loads((run / "metrics.json").read_text())


def test_a_run_whose_console_output_closes_says_so_in_its_log(tmp_path):
    # `genaug encode | head -1`: click exits with status 1 on the broken pipe and says nothing, and the log
    # ended at its first line, so the run showed as stopped with no reason anywhere
    cmd = console_command() + [
        "encode", "--data", "demo", "--profile", str(_long_profile(tmp_path)), "--out", str(tmp_path / "o")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("genaug encode: ")   # read the first line, as head -1 does
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 1 and "Traceback" not in err
    log = (only_run(tmp_path / "o", "encode") / "log.txt").read_text()
    assert log.endswith(" ERROR stopped: its console output was closed (a pipe such as '| head' ended before it)\n")


@pytest.mark.slow
def test_benchmark_sigkill_between_cells_then_resume_keeps_finished_cells(tmp_path):
    prof = tmp_path / "b.yaml"
    prof.write_text(TINY.replace("epochs: 1\n  batch_size: 16\n  bootstrap", "epochs: 4\n  batch_size: 16\n  bootstrap"))
    out = tmp_path / "o"
    proc = _start(["benchmark", "--profile", prof, "--variants", "real", "--seeds", 4, "--out", out])
    deadline = time.time() + 300
    while time.time() < deadline:
        cells = list((out / "benchmark").glob("*/cells/*.json")) if (out / "benchmark").is_dir() else []
        if cells:
            break
        assert proc.poll() is None, "the run ended before its first cell"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run = only_run(out, "benchmark")
    done = {p.name: p.read_bytes() for p in (run / "cells").glob("*.json")}
    assert 1 <= len(done) < 4 and all(json.loads(b) for b in done.values())   # whole files only
    assert not (run / "report.md").exists()
    r = genaug("benchmark", "--resume", run)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{len(done)} of 4 cells done earlier, kept" in r.stdout
    assert all((run / "cells" / n).read_bytes() == b for n, b in done.items())   # finished cells untouched
    assert len(list((run / "cells").glob("*.json"))) == 4
    assert json.loads((run / "results.json").read_text())["table"][0]["seeds"] == [0, 1, 2, 3]
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]


@pytest.mark.slow
def test_benchmark_sigkill_inside_a_cell_resumes_at_its_next_epoch_with_the_same_result(tmp_path):
    # on a CPU one ResNet cell takes over an hour: a kill must cost at most the epoch in progress
    prof = tmp_path / "b.yaml"
    prof.write_text(TINY.replace("epochs: 1\n  batch_size: 16\n  bootstrap",
                                 f"epochs: {EPOCHS}\n  patience: {EPOCHS}\n  batch_size: 16\n  bootstrap")
                    .replace("run:\n  device: cpu\n", "run:\n  device: cpu\n  state_every_s: 0\n"))   # every epoch
    out = tmp_path / "o"
    key = "cnn__real__f1__seed0"
    proc = _start(["benchmark", "--profile", prof, "--variants", "real", "--seeds", 1, "--out", out])
    run = _kill_after_first_checkpoint(proc, out, "benchmark", f"partial/{key}.pt")
    killed_at = torch.load(run / "partial" / f"{key}.pt", weights_only=True)["epoch"]
    assert 1 <= killed_at < EPOCHS and not (run / "cells" / f"{key}.json").exists()
    r = genaug("benchmark", "--resume", run)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"continuing from {run / 'partial' / key}.pt" in r.stdout
    assert not (run / "partial").exists(), "the finished cell's training state was left behind"
    r = genaug("benchmark", "--profile", prof, "--variants", "real", "--seeds", 1, "--out", tmp_path / "whole")
    assert r.returncode == 0, r.stderr[-2000:]
    resumed, whole = (json.loads((d / "cells" / f"{key}.json").read_text())
                      for d in (run, only_run(tmp_path / "whole", "benchmark")))
    assert resumed["epochs_run"] == EPOCHS
    assert _without_timings(resumed) == _without_timings(whole)


@pytest.mark.slow
def test_resuming_a_run_another_process_is_training_is_refused_and_it_finishes(tmp_path):
    prof = _long_profile(tmp_path, epochs=3 * EPOCHS)   # outlasts two refused commands' start-up
    out = tmp_path / "o"
    proc = _start(["encode", "--data", "demo", "--profile", prof, "--out", out])
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("encode/*/checkpoint.pt")):
        assert proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.02)
    run = only_run(out, "encode")
    r = genaug("encode", "--resume", run)   # e.g. from a second terminal, taking the first for dead
    assert proc.poll() is None, "the first process ended before the second was refused: lengthen EPOCHS"
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert f"is in use by another genaug process (pid {proc.pid} on " in r.stderr
    # nor may a benchmark read its latents before they are all written
    r = genaug("benchmark", "--data", "demo", "--profile", prof, "--variants", "encoded", "--encode-run", run,
               "--out", tmp_path / "b")
    assert proc.poll() is None, "the first process ended before the benchmark was refused: lengthen its epochs"
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert f"autoencoder run {run} is still at work (pid {proc.pid} on " in r.stderr
    r = genaug("runs", "--out", out)   # and the listing says who is at work on it
    row = next(line for line in r.stdout.splitlines() if line.startswith(str(run)))
    assert row.split()[1:3] == ["at", "work"] and f" of {3 * EPOCHS} epochs" in row and f"pid {proc.pid} on " in row
    assert proc.wait(timeout=600) == 0   # the first is left to finish, its temporary files untouched
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 3 * EPOCHS
    assert json.loads((run / "metrics.json").read_text())
    # the refused process wrote nothing into the run: no second start line, no resume (the log names
    # the run directory, whose path holds this test's name, so match whole messages)
    text = (run / "log.txt").read_text()
    assert text.count(f"INFO genaug encode: {run}\n") == 1 and "resuming autoencoder training" not in text
