"""genaug runs: each run's state, from what it wrote and from its lock."""
import json
import logging
import time

import pytest

from genaug.inventory import RunState, format_runs, list_runs, run_state
from genaug.runs import new_run, open_run, write_json
from conftest import run_cli_noting_torch
from test_cli import genaug


def _run(root, command, name, config, files=None, finished=False, hold=False):
    run = new_run(root, command, name, config)
    for rel, obj in (files or {}).items():
        (run.dir / rel).parent.mkdir(parents=True, exist_ok=True)
        write_json(run.dir / rel, obj)
    if finished:
        run.save_manifest(finished=True)
    if not hold:
        run.close()
    return run


def test_states_and_progress_of_each_kind_of_run(tmp_path):
    epoch = {"epoch": 1, "loss": 0.5}
    enc = _run(tmp_path, "encode", "done", {"encode": {"epochs": 2}}, {"history.json": [epoch, epoch]}, finished=True)
    gan = _run(tmp_path, "gan", "halfway", {"gan": {"epochs": 5}}, {"history-conditional.json": [epoch] * 3})
    per_class = _run(tmp_path, "gan", "per-class", {"gan": {"epochs": 2}},
                     {"history-NORMAL.json": [epoch] * 2, "history-PNEUMONIA.json": [epoch]})
    keys = ["cnn__real__f1__seed0", "cnn__real__f1__seed1", "cnn__mixed__f1__seed0"]
    bench = _run(tmp_path, "benchmark", "busy", {}, {f"cells/{k}.json": {} for k in keys[:2]}, hold=True)
    bench.save_manifest(planned_cells=keys)
    for line in (f"{keys[0]} epoch 2 of 2: train 0.1 val 0.1", f"{keys[2]} epoch 1 of 3: train 0.5 val 0.4",
                 f"{keys[2]} epoch 2 of 3: train 0.3 val 0.3"):
        logging.getLogger("genaug").info(line)   # the cell in progress, as training logs it
    (tmp_path / "cache").mkdir()   # not a command's folder of runs
    (tmp_path / "gan" / "not-a-run").mkdir()
    states = {s.run: s for s in list_runs(tmp_path)}
    assert set(states) == {str(r.dir) for r in (enc, gan, per_class, bench)}
    s = states[str(enc.dir)]
    assert (s.state, s.progress, s.resume) == ("finished", "2 of 2 epochs", "")
    s = states[str(gan.dir)]
    assert (s.state, s.progress, s.resume) == ("stopped", "3 of 5 epochs", f"genaug gan --resume {gan.dir}")
    assert states[str(per_class.dir)].progress == "NORMAL 2/2, PNEUMONIA 1/2 epochs"
    s = states[str(bench.dir)]
    assert s.state == "at work" and s.holder.startswith("pid ") and not s.resume
    assert s.progress.startswith("2 of 3 cells, about ")
    assert f"; {keys[2]} 2 of 3 epochs, at most " in s.progress   # not a finished cell's
    bench.close()
    assert run_state(bench.dir).state == "stopped"
    # every planned cell done: finished, even where the flag was written before the run was extended
    assert run_state(bench.dir).progress == f"2 of 3 cells; {keys[2]} 2 of 3 epochs"   # stopped: no time left
    write_json(bench.dir / "cells" / f"{keys[2]}.json", {})
    # every cell done, the report not written (stopped while writing it): a --resume writes it
    s = run_state(bench.dir)
    assert (s.state, s.progress, s.resume) == ("stopped", "3 of 3 cells; no report yet",
                                               f"genaug benchmark --resume {bench.dir}")
    (bench.dir / "report.md").write_text("# genaug benchmark\n")
    assert (run_state(bench.dir).state, run_state(bench.dir).progress) == ("finished", "3 of 3 cells")
    reopened = open_run(bench.dir, "benchmark")
    reopened.save_manifest(planned_cells=keys + ["cnn__mixed__f1__seed1"], finished=True)
    reopened.close()
    assert (run_state(bench.dir).state, run_state(bench.dir).progress) == ("stopped", "3 of 4 cells")
    assert list_runs(tmp_path, "encode")[0].run == str(enc.dir)
    assert [s.run for s in list_runs(tmp_path / "encode")] == [str(enc.dir)]   # one command's folder
    assert [s.run for s in list_runs(gan.dir)] == [str(gan.dir)]               # one run


