import errno
import json
import os
import pickle
import re
import signal

import pytest
import torch

from genaug.config import Config, config_from_dict, load_config
from genaug.errors import CheckpointError, ConfigError, DataError
from genaug.runs import (TRAINING_LIST, archive_run, atomic_torch_save, atomic_write, format_json, load_checkpoint, new_run,
                         open_run, running, write_json)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_crafted_pickle_is_refused(tmp_path):
    p = tmp_path / "evil.pt"
    with open(p, "wb") as fh:
        pickle.dump({"model": _Evil()}, fh)
    import warnings
    with pytest.raises(CheckpointError) as told, warnings.catch_warnings():
        warnings.simplefilter("error")   # torch's "Detected pickle protocol 4" came out as two more lines
        load_checkpoint(p)
    # torch's first sentence only (until session 68, its first 160 characters: "... from `False` to `True`.
    # Re-running `torch.")
    assert str(told.value) == f"checkpoint {p} cannot be loaded safely (Weights only load failed); is it a genaug " \
                              "checkpoint and complete?"


def test_a_genaug_checkpoint_of_another_kind_says_what_it_is_and_what_to_give(tmp_path):
    # session 54: `gan sample --checkpoint checkpoint-conditional.pt` (the GAN's training checkpoint beside the
    # generator) was told it "lacks generator, nz, ngf, image_size, conditional; it is not a genaug generator"
    run = new_run(tmp_path, "gan", "g", {"a": 1})
    run.close()
    atomic_torch_save({"kind": "gan", "G": {}, "D": {}}, run.dir / "checkpoint-conditional.pt")
    atomic_torch_save({"kind": "generator", "generator": {}}, run.dir / "generator-conditional.pt")
    with pytest.raises(CheckpointError) as told:
        load_checkpoint(run.dir / "checkpoint-conditional.pt", ("generator", "nz"), "generator checkpoint")
    assert str(told.value) == (f"generator checkpoint {run.dir / 'checkpoint-conditional.pt'} is a GAN's training "
                               f"checkpoint, which genaug gan --resume reads, not a generator checkpoint; give "
                               f"{run.dir.resolve() / 'generator-conditional.pt'}")
    with pytest.raises(CheckpointError) as told:   # none of the wanted kind in its run: what writes one
        load_checkpoint(run.dir / "generator-conditional.pt", ("model", "image_size"), "autoencoder checkpoint")
    assert str(told.value).endswith("is a generator, not an autoencoder checkpoint; give the autoencoder.pt file "
                                    "that a genaug encode run wrote")


def test_checkpoint_round_trip_and_missing_keys(tmp_path):
    atomic_torch_save({"model": {"w": torch.ones(2)}, "epoch": 3}, tmp_path / "c.pt")
    assert load_checkpoint(tmp_path / "c.pt", ("model", "epoch"))["epoch"] == 3
    with pytest.raises(CheckpointError, match="lacks optimizer"):
        load_checkpoint(tmp_path / "c.pt", ("optimizer",))
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    (tmp_path / "notes.pt").write_text("hello\n")   # torch.load's own message: KeyError '101'
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "notes.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is an empty file"):
        load_checkpoint(tmp_path / "empty.pt")
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[:len(data) // 2])   # a zip cut short: torch.load's message
    with pytest.raises(CheckpointError) as told:
        load_checkpoint(tmp_path / "cut.pt")
    # torch's first sentence, whole, not its advice cut off mid-phrase (found in session 68)
    said = str(told.value)
    assert said.startswith(f"checkpoint {tmp_path / 'cut.pt'} cannot be loaded safely (") and \
        said.endswith("); is it a genaug checkpoint and complete?"), said
    assert ". " not in said.split("safely (")[1], said   # torch 2.14: "(PytorchStreamReader failed ... directory)"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    # a folder (a run given for its checkpoint) names the .pt files in it, not "not found"
    with pytest.raises(CheckpointError, match=f"autoencoder checkpoint {tmp_path} is a folder; give one of the "
                                              f"checkpoints in it: {tmp_path / 'bad.pt'}, .* \\(5 in all\\)"):
        load_checkpoint(tmp_path, kind="autoencoder checkpoint")


def test_run_directories_never_reused(tmp_path):
    a = new_run(tmp_path, "gan", "x", {"a": 1})
    b = new_run(tmp_path, "gan", "x", {"a": 1})
    assert a.dir != b.dir and (a.dir / "config.yaml").is_file() and (b.dir / "manifest.json").is_file()
    a.close()
    b.close()


@pytest.mark.parametrize("out", ["notes.txt", "notes.txt/deeper/runs"])
def test_a_file_in_the_way_of_the_run_root_is_named(tmp_path, out):
    # the OS said only "Not a directory: notes.txt/benchmark"
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=f"^--out {tmp_path / out}: {tmp_path / 'notes.txt'} is a file, not a folder; "
                                          "give the folder runs go in"):
        new_run(tmp_path / out, "benchmark")
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("wrote,new,kept", [
    ([], True, False),                       # refused on its input: no empty run left behind
    ([TRAINING_LIST], True, False),          # a record of its input is no result either
    (["checkpoint.pt"], True, True),         # got as far as a checkpoint: kept, to be resumed
    (["cells/cnn__real__f1__seed0.json"], True, True),
    ([], False, True),                       # a resumed run is the user's: never removed
])
def test_a_refused_run_is_removed_only_when_new_and_empty(tmp_path, wrote, new, kept):
    run = new_run(tmp_path, "gan", "r", {"gan": {"n": 1}})
    if not new:
        run.close()
        run = open_run(run.dir, "gan")
    for name in wrote:
        run.path(name).parent.mkdir(parents=True, exist_ok=True)
        run.path(name).write_text("x")
    with pytest.raises(DataError, match="no such class") as refused:
        with running(run, new=new):
            raise DataError("no such class")
    assert run.dir.is_dir() == kept
    # the command's error line names the removed folder, which its first line had named
    assert getattr(refused.value, "removed_run", None) == (None if kept else run.dir)
    assert (tmp_path / "gan").is_dir() == kept   # no empty OUT/gan/ left either
    if kept:
        assert "ERROR stopped: no such class" in (run.dir / "log.txt").read_text()
    # anything else (a bug, an interrupt) keeps the run as it is
    other = new_run(tmp_path, "gan", "s")
    with pytest.raises(RuntimeError):
        with running(other, new=True):
            raise RuntimeError("bug")
    assert other.dir.is_dir()


