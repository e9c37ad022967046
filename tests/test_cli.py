"""CLI smoke tests through the real entry point, on tiny data (timm-style: run, then check the files)."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_folder_dataset, run_cli_noting_torch
from forkserver import console_command, run_command
from genaug.runs import load_safetensors


def genaug(*args, cwd=None):
    """The genaug command with ``args``, in its own process (forked from one that has imported torch:
    tests/forkserver.py; GENAUG_TESTS_SUBPROCESS=1 gives each a fresh interpreter)."""
    return run_command(list(args), cwd=cwd, timeout=900)


def only_run(root: Path, command: str) -> Path:
    runs = [d for d in (root / command).iterdir() if d.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_help_lists_commands_in_the_order_they_are_run():
    r = genaug("--help")
    assert r.returncode == 0
    listed = [m.group(1) for m in re.finditer(r"^│ (\w+) {2,}", r.stdout, flags=re.M)]
    assert listed == ["data", "gan", "encode", "benchmark", "report", "compare", "pool", "archive", "threshold",
                      "predict", "explain", "runs"]


def test_version_names_genaug_and_its_main_dependencies():
    import platform

    import torch

    from genaug import __version__

    r = genaug("--version")
    assert r.returncode == 0 and r.stderr == ""
    assert re.fullmatch(rf"genaug {re.escape(__version__)} \(python {re.escape(platform.python_version())}, torch "
                        rf"{re.escape(torch.__version__)}, torchvision \S+, torchmetrics \S+, numpy \S+\)\n", r.stdout)


def test_python_m_genaug_names_the_command_line_in_one_line(tmp_path):
    # `python -m genaug` is what many try first; the library cannot run the command line (it never
    # imports it), so it says where the command line is, exit 2, and leaves no run behind
    r = subprocess.run([sys.executable, "-m", "genaug", "benchmark", "--profile", "demo"], capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "" and list(tmp_path.iterdir()) == []
    assert r.stderr == ("genaug: error: the genaug package is the library; run the genaug command, or python -m "
                        "genaug_cli (e.g. python -m genaug_cli benchmark --help)\n")


def test_every_command_is_placed_in_the_help_order():
    import typer

    from genaug_cli.main import COMMAND_ORDER, app

    assert set(typer.main.get_command(app).commands) == set(COMMAND_ORDER)


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, prefix + (name,))


@pytest.mark.parametrize("preset", [None, "ACTIVE"])
def test_cli_sets_openmp_waiting_before_torch_loads_unless_user_chose(preset):
    # Spinning OpenMP threads made a step ~30x slower beside other jobs (docs/PERFORMANCE.md (f));
    # the setting only takes effect if it is made before torch loads OpenMP.
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    probe = ("import os, sys, genaug_cli; loaded = 'torch' in sys.modules; import genaug_cli.main; "
             "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'), loaded)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    policy, spins, loaded = out.stdout.split()
    assert loaded == "False"
    if preset:
        assert (policy, spins) == (preset, "None")
    else:   # which one depends on this machine's load at the moment: one of the two, never both
        assert (policy, spins) in (("PASSIVE", "None"), ("None", "10000"))


@pytest.mark.parametrize("preset, busy, added", [
    ({}, 0.1, {"GOMP_SPINCOUNT": "10000"}),        # idle: a short spin, 1.4-1.8x faster per step than passive
    ({}, 0.5, {"OMP_WAIT_POLICY": "PASSIVE"}),     # half a core busy or more: passive, 1.3-3x faster than the short spin
    ({}, 7.0, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ({}, None, {"OMP_WAIT_POLICY": "PASSIVE"}),    # nothing to go by (Windows)
    ({"OMP_WAIT_POLICY": "ACTIVE"}, 0.1, {}),      # the user's choice is kept
    ({"GOMP_SPINCOUNT": "0"}, 3.0, {}),
])
def test_openmp_waits_briefly_on_an_idle_machine_passively_on_a_busy_one(preset, busy, added):
    from genaug_cli import openmp_waiting
    assert openmp_waiting(preset, busy) == added


def test_busy_cores_reads_the_ticks_of_now_and_falls_back_to_the_load_average(tmp_path, monkeypatch):
    from genaug import cpu_load
    ticks = iter([(1000, 800), (1010, 805)])   # 10 ticks passed, 5 of them idle: half of every core busy
    monkeypatch.setattr(cpu_load, "cpu_ticks", lambda stat: next(ticks))
    monkeypatch.setattr(cpu_load.os, "cpu_count", lambda: 2)
    assert cpu_load.busy_cores(window=0) == pytest.approx(1.0)
    stat = tmp_path / "stat"   # the first line as Linux writes it: user nice system idle iowait irq softirq steal ...
    stat.write_text("cpu  200 0 100 5000 50 0 10 0 0 0\ncpu0 100 0 50 2500 25 0 5 0 0 0\n")
    monkeypatch.undo()
    assert cpu_load.cpu_ticks(str(stat)) == (5360, 5050)
    monkeypatch.setattr(cpu_load.os, "getloadavg", lambda: (0.25, 1.0, 1.0))
    assert cpu_load.busy_cores(window=0, stat=str(tmp_path / "none")) == 0.25   # no /proc (macOS)


def test_the_load_of_other_processes_is_every_core_s_less_this_process_s(tmp_path, monkeypatch):
    # 2 cores, 100 ticks over the block, 10 idle: 1.8 cores busy; this process used 0.5 s of CPU in 1 s: 1.3 others'
    from genaug import cpu_load
    ticks, clock, own = iter([(1000, 500), (1100, 510)]), iter([10.0, 11.0]), iter([3.0, 3.5])
    monkeypatch.setattr(cpu_load, "cpu_ticks", lambda stat: next(ticks))
    monkeypatch.setattr(cpu_load.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(cpu_load.time, "process_time", lambda: next(own))
    monkeypatch.setattr(cpu_load.os, "cpu_count", lambda: 2)
    with cpu_load.load_of_others() as seen:
        assert seen["cores"] is None
    assert seen["cores"] == pytest.approx(1.3)
    monkeypatch.undo()
    with cpu_load.load_of_others(stat=str(tmp_path / "none")) as nowhere:   # no /proc: nothing said
        pass
    assert nowhere["cores"] is None


def test_every_command_has_help_that_rich_can_reflow():
    """Typer's rich help keeps single line breaks (in the command list, and after the first
    paragraph), so a docstring wrapped at the source's width prints broken mid-sentence; each
    paragraph must be one line."""
    import inspect

    import typer
    from typer.testing import CliRunner

    from genaug_cli.main import app

    group = typer.main.get_command(app)
    seen = []
    for path, cmd in _commands(group):
        paragraphs = inspect.cleandoc(cmd.help or "").split("\n\n")
        assert paragraphs[0], f"genaug {' '.join(path)} has no help"
        for para in paragraphs:
            assert "\n" not in para, f"genaug {' '.join(path)}: help paragraph broken mid-sentence: {para!r}"
        r = CliRunner().invoke(app, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        seen.append(path[-1])
        undocumented = [p.name for p in cmd.params if p.name != "help" and not getattr(p, "help", None)]
        assert not undocumented, f"genaug {' '.join(path)}: options without help: {undocumented}"
        # the usage line showed arguments by their Python names, "genaug compare [OPTIONS] {run_a} {run_b}"
        lower = [p.name for p in cmd.params if p.param_type_name == "argument" and not (p.metavar or "").isupper()]
        assert not lower, f"genaug {' '.join(path)}: arguments without an upper-case metavar: {lower}"
    assert {"gan", "sample", "encode", "benchmark", "data", "info", "compare", "archive"} <= set(seen)


def test_data_info_folder_and_json(tmp_path):
    root = make_folder_dataset(tmp_path / "x")
    (root / "train" / "NORMAL" / "broken.jpeg").write_bytes(b"nope")
    r = genaug("data", "info", "--data", root, "--size", 16, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert "train" in r.stdout and "skipped files: 1" in r.stdout and "broken.jpeg" in r.stdout
    r = genaug("data", "info", "--data", root, "--size", 16, "--json", "--out", tmp_path / "o")
    info = json.loads(r.stdout)
    assert sum(s["images"] for s in info["splits"].values()) == 44
    assert info["skipped"] == 1


@pytest.mark.parametrize("args,takes", [
    (["predict", "--checkpoint", "m.pt", ""], "IMAGES"), (["threshold", "--checkpoint", "m.pt", "--out", "t.pt", " "],
                                                         "LABELLED"),
    (["report", "a", ""], "RUNS"), (["compare", "", "b"], "RUN_A"), (["archive", "", "--to", "x"], "RUNS"),
    (["data", "split", "", "--to", "x"], "SOURCE"), (["pool", "--variant", "mixed", "a", ""], "RUNS"),
])
def test_an_empty_argument_is_refused_not_read_as_the_current_folder(tmp_path, args, takes):
    """Found in session 71: `genaug predict --checkpoint M "$DIR"` with DIR unset predicted every image below
    the current folder ('' is '.' as a path); report, compare, archive and pool looked there for a run."""
    (tmp_path / "scan.png").write_bytes(b"")
    r = genaug(*args, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr == (f"genaug: error: an empty argument is given where {takes} goes (a shell variable not "
                        "set?): give it, or '.' for the current folder\n"), r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["scan.png"]


@pytest.mark.parametrize("args", [
    ["benchmark", "--resume", ""], ["benchmark", "--data", "demo", "--out", ""],
    ["benchmark", "--data", "demo", "--variants", "mixed", "--gan-run", ""],
    ["benchmark", "--data", "demo", "--variants", "encoded", "--encode-run", " "],
    ["benchmark", "--data", "demo", "--shard", ""], ["gan", "--data", "demo", "--resume="],
    ["gan", "sample", "--checkpoint", "", "--n", "2"], ["encode", "--data", "demo", "--checkpoint", ""],
    ["pool", "a", "b", "--real-from", ""], ["data", "split", "a", "--to", ""],
    # session 86: --classes '' kept every class, --patient-pattern '' made each file a patient of its own
    ["benchmark", "--data", "demo", "--classes", " "], ["data", "split", "a", "--to", "b", "--patient-pattern", ""],
])
def test_an_empty_path_or_run_is_refused_not_read_as_none_given(tmp_path, tiny, args):
    """Found in session 71: `--resume "$RUN"` with RUN unset started a new run, `--out ''` wrote the run into
    the current folder, `--gan-run ''` trained a GAN of its own and `--shard ''` trained every cell."""
    opt = next(a for a in args if a.startswith("--") and (a.endswith("=") or args[args.index(a) + 1].strip() == ""))
    here = tmp_path / "here"
    here.mkdir()
    r = genaug(*args, "--profile", tiny, cwd=here) if args[0] != "pool" and args[:2] != ["data", "split"] \
        and args[1] != "sample" else genaug(*args, cwd=here)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.startswith(f"genaug: error: {opt.rstrip('=')} is given an empty value"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert list(here.iterdir()) == []   # nothing written


def test_an_option_given_a_tilde_after_an_equals_sign_means_the_home_folder(tmp_path, monkeypatch):
    # found in session 75: a shell expands ~ only at the start of a word, so `--to=~/xray` laid the split out
    # in ./~/xray and `--labels=~/labels.csv` was not found
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    source = make_folder_dataset(tmp_path / "home" / "flat", {"train": 8}) / "train"
    here = tmp_path / "here"
    here.mkdir()
    r = genaug("data", "split", source, "--to=~/xray", cwd=here)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "home" / "xray" / "split.json").is_file() and list(here.iterdir()) == []
    r = genaug("data", "info", "--data", "~/xray", cwd=here)   # quoted, so no shell expanded it
    assert r.returncode == 0 and "train" in r.stdout, r.stderr


@pytest.mark.parametrize("args,needle", [
    (["data", "info", "--data", "/no/such/folder"], "data folder not found"),
    (["data", "info", "--profile", "no-such-profile"], "unknown profile"),
    (["data", "info", "--data", "demo", "--size", "0"], "--size must be at least 1 px, got 0"),   # was a traceback
    (["gan", "--data", "demo", "--class", ","], "--class ',' names no class; give one or more of NORMAL, PNEUMONIA, or all"),
    (["gan", "--data", "demo", "--class", "COVID"], "unknown class 'COVID'; the data has: NORMAL, PNEUMONIA"),
    (["gan", "--data", "demo", "--n", "0"], "'gan.n' must be positive, got 0 (set with --n)"),
    (["gan", "--data", "demo", "--lr", "-0.1"], "'gan.lr' must be positive"),
    # it sets gan.ngf and gan.ndf, and the message named whichever of them a set's order gave first
    (["gan", "--data", "demo", "--width", "0"], "--width must be positive, got 0"),
    (["encode", "--data", "demo", "--lr", "0"], "'encode.lr' must be positive"),
    (["encode", "--data", "demo", "--epochs", "0"], "'encode.epochs' must be positive, got 0 (set with --epochs)"),
    (["benchmark", "--data", "demo", "--lr", "0"], "'benchmark.lr' must be positive"),
    (["benchmark", "--data", "demo", "--batch-size", "1"], "'benchmark.batch_size' must be at least 2"),
    (["encode", "--data", "demo", "--threads", "-1"], "'run.threads' must be from 0 (torch's default) to 1024"),
    # found in session 73: OpenMP could not start them ("libgomp: Out of memory allocating 800008 bytes", exit 1)
    # and left the new run behind
    (["benchmark", "--data", "demo", "--threads", "100000"], "'run.threads' must be from 0 (torch's default) to "
                                                              "1024, got 100000 (set with --threads)"),
    (["gan", "--data", "demo", "--conditioning", "acgan", "--aux-weight", "-1"], "'gan.aux_weight' must be >= 0"),
    # found in session 68: each trained as though the flag were not given
    (["gan", "--data", "demo", "--aux-weight", "0.5"], "genaug: error: --aux-weight weighs the class loss of "
     "--conditioning acgan; this run would use conditioning channels, which has none: add --conditioning acgan, or "
     "drop --aux-weight"),
    (["gan", "--data", "demo", "--per-class", "--conditioning", "acgan"], "genaug: error: --conditioning acgan has no "
     "effect with per-class GANs (gan.per_class), which are unconditional: drop one of the two"),
    (["gan", "--data", "demo", "--per-class", "--aux-weight", "0.3"], "--aux-weight 0.3 has no effect with per-class"),
    (["benchmark", "--data", "demo", "--models", "vgg99"], "unknown model vgg99"),
    (["benchmark", "--data", "demo", "--variants", "fake"], "unknown variant fake"),
    (["benchmark", "--data", "demo", "--models", ","], "no model given (--models or benchmark.models is empty): name at least one of cnn,"),
    (["benchmark", "--data", "demo", "--equalize", "hist"], "'benchmark.equalize' must be one of none, clahe, standardize, got 'hist' (set with --equalize)"),
    # the flag is named where it is not the key with dashes (benchmark.train_fractions, run.out_root)
    (["benchmark", "--data", "demo", "--train-fraction", "1.5"], "values must be in (0, 1], got 1.5 (set with --train-fraction)"),
    # found in session 56: it trained without augmentation, its config saying augmentation was on
    (["benchmark", "--data", "demo", "--augmentations", ","],
     "genaug: error: config key 'benchmark.augmentations' names no augmentation, got ',': name one or more of flip, "
     "rotate, shift, zoom, shear, brightness, contrast, noise, pca, or train without any by --no-augment"),
    # found in session 56: a --class "$CLASS" left unset trained every class
    (["gan", "--data", "demo", "--class", ""], "genaug: error: --class '' names no class; give one or more of NORMAL, "
     "PNEUMONIA, or all"),
    # found in session 56: it ran a benchmark of no cell, wrote an empty report and exited 0
    (["benchmark", "--data", "demo", "--train-fraction", ",,"],
     "genaug: error: config key 'benchmark.train_fractions' names no share: give one or more in (0, 1], e.g. 1.0 or "
     "0.1,0.25,1.0, got ',,' (set with --train-fraction)"),
    (["benchmark", "--data", "demo", "--tta", "65"], "'benchmark.tta' must be between 0 and 64 (augmented copies per image; 0: off), got 65 (set with --tta)"),
    (["benchmark", "--data", "demo", "--ema", "1"], "'benchmark.ema' must be in [0, 1) (a decay such as 0.99; 0: off), got 1.0 (set with --ema)"),
    # a value no bound can catch is told the same way (it was "command line: config key ..." with no flag)
    (["benchmark", "--data", "demo", "--lr", "nan"], "genaug: error: config key 'benchmark.lr' must be a finite number, got nan (set with --lr)"),
    (["gan", "--data", "demo", "--lr", "inf"], "genaug: error: config key 'gan.lr' must be a finite number, got inf (set with --lr)"),
    (["encode", "--data", "demo", "--checkpoint", "/no/ae.pt"], "--checkpoint /no/ae.pt: no such file (give autoencoder.pt"),
    (["encode", "--data", "/no/such/folder"], "data folder not found"),
    (["gan", "--data", "/no/such/folder"], "data folder not found"),
    (["benchmark", "--data", "missing.npz"], "npz file not found: missing.npz"),
    (["benchmark", "--data", "/no/such/folder", "--variants", "real"], "data folder not found"),
    (["benchmark", "--data", "demo", "--shard", "2/2"],
     "--shard 2/2 without --resume would start a run of its own with only its cells: start --shard 1/2 first"),
    # found in session 68: both were told at the model's first cell, after the GAN and the autoencoder had trained
    (["benchmark", "--data", "demo", "--pretrained", "--models", "cnn,resnet34"], "genaug: error: --pretrained has "
     "ImageNet weights for resnet34, densenet121, not cnn: leave cnn out of --models, or train from scratch (--scratch)"),
    (["benchmark", "--data", "demo", "--pretrained", "--models", "resnet34", "--weights-dir", "/no/such"],
     "genaug: error: --pretrained needs /no/such/resnet34-b627a593.pth; download it by hand from "
     "https://download.pytorch.org/models/resnet34-b627a593.pth and pass its folder with --weights-dir"),
    # found in session 71: a loss that blew up in the first epoch was told "the last good checkpoint is kept",
    # beside "(run folder ... removed: it held nothing yet)"
    (["benchmark", "--data", "demo", "--models", "cnn", "--variants", "real", "--lr", "1e9"],
     "classifier loss became nan; training stopped, and only what finished before it is kept: lower --lr or "
     "check the data (run folder "),
    (["gan", "--data", "demo", "--lr", "1e9"], "blew up in epoch 1 (mean loss D "),
    (["gan", "--data", "demo", "--lr", "1e9"], "stopped, and only what finished before it is kept: a new run with "
     "--diffaug or a lower --lr may train (run folder "),
    # found in session 71: told "--n 265000000000 asks for ...: give a smaller --n", a flag benchmark has not
    (["benchmark", "--data", "demo", "--models", "cnn", "--variants", "mixed", "--synthetic-ratio", "1e9"],
     "error: --synthetic-ratio 1e+09 asks for "),
    (["benchmark", "--data", "demo", "--models", "cnn", "--variants", "mixed", "--synthetic-ratio", "1e9"],
     "give a smaller --synthetic-ratio, or --out on a disk with room"),
    (["benchmark", "--data", "demo", "--models", "cnn,densenet121", "--image-size", "16"],
     "model 'densenet121' cannot take 16 px images (its pooling shrinks them to nothing): use --image-size 32"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, tiny, args, needle):
    r = genaug(*args, "--out", tmp_path / "o", *(["--profile", tiny] if "--profile" not in args else []))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # no run directory is left behind (nor a GAN or autoencoder run made for a benchmark)
    assert not [d for d in (tmp_path / "o").glob("*/*") if d.is_dir() and d.parent.name != "cache"]


@pytest.mark.parametrize("args,told", [
    (["encode", "--checkpoint", "{garbage}"], "autoencoder checkpoint {garbage} is not a PyTorch checkpoint"),
    (["encode", "--checkpoint", "{weights_only}"], "holds the weights only, for other tools; give the .pt file"),
    (["encode", "--checkpoint", "{beside}"], "{beside} holds the weights only, for other tools; give {garbage}"),
    (["benchmark", "--variants", "encoded", "--encode-run", "{empty}"], "no complete latent set in {empty}"),
    (["encode", "--checkpoint", "{empty}"], "--checkpoint {empty} is a folder; it holds no autoencoder.pt file; give "
                                            "the .pt file that a genaug encode run wrote"),
    # taken as a plain folder, its data went unchecked and pool would count it as a second input run
    (["benchmark", "--variants", "mixed", "--gan-run", "{run}/synthetic"],
     "--gan-run {run}/synthetic lies inside the genaug run {run}: give that folder"),
    (["benchmark", "--variants", "encoded", "--encode-run", "{run}/latents"],
     "--encode-run {run}/latents lies inside the genaug run {run}: give that folder"),
    # a file of the run pasted as the run (session 54: "--encode-run R/metrics.json is not a directory")
    (["benchmark", "--variants", "encoded", "--encode-run", "{run}/manifest.json"],
     "--encode-run {run}/manifest.json is a file, not a run directory; it lies inside the run {run}: give that folder"),
])
def test_an_unusable_input_file_or_run_is_refused_before_a_run_is_made(tmp_path, tiny, args, told):
    # it was told only after the run directory was announced and the data loaded
    names = {"garbage": tmp_path / "ae.pt", "beside": tmp_path / "ae.safetensors",
             "weights_only": tmp_path / "lone.safetensors", "empty": tmp_path / "empty", "run": tmp_path / "run"}
    for inner in ("synthetic", "latents"):
        (names["run"] / inner).mkdir(parents=True)
    (names["run"] / "config.yaml").write_text("data: {}\n")
    (names["run"] / "manifest.json").write_text("{}")
    names["garbage"].write_text("not a checkpoint")
    names["beside"].write_bytes(b"\x08\x00")
    names["weights_only"].write_bytes(b"\x08\x00")
    names["empty"].mkdir()
    r = genaug(*(a.format(**names) for a in args), "--profile", tiny, "--out", tmp_path / "o")
    assert r.returncode == 2 and told.format(**names) in r.stderr, r.stderr
    assert r.stdout == "" and not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,hint", [
    (["data", "info", "{data}"], "Got unexpected extra argument(s) ({data}): give it as --data {data}"),
    (["data", "{data}"], "No such command '{data}': to look at it: genaug data info --data {data}"),
    (["gan", "{data}"], "give it as --data {data}"),
    (["benchmark", "demo"], "give it as --data demo"),
    (["benchmark", "{tiny}"], "give it as --profile {tiny}"),
    (["benchmark", "{run}"], "give it as --resume {run}"),
    (["predict", "--checkpoint", "{model}", "{model}"], None),   # predict takes images as arguments
    (["benchmark", "nonsense"], None),
])
def test_a_bare_path_where_an_option_was_meant_is_told_which_option(tmp_path, tiny, args, hint):
    data, run, model = tmp_path / "xray", tmp_path / "runs" / "benchmark" / "r1", tmp_path / "m.pt"
    (data / "train").mkdir(parents=True)
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("run: {}\n")
    names = {"data": data, "tiny": tiny, "run": run, "model": model}
    r = subprocess.run(console_command() + [a.format(**names) for a in args], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "COLUMNS": "300"})   # so that the message box does not wrap
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    if hint is None:
        assert "give it as" not in r.stderr and "to look at it" not in r.stderr
    else:
        assert hint.format(**names) in r.stderr, r.stderr


@pytest.mark.parametrize("args,needle", [
    (["gan", "--data", "demo", "--class", "COVID"], "unknown class 'COVID'"),
    (["gan", "--data", "demo", "--task", "3class", "--class", "PNEUMONIA"], "the data has: NORMAL, BACTERIA, VIRUS"),
    (["encode", "--data", "/no/such/folder"], "data folder not found"),
    (["benchmark", "--data", "/no/such/folder"], "data folder not found"),
])
def test_bad_data_or_class_is_told_before_torch_loads(args, needle):
    # loading torch takes seconds; a mistyped name should be told at once (docs/PERFORMANCE.md (h))
    out = run_cli_noting_torch(args)
    assert out.returncode == 2 and needle in out.stderr, out.stderr
    assert out.stdout.strip() == "torch loaded: False"


@pytest.mark.parametrize("command,told", [
    (["data", "info"], "can be written"),   # its decode cache under --out
    (["benchmark", "--models", "cnn", "--variants", "real"], "a-file is a file, not a folder; give the folder runs go in"),
])
def test_output_folder_that_cannot_be_made_is_one_line_exit_2(tmp_path, tiny, command, told):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    data = make_folder_dataset(tmp_path / "x")   # a folder is decoded into a cache under --out, demo is not
    r = genaug(*command, "--data", data, "--profile", tiny, "--out", blocker / "runs")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert str(blocker) in r.stderr and told in r.stderr
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("command", [["data", "info"], ["gan"], ["encode"], ["benchmark"]])
def test_a_missing_data_path_from_a_profile_names_the_profile_and_where_it_was_looked_for(tmp_path, command):
    # `--profile cpu` run away from the project root had said only "data folder not found: ../shared/..."
    (tmp_path / "work").mkdir()
    (tmp_path / "p.yaml").write_text("data:\n  data: ../xrays\n")
    r = genaug(*command, "--profile", tmp_path / "p.yaml", "--out", tmp_path / "o", cwd=tmp_path / "work")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (f"data folder not found: ../xrays (expected ROOT/train/<CLASS>/*.jpeg, or use --data demo); that is "
            f"data.data in the profile {tmp_path / 'p.yaml'}, read from this folder as {tmp_path / 'xrays'}: give "
            "--data PATH to read data from elsewhere") in r.stderr
    # a path given with --data is the user's own: told as it was
    r = genaug(*command, "--profile", tmp_path / "p.yaml", "--data", "../xrays", "--out", tmp_path / "o",
               cwd=tmp_path / "work")
    assert r.returncode == 2 and "profile" not in r.stderr and "data folder not found: ../xrays" in r.stderr
    assert not [d for d in (tmp_path / "o").glob("*/*") if d.is_dir() and d.parent.name != "cache"]   # no run made
    # of two profiles, the one the path came from is named, whichever comes last
    (tmp_path / "q.yaml").write_text("gan:\n  epochs: 3\n")
    r = genaug(*command, "--profile", tmp_path / "p.yaml", "--config", tmp_path / "q.yaml", "--out", tmp_path / "o",
               cwd=tmp_path / "work")
    assert r.returncode == 2 and f"that is data.data in the profile {tmp_path / 'p.yaml'}, read from" in r.stderr


def test_an_input_run_no_variant_reads_is_noted_not_silently_dropped(tmp_path, tiny):
    blocker = tmp_path / "a-file"   # stops the run right after its checks: nothing trains
    blocker.write_text("")
    r = genaug("benchmark", "--data", "demo", "--profile", tiny, "--variants", "real", "--gan-run",
               tmp_path / "gan", "--encode-run", tmp_path / "enc", "--out", blocker / "runs")
    assert "note: --gan-run is not read: no mixed or synthetic variant in --variants real" in r.stderr
    assert "note: --encode-run is not read: no encoded variant" in r.stderr and "Traceback" not in r.stderr


def test_encode_resume_keeps_its_settings_and_refuses_others(tmp_path, tiny):
    r = genaug("encode", "--data", "demo", "--profile", tiny, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    run = only_run(tmp_path / "o", "encode")
    before = (run / "checkpoint.pt").read_bytes()
    for flags, needle in ((["--epochs", 5], "made with encode.epochs=1"), (["--seed", 9], "made with run.seed=0"),
                          (["--data", tmp_path / "elsewhere"], "made with data.data='demo'")):
        r = genaug("encode", "--resume", run, *flags)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, (flags, r.stderr)
    assert (run / "checkpoint.pt").read_bytes() == before
    r = genaug("encode", "--resume", run, "--device", "cpu")   # how it runs may change
    assert r.returncode == 0, r.stderr


def test_encode_with_a_train_fraction_says_how_many_images_it_learnt_from(tmp_path, tiny):
    """Found in session 71: `encode --train-fraction 0.0001` learnt from 4 images without a word on the
    console, in the log or in summary.md (the manifest alone held the count)."""
    r = genaug("encode", "--data", "demo", "--profile", tiny, "--train-fraction", "0.5", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    run = only_run(tmp_path / "o", "encode")
    m = json.loads((run / "manifest.json").read_text())
    kept = m["train_images"]
    said = f"the autoencoder learns from 0.5 of the training patients: {kept} of the "
    assert said in r.stdout and said in (run / "log.txt").read_text() and 0 < kept < 80
    assert f"Trained on 0.5 of the training patients: {kept} of the " in (run / "summary.md").read_text()


def test_encode_cpu_amp_trains_in_bf16_and_the_run_says_so(tmp_path, tiny):
    r = genaug("encode", "--data", "demo", "--profile", tiny, "--cpu-amp", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    run = only_run(tmp_path / "o", "encode")
    assert json.loads((run / "metrics.json").read_text())["training_precision"] == "bf16 autocast"
    assert "cpu_amp: true" in (run / "config.yaml").read_text()
    assert re.search(r"autoencoder epoch 1 of 1: .* s, bf16\)", r.stdout)
    assert "note: the autoencoder trains in bf16 on this CPU (--cpu-amp)" in r.stdout
    assert "1 epochs trained in this run (bf16 autocast; evaluated and encoded in fp32)" in (run / "summary.md").read_text()
    assert (run / "autoencoder.safetensors").is_file() and (run / "latents" / "train.npy").is_file()


def test_encode_channels_last_says_so_in_its_summary(tmp_path, tiny):
    """Session 78: the run's metrics, summary and epoch lines name the layout --channels-last chose."""
    r = genaug("encode", "--data", "demo", "--profile", tiny, "--channels-last", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    run = only_run(tmp_path / "o", "encode")
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["training_precision"], metrics["training_layout"]) == ("fp32", "channels-last")
    assert re.search(r"autoencoder epoch 1 of 1: .* s, channels-last\)", r.stdout)
    assert ("1 epochs trained in this run (fp32 in the channels-last memory layout, --channels-last; evaluated and "
            "encoded in the contiguous layout)" in (run / "summary.md").read_text())