def test_the_resume_command_of_a_run_under_a_folder_with_a_space_is_quoted(tmp_path):
    run = _run(tmp_path / "My Drive", "gan", "g", {"gan": {"epochs": 5}}, {"history-conditional.json": [{"epoch": 1}]})
    assert run_state(run.dir).resume == f"genaug gan --resume '{run.dir}'"
    assert f"  genaug gan --resume '{run.dir}'" in format_runs(list_runs(tmp_path / "My Drive"), tmp_path)


def test_a_benchmark_training_its_own_gan_shows_the_gans_progress(tmp_path):
    # "0 of 7 cells" was all it said while the GAN it trains first was halfway
    bench = _run(tmp_path, "benchmark", "b", {})
    bench.save_manifest(planned_cells=["cnn__real__f1__seed0", "cnn__mixed__f1__seed0"])
    gan = _run(bench.dir / "inputs", "gan", "gan", {"gan": {"epochs": 25}},
               {"history-conditional.json": [{"epoch": 1}] * 3})
    assert run_state(bench.dir).progress == "0 of 2 cells; its gan run 3 of 25 epochs"
    gan = open_run(gan.dir, "gan")
    gan.save_manifest(finished=True)
    gan.close()
    assert run_state(bench.dir).progress == "0 of 2 cells"   # a finished input run is not news
    # its epoch lines, which share the benchmark's log, are no cells in progress
    _log(bench, (60, "gan conditional epoch 25 of 25: loss D 0.6 G 2.1 (455 img/s)"),
         (50, "autoencoder epoch 10 of 10: train mse 0.01, val psnr 30.1 dB ssim 0.9 (2 s)"))
    assert run_state(bench.dir).progress == "0 of 2 cells"


def _log(run, *lines):
    """Lines as the run's log writes them, each at the given number of seconds ago."""
    with (run.dir / "log.txt").open("a") as fh:
        for ago, text in lines:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - ago))
            fh.write(f"{stamp},123 INFO {text}\n")


@pytest.mark.parametrize("archived", [False, True])
def test_an_archived_run_was_last_written_when_its_log_says_not_when_it_was_copied(tmp_path, archived):
    # an archive's files carry the time they were copied or checked out: every archived run in
    # docs/runs said "log written 24m15s ago"
    run = _run(tmp_path, "encode", "old", {"encode": {"epochs": 2}}, finished=True)
    _log(run, (3 * 86400 + 600, "epoch 1"), (3 * 86400, "finished"))
    if archived:
        write_json(run.dir / "archived.json", {"from": "elsewhere"})
    age = run_state(run.dir).last_log
    assert (age > 3 * 86400 - 60) if archived else (age < 60)
    assert ("3d00h ago" in format_runs(list_runs(tmp_path), tmp_path)) == archived


def test_time_left_comes_from_the_pace_of_the_last_epochs_and_only_while_at_work(tmp_path):
    bench = _run(tmp_path, "benchmark", "b", {}, hold=True)
    a, b, c = "vgg19__real__f1__seed0", "vgg19__real__f1__seed1", "cnn__real__f1__seed0"
    bench.save_manifest(planned_cells=[a, b, c])
    _log(bench, (4000, f"[1/3] {a}: 4693 training images (0 synthetic)"),
         (3400, f"{a} epoch 1 of 12: train 0.69 val 0.69"),     # epochs of 600 s and 400 s
         (3000, f"{a} epoch 2 of 12: train 0.51 val 0.26"),
         (2900, f"[2/3] {b}: 4693 training images (0 synthetic)"),
         (2000, f"{b} epoch 1 of 12: train 0.69 val 0.69"),     # then the process dies; a day later:
         (1000, f"[2/3] {b}: 4693 training images (0 synthetic)"),
         (999, f"    continuing from partial/{b}.pt"),
         (998, f"{b}: resuming at epoch 2 of 12 from partial/{b}.pt"),
         (698, f"{b} epoch 2 of 12: train 0.51 val 0.26"),      # 300 s, the gap before the resume not counted
         (125, f"[3/3] {c}: 4693 training images (0 synthetic)"))
    progress = run_state(bench.dir).progress
    assert progress.startswith(f"0 of 3 cells; {a} 2 of 12 epochs, at most 1h23m left; "   # 10 x 500 s
                               f"{b} 2 of 12 epochs, at most 50m00s left; {c} started 2m0")   # 10 x 300 s
    assert progress.endswith("s ago, no epoch done yet")
    bench.close()
    assert run_state(bench.dir).progress == (f"0 of 3 cells; {a} 2 of 12 epochs; {b} 2 of 12 epochs; "
                                             f"{c} stopped before its first epoch")
    # a GAN or autoencoder: from the seconds its history records for its last epochs
    history = [{"epoch": 1, "seconds": 90.0}, {"epoch": 2, "seconds": 50.0}, {"epoch": 3, "seconds": 70.0}]
    gan = _run(tmp_path, "gan", "g", {"gan": {"epochs": 6}}, {"history-conditional.json": history}, hold=True)
    assert run_state(gan.dir).progress == "3 of 6 epochs, about 3m30s of training left"   # 3 x 70 s
    gan.close()
    assert run_state(gan.dir).progress == "3 of 6 epochs"
    # per-class GANs train the classes in turn: the classes not begun have no history, so no time is guessed
    per_class = _run(tmp_path, "gan", "pc", {"gan": {"epochs": 5, "per_class": True}}, hold=True,
                     files={"history-NORMAL.json": history})
    assert run_state(per_class.dir).progress == "3 of 5 epochs"
    per_class.close()