@pytest.mark.parametrize("error", [MemoryError("Unable to allocate 18.6 TiB"),
                                   OSError(errno.ENOSPC, "No space left on device")])
def test_a_new_run_out_of_memory_or_disk_before_it_wrote_anything_is_removed(tmp_path, error):
    """Found in session 72: `gan --width 100000` (20 TB of weights) left an empty run folder and was told to
    --resume it; a resumed empty run trains from the start, as the command run again does, so the folder
    was only clutter in `genaug runs`. One with a checkpoint is kept, to be resumed."""
    run = new_run(tmp_path, "gan", "r", {"gan": {"n": 1}})
    with pytest.raises(type(error)) as stopped:
        with running(run, new=True):
            raise error
    assert not run.dir.exists() and not (tmp_path / "gan").exists()
    assert stopped.value.removed_run == run.dir
    kept = new_run(tmp_path, "gan", "k", {"gan": {"n": 1}})
    kept.path("checkpoint.pt").write_text("x")
    with pytest.raises(type(error)) as stopped:
        with running(kept, new=True):
            raise type(error)(*error.args)
    assert kept.dir.is_dir() and getattr(stopped.value, "removed_run", None) is None
    assert stopped.value.run_dir == kept.dir   # the run the error line tells to resume


@pytest.mark.parametrize("name", ["../elsewhere", "a/b", "a\\b"])
def test_a_run_name_with_a_path_in_it_is_refused_and_makes_no_folder(tmp_path, name):
    # gan sample, explain and pool pass --name straight here; it was "No such file or directory"
    with pytest.raises(ConfigError, match="must be a plain name, without '/'"):
        new_run(tmp_path / "out", "gan-sample", name)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name,told", [("my run", "'my run' holds a space, which a shell"),
                                       ('a"b$c', "'a\"b$c' holds '\"', '$', which a shell"),
                                       # one line, whatever the name holds; no empty name offered (session 67)
                                       ("a\nb", "'a\\nb' holds '\\n', which a shell would need quoted"),
                                       (" ", "' ' holds a space, which a shell would need quoted in every command "
                                             "that names the run; use letters, digits and - _ . + = @ % , : (or "
                                             "leave --name out)"),
                                       # a folder name holds 255 bytes: "File name too long: <path>" (session 58)
                                       ("é" * 101, "is 202 bytes long; a run's folder adds its time stamp to the "
                                                   "name, and a folder name holds at most 255 bytes: use at most 200")])
def test_a_run_name_a_shell_would_need_quoted_is_refused_but_an_old_run_so_named_resumes(tmp_path, name, told):
    # the commands genaug prints name the run (--resume RUN): "my run" split in two when pasted
    with pytest.raises(ConfigError, match=f"'run.name'\\) {re.escape(told)}"):
        new_run(tmp_path / "out", "gan-sample", name)
    with pytest.raises(ConfigError, match=re.escape(told)):
        load_config(None, {"run": {"name": name}})
    assert not (tmp_path / "out").exists()
    assert load_config(None, {"run": {"name": "größe_1.2-b"}}).run.name == "größe_1.2-b"   # letters of any script
    saved = Config()
    saved.run.name = name   # a run named before the check: its saved config still loads, to resume
    assert config_from_dict(saved.to_dict()).run.name == name