def test_inception_fid_without_torch_fidelity_fails_before_training(tmp_path, tiny):
    try:
        import torch_fidelity  # noqa: F401
        pytest.skip("torch-fidelity is installed here")
    except ImportError:
        pass
    r = genaug("gan", "--data", "demo", "--profile", tiny, "--fid-features", "inception", "--out", tmp_path / "o")
    assert r.returncode == 2 and "torch-fidelity" in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "o").rglob("checkpoint-*.pt"))


def test_bad_config_key_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("gan:\n  epoch: 3\n")
    r = genaug("gan", "--profile", bad, "--out", tmp_path / "o")
    assert r.returncode == 2 and "unknown key 'gan.epoch'" in r.stderr


def test_a_gan_whose_images_cannot_fit_on_the_disk_is_refused_before_it_trains(tmp_path, tiny):
    # 2 x 10**12 files of one 4 KiB block at the least: 8 PB, on no disk; told once the classes are known,
    # not after the training, when the first images fill the disk (session 70)
    r = genaug("gan", "--data", "demo", "--profile", tiny, "--n", 10 ** 12, "--out", tmp_path / "o")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "--n 1000000000000 asks for 2,000,000,000,000 files in " in r.stderr and "give a smaller --n" in r.stderr
    assert "epoch" not in r.stdout and not list((tmp_path / "o").glob("gan/*"))   # nothing trained, no run left