def test_a_benchmark_at_work_says_how_long_its_cells_left_take(tmp_path):
    """Cells not begun at the mean time of the run's finished cells of their kind, or before one has
    finished, at the pace of one in progress for all its epochs; a cell in progress at what its epochs
    left take; nothing guessed for a model with neither."""
    c0, c1, c2 = (f"cnn__real__f1__seed{i}" for i in range(3))
    bench = _run(tmp_path, "benchmark", "b", {}, {f"cells/{c0}.json": {"train_seconds": 120.0}}, hold=True)
    bench.save_manifest(planned_cells=[c0, c1, c2])
    _log(bench, (1000, f"[2/3] {c1}: 4693 training images (0 synthetic)"),
         (900, f"{c1} epoch 1 of 4: train 0.69 val 0.69"),
         (800, f"{c1} epoch 2 of 4: train 0.51 val 0.26"))       # 2 epochs of 100 s left
    assert run_state(bench.dir).progress.startswith("1 of 3 cells, about 5m20s left; ")   # 200 s + 120 s
    row = format_runs([run_state(bench.dir)], tmp_path).splitlines()[1]
    assert row.split()[3:9] == ["1", "of", "3", "cells,", "about", "5m20s"]
    # the latent CNN is not timed by the pixel CNN's cells (its epochs take a fraction of theirs) ...
    e0, e1 = "cnn__encoded__f1__seed0", "cnn__encoded__f1__seed1"
    bench.save_manifest(planned_cells=[c0, c1, c2, e0, e1])
    assert run_state(bench.dir).progress.startswith("1 of 5 cells; ")
    # ... but by its own
    (bench.dir / "cells" / f"{e0}.json").write_text(json.dumps({"train_seconds": 40.0}))
    assert run_state(bench.dir).progress.startswith("2 of 5 cells, about 6m00s left; ")   # 200 + 120 + 40 s
    (bench.dir / "cells" / f"{e0}.json").unlink()
    bench.save_manifest(planned_cells=[c0, c1, c2, "vgg19__real__f1__seed0"])
    assert run_state(bench.dir).progress.startswith("1 of 4 cells; ")
    bench.close()
    assert run_state(bench.dir).progress.startswith("1 of 4 cells; ")   # stopped: no time left
    # the first cell of a run, under way: the next one of its model is timed by its pace
    d0, d1 = (f"densenet121__real__f1__seed{i}" for i in range(2))
    first = _run(tmp_path, "benchmark", "first", {}, hold=True)
    first.save_manifest(planned_cells=[d0, d1])
    _log(first, (500, f"[1/2] {d0}: 4693 training images (0 synthetic)"),
         (400, f"{d0} epoch 1 of 6: train 0.69 val 0.69"),
         (300, f"{d0} epoch 2 of 6: train 0.51 val 0.26"))       # 100 s an epoch
    assert run_state(first.dir).progress.startswith("0 of 2 cells, about 16m40s left; ")   # 4 x 100 s + 6 x 100 s
    first.close()