def test_resume_clears_temporary_files_of_a_killed_write(tmp_path):
    from genaug.runs import new_run, open_run
    run = new_run(tmp_path, "encode", "x", {"a": 1})
    run.close()
    (run.dir / ".checkpoint.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    (run.dir / "checkpoint.pt").write_bytes(b"whole")
    again = open_run(run.dir, "encode")
    again.close()
    assert not list(run.dir.glob("*.tmp")) and (run.dir / "checkpoint.pt").read_bytes() == b"whole"


@pytest.mark.parametrize("command", ["benchmark", "gan", "encode"])
def test_resume_of_a_folder_that_is_no_run_writes_and_clears_nothing_however_its_manifest_reads(tmp_path, command):
    # a web project's manifest.json may name a "command"; before session 52 --resume locked and logged
    # into such a folder and deleted its .*.tmp files before it found no config.yaml
    from genaug.runs import open_run
    (tmp_path / "sub").mkdir()
    for name, text in {"manifest.json": json.dumps({"name": "app", "command": command}), ".cache.tmp": "keep",
                       "sub/.x.tmp": "keep"}.items():
        (tmp_path / name).write_text(text)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(CheckpointError, match=r"is not a genaug run \(no config.yaml\)$"):
        open_run(tmp_path, command)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("made_by,resumed_by", [("benchmark", "encode"), ("benchmark", "gan"), ("gan", "benchmark")])
def test_resume_refuses_another_commands_run_and_leaves_it_as_it_was(tmp_path, made_by, resumed_by):
    from genaug.runs import open_run
    run = new_run(tmp_path, made_by, "x", {"a": 1})
    run.close()
    before = {p.name: p.read_bytes() for p in run.dir.iterdir()}
    with pytest.raises(CheckpointError, match=f"made by genaug {made_by}, not genaug {resumed_by}"):
        open_run(run.dir, resumed_by)
    assert {p.name: p.read_bytes() for p in run.dir.iterdir()} == before


def test_archive_keeps_results_and_leaves_out_weights_latents_and_real_pixels(tmp_path):
    run = new_run(tmp_path / "out", "gan", "g", {"gan": {"epochs": 2}})
    run.close()
    files = {"quality.md": b"# q", "metrics.json": b"{}", "samples/conditional_epoch_001.png": b"1",
             "samples/conditional_epoch_002.png": b"2", "generator-conditional.pt": b"w",
             "generator-conditional.safetensors": b"w", "memorization-NORMAL.png": b"real",
             "synthetic/NORMAL/synthetic_0.png": b"s", "partial/x.pt": b"p", "big.csv": b"x" * 2_000_001,
             "training_images.txt": b"train/NORMAL/IM-0001-0001.jpeg\n",
             "cells/c.json": json.dumps({"val_probs": [[0.25, 0.75]] * 20}, indent=2).encode(), "odd.json": b"{no"}
    for name, data in files.items():
        (run.dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run.dir / name).write_bytes(data)
    dest, copied, skipped = archive_run(run.dir, tmp_path / "arch")
    assert dest == tmp_path / "arch" / "gan" / run.dir.name
    assert sorted(copied) == ["cells/c.json", "config.yaml", "log.txt", "manifest.json", "metrics.json", "odd.json",
                              "quality.md", "samples/conditional_epoch_002.png"]
    # JSON of a run written one number a line is laid out as write_json does now, with the same values
    cell = (dest / "cells" / "c.json").read_text()
    assert json.loads(cell) == json.loads(files["cells/c.json"]) and len(cell) < len(files["cells/c.json"]) / 2
    assert (dest / "odd.json").read_bytes() == b"{no"
    why = dict(skipped)
    assert why == {"generator-conditional.pt": "weights", "generator-conditional.safetensors": "weights",
                   "memorization-NORMAL.png": "shows real X-rays", "synthetic/NORMAL/synthetic_0.png":
                   "synthetic image files", "partial/x.pt": "unfinished training state",
                   "samples/conditional_epoch_001.png": "earlier epoch's sample grid", "big.csv": "over 2 MB",
                   "training_images.txt": "names the real training files"}
    assert (dest / "samples" / "conditional_epoch_002.png").read_bytes() == b"2"
    listed = {d["file"]: d["files"] for d in json.loads((dest / "archived.json").read_text())["left_out"]}
    assert listed["synthetic/"] == 1 and listed["partial/"] == 1 and listed["big.csv"] == 1
    # archiving again updates what changed and deletes nothing; the run itself is never a target
    (run.dir / "quality.md").write_bytes(b"# q2")
    (dest / "notes.md").write_text("kept")
    archive_run(run.dir, tmp_path / "arch")
    assert (dest / "quality.md").read_bytes() == b"# q2" and (dest / "notes.md").is_file()
    # an archive archived again keeps the record of what the first one left out
    again, _, left = archive_run(dest, tmp_path / "arch2")
    record = json.loads((again / "archived.json").read_text())
    assert left == [] and record["from"] == str(dest) and record["left_out"] == []
    assert {d["file"] for d in record["earlier"]["left_out"]} >= {"synthetic/", "partial/", "big.csv"}
    with pytest.raises(CheckpointError, match="would be the run itself"):
        archive_run(run.dir, run.dir / "a")
    # --to a file: "Not a directory: <file>/gan/<run>/config.yaml" before session 56
    (tmp_path / "a-file").write_text("mine")
    with pytest.raises(ConfigError, match=f"^--to {tmp_path / 'a-file' / 'x'}: {tmp_path / 'a-file'} is a file, "
                       "not a folder; give the folder archives go in"):
        archive_run(run.dir, tmp_path / "a-file" / "x")
    assert (tmp_path / "a-file").read_text() == "mine"
    # another run of the same folder name (another --out, another machine) is not merged into this archive
    other = tmp_path / "elsewhere" / "gan" / run.dir.name
    other.mkdir(parents=True)
    for name in ("config.yaml", "log.txt"):
        (other / name).write_bytes((run.dir / name).read_bytes())
    manifest = json.loads((run.dir / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "started": "2020-01-01T00:00:00+0000"}))
    (other / "quality.md").write_text("# another run")
    held = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    with pytest.raises(CheckpointError, match=re.escape(f"holds another run of the same name (started {manifest['started']} on")):
        archive_run(other, tmp_path / "arch")
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == held
    with pytest.raises(CheckpointError, match="not a genaug run"):
        archive_run(tmp_path, tmp_path / "arch")