@pytest.mark.slow
def test_gan_cli_end_to_end_and_sample(tmp_path, tiny):
    r = genaug("gan", "--data", "demo", "--class", "PNEUMONIA", "--profile", tiny, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "gan")
    rows = list(csv.DictReader((run / "synthetic" / "manifest.csv").open()))
    assert len(rows) == 12 and {r["class"] for r in rows} == {"PNEUMONIA"}
    assert all((run / "synthetic" / r["file"]).is_file() for r in rows)
    assert set(rows[0]) == {"file", "class", "seed", "index", "checkpoint", "step"}
    # each epoch in the words the classifiers use, the same on the console and in the log
    assert re.search(r"^gan conditional epoch 2 of 2: loss D \d+\.\d{3} G \d+\.\d{3} \(\d+ img/s\)$", r.stdout, re.M)
    assert re.search(r"^gan conditional epoch 1 of 2: loss D \d+\.\d{3} G \d+\.\d{3} \(\d+ img/s\), (about \d+s|under a second) "
                     r"of training left$", r.stdout, re.M)      # at the pace of the epochs so far; none after the last
    assert "gan conditional epoch 2 of 2: " in (run / "log.txt").read_text()
    # and what it made: the log kept neither the images written nor the quality table until session 54
    assert "wrote 12 synthetic images to " in (run / "log.txt").read_text()
    assert "# Synthetic image quality" in (run / "log.txt").read_text()
    for name in ("config.yaml", "log.txt", "manifest.json", "metrics.json", "quality.md", "judge.pt",
                 "generator-conditional.pt", "checkpoint-conditional.pt", "memorization-PNEUMONIA.png",
                 "samples/conditional_epoch_002.png"):
        assert (run / name).is_file(), name
    m = json.loads((run / "metrics.json").read_text())["classes"]["PNEUMONIA"]
    assert set(m) >= {"fid", "kid", "fidelity", "diversity", "memorization"}
    # the final generator also as .safetensors: the same EMA weights, in a format that carries no code
    st = load_safetensors(run / "generator-conditional.safetensors")
    ema = torch.load(run / "generator-conditional.pt", weights_only=True)["generator"]
    assert st.keys() == ema.keys() and all(torch.equal(st[k], ema[k]) for k in st)
    assert m["fid"]["n_per_side"] > 0 and 0 <= m["fidelity"]["synthetic"] <= 1
    # FID carries its bootstrap spread, printed beside it
    assert m["fid"]["n_bootstrap"] == 100 and m["fid"]["synthetic_bootstrap_std"] > 0
    row = next(line for line in (run / "quality.md").read_text().splitlines() if line.startswith("| PNEUMONIA"))
    assert f"{m['fid']['synthetic']:.2f} ± {m['fid']['synthetic_bootstrap_std']:.2f}" in row
    # and which way each column is better (session 86: SSIM among synthetic and among real stood unexplained)
    assert "than real ones (a higher figure) are less diverse" in (run / "quality.md").read_text()
    # sampling: same seed, same images; another seed, other images
    outs = []
    for i, seed in enumerate((3, 3, 4)):
        given = run if i == 1 else run / "generator-conditional.pt"   # the run stands for its one generator
        r = genaug("gan", "sample", "--checkpoint", given, "--class", "NORMAL",
                   "--n", 5, "--seed", seed, "--out", tmp_path / f"s{i}")
        assert r.returncode == 0, r.stderr
        assert (f"--checkpoint {run}: using {run / 'generator-conditional.pt'}" in r.stderr) == (i == 1), r.stderr
        sdir = only_run(tmp_path / f"s{i}", "gan-sample") / "synthetic" / "NORMAL"
        # the run's log says what the console said
        assert r.stdout.strip() in (sdir.parents[1] / "log.txt").read_text() and "wrote 5 images" in r.stdout
        # what it was to write, known once the classes were (`genaug runs` times the rest by it)
        assert json.loads((sdir.parents[1] / "manifest.json").read_text())["images_planned"] == 5
        outs.append([p.read_bytes() for p in sorted(sdir.glob("*.png"))])
    assert len(outs[0]) == 5 and outs[0] == outs[1] and outs[0] != outs[2]
    r = genaug("gan", "sample", "--checkpoint", run / "generator-conditional.pt", "--class", "COVID",
               "--out", tmp_path / "s-bad")
    assert r.returncode == 2 and "unknown class 'COVID'" in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "s-bad").glob("gan-sample/*"))   # no empty run left behind
    # images that cannot fit on the disk (a few zeros too many: 8 PB at one 4 KiB block a file) are refused
    # before the first is written, not found out when the disk is full (session 70)
    r = genaug("gan", "sample", "--checkpoint", run, "--class", "NORMAL", "--n", 10 ** 12, "--out", tmp_path / "s-huge")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "error: --n 1000000000000 asks for 1,000,000,000,000 files in " in r.stderr and "give a smaller --n" in r.stderr
    assert not list((tmp_path / "s-huge").glob("gan-sample/*"))
    # resuming the finished run rewrites its report from the images it wrote, which benchmarks may
    # have trained on: a stand-in file that sampling again would overwrite survives
    from PIL import Image
    first = run / "synthetic" / rows[0]["file"]
    Image.new("L", Image.open(first).size, 7).save(first)
    r = genaug("gan", "--resume", run)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"kept the 12 synthetic images this run wrote before in {run / 'synthetic'}" in r.stdout
    assert Image.open(first).getextrema() == (7, 7) and len(list((run / "synthetic").rglob("*.png"))) == 12
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["classes_requested"] == ["PNEUMONIA"]
    assert manifest["openmp_wait"] == {"OMP_WAIT_POLICY": "PASSIVE"}   # as tests/conftest.py sets it
    r = genaug("gan", "--resume", run, "--class", "NORMAL")
    assert r.returncode == 2 and "--class NORMAL differs from this run's classes (PNEUMONIA)" in r.stderr