def test_a_resumed_benchmark_times_the_cells_left_at_its_own_pace(tmp_path):
    # resumed with --threads 2, DenseNet-121 cells ran at 64-94 s an epoch, where the first process's cells
    # (one thread, beside another job) had taken 1,334-1,653 s each: genaug runs timed the cells left at the old pace
    import os
    d = [f"densenet121__real__f1__seed{i}" for i in range(5)]
    bench = _run(tmp_path, "benchmark", "b", {}, {f"cells/{k}.json": {"train_seconds": 1350.0} for k in d[:3]})
    for k in d[:3]:   # finished hours before this process took the run
        os.utime(bench.dir / "cells" / f"{k}.json", (time.time() - 7200, time.time() - 7200))
    bench = open_run(bench.dir, "benchmark")   # held by this process from now
    bench.save_manifest(planned_cells=d)
    _log(bench, (300, f"[4/5] {d[3]}: 4693 training images"), (230, f"{d[3]} epoch 1 of 12: train 0.69 val 0.69"),
         (160, f"{d[3]} epoch 2 of 12: train 0.51 val 0.26"))       # 70 s an epoch here
    assert run_state(bench.dir).progress.startswith("3 of 5 cells, about 25m40s left; ")   # 10 x 70 s + 12 x 70 s
    (bench.dir / "cells" / f"{d[3]}.json").write_text(json.dumps({"train_seconds": 600.0}))
    # a cell this process finished times the rest
    assert run_state(bench.dir).progress.startswith("4 of 5 cells, about 10m00s left")
    bench.close()


def test_a_stopped_run_shows_why_where_its_log_ends_saying_it(tmp_path):
    enc = _run(tmp_path, "encode", "term", {"encode": {"epochs": 9}}, {"history.json": [{"epoch": 1}]})
    _log(enc, (60, "autoencoder epoch 1 of 9: train mse 0.01"))
    with (enc.dir / "log.txt").open("a") as fh:
        fh.write(time.strftime("%Y-%m-%d %H:%M:%S") + ",5 ERROR stopped by SIGTERM\n")
    assert run_state(enc.dir).why == "stopped by SIGTERM"
    assert "\n    stopped by SIGTERM\n" in format_runs([run_state(enc.dir)], tmp_path)
    # resumed since, then killed without a word (SIGKILL): the old reason is not the last line, so none
    _log(enc, (0, "autoencoder epoch 2 of 9: train mse 0.01"))
    assert run_state(enc.dir).why == "" and "SIGTERM" not in format_runs([run_state(enc.dir)], tmp_path)


def test_a_run_whose_manifest_cannot_be_read_is_listed_as_unreadable_not_left_out(tmp_path):
    good = _run(tmp_path, "encode", "good", {"encode": {"epochs": 2}}, {"history.json": [{"epoch": 1}] * 2},
                finished=True)
    bad = _run(tmp_path, "encode", "cut", {"encode": {"epochs": 2}}, {"history.json": [{"epoch": 1}]})
    (bad.dir / "manifest.json").write_text('{"command": "enc')   # cut short
    (tmp_path / "encode" / "not-a-run").mkdir()                    # no manifest at all: not a run
    states = {s.run: s for s in list_runs(tmp_path)}
    assert set(states) == {str(good.dir), str(bad.dir)}
    s = states[str(bad.dir)]
    assert (s.state, s.command, s.resume) == ("unreadable", "encode", "")
    assert s.why.startswith("its manifest.json cannot be read (corrupt, cut short or without a command)")
    assert [x.state for x in list_runs(bad.dir)] == ["unreadable"]   # given the run itself
    table = format_runs(list(states.values()), tmp_path)
    assert "unreadable" in table and "restore the file or move the run away" in table
    # a manifest beside it (a benchmark shard keeps one of its own) listed it as finished (found in session 59)
    (bad.dir / "manifest-shard1of2.json").write_text(json.dumps({"command": "encode", "finished": True}))
    assert run_state(bad.dir) is None and [x.state for x in list_runs(bad.dir)] == ["unreadable"]


@pytest.mark.parametrize("damage", ['[{"epoch": 1}, {"ep', '{"epoch": 1}'])
def test_a_damaged_history_is_named_not_counted_as_no_epochs(tmp_path, damage):
    run = _run(tmp_path, "gan", "g", {"gan": {"epochs": 2}},
               {"history-NORMAL.json": [{"epoch": 1, "seconds": 1}] * 2, "history-PNEUMONIA.json": []},
               finished=True)
    (run.dir / "history-PNEUMONIA.json").write_text(damage)
    s = run_state(run.dir)
    assert (s.state, s.progress) == ("finished", "history-PNEUMONIA.json unreadable")   # the manifest says finished