@pytest.mark.parametrize("text,told", [
    ("data: [\n", r"does not parse \(line 2\)"),          # edited and cut short
    ("- just\n- a list\n", "is not a mapping of settings"),
    (b"\xff\xfe\x00", "does not parse"),                 # not text
])
def test_a_damaged_run_config_is_one_line_not_a_yaml_traceback(tmp_path, text, told):
    from genaug.runs import read_run_config

    p = tmp_path / "config.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CheckpointError, match=told):
        read_run_config(tmp_path)
    assert p.read_bytes() == (text if isinstance(text, bytes) else text.encode())   # left as it was


def test_a_run_at_work_is_refused_to_a_second_process_and_shards_share_it(tmp_path):
    from genaug.errors import RunInUse
    first = new_run(tmp_path, "benchmark", "x", {"a": 1})   # held until it closes
    with pytest.raises(RunInUse, match=f"in use by another genaug process \\(pid {os.getpid()} on "):
        open_run(first.dir, "benchmark")
    first.close()
    shard1 = open_run(first.dir, "benchmark", shard="1of2")
    shard2 = open_run(first.dir, "benchmark", shard="2of2")   # shards train other cells: both at work
    with pytest.raises(RunInUse, match=r"\(its shard 1/2\) is in use by another genaug process \(pid \d+ on [^;]*, shard 1/2\): wait for it"):
        open_run(first.dir, "benchmark", shard="1of2")       # the same shard twice
    with pytest.raises(RunInUse, match=r"by other genaug processes \(pid \d+ on .*shard 1/2; pid \d+ on .*shard 2/2\): wait for them"):
        open_run(first.dir, "benchmark")                     # the whole run: both shards named
    reader = open_run(first.dir, "benchmark", hold=False)    # --report-only reads beside them
    reader.close()
    dest, _, _ = archive_run(first.dir, tmp_path / "snapshot")   # an archive says it is a snapshot
    assert "shard 2/2" in json.loads((dest / "archived.json").read_text())["still_at_work"]
    from test_cli import genaug
    r = genaug("archive", first.dir, first.dir, "--to", tmp_path / "by-cli")   # and the command says so
    assert r.returncode == 0 and f"note: {first.dir} is still at work (pid {os.getpid()} on " in r.stderr
    assert r.stdout.count("archived ") == 1   # a run given twice is archived once (twice before session 55)
    shard1.close()
    shard2.close()
    open_run(first.dir, "benchmark").close()
    # lock files are the process's, not results: an archive neither copies nor lists them
    dest, copied, skipped = archive_run(first.dir, tmp_path / "archive")
    assert not [f for f in copied + [s for s, _ in skipped] if ".genaug-lock" in f]
    assert "still_at_work" not in json.loads((dest / "archived.json").read_text())


def test_a_killed_holder_leaves_no_lock(tmp_path):
    import subprocess
    import sys
    run = new_run(tmp_path, "encode", "x", {"a": 1})
    run.close()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from genaug.runs import open_run; "
                               f"open_run({str(run.dir)!r}, 'encode'); print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        from genaug.errors import RunInUse
        with pytest.raises(RunInUse, match=f"pid {holder.pid} on "):
            open_run(run.dir, "encode")
    finally:
        holder.kill()   # SIGKILL: no chance to unlock; the kernel drops the lock with the process
        holder.wait()
    open_run(run.dir, "encode").close()