@pytest.mark.slow
def test_encode_cli_end_to_end(tmp_path, tiny):
    data = make_folder_dataset(tmp_path / "x", {"train": 24, "test": 6}, size=40)
    (data / "train" / "NORMAL" / "IM-0999-0001.jpeg").write_bytes(b"nope")
    r = genaug("encode", "--data", data, "--profile", tiny, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "encode")
    # a batch job's output says at once where the run is and what it learns from, before the first
    # epoch; the log keeps the same; and, with no terminal, no progress bars litter the output
    said = r.stdout.splitlines()
    assert said[0] == f"genaug encode: {run}"
    assert said[1].startswith("data: ") and "2 classes" in said[1] and "test 12 images" in said[1]
    # and what it did not read: said in log.txt only before session 56
    assert said[2] == (f"note: 1 file under {data} was not read (e.g. train/NORMAL/IM-0999-0001.jpeg: not an image); "
                       f"genaug data info --data {data} lists each and why")
    assert said[0] in (run / "log.txt").read_text() and said[1] in (run / "log.txt").read_text()
    assert "batch/s" not in r.stderr and "view 1/" not in r.stderr
    epoch = next(line for line in said if line.startswith("autoencoder epoch 1 of 1: train mse "))
    assert epoch.split(" (")[0] in (run / "log.txt").read_text()
    result = next(line for line in said if line.startswith("test: PSNR "))   # logged too since session 54
    assert result in (run / "log.txt").read_text()
    assert re.search(r"INFO encoded \d+ images at [\d.]+ images/s -> ", (run / "log.txt").read_text())
    for name in ("autoencoder.pt", "checkpoint.pt", "reconstructions.png", "metrics.json", "summary.md",
                 "history.json", "latents/meta.json", "latents/train.npy", "latents/test.npy", "latents/val.npy"):
        assert (run / name).is_file(), name
    m = json.loads((run / "metrics.json").read_text())
    assert m["compression"]["latent_elements_per_image"] == 16 * 2 * 2
    st = load_safetensors(run / "autoencoder.safetensors")
    ae = torch.load(run / "autoencoder.pt", weights_only=True)["model"]
    assert st.keys() == ae.keys() and all(torch.equal(st[k], ae[k]) for k in st)
    assert set(m["test"]) == {"mse", "psnr", "ssim"} and m["baseline"]["psnr"] > 0
    rows = list(csv.DictReader((run / "latents" / "manifest.csv").open()))
    assert len(rows) == 48 + 12
    # a checkpoint of another latent shape is refused in one line (the run given stands for its autoencoder.pt)
    r = genaug("encode", "--data", data, "--profile", tiny, "--out", tmp_path / "o2",
               "--checkpoint", run, "--latent-channels", 8)
    assert r.returncode == 2 and "16 latent channels, not 8" in r.stderr
    assert f"--checkpoint {run}: using {run / 'autoencoder.pt'}, the autoencoder.pt file in it" in r.stderr
    # genaug report gathers the run's own summary under the command that made it
    doc = tmp_path / "RESULTS.md"
    r = genaug("report", run, "--out", doc)
    assert r.returncode == 0, r.stderr[-2000:]
    text = doc.read_text()
    assert "genaug encode --data" in text and "### Autoencoder report" in text
    psnr = f"{m['test']['psnr']:.2f}"
    assert psnr in text and psnr in (run / "summary.md").read_text()
    r = genaug("report", run, "--title", "")   # --title "$UNSET" (session 71: an empty "# " heading)
    assert r.returncode == 0 and r.stdout.startswith("# Results\n"), r.stdout[:200]
    r = genaug("report", tmp_path / "x")
    assert r.returncode == 2 and "not a genaug run" in r.stderr
    busy = tmp_path / "busy"   # a run still at work is left out, and the user is told
    busy.mkdir()
    (busy / "manifest.json").write_text('{"command": "benchmark"}')
    r = genaug("report", busy, run, "--out", doc)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr == f"genaug: note: left out: {busy} has no finished report (report.md); finish the run (--resume) first\n"
    assert r.stdout == f"wrote {doc} from 1 run; left out 1 without a report (named in it)\n"
    # a rerun replaces its own document; a file of the user's there is refused before any work, and kept.
    # A run given twice (overlapping globs) is gathered once (found in session 55: twice)
    r = genaug("report", run, f"{run}/", "--out", doc)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == f"wrote {doc} from 1 run\n" and doc.read_text().count("### Autoencoder report") == 1
    notes = tmp_path / "notes.md"
    notes.write_text("# My notes\n")
    r = genaug("report", run, "--out", notes)
    assert r.returncode == 2 and "is not the output of an earlier genaug report" in r.stderr
    assert notes.read_text() == "# My notes\n"
    r = genaug("report", run, "--out", tmp_path)
    assert r.returncode == 2 and "is a folder; give a file name" in r.stderr and "Traceback" not in r.stderr
    # its data moved away: resuming says how to give the run its data back, and the data is not needed
    # to learn that
    data.rename(tmp_path / "moved")
    r = genaug("encode", "--resume", run)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"reads its data from {data}, which is not there now" in r.stderr and f"ln -s NEW_PATH {data}" in r.stderr