def test_runs_command_prints_a_table_and_how_to_resume_without_loading_torch(tmp_path):
    gan = _run(tmp_path, "gan", "halfway", {"gan": {"epochs": 5}}, {"history-conditional.json": [{"epoch": 1}]})
    out = run_cli_noting_torch(["runs", "--out", tmp_path])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["run", "state", "progress", "log", "written", "process", "at", "work"]
    assert lines[1].split()[:5] == [str(gan.dir), "stopped", "1", "of", "5"]
    assert f"  genaug gan --resume {gan.dir}" in lines and lines[-1] == "torch loaded: False"
    r = genaug("runs", "--out", tmp_path, "--json")
    assert [(s["command"], s["state"], s["archived"]) for s in json.loads(r.stdout)] == [("gan", "stopped", False)]
    # an archive (results without weights) says so
    from genaug.runs import archive_run
    archive_run(gan.dir, tmp_path / "arch")
    r = genaug("runs", "--out", tmp_path / "arch")
    assert r.stdout.splitlines()[1].split()[1:5] == ["stopped", "(archived)", "1", "of"]


def test_a_run_linked_in_beside_itself_is_listed_once(tmp_path):
    # a run put back under the name its benchmarks recorded, as a link to where it is (session 70): one run,
    # one stop to resume; a link to a run outside the root is still listed, under the link's name
    gan = _run(tmp_path / "out", "gan", "halfway", {"gan": {"epochs": 5}}, {"history-conditional.json": [{"epoch": 1}]})
    (tmp_path / "out" / "gan" / "20200101-000000-old-name").symlink_to(gan.dir)
    assert [(s.run, s.state) for s in list_runs(tmp_path / "out")] == [(str(gan.dir), "stopped")]
    elsewhere = _run(tmp_path / "elsewhere", "gan", "kept", {"gan": {"epochs": 5}}, finished=True)
    (tmp_path / "out" / "gan" / "20200101-000000-kept").symlink_to(elsewhere.dir)
    assert [s.run for s in list_runs(tmp_path / "out")] == [str(tmp_path / "out" / "gan" / "20200101-000000-kept"),
                                                             str(gan.dir)]


def test_cells_in_progress_and_shard_processes_go_below_their_run_so_the_table_keeps_its_width():
    a, b = "densenet121__mixed__f1__seed0", "densenet121__mixed__f1__seed1"
    states = [RunState("/r/benchmark/x", "benchmark", "at work",
                       f"0 of 3 cells; {a} 4 of 12 epochs, at most 10m51s left; {b} 3 of 12 epochs", 12.0,
                       "pid 1 on h since T, shard 1/2; pid 2 on h since T, shard 2/2", ""),
              RunState("/r/benchmark/old", "benchmark", "stopped", f"{a} stopped before its first epoch", None, "",
                       "genaug benchmark --resume /r/benchmark/old"),
              RunState("/r/gan/g", "gan", "finished", "NORMAL 2/2, PNEUMONIA 2/2 epochs", 5.0, "", ""),
              RunState("/r/benchmark/new", "benchmark", "at work", "", 1.0, "pid 3 on h since T", "")]
    lines = format_runs(states, "/r").splitlines()
    assert lines[1].split() == ["/r/benchmark/x", "at", "work", "0", "of", "3", "cells", "12s", "ago",
                                "pid", "1", "on", "h", "since", "T,", "shard", "1/2"]
    assert lines[2].strip() == "pid 2 on h since T, shard 2/2" and lines[2].index("pid") == lines[1].index("pid")
    assert lines[3:5] == [f"    {a} 4 of 12 epochs, at most 10m51s left", f"    {b} 3 of 12 epochs"]
    assert lines[5].split()[:3] == ["/r/benchmark/old", "stopped", "-"]   # a run before plans were recorded
    assert lines[6] == f"    {a} stopped before its first epoch"
    assert lines[7].split()[:5] == ["/r/gan/g", "finished", "NORMAL", "2/2,", "PNEUMONIA"]
    assert a not in lines[1] and "pid 2" not in lines[1]   # one run's row holds one of each
    assert lines[8].split()[:3] == ["/r/benchmark/new", "at", "work"] and lines[9] == ""   # nothing below it