def test_a_look_at_a_free_run_does_not_refuse_a_process_starting_then(tmp_path):
    import fcntl
    import threading
    run = new_run(tmp_path, "gan", "x", {"a": 1})
    run.close()
    fd = os.open(run.dir / ".genaug-lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)    # what in_use_by (genaug runs) does for a moment
    threading.Timer(0.08, os.close, (fd,)).start()
    opened = open_run(run.dir, "gan")                 # started during that moment: waits it out, not refused
    assert opened.dir == run.dir and opened.manifest["command"] == "gan"
    opened.close()


@pytest.mark.parametrize("command", ["predict", "report", "compare"])
def test_an_out_file_inside_a_runs_own_folders_is_refused(tmp_path, command):
    """Found in session 72: `genaug report RUN --out RUN/cells/new.json` wrote a report among the run's cells,
    after which every report, pool and resume of that run stopped on a cell that was not valid JSON."""
    from genaug.errors import ConfigError
    from genaug.runs import check_output_file
    run = new_run(tmp_path, "benchmark", "b", {"benchmark": {"seeds": 1}})   # a run has its config.yaml
    run.close()
    run.path("cells").mkdir()
    for inside in (run.path("cells", "new.json"), run.path("cells", "more", "x.md")):
        with pytest.raises(ConfigError, match=rf"^--out {inside} lies inside {run.dir / 'cells'}, a folder of genaug run "
                                              rf"{run.dir}: give a file name outside it \(in {run.dir} itself, or elsewhere\)$"):
            check_output_file(inside, command)
        assert not inside.exists()
    assert check_output_file(run.path("notes.md"), command) == run.path("notes.md")   # beside its files: its own report


@pytest.mark.parametrize("command, own", [
    ("predict", "file,prediction,p_NORMAL,p_PNEUMONIA\na.jpeg,NORMAL,0.9,0.1\n"),
    ("report", "# Results\n\nGenerated by `genaug report` on 2026-12-03 from 1 run; edit the runs, not this file.\n"),
    ("compare", "# b against a\n\nA = `/r/a`  \nB = `/r/b`\n"),
])
def test_an_out_file_is_replaced_only_when_the_same_command_wrote_it(tmp_path, command, own):
    from genaug.errors import ConfigError
    from genaug.runs import check_output_file
    assert check_output_file(tmp_path / "new" / "x.out", command) == tmp_path / "new" / "x.out"
    (tmp_path / "mine").write_text(own)
    check_output_file(tmp_path / "mine", command)                  # a rerun: replaced
    (tmp_path / "theirs").write_text("patient,label\n1,PNEUMONIA\n")
    with pytest.raises(ConfigError, match=f"is not the output of an earlier genaug {command}; give a new file name"):
        check_output_file(tmp_path / "theirs", command)
    other = next(c for c in ("predict", "report", "compare") if c != command)
    with pytest.raises(ConfigError, match="is not the output"):   # nor another command's output
        check_output_file(tmp_path / "mine", other)
    with pytest.raises(ConfigError, match="is a folder"):
        check_output_file(tmp_path, command)
    # a file name below a file: "File exists: theirs/x.out" before session 56, of a file that does not
    with pytest.raises(ConfigError, match=f"^--out {tmp_path / 'theirs' / 'd' / 'x.out'}: {tmp_path / 'theirs'} is a "
                       "file, not a folder; give a file name in a folder$"):
        check_output_file(tmp_path / "theirs" / "d" / "x.out", command)


class _Stop(Exception):
    pass


class _KilledMidWrite:
    """A file that gets SIGTERM during the third of torch.save's writes: a `kill` landing mid-checkpoint."""

    def __init__(self, fh):
        self.fh, self.writes = fh, 0

    def write(self, data):
        self.writes += 1
        if self.writes == 3:
            signal.raise_signal(signal.SIGTERM)
        return self.fh.write(data)

    def flush(self):
        self.fh.flush()


@pytest.fixture
def sigterm_raises():
    def handler(signum, frame):
        raise _Stop(signum)
    before = signal.signal(signal.SIGTERM, handler)
    yield handler
    signal.signal(signal.SIGTERM, before)


def test_a_stop_signal_inside_torch_save_takes_effect_once_the_file_is_whole(tmp_path, sigterm_raises):
    # Before: the handler's exception broke off torch.save, whose zip writer then failed in its own
    # cleanup ("unexpected pos"), and the command ended in that RuntimeError's traceback.
    state = {"model": {"w": torch.arange(100_000.0)}, "epoch": 2}
    with pytest.raises(_Stop):
        atomic_write(tmp_path / "c.pt", lambda fh: torch.save(state, _KilledMidWrite(fh)))
    saved = load_checkpoint(tmp_path / "c.pt", ("model", "epoch"))
    assert saved["epoch"] == 2 and torch.equal(saved["model"]["w"], state["model"]["w"])
    assert signal.getsignal(signal.SIGTERM) is sigterm_raises   # the command's handler is back
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]      # no temporary file left


def test_a_write_without_a_stop_signal_raises_nothing_later(tmp_path, sigterm_raises):
    atomic_torch_save({"epoch": 1}, tmp_path / "c.pt")
    assert signal.getsignal(signal.SIGTERM) is sigterm_raises
    assert load_checkpoint(tmp_path / "c.pt", ("epoch",))["epoch"] == 1