@pytest.mark.slow
def test_gan_per_class_mode(tmp_path, tiny):
    r = genaug("gan", "--data", "demo", "--class", "NORMAL", "--per-class", "--profile", tiny, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "gan")
    assert (run / "generator-NORMAL.pt").is_file() and not (run / "generator-conditional.pt").exists()
    rows = list(csv.DictReader((run / "synthetic" / "manifest.csv").open()))
    assert len(rows) == 12 and {r["checkpoint"] for r in rows} == {"generator-NORMAL.pt"}
    assert json.loads((run / "metrics.json").read_text())["mode"] == "per-class"


def test_gan_cpu_amp_trains_in_bf16_and_the_run_says_so(tmp_path, tiny):
    """Session 76: `genaug gan --cpu-amp`; per-class, so that the epochs of both generators are counted."""
    r = genaug("gan", "--data", "demo", "--per-class", "--profile", tiny, "--cpu-amp", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "gan")
    assert "note: the GAN trains in bf16 on this CPU (--cpu-amp)" in r.stdout
    assert re.search(r"^gan PNEUMONIA epoch 2 of 2: .* img/s, bf16\)$", r.stdout, re.M)
    assert json.loads((run / "metrics.json").read_text())["training_precision"] == "bf16 autocast"
    assert ("The GAN trained in bf16 autocast on the CPU (--cpu-amp); it sampled, and the judge trained, in fp32."
            in (run / "quality.md").read_text())
    assert "memory layout" not in (run / "quality.md").read_text()   # bf16's own, which --channels-last did not choose
    assert all(h["bf16"] for c in ("NORMAL", "PNEUMONIA")
               for h in json.loads((run / f"history-{c}.json").read_text()))
    assert "cpu_amp: true" in (run / "config.yaml").read_text()
    # given again once finished, it trains nothing and says nothing of bf16 (it did until session 76)
    r = genaug("gan", "--resume", run, "--cpu-amp")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "trains in bf16" not in r.stdout and "kept the 24 synthetic images" in r.stdout
    assert json.loads((run / "metrics.json").read_text())["training_precision"] == "bf16 autocast"


def test_gan_channels_last_trains_in_fp32_and_the_run_keeps_the_setting(tmp_path, tiny):
    """Session 77: `genaug gan --channels-last`, fp32 in the layout bf16 trains in; a resume keeps the run's."""
    r = genaug("gan", "--data", "demo", "--profile", tiny, "--channels-last", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "gan")
    assert "channels_last: true" in (run / "config.yaml").read_text() and "bf16" not in r.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["training_precision"], metrics["training_layout"]) == ("fp32", "channels-last")
    assert len(list((run / "synthetic").rglob("*.png"))) == 24
    # session 78: the quality report and each epoch's line say so, since the layout changes the FIDs it trains to
    assert ("The GAN trained in the channels-last memory layout (--channels-last); it sampled, and the judge "
            "trained, in the contiguous one." in (run / "quality.md").read_text())
    assert re.search(r"^gan conditional epoch 2 of 2: .* img/s, channels-last\)", r.stdout, re.M)
    assert all(h["channels_last"] for h in json.loads((run / "history-conditional.json").read_text()))
    r = genaug("gan", "--resume", run, "--no-channels-last")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "channels_last" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command, scalars, image", [
    ("encode", {"autoencoder/mse/train", "autoencoder/psnr/val", "autoencoder/lr"}, "autoencoder/test_reconstructions"),
    ("gan", {"gan_conditional/loss/discriminator", "gan_conditional/loss/generator"}, "gan_conditional/samples"),
])
def test_tensorboard_logs_scalars_images_and_histograms(tiny, tmp_path, command, scalars, image):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    r = genaug(command, "--data", "demo", "--profile", tiny, "--tensorboard", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    acc = EventAccumulator(str(only_run(tmp_path / "o", command) / "tensorboard"), size_guidance={"histograms": 0}).Reload()
    tags = acc.Tags()
    assert scalars <= set(tags["scalars"]), tags["scalars"]
    assert image in tags["images"]
    assert any("/weights/" in t for t in tags["histograms"])


def test_gan_sample_of_a_missing_checkpoint_is_one_line_and_makes_no_run(tmp_path):
    r = genaug("gan", "sample", "--checkpoint", tmp_path / "nope.pt", "--out", tmp_path / "o")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "nope.pt: no such file" in r.stderr and not (tmp_path / "o").exists()
    # a GAN run of two generators (one a class) given for its generator (it was told "no such file") names them
    (tmp_path / "gan").mkdir()
    for cls in ("PNEUMONIA", "NORMAL"):
        (tmp_path / "gan" / f"generator-{cls}.pt").write_bytes(b"")
    r = genaug("gan", "sample", "--checkpoint", tmp_path / "gan", "--out", tmp_path / "o")
    assert r.returncode == 2 and not (tmp_path / "o").exists()
    assert r.stderr.strip() == (f"genaug: error: --checkpoint {tmp_path / 'gan'} is a folder; give one of the "
                                f"checkpoints in it: {tmp_path / 'gan' / 'generator-NORMAL.pt'}, "
                                f"{tmp_path / 'gan' / 'generator-PNEUMONIA.pt'}")
    # torch's generator overflows past 2**64 (its traceback, after the run directory was made)
    r = genaug("gan", "sample", "--checkpoint", tmp_path / "nope.pt", "--seed", str(2 ** 70), "--out", tmp_path / "o")
    assert r.returncode == 2 and f"--seed must be from 0 to 4294967295, got {2 ** 70}" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o").exists()
    # a device it cannot have: said before the run folder is made (in session 55 it was made, then removed)
    r = genaug("gan", "sample", "--checkpoint", tmp_path / "gan" / "generator-NORMAL.pt", "--device", "tpu",
               "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr.strip() == ("genaug: error: unknown device 'tpu'; use auto, cpu, "
                                                    "cuda (or cuda:N, one GPU of several) or mps")
    assert not (tmp_path / "o").exists()


def test_data_split_lays_out_class_folders_by_patient_for_every_command(tmp_path):
    made = make_folder_dataset(tmp_path / "made", {"train": 12})
    flat = (made / "train").rename(tmp_path / "flat")       # NORMAL/ and PNEUMONIA/ only
    r = genaug("data", "info", "--data", flat, "--out", tmp_path / "o")
    assert r.returncode == 2 and f"genaug data split {flat} --to NEW_FOLDER" in r.stderr and "Traceback" not in r.stderr
    r = genaug("data", "split", flat, "--to", tmp_path / "xray", "--test-fraction", "0.25")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "train: 16 images (NORMAL 8, PNEUMONIA 8), 8 patients" in r.stdout
    assert "test: 8 images (NORMAL 4, PNEUMONIA 4), 4 patients" in r.stdout
    assert len(list((tmp_path / "xray" / "test").rglob("*.jpeg"))) == 8
    r = genaug("data", "info", "--data", tmp_path / "xray", "--out", tmp_path / "o")
    assert r.returncode == 0 and "test split: held out by patient with genaug data split from " in r.stdout
    r = genaug("data", "split", flat, "--to", tmp_path / "xray")
    assert r.returncode == 2 and "already exists" in r.stderr and "Traceback" not in r.stderr
    # a new folder below a file: "File exists: <that file>" before session 56
    r = genaug("data", "split", flat, "--to", tmp_path / "xray" / "split.json" / "new")
    assert r.returncode == 2 and r.stderr.strip() == (f"genaug: error: --to {tmp_path / 'xray' / 'split.json' / 'new'}: "
                                                      f"{tmp_path / 'xray' / 'split.json'} is a file, not a folder; "
                                                      "name a new folder in a folder")
    # numpy refuses negative seeds: that was its traceback
    r = genaug("data", "split", flat, "--to", tmp_path / "other", "--seed", "-1")
    assert r.returncode == 2 and "--seed must be from 0 to 4294967295, got -1" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "other").exists()