def test_a_run_named_with_a_byte_that_is_not_utf8_or_wide_characters_keeps_the_columns_in_line():
    # found in session 74: the row was padded to the name's length with the byte as one character, and the console
    # then wrote the byte as \\xff (4 characters), pushing that row's later columns 3 characters right
    states = [RunState("/r/benchmark/xrays-\udcff", "benchmark", "finished", "2 cells", 5.0, "", ""),
              RunState("/r/benchmark/xrays-abcd", "benchmark", "finished", "2 cells", 5.0, "", "")]
    lines = format_runs(states, "/r").splitlines()
    assert lines[1].startswith("/r/benchmark/xrays-\\xff  ")
    assert lines[1].index("finished") == lines[2].index("finished") == lines[0].index("state")
    wide = format_runs([RunState("/r/benchmark/胸部", "benchmark", "finished", "2 cells", 5.0, "", ""),
                        RunState("/r/benchmark/abcd", "benchmark", "finished", "2 cells", 5.0, "", "")], "/r")
    first, second = wide.splitlines()[1:3]
    assert first.index("finished") + 2 == second.index("finished")   # 胸部 takes four columns in two characters


@pytest.mark.parametrize("args,needle", [
    (["--out", "/no/such/runs"], "run root not found: /no/such/runs"),
    (["--out", "{out}/runs.txt"], "--out {out}/runs.txt is a file, not a folder of runs"),
    (["--command", "encode"], "no encode runs under {out} (it holds runs of: benchmark, gan)"),   # not cache/
    (["--command", "bench"], "no bench runs under {out}; did you mean benchmark? (it holds runs of: benchmark, gan)"),
])
def test_runs_command_bad_input_is_one_line(tmp_path, args, needle):
    _run(tmp_path, "gan", "x", {})
    _run(tmp_path, "benchmark", "x", {})
    (tmp_path / "cache").mkdir()
    (tmp_path / "runs.txt").write_text("a file, not runs\n")
    needle = needle.format(out=tmp_path)
    args = [a.format(out=tmp_path) for a in args]
    r = genaug("runs", *(args if "--out" in args else ["--out", tmp_path, *args]))
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_an_epoch_line_tells_the_training_left_at_the_pace_of_the_last_three_epochs():
    from genaug.inventory import training_left
    history = [{"epoch": 1, "seconds": 90.0}, {"epoch": 2, "seconds": 10.0}, {"epoch": 3, "seconds": 20.0},
               {"epoch": 4, "seconds": 30.0}]    # the first epoch (warm-up) is out of the last three
    assert training_left(history, 9) == ", about 1m40s of training left"           # 5 epochs x 20 s
    assert training_left(history, 9, "NORMAL training") == ", about 1m40s of NORMAL training left"
    assert training_left(history, 4) == "" and training_left([], 4) == ""
    assert training_left([{"epoch": 1, "seconds": 0.2}], 3) == ", under a second of training left"


def test_a_gan_sample_run_counts_its_images(tmp_path):
    """Found in session 55: a gan sample run showed '-' at work and stopped; a million images take most of an hour."""
    from PIL import Image
    stopped = _run(tmp_path, "gan-sample", "stopped", {"n": 5})
    for c, n in (("NORMAL", 3), ("PNEUMONIA", 2)):
        (stopped.dir / "synthetic" / c).mkdir(parents=True)
        for i in range(n):
            Image.new("L", (4, 4)).save(stopped.dir / "synthetic" / c / f"synthetic_{c}_0_{i:05d}.png")
    done = _run(tmp_path, "gan-sample", "done", {"n": 5})
    done.save_manifest(finished=True, synthetic_images=10)
    states = {s.run: s for s in list_runs(tmp_path)}
    assert states[str(stopped.dir)].state == "stopped" and states[str(stopped.dir)].progress == "5 images written"
    assert states[str(stopped.dir)].resume == ""   # gan sample does not resume: it is drawn again
    assert states[str(done.dir)].state == "finished" and states[str(done.dir)].progress == "10 images"


def test_a_gan_sample_run_at_work_tells_of_how_many_and_the_time_left(tmp_path, monkeypatch):
    """Session 56: '5 images written' said nothing of how far a million-image `gan sample` had to go."""
    import genaug.inventory as inventory
    from PIL import Image
    run = _run(tmp_path, "gan-sample", "busy", {"n": 10}, hold=True)
    run.save_manifest(images_planned=20)
    (run.dir / "synthetic" / "NORMAL").mkdir(parents=True)
    for i in range(5):
        Image.new("L", (4, 4)).save(run.dir / "synthetic" / "NORMAL" / f"synthetic_NORMAL_0_{i:05d}.png")
    monkeypatch.setattr(inventory, "holders_since", lambda d: time.time() - 10)   # 5 images in 10 s
    (state,) = list_runs(tmp_path)
    assert state.state == "at work" and state.progress == "5 of 20 images written, about 30s left"
    run.close()   # stopped there: no time left to tell
    assert list_runs(tmp_path)[0].progress == "5 of 20 images written"