@pytest.mark.parametrize("made_by, read_as, told", [
    ("encode", "gan", "it is a genaug encode run: --gan-run takes a genaug gan run's folder"),
    ("benchmark", "gan", "it is a genaug benchmark run: --gan-run takes a genaug gan run's folder"),
    ("gan", "encode", "it is a genaug gan run: --encode-run takes a genaug encode run's folder"),
    (None, "gan", "(expected synthetic/manifest.csv from genaug gan)"),   # a plain folder: as before
    (None, "encode", "(meta.json missing); run genaug encode"),
])
def test_an_input_run_of_another_command_is_named_as_such(tmp_path, made_by, read_as, told):
    from genaug.encode import load_latents
    from genaug.gan import synthetic_manifest

    if made_by:
        (tmp_path / "manifest.json").write_text(json.dumps({"command": made_by}))
    read = synthetic_manifest if read_as == "gan" else load_latents
    with pytest.raises(CheckpointError) as err:
        read(tmp_path)
    assert str(err.value).endswith(told)


def test_a_folder_inside_a_run_given_as_the_run_names_the_run(tmp_path):
    from genaug.runs import read_run_config

    run = new_run(tmp_path, "benchmark", "x", {"a": 1})
    run.close()
    (run.dir / "cells").mkdir()
    told = f"it lies inside the run {run.dir.resolve()}: give that folder"
    with pytest.raises(CheckpointError, match=told):
        read_run_config(run.dir / "cells")
    with pytest.raises(CheckpointError, match=told):
        archive_run(run.dir / "cells", tmp_path / "archive")
    # a file of the run, as the report.md path the command printed (session 54: "run directory not found")
    with pytest.raises(CheckpointError, match=f"report.md is a file, not a run directory; {told}"):
        (run.dir / "report.md").write_text("# report")
        open_run(run.dir / "report.md", "benchmark")
    with pytest.raises(CheckpointError) as err:
        read_run_config(tmp_path)            # a folder above runs: not inside one, and the run it holds named
    assert str(err.value) == (f"{tmp_path} is not a genaug run (no config.yaml); it holds one run, {run.dir}: "
                              "name that folder")


def test_a_run_name_cut_short_or_mistyped_is_told_the_run_it_nearly_names(tmp_path):
    # found in session 67: `genaug report OUT/benchmark/20261206-01270` (the 8 cut off) was told "is not a
    # genaug run (no manifest.json)" of a folder that does not exist
    from genaug.runs import missing_run_hint, read_manifest
    runs = [new_run(tmp_path / "out", "benchmark", name, {"a": 1}) for name in ("densenet-real", "densenet-mixed")]
    for run in runs:
        run.close()
    real = runs[0].dir
    cut = real.parent / real.name[:-2]   # "…-densenet-re"
    for wrong in (cut, real.parent / (real.name[:-1] + "x")):
        with pytest.raises(CheckpointError) as err:
            read_manifest(wrong)
        assert str(err.value) == f"run not found: {wrong}; did you mean {real}?"
    both = real.parent / os.path.commonprefix([real.name, runs[1].dir.name])   # their time stamps may differ
    with pytest.raises(CheckpointError) as err:   # begins both: both offered
        archive_run(both, tmp_path / "arch")
    assert str(err.value).startswith(f"run not found: {both}; did you mean ")
    assert str(real) in str(err.value) and str(runs[1].dir) in str(err.value)
    with pytest.raises(CheckpointError, match=r"^run directory not found: .*/nothing-like-it$"):
        open_run(real.parent / "nothing-like-it", "benchmark")
    # where one kind of run is wanted (--gan-run, --resume of a gan run), runs of another are not offered
    assert missing_run_hint(cut, "benchmark") == f"; did you mean {real}?" and missing_run_hint(cut, "gan") == ""
    with pytest.raises(CheckpointError, match=r"^run directory not found: .*-densenet-re$"):
        open_run(cut, "gan")
    assert not (tmp_path / "arch").exists()


def test_a_run_path_typed_in_the_other_unicode_form_is_pointed_to(tmp_path, monkeypatch):
    # found in session 75: a run root macOS named decomposed (NFD), typed composed (NFC), was "not found"
    import unicodedata
    from genaug.runs import read_manifest
    composed, decomposed = (unicodedata.normalize(form, "año") for form in ("NFC", "NFD"))
    run = new_run(tmp_path / decomposed, "benchmark", "real", {"a": 1})
    run.close()
    typed = tmp_path / composed / "benchmark" / run.dir.name
    with pytest.raises(CheckpointError) as err:
        read_manifest(typed)
    assert str(err.value) == (f"run not found: {typed}; {run.dir} is there, its name spelt in another Unicode form or "
                              "case: give that path (a shell's tab completion spells it as it is)")
    # a ~ the shell left alone (--resume=~/runs/X: it expands one only at the start of a word)
    monkeypatch.setenv("HOME", str(tmp_path / decomposed))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError) as err:
        read_manifest(f"~/benchmark/{run.dir.name}")
    assert str(err.value) == (f"run not found: ~/benchmark/{run.dir.name}; {run.dir} is there: a shell makes ~ the home "
                              "folder only at the start of a word, not after '=' or in quotes, so give that path (or "
                              "the option, a space, then ~/...)")