def test_data_split_reads_patient_folders_as_the_patients(tmp_path):
    # SOURCE/<CLASS>/<PATIENT>/ (images deeper too, in study folders): before session 85 refused as holding
    # "no images directly", and flattening it by hand lost who each image was of
    from genaug.data import load_data
    made = make_folder_dataset(tmp_path / "made", {"train": 12})
    source = tmp_path / "export"
    for cls in ("NORMAL", "PNEUMONIA"):
        for i, image in enumerate(sorted((made / "train" / cls).glob("*.jpeg"))):
            # 4 patients a class, 3 images each; patient 0's in study folders, all named alike across patients
            where = source / cls / f"{cls[0]}{i % 4}" / (f"study{i // 4}" if i % 4 == 0 else "")
            where.mkdir(parents=True, exist_ok=True)
            shutil.copy(image, where / f"image{i // 4}.jpeg")
    r = genaug("data", "info", "--data", source, "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr.strip().endswith(
        f"if each of those folders holds one patient's images, lay it out with a patient-level test split first: "
        f"genaug data split {source} --patient-folders --to NEW_FOLDER"), r.stderr
    shutil.copy(image, source / "PNEUMONIA" / "loose.jpeg")
    before = {p: p.stat().st_mtime_ns for p in source.rglob("*")}
    r = genaug("data", "split", source, "--to", tmp_path / "flat")
    assert r.returncode == 2 and r.stderr.strip().endswith("or, if each of its folders holds one patient's images, "
                                                           "give --patient-folders"), r.stderr
    r = genaug("data", "split", source, "--to", tmp_path / "xray", "--patient-folders", "--labels", "l.csv")
    assert r.returncode == 2 and "--patient-folders reads SOURCE/<CLASS>/<PATIENT>/ without a labels file" in r.stderr
    r = genaug("data", "split", source, "--to", tmp_path / "xray", "--patient-folders", "--test-fraction", "0.25")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "train: 18 images (NORMAL 9, PNEUMONIA 9), 6 patients" in r.stdout
    assert "test: 6 images (NORMAL 3, PNEUMONIA 3), 2 patients" in r.stdout
    assert "skipped 1 entry" in r.stdout and "no patient id" not in r.stdout
    made_split = json.loads((tmp_path / "xray" / "split.json").read_text())
    assert made_split["patient_folders"] is True
    assert made_split["skipped"] == [{"path": "PNEUMONIA/loose.jpeg", "reason": "an image outside the patient "
                                      "folders: not read (with --patient-folders a class's images go in "
                                      "<CLASS>/<PATIENT>/)"}]
    assert sorted(p.name for p in (tmp_path / "xray").glob("*/NORMAL/N0__*")) == [
        f"N0__study{k}_image{k}.jpeg" for k in range(3)]
    r = genaug("data", "info", "--data", tmp_path / "xray", "--out", tmp_path / "o")
    assert f"genaug data split from {source} (25%, seed 0; patients from its patient folders)" in r.stdout
    b = load_data(str(tmp_path / "xray"), 16, cache_dir=None)
    # the folders are the patients, whole on one side; each image's bytes are its source's
    sides = {s: set(getattr(b, s).patients) for s in ("train", "val", "test")}
    assert set().union(*sides.values()) == {f"{c}{k}" for c in "NP" for k in range(4)}
    assert not (sides["train"] | sides["val"]) & sides["test"] and len(sides["test"]) == 2
    for path, patient in zip(b.test.paths, b.test.patients):
        assert Path(path).name.startswith(f"{patient}__")
    assert before == {p: p.stat().st_mtime_ns for p in source.rglob("*")}


def test_mixed_cells_that_would_hold_no_synthetic_image_are_refused_before_anything_trains(tmp_path, tiny):
    data = make_folder_dataset(tmp_path / "x", {"train": 8, "test": 4})   # NORMAL and PNEUMONIA alike
    for flags, needle in ((["--synthetic-ratio", 0], "--synthetic-ratio 0 adds no synthetic image"),
                          (["--balance", "--synthetic-ratio", 0.5], "--balance and --synthetic-ratio both say"),
                          (["--balance"], "the training classes are already balanced (NORMAL 6, PNEUMONIA 6)")):
        r = genaug("benchmark", "--data", data, "--profile", tiny, "--out", tmp_path / "o", *flags)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, (flags, r.stderr[-2000:])
    assert not list((tmp_path / "o").glob("gan/*")) and not list((tmp_path / "o").glob("benchmark/*"))   # no run left


def test_a_model_or_variant_named_twice_is_one_cell():
    from genaug.benchmark import parse_list
    assert parse_list("cnn, resnet34,cnn", ("cnn", "resnet34"), "model") == ["cnn", "resnet34"]


def test_model_names_are_read_in_any_case_and_a_near_miss_is_named():
    from genaug.benchmark import parse_list
    from genaug.config import parse_model_epochs
    from genaug.errors import ConfigError
    from genaug.models import CLASSIFIERS
    assert parse_list("CNN,ResNet34,cnn", CLASSIFIERS, "model") == ["cnn", "resnet34"]
    # --models ResNet34 with model_epochs ResNet34=12: the epochs must reach the model, as one name
    assert parse_model_epochs("ResNet34=12") == {"resnet34": 12}
    # one model given two numbers (session 60: the last won silently); the same number twice says one thing
    with pytest.raises(ConfigError, match=r"gives resnet34 two numbers of epochs, 12 and 20, in 'resnet34=12,"
                                          r"ResNet34=20': give it one"):
        parse_model_epochs("resnet34=12,ResNet34=20")
    assert parse_model_epochs("resnet34=12,ResNet34=12,cnn=3") == {"resnet34": 12, "cnn": 3}
    for typed, meant in (("resnet-34", "resnet34"), ("densenet-121", "densenet121"), ("alexnetsmall", "alexnet_small")):
        with pytest.raises(ConfigError, match=f"unknown model {typed}; did you mean {meant}\\? \\(known: cnn,"):
            parse_list(typed, CLASSIFIERS, "model")
    with pytest.raises(ConfigError, match=r"unknown model vgg16 \(known:"):   # another model, not a typo of vgg19
        parse_list("vgg16", CLASSIFIERS, "model")
    # a name cut short is completed, every way it can be ("resnet" was offered resnet50 alone)
    with pytest.raises(ConfigError, match=r"unknown model resnet; did you mean resnet34 or resnet50\? \(known:"):
        parse_list("resnet", CLASSIFIERS, "model")
    with pytest.raises(ConfigError, match=r"unknown variant mix; did you mean mixed\? \(known: real, mixed,"):
        parse_list("real,mix", ("real", "mixed", "synthetic", "encoded"), "variant")