def test_a_folder_above_runs_given_as_a_run_names_the_runs_of_the_kind_wanted(tmp_path):
    """Found in session 60: `genaug report docs/runs/pool` (for docs/runs/pool/*) was told only "is not a genaug
    run (no manifest.json)"; the runs are two levels down at most (OUT/<command>/<run>)."""
    from genaug.gan import synthetic_manifest
    from genaug.runs import nearby_runs_hint, read_manifest

    runs = {name: new_run(tmp_path / "out", command, name, {"a": 1})
            for command, name in (("benchmark", "b1"), ("benchmark", "b2"), ("gan", "g1"))}
    for run in runs.values():
        run.close()
    b1, g1 = runs["b1"].dir, runs["g1"].dir
    with pytest.raises(CheckpointError) as err:
        read_manifest(tmp_path / "out")
    assert str(err.value) == (f"{tmp_path / 'out'} is not a genaug run (no manifest.json); it holds 3 runs: name runs, "
                              f"not the folder above them, e.g. {b1}, or {b1.parent}/* {g1.parent}/* for all")
    assert nearby_runs_hint(tmp_path / "out" / "benchmark").endswith(f"e.g. {b1}, or {b1.parent}/* for all")
    # where one kind of run is wanted (--gan-run), only runs of it are offered
    with pytest.raises(CheckpointError, match=f"; it holds one run, {re.escape(str(g1))}: name that folder$"):
        synthetic_manifest(tmp_path / "out")
    assert nearby_runs_hint(tmp_path / "out", "encode") == ""
    with pytest.raises(CheckpointError, match=f"; it holds one run, {re.escape(str(g1))}: name that folder$"):
        open_run(tmp_path / "out", "gan")   # --resume: runs of the command resumed
    assert nearby_runs_hint(tmp_path / "elsewhere") == ""   # a folder that is not there holds nothing


def test_more_threads_than_cpus_are_told(tmp_path, monkeypatch, capsys):
    # on a 2-core machine --threads 64 trained much slower than --threads 2, without a word
    from conftest import make_folder_dataset
    from genaug import jobs
    data = make_folder_dataset(tmp_path / "xray", {"train": 8, "test": 2})
    monkeypatch.setattr(jobs, "usable_cpus", lambda: 1)
    threads = torch.get_num_threads()
    try:
        for n, told in ((2, True), (1, False)):
            cfg = load_config(None, {"data": {"data": str(data)}, "run": {"device": "cpu", "threads": n}})
            run = new_run(tmp_path / "out", "encode", f"t{n}", cfg.to_dict())
            with running(run, new=True):
                jobs.start_job(cfg, run, 16)
            note = "note: --threads 2 on 1 CPU: threads beyond the CPUs usually slow training; give --threads 1 or fewer"
            assert (note in capsys.readouterr().out) == told and (note in (run.dir / "log.txt").read_text()) == told
        # a benchmark's own GAN or autoencoder, a run inside the benchmark's, does not say it again
        cfg = load_config(None, {"data": {"data": str(data)}, "run": {"device": "cpu", "threads": 2}})
        inner = new_run(tmp_path / "out" / "encode" / run.dir.name / "inputs", "encode", "inner", cfg.to_dict())
        with running(inner, new=True):
            jobs.start_job(cfg, inner, 16)
        assert "note: --threads" not in capsys.readouterr().out
    finally:
        torch.set_num_threads(threads)


def test_holders_since_is_when_the_earliest_process_at_work_took_the_run(tmp_path):
    from genaug import locks
    import time as _time
    assert locks.holders_since(tmp_path) is None                  # no one at work
    before = _time.time()
    held = locks.acquire(tmp_path, "1of2") + locks.acquire(tmp_path, "2of2")   # two shards
    try:
        since = locks.holders_since(tmp_path)
        assert since is not None and before - 1 <= since <= _time.time()   # the notes are to the second
        note = tmp_path / f"{locks.LOCK_NAME}-shard1of2"
        fd = os.open(note, os.O_WRONLY)   # another descriptor: closing it leaves the shard's flock held
        os.pwrite(fd, b'{"pid": 1, "since": "?"}' + b" " * 100, 0)   # a time that cannot be read
        os.close(fd)
        assert locks.holders_since(tmp_path) == since            # the other shard's still counts
    finally:
        locks.release(held)
    assert locks.holders_since(tmp_path) is None


def test_git_commit_in_genaugs_own_checkout_is_its_head():
    import re
    import subprocess
    from pathlib import Path

    from genaug.runs import git_commit
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    assert re.fullmatch(re.escape(head) + r"(\+dirty)?", git_commit())


@pytest.mark.parametrize("content", [b"\xff\xfe\x00not text", b"[]", b'{"finished": true}', b'{"command": "bench'])
def test_a_damaged_manifest_is_one_line_for_every_command_that_reads_a_run(tmp_path, content):
    # bytes that are not UTF-8 ended report, archive and --resume in a UnicodeDecodeError traceback, and a
    # manifest without a command made report say "is a genaug  run, which writes no report"
    from test_cli import genaug
    run = new_run(tmp_path / "o", "benchmark", "x", {})
    run.close()
    (run.dir / "manifest.json").write_bytes(content)
    told = f"run manifest {run.dir / 'manifest.json'} is corrupt: restore the file the run wrote"
    for args in (["report", run.dir], ["archive", run.dir, "--to", tmp_path / "arch"],
                 ["benchmark", "--resume", run.dir]):
        r = genaug(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr[-2000:])
        assert told in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    assert (run.dir / "manifest.json").read_bytes() == content   # left as it was
    assert not (tmp_path / "arch").exists()


def test_write_json_keeps_number_lists_on_one_line_and_reads_back_the_same(tmp_path):
    probs = torch.rand(50, 2)
    cell = {"model": "cnn", "seed": 0, "val_probs": probs, "confusion_matrix": [[40, 2], [3, 55]],
            "argv": ["/a/long/path/to/genaug"] * 6, "path": tmp_path, "shape": (1, 64, 64), "history": [{"epoch": 1}],
            "none": {}, "empty": [], "nan": float("nan")}
    write_json(tmp_path / "cell.json", cell)
    text = (tmp_path / "cell.json").read_text()
    back = json.loads(text)
    # The same values json.dumps would have written, tensors, Paths and tuples included
    plain = json.loads(json.dumps({**cell, "val_probs": probs.tolist(), "path": str(tmp_path), "shape": [1, 64, 64]}))
    assert json.dumps(back) == json.dumps(plain)
    lines = text.splitlines()
    assert sum('"val_probs": [[' in ln for ln in lines) == 1 and '  "confusion_matrix": [[40, 2], [3, 55]],' in lines
    assert '  "shape": [1, 64, 64],' in lines
    assert '  "argv": [' in lines            # a long list of strings still reads one item a line
    assert '  "history": [' in lines and '    {' in lines
    assert len(text) < len(json.dumps(plain, indent=2)) * 0.8
    assert format_json({"a": [[[1]]]}) == '{\n  "a": [\n    [[1]]\n  ]\n}'


def test_a_file_that_cannot_be_made_is_named_as_given_not_as_its_temporary_file(tmp_path, monkeypatch):
    """Found in session 55: `predict --out /proc/p.csv` said "No such file or directory: /proc/.p.csv.z1qyninr.tmp"."""
    import errno
    import tempfile

    from genaug.runs import atomic_write_text

    def refuse(prefix, suffix, dir):
        raise OSError(errno.EACCES, "Permission denied", f"{dir}/{prefix}z1qyninr{suffix}")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError) as told:
        atomic_write_text(tmp_path / "p.csv", "x")
    assert told.value.filename == str(tmp_path / "p.csv") and told.value.strerror == "Permission denied"


@pytest.mark.parametrize("flag,remedy", [
    ("--n 500", "give a smaller --n, or --out on a disk with room$"),
    # found in session 72: a benchmark's own GAN asked for by --balance, a switch, was told "give a smaller --balance"
    ("--balance", "free space on it, or give --out on a disk with room$"),
])
def test_files_that_cannot_fit_are_refused_naming_a_remedy_the_flag_has(tmp_path, monkeypatch, flag, remedy):
    from genaug import runs
    monkeypatch.setattr(runs, "_disk_room", lambda folder: (4096, 8192))   # 4 KiB blocks, two of them free
    runs.check_room_for_files(tmp_path, 2, flag)                            # two files fit
    with pytest.raises(ConfigError, match=rf"^{flag} asks for 3 files in .*, at least 12.3 kB on its disk .*{remedy}"):
        runs.check_room_for_files(tmp_path, 3, flag)


def test_a_report_written_before_session_72_with_a_raw_byte_is_still_read_and_archived_as_it_is(tmp_path):
    # such a report held a name's 0xff byte as it was: `genaug report` and `archive` ended in a UnicodeDecodeError
    from genaug.report import results_document
    run = new_run(tmp_path, "benchmark", "old")
    run.close()
    raw = b"# genaug benchmark: xrays-\xff\n\n## In short\n\n- cnn, 80.0% accuracy\n"
    run.path("report.md").write_bytes(raw)
    assert "# genaug benchmark: xrays-\\xff" in results_document([run.dir])
    dest, _, _ = archive_run(run.dir, tmp_path / "arch")
    assert (dest / "report.md").read_bytes() == raw