def test_a_dicom_folder_is_split_by_its_patients_and_described(tmp_path):
    pytest.importorskip("pydicom")
    from conftest import write_dicom
    rng = np.random.default_rng(0)
    for cls in ("NORMAL", "PNEUMONIA"):
        for i in range(8):
            write_dicom(tmp_path / "dcm" / cls / f"{i}.dcm", rng.integers(0, 4096, (20, 20)).astype(np.uint16),
                        patient=f"{cls}-{i // 2}", photometric="MONOCHROME1" if i == 0 else "MONOCHROME2")
    r = genaug("data", "split", tmp_path / "dcm", "--to", tmp_path / "xray", "--test-fraction", "0.25")
    assert r.returncode == 0 and "train: 12 images (NORMAL 6, PNEUMONIA 6), 6 patients" in r.stdout, r.stderr
    assert "carry no patient id" not in r.stdout
    r = genaug("data", "info", "--data", tmp_path / "xray", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "original sizes: {'20x20': 16} (1 distinct); modes: {'DICOM MONOCHROME1 12-bit': 2, " \
           "'DICOM MONOCHROME2 12-bit': 14}" in r.stdout
    assert "skipped files: 0" in r.stdout and "carry no patient id" not in r.stdout


def test_data_split_counts_the_images_without_a_patient(tmp_path):
    made = make_folder_dataset(tmp_path / "made", {"train": 8})
    for i, f in enumerate(sorted((made / "train" / "NORMAL").glob("*.jpeg"))[:3]):
        f.rename(f.with_name(f"scan{i}.jpeg"))              # names that say nothing of the patient
    r = genaug("data", "split", made / "train", "--to", tmp_path / "xray")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "note: 3 images carry no patient id (in the file name or a DICOM header)" in r.stdout
    # and how to give them one (session 86: the note said what was wrong, not what to do)
    assert "(--labels TABLE.csv --patient-column patient; file paths relative to SOURCE" in r.stdout
    table = tmp_path / "patients.csv"
    table.write_text("file,class,patient\n" + "".join(
        f"{f.relative_to(made / 'train').as_posix()},{f.parent.name},{'p1' if f.name.startswith('scan') else f.stem}\n"
        for f in sorted((made / "train").rglob("*.jpeg"))))
    r = genaug("data", "split", made / "train", "--labels", table, "--image-column", "file", "--label-column", "class",
               "--patient-column", "patient", "--to", tmp_path / "by-patient")
    assert r.returncode == 0 and "no patient id" not in r.stdout, r.stdout + r.stderr
    sides = [{f.name.split("__")[0] for f in (tmp_path / "by-patient" / s).rglob("*.jpeg")} for s in ("train", "test")]
    assert ("p1" in sides[0]) != ("p1" in sides[1])   # the three scans, one patient, on one side
    r = genaug("data", "split", made / "train", "--patient-pattern", "x", "--patient-folders", "--to", tmp_path / "b")
    assert r.returncode == 2 and r.stderr == ("genaug: error: --patient-pattern and --patient-folders both say where "
                                              "each patient is: give one\n"), r.stderr
    r = genaug("data", "split", made / "train", "--label-pattern", "_(\\d)", "--labels", table, "--to", tmp_path / "c")
    assert r.returncode == 2 and r.stderr == ("genaug: error: --label-pattern reads each image's label from its name, "
                                              "with no labels file or class folders: give it without --labels\n")


def test_data_split_says_which_patients_it_kept_together_for_an_identical_file(tmp_path):
    made = make_folder_dataset(tmp_path / "made", {"train": 8})
    normal = made / "train" / "NORMAL"
    shutil.copyfile(normal / "IM-0000-0001.jpeg", normal / "scan (1).jpeg")    # a copy under a name with no patient
    r = genaug("data", "split", made / "train", "--to", tmp_path / "xray")
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"^note: 1 patient holds a file identical to another patient's \(e\.g\. NORMAL/(IM-0000-0001|scan "
                     r"\(1\))\.jpeg = NORMAL/(scan \(1\)|IM-0000-0001)\.jpeg\) and went to the same side as that "
                     r"patient, so that no image is both trained and tested on; the files are listed in split\.json$",
                     r.stdout, re.M), r.stdout
    sides = [s for s in ("train", "test") if (tmp_path / "xray" / s / "NORMAL" / "scan (1).jpeg").exists()]
    assert sides == [s for s in ("train", "test") if (tmp_path / "xray" / s / "NORMAL" / "IM-0000-0001.jpeg").exists()]


def _rsna_like(tmp_path) -> tuple[Path, Path]:
    """A folder of <patientId>.png and a labels CSV in the RSNA challenge's shape: several rows for a patient
    with boxes (Target 1), one row for one without (Target 0), a listed file that is missing."""
    from PIL import Image
    rng = np.random.default_rng(0)
    images = tmp_path / "stage_2_train_images"
    images.mkdir()
    rows = ["patientId,x,y,width,height,Target"]
    for i in range(24):
        pid = f"{i:04d}cfab-14fd-4e49-80ba-63a80b6bddd6"
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(images / f"{pid}.png")
        rows += [f"{pid},264,152,213,379,1", f"{pid},562,152,256,453,1"] if i % 2 else [f"{pid},,,,,0"]
    rows.append("ffffffff-0000-4e49-80ba-63a80b6bddd6,,,,,0")       # listed, never downloaded
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return images, tmp_path / "labels.csv"


def test_data_split_reads_classes_from_a_labels_csv_and_every_command_reads_the_result(tmp_path, tiny):
    images, labels = _rsna_like(tmp_path)
    r = genaug("data", "split", images, "--labels", labels, "--image-column", "patientId", "--label-column", "Target",
               "--class", "NORMAL=0", "--class", "PNEUMONIA=1", "--patient-column", "patientId", "--to",
               tmp_path / "rsna", "--test-fraction", "0.25")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "train: 18 images (NORMAL 9, PNEUMONIA 9), 18 patients" in r.stdout
    assert "test: 6 images (NORMAL 3, PNEUMONIA 3), 6 patients" in r.stdout
    assert "skipped 1 entry (listed" in r.stdout and "no patient id" not in r.stdout
    split = json.loads((tmp_path / "rsna" / "split.json").read_text())
    assert split["skipped"] == [{"path": "ffffffff-0000-4e49-80ba-63a80b6bddd6",
                                 "reason": "listed in the labels file, not found under the images"}]
    assert split["labels"]["rows"] == 37 and split["classes"] == ["NORMAL", "PNEUMONIA"]
    linked = sorted(p.name for p in (tmp_path / "rsna" / "train" / "PNEUMONIA").iterdir())
    assert linked[0] == "0001cfab-14fd-4e49-80ba-63a80b6bddd6__0001cfab-14fd-4e49-80ba-63a80b6bddd6.png"
    assert sorted(p.name for p in images.iterdir())[0] == "0000cfab-14fd-4e49-80ba-63a80b6bddd6.png"  # untouched
    r = genaug("data", "info", "--data", tmp_path / "rsna", "--out", tmp_path / "o")
    assert r.returncode == 0 and re.search(r"\n  test\s+6\s+6\s+3\s+3\n", r.stdout), r.stdout + r.stderr[-2000:]
    assert "carry no patient id" not in r.stdout


def test_data_split_counts_every_row_it_leaves_out_and_finds_absolute_paths_under_a_relative_source(tmp_path):
    # found in session 67: a row without a label vanished uncounted; 25 missing files were told as "skipped
    # 21 entries" (20 named, one "... 5 more"); an absolute path inside SOURCE was "not found" where SOURCE
    # was given relative; a '../' file outside it was called missing
    images, labels = _rsna_like(tmp_path)
    shutil.copy(next(images.iterdir()), tmp_path / "outside.png")
    rows = [f"{tmp_path / 'stage_2_train_images' / sorted(p.name for p in images.iterdir())[1]},,,,,1",
            "../outside.png,,,,,1", "0002cfab-14fd-4e49-80ba-63a80b6bddd6,,,,,"]
    rows += [f"gone{i:02d},,,,,0" for i in range(24)]
    with open(labels, "a") as f:
        f.write("\n".join(rows) + "\n")
    r = genaug("data", "split", images.name, "--labels", labels, "--image-column", "patientId", "--label-column",
               "Target", "--class", "NORMAL=0", "--class", "PNEUMONIA=1", "--to", "rsna", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "left out 1 row without an image or a label" in r.stdout
    # 1 (RSNA's) + 24 missing, 1 outside, and 0001… now also listed as 1 by its absolute path: no conflict
    assert "skipped 26 entries (listed" in r.stdout, r.stdout
    split = json.loads((tmp_path / "rsna" / "split.json").read_text())
    assert split["labels"]["files_not_found"] == 26 and split["labels"]["rows_without_image_or_label"] == 1
    assert len(split["skipped"]) == 21 and split["skipped"][-1]["path"] == "... 6 more"
    assert {"path": "../outside.png", "reason": "listed in the labels file, outside the images folder (give a "
            "SOURCE that holds it)"} in split["skipped"]
    assert sum(split["images"]["train"].values()) + sum(split["images"]["test"].values()) == 24


@pytest.mark.parametrize("extra,said", [
    (["--label-column", "Label"], "has no column 'Label' (its columns: patientId, x, y, width, height, Target)"),
    (["--label-column", "target"], "has no column 'target'; did you mean 'Target'? (its columns: patientId, x, y,"),
    (["--label-column", "Target", "--class", "PNEUMONIA"], "--class 'PNEUMONIA': give NAME=VALUE[,VALUE...]"),
    (["--label-column", "Target", "--class", "NORMAL=0"], "give one class (NORMAL); a classifier needs two or more "
                                                          "(values left out: '1')"),
    (["--label-column", "x"], "(37 rows: 12 files are given two classes; 13 lack an image or a label)"),
])
def test_a_labels_csv_that_does_not_fit_is_one_line(tmp_path, extra, said):
    images, labels = _rsna_like(tmp_path)
    r = genaug("data", "split", images, "--labels", labels, "--image-column", "patientId", *extra,
               "--to", tmp_path / "rsna")
    assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "rsna").exists()


def test_an_error_quoting_a_path_with_a_newline_stays_one_line(tmp_path):
    # found in session 67: a run name holding a newline broke the one-line error in two; any path or name
    # an error quotes may hold one
    r = genaug("runs", "--out", tmp_path / "no\nsuch")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"genaug: error: run root not found: {tmp_path}/no\\nsuch (give --out")


@pytest.mark.parametrize("args,resumable", [(["gan", "--class", "all"], True), (["encode"], True),
                                            (["benchmark", "--resume", "r"], True), (["gan", "sample"], False),
                                            (["data", "info", "--data", "x"], False), (["predict", "a.png"], False)])
def test_a_stopped_command_names_resume_only_where_it_can_resume(args, resumable):
    import signal
    from genaug_cli.main import stopped_message
    said = stopped_message(args, signal.SIGINT, "/runs/benchmark/20261203-1")
    assert said.startswith("genaug: interrupted") and (f"genaug {args[0]} --resume /runs/benchmark/20261203-1" in said) \
        == resumable
    assert stopped_message(args, signal.SIGTERM, "/r").startswith("genaug: stopped by SIGTERM")
    # found in session 68: a stopped gan said its "finished epochs and cells are saved"; only benchmark has cells
    assert ("finished epochs and cells are saved" in said) == (resumable and args[0] == "benchmark")
    assert ("finished epochs are saved" in said) == (resumable and args[0] != "benchmark")
    if resumable:   # stopped before it made or opened a run: there is none to name
        assert stopped_message(args, signal.SIGINT, None) == \
            "genaug: interrupted before its run directory was made; nothing to resume"


def test_a_stopped_shard_is_told_to_resume_as_the_same_shard():
    import signal
    from genaug_cli.main import stopped_message
    said = stopped_message(["benchmark", "--profile", "cpu", "--shard", "1/2"], signal.SIGTERM, "/runs/b")
    assert said.endswith("rerun with genaug benchmark --resume /runs/b --shard 1/2")
    # a run under a folder with a space: the command is quoted, so it pastes whole into a shell
    said = stopped_message(["benchmark", "--shard", "1/2"], signal.SIGINT, "/My Drive/runs/b")
    assert said.endswith("rerun with genaug benchmark --resume '/My Drive/runs/b' --shard 1/2")


@pytest.mark.parametrize("command,extra", [("benchmark", []), ("gan", []), ("encode", []),
                                           ("benchmark", ["--report-only"])])
def test_resuming_a_folder_that_is_no_run_leaves_it_as_it_was(tmp_path, command, extra):
    # the data folder given by mistake got a lock file and a log.txt, and its '.*.tmp' files were deleted
    # as a crashed run's leftovers, before the missing config.yaml was told
    data = make_folder_dataset(tmp_path / "xray", {"train": 4, "test": 2})
    (data / "train" / ".notes.tmp").write_text("the user's")
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    r = genaug(command, "--resume", data, *extra)
    assert r.returncode == 2 and r.stderr.strip() == f"genaug: error: {data} is not a genaug run (no manifest.json)"
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before
    assert (data / "train" / ".notes.tmp").read_text() == "the user's"


def test_gan_of_a_class_with_too_few_images_names_the_classes_that_have_enough(tmp_path, tiny):
    data = make_folder_dataset(tmp_path / "xray", {"train": 24, "test": 4})
    for f in sorted((data / "train" / "NORMAL").iterdir())[:8]:
        f.unlink()   # 16 NORMAL training images, 14 once validation patients are carved out
    r = genaug("gan", "--profile", tiny, "--data", data, "--out", tmp_path / "o")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    named = re.search(r"^genaug gan: (\S+)$", r.stdout, re.M).group(1)   # the command's first line
    assert r.stderr == ("genaug: error: class NORMAL has 14 training images; a GAN needs at least 16: give more images "
                        f"of it, or train a GAN of the others only (--class PNEUMONIA) (run folder {named} removed: "
                        "it held nothing yet)\n")
    assert not list((tmp_path / "o").glob("gan/*"))   # refused: no run left behind
    # found in session 80: "has 1 training images", with no word of the --train-fraction that left it one
    r = genaug("gan", "--profile", tiny, "--train-fraction", "0.01", "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr.startswith(
        "genaug: error: class NORMAL has 1 training image at --train-fraction 0.01; a GAN needs at least 16")


@pytest.mark.parametrize("command", [["gan", "--class", "PNEUMONIA"], ["encode"], ["benchmark", "--variants", "real"]])
@pytest.mark.parametrize("inside", [".", "train/NORMAL"])
def test_an_out_inside_the_data_folder_is_refused_before_torch_loads_and_nothing_is_written(tmp_path, tiny, command, inside):
    # a run's synthetic PNGs under train/NORMAL/ would be read as NORMAL X-rays by a loader that walks the folder
    data = make_folder_dataset(tmp_path / "xray", {"train": 6, "test": 2})
    before = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    args = [*command, "--data", str(data), "--profile", str(tiny), "--out", str(data / inside / "runs")]
    r = run_cli_noting_torch(args)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"is inside the data folder {data}" in r.stderr and "give an --out outside it" in r.stderr
    assert r.stdout.strip() == "torch loaded: False"
    assert sorted(str(p.relative_to(data)) for p in data.rglob("*")) == before


def test_new_run_refuses_an_out_root_inside_its_data_folder(tmp_path):
    # the library's own guard, for callers that do not come through the CLI
    from genaug.errors import ConfigError
    from genaug.runs import new_run
    data = make_folder_dataset(tmp_path / "xray", {"train": 4, "test": 2})
    with pytest.raises(ConfigError, match="is inside the data folder"):
        new_run(data / "train", "gan", "x", {"data": {"data": str(data)}})
    assert not (data / "train" / "gan").exists()
    for spec in ("demo", "medmnist:pneumoniamnist", str(tmp_path / "a.npz")):   # no folder to write into
        new_run(tmp_path / "out", "gan", "x", {"data": {"data": spec}}).close()
    new_run(tmp_path / "out", "gan", "y", {"data": {"data": str(data)}}).close()   # beside the data: fine
    assert len(list((tmp_path / "out" / "gan").iterdir())) == 4


@pytest.mark.parametrize("images,out,where", [
    ("test/NORMAL", "train/NORMAL", "the data folder the model learnt from,"),   # found in session 53
    ("test/NORMAL", "test/NORMAL/x", "the folder of images given,"),
])
def test_explain_refuses_an_out_among_x_rays(tmp_path, images, out, where):
    # Grad-CAM overlays of test images under train/NORMAL/ would be read as NORMAL X-rays by a loader that
    # walks the folder (genaug predict and explain walk the folders they are given). The check comes before
    # the model is loaded, so a stand-in file in a stand-in benchmark run is enough.
    data = make_folder_dataset(tmp_path / "xray", {"train": 4, "test": 2})
    models = tmp_path / "runs" / "benchmark" / "20260101-000000" / "models"
    models.mkdir(parents=True)
    (models.parent / "config.yaml").write_text(f"data:\n  data: {data}\n")
    (models / "cnn__real__f1__seed0.pt").write_bytes(b"not read")
    before = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    r = genaug("explain", data / images, "--checkpoint", models / "cnn__real__f1__seed0.pt", "--out", data / out)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"is inside {where}" in r.stderr and "Grad-CAM overlays" in r.stderr
    assert sorted(str(p.relative_to(data)) for p in data.rglob("*")) == before
    # elsewhere the command goes on to load the file, which is no model
    r = genaug("explain", data / images, "--checkpoint", models / "cnn__real__f1__seed0.pt", "--out", tmp_path / "o")
    assert r.returncode == 2 and "is inside" not in r.stderr and "Traceback" not in r.stderr


def test_gan_sample_refuses_an_out_inside_the_data_its_generator_learnt_from(tmp_path):
    # the check comes before the generator is loaded, so a stand-in file in a stand-in run is enough
    data = make_folder_dataset(tmp_path / "xray", {"train": 4, "test": 2})
    gan_run = tmp_path / "runs" / "gan" / "20260101-000000"
    gan_run.mkdir(parents=True)
    (gan_run / "config.yaml").write_text(f"data:\n  data: {data}\n")
    (gan_run / "generator-conditional.pt").write_bytes(b"not read")
    before = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    r = genaug("gan", "sample", "--checkpoint", gan_run / "generator-conditional.pt", "--out", data / "train" / "NORMAL")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"is inside the data folder {data}" in r.stderr
    assert sorted(str(p.relative_to(data)) for p in data.rglob("*")) == before
    # elsewhere the command goes on to load the file, which is no generator
    r = genaug("gan", "sample", "--checkpoint", gan_run / "generator-conditional.pt", "--out", tmp_path / "o")
    assert r.returncode == 2 and "inside the data folder" not in r.stderr


@pytest.mark.parametrize("args,told", [
    (["benchmark", "--models", "cnn", "--models", "resnet34"],
     "--models is given twice (cnn, then resnet34): give it once (it takes a comma list: --models cnn,resnet34)"),
    (["benchmark", "--seeds", "2", "--seeds=3"], "--seeds is given twice (2, then 3): give it once"),
    (["benchmark", "--augment", "--no-augment"], "--augment and --no-augment are both given: give one"),
    (["gan", "--n", "5", "--n", "6"], "--n is given twice (5, then 6): give it once"),
    (["gan", "sample", "--checkpoint", "g.pt", "--n", "5", "--n", "6"], "--n is given twice (5, then 6): give it once"),
    (["predict", "--checkpoint", "a.pt", "--checkpoint", "b.pt", "x"], "--checkpoint is given twice (a.pt, then b.pt)"),
])
def test_an_option_given_twice_is_refused_not_taken_at_its_last_value(tmp_path, args, told):
    # click kept the last value without a word: `--models cnn --models resnet34` trained ResNet-34 alone (session 70)
    r = genaug(*args, cwd=tmp_path)
    assert r.returncode == 2 and f"genaug: error: {told}" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())   # told before any work


def test_a_value_that_looks_like_an_option_and_a_group_s_own_option_are_not_taken_for_repeats(tmp_path):
    # `--name --models`: the name is '--models'; `gan --class X sample --class Y`: two commands' options
    r = genaug("gan", "--class", "NORMAL", "sample", "--checkpoint", tmp_path / "none.pt", "--class", "PNEUMONIA")
    assert r.returncode == 2 and "no such file" in r.stderr and "twice" not in r.stderr, r.stderr
    r = genaug("data", "info", "--data", tmp_path / "nowhere", "--cache-dir", "--data")
    assert r.returncode == 2 and "twice" not in r.stderr and "data folder not found" in r.stderr, r.stderr


@pytest.mark.parametrize("command", ["benchmark", "gan", "encode"])
def test_classes_the_data_has_not_are_refused_before_a_run_is_made(tmp_path, command):
    r = genaug(command, "--data", "demo", "--classes", "NORMAL,PNEUMONA", "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr == ("genaug: error: --classes names 'PNEUMONA', which demo has not (did you "
                                              "mean 'PNEUMONIA'?); its classes: NORMAL, PNEUMONIA\n"), r.stderr
    assert not (tmp_path / "o").exists()
