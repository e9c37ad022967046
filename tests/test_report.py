import json
import os
import platform

import numpy as np
import pytest

from genaug.inventory import seconds_text
from genaug.report import INPUT_RUN_NOTE, ONE_RUN_NOTE, in_short, results_document, run_commands, verdict


def _manifest(path, **fields):
    path.write_text(json.dumps({"command": "benchmark", **fields}))


@pytest.mark.parametrize("command,report,told", [
    ("gan-sample", None, "is a genaug gan sample run, which writes no report; leave it out (genaug report gathers gan, "
                         "encode, benchmark, pool runs)"),
    ("explain", None, "is a genaug explain run, which writes no report"),
    ("benchmark", None, "has no finished report (report.md); finish the run (--resume) first"),
])
def test_a_run_without_a_report_is_told_why(tmp_path, command, report, told):
    # a gan sample run was told "unknown run kind 'gan-sample'; finish the run (--resume) first"
    from genaug.errors import CheckpointError
    _manifest(tmp_path / "manifest.json", command=command)
    with pytest.raises(CheckpointError) as err:
        results_document([tmp_path])
    assert str(err.value).startswith(f"{tmp_path} {told}")


def test_runs_without_a_report_are_left_out_and_named_when_another_has_one(tmp_path):
    # `genaug report outputs/benchmark/*` while one run trained was refused as a whole
    done, busy, sample, typo = (tmp_path / n for n in ("done", "busy", "sample", "typo"))
    for d, command in ((done, "benchmark"), (busy, "benchmark"), (sample, "gan-sample")):
        d.mkdir()
        _manifest(d / "manifest.json", command=command)
    (done / "report.md").write_text("# genaug benchmark: x\n\n## In short\n\n- it ran\n")
    left_out = []
    doc = results_document([busy, done, sample], left_out=left_out)
    assert "from 1 run;" in doc and "## `genaug benchmark`: done" in doc and "- it ran" in doc
    assert left_out == [f"{busy} has no finished report (report.md); finish the run (--resume) first",
                        f"{sample} is a genaug gan sample run, which writes no report; leave it out (genaug report "
                        "gathers gan, encode, benchmark, pool runs)"]
    assert "Left out: 2 runs without a report:\n\n" + f"- {left_out[0]}\n- {left_out[1]}\n" in doc
    # one still training is not told to --resume, which its lock would refuse (session 58)
    from genaug import locks
    held = locks.acquire(busy)
    try:
        left_out = []
        results_document([busy, done], left_out=left_out)
        assert left_out == [f"{busy} has no report yet: it is at work (pid {os.getpid()} on {platform.node()} since "
                            f"{json.loads((busy / locks.LOCK_NAME).read_text())['since']}); gather it once it finishes"]
    finally:
        locks.release(held)
    from genaug.errors import CheckpointError
    typo.mkdir()
    with pytest.raises(CheckpointError, match="is not a genaug run"):   # a mistyped path is still refused
        results_document([done, typo])


def _cell_stub(seed: int, **more) -> dict:
    """A finished cell with what every cell names (read_cell refuses one without), and ``more``."""
    return {"model": "cnn", "variant": "real", "train_fraction": 1.0, "seed": seed,
            "test_at_val_threshold": {"accuracy": 0.5}, **more}


def test_a_gathered_run_that_is_not_finished_says_so_above_its_report(tmp_path):
    # a run resumed with --seeds 6 listed that command above a report of its first 3 seeds, without a word
    from genaug.runs import new_run
    cells = [f"cnn__real__f1__seed{i}" for i in range(2)]
    runs = {}
    for name, planned in (("done", cells[:1]), ("extended", cells), ("busy", cells)):
        run = new_run(tmp_path / "out", "benchmark", name, {})
        run.save_manifest(planned_cells=planned)
        (run.dir / "cells").mkdir()
        (run.dir / "cells" / f"{cells[0]}.json").write_text(json.dumps(_cell_stub(0)))
        (run.dir / "report.md").write_text("# genaug benchmark: x\n\n## In short\n\n- it ran\n")
        if name != "busy":
            run.close()
        runs[name] = run
    doc = results_document([r.dir for r in runs.values()])
    notes = [line for line in doc.splitlines() if line.startswith("**")]
    assert len(notes) == 2   # none for the finished run
    assert notes[0] == ("**Stopped, 1 of 2 cells:** the run is not finished; the report below holds what was done "
                        "when it was written.")
    assert notes[1].startswith("**At work (pid ") and notes[1].endswith(", 1 of 2 cells:** the run is not finished; the "
                                                                        "report below holds what was done when it was written.")
    runs["busy"].close()


def test_commands_include_resumes_run_as_shards_in_time_order(tmp_path):
    made = ["genaug", "benchmark", "--profile", "cpu"]
    extend = ["genaug", "benchmark", "--resume", "R", "--seeds", "3"]
    shard1 = ["genaug", "benchmark", "--resume", "R", "--shard", "1/2"]
    shard2 = ["genaug", "benchmark", "--resume", "R", "--shard", "2/2"]
    last = ["genaug", "benchmark", "--resume", "R"]
    base = {"argv": made, "resumed": ["2026-11-23T10:00:00"], "resume_argv": [extend]}
    # each shard's manifest is the main one as it was when the shard opened the run, plus its own resume
    _manifest(tmp_path / "manifest-shard1of2.json", argv=made, resumed=base["resumed"] + ["2026-11-23T11:00:00"],
              resume_argv=[extend, shard1])
    _manifest(tmp_path / "manifest-shard2of2.json", argv=made, resumed=base["resumed"] + ["2026-11-23T11:00:05"],
              resume_argv=[extend, shard2])
    main = {**base, "resumed": base["resumed"] + ["2026-11-23T12:00:00"], "resume_argv": [extend, last]}
    _manifest(tmp_path / "manifest.json", **main)
    assert run_commands(tmp_path, {"command": "benchmark", **main}) == [made, extend, shard1, shard2, last]
    (tmp_path / "report.md").write_text("# genaug benchmark: x\n")
    doc = results_document([tmp_path])
    assert doc.index("--shard 1/2") < doc.index("--shard 2/2") < doc.index("genaug benchmark --resume R\n")
    assert "device ?." in doc   # a run from before genaug recorded its machine
    _manifest(tmp_path / "manifest.json", **main, device="cpu",
              machine={"cpu": "AMD EPYC (family 25, model 1)", "cpu_capability": "AVX2", "threads": 2})
    assert "device cpu, on AMD EPYC (family 25, model 1), AVX2, 2 threads." in results_document([tmp_path])
    # cells that recorded their machines are named instead of the last process (here a --report-only)
    (tmp_path / "cells").mkdir()
    for seed, threads in ((0, 1), (1, 1), (2, 2)):
        machine = {"cpu": "Intel(R) Xeon(R) Processor (family 6, model 207)", "cpu_capability": "AVX512",
                   "threads": threads}
        (tmp_path / "cells" / f"cnn__real__f1__seed{seed}.json").write_text(json.dumps(_cell_stub(seed, machine=machine)))
    assert ("device cpu, cells trained on Intel(R) Xeon(R) Processor (family 6, model 207), AVX512, 1 thread "
            "(2 cells); Intel(R) Xeon(R) Processor (family 6, model 207), AVX512, 2 threads (1 cell).") \
        in results_document([tmp_path])


def test_a_sharded_run_is_last_updated_and_on_the_device_its_shards_say(tmp_path):
    # the first shard made the run and wrote manifest.json once, at its start; each shard then kept its own
    _manifest(tmp_path / "manifest.json", argv=["genaug", "benchmark"], started="2026-12-04T05:32:33+0000",
              updated="2026-12-04T05:32:33+0000")
    _manifest(tmp_path / "manifest-shard1of2.json", updated="2026-12-04T05:53:37+0000", device="cpu")
    _manifest(tmp_path / "manifest-shard2of2.json", updated="2026-12-04T05:56:31+0000", device="cpu")
    (tmp_path / "manifest-shard3of3.json").write_text("{cut")   # damaged: its lines are lost, not the document
    (tmp_path / "report.md").write_text("# genaug benchmark: x\n")
    assert ("Started 2026-12-04T05:32:33+0000, last updated 2026-12-04T05:56:31+0000; genaug commit `?`, torch ?, "
            "device cpu.") in results_document([tmp_path])


@pytest.mark.parametrize("commit,shown", [
    ("835995a7f1ce8e6456e026ee1e3ea26b0895365e+dirty", "835995a7f1+dirty"),   # cut to 10, it had lost "+dirty"
    ("835995a7f1ce8e6456e026ee1e3ea26b0895365e", "835995a7f1"),
    ("unknown", "unknown"),
])
def test_the_commit_in_the_document_keeps_dirty(tmp_path, commit, shown):
    _manifest(tmp_path / "manifest.json", argv=["genaug", "benchmark"], git_commit=commit)
    (tmp_path / "report.md").write_text("# genaug benchmark: x\n")
    assert f"genaug commit `{shown}`," in results_document([tmp_path])


def _comparison(model, variant, diff, lo, hi, pairs, frac=1.0, p=None):
    p = p if p is not None else (0.01 if lo > 0 or hi < 0 else 0.5)
    return {"model": model, "variant": variant, "train_fraction": frac, "pairs": pairs,
            "accuracy_difference": {"diff": diff, "ci": [lo, hi], "p_value": p, "resamples": 1000}}


def _row(model, variant, acc, s_epoch, frac=1.0, replicates=3, within=None, auc=0.95):
    row = {"model": model, "variant": variant, "train_fraction": frac, "seeds": list(range(replicates)),
           "replicates": replicates, "accuracy_thr_mean": acc, "accuracy_thr_std": 0.01,
           "roc_auc_thr_mean": auc, "roc_auc_thr_std": 0.005, "seconds_per_epoch_mean": s_epoch}
    if within is not None:
        row["input_run_within_training"] = within
    return row


@pytest.mark.parametrize("lo, hi, p, word", [
    (0.004, 0.05, 0.01, "better"), (-0.05, -0.001, 0.03, "worse"),
    (-0.02, 0.03, 0.4, "no difference detected"), (0.0, 0.03, 0.06, "no difference detected"),
    # a percentile interval that just excludes 0 while p sits at 0.05 (session 17's DenseNet-121 row)
    (-0.061, -0.0003, 0.05, "borderline (p 0.05)"), (-0.01, 0.03, 0.04, "borderline (p 0.04)")])
def test_verdict_says_better_or_worse_only_where_interval_and_p_agree(lo, hi, p, word):
    text = verdict(_comparison("cnn", "mixed", 0.012, lo, hi, 3, p=p))
    assert text.startswith("+1.2 points of accuracy") and f"**{word}**" in text and "3 paired runs" in text


def test_in_short_names_the_best_real_model_each_verdict_and_the_latent_speed():
    table = [_row("cnn", "real", 0.862, 16.0), _row("densenet121", "real", 0.871, 60.0),
             _row("cnn", "encoded", 0.826, 4.0, within=True), _row("cnn", "mixed", 0.86, 20.0, within=True)]
    comps = [_comparison("cnn", "encoded", -0.036, -0.056, -0.016, 3),
             _comparison("cnn", "mixed", 0.002, -0.018, 0.024, 3)]
    lines = in_short(table, comps, 64)
    assert lines[0] == ("- Best on real data: densenet121, 87.1 ± 1.0% accuracy at the validation threshold, "
                        "ROC-AUC 0.950 ± 0.005 (3 runs).")
    assert "encoded (latent CNN) against real: -3.6" in lines[1] and "**worse**" in lines[1]
    assert "4.0 s/epoch against 16.0 for the pixel CNN at 64 px (4.0x)" in lines[1]
    assert "**no difference detected**" in lines[2] and "s/epoch" not in lines[2]
    assert "ROC-AUC 0.950 → 0.950" in lines[2] and "ranking" not in lines[2]
    assert len(lines) == 4 and not any("With one paired run" in line for line in lines)   # three runs a side
    assert lines[3].startswith("- These cells used one GAN and one autoencoder run.") and "retraining those runs" in lines[3]


def test_in_short_warns_first_where_the_classes_differ_in_their_files():
    """A score that may rest on the files (a class scanned at another size) is said before the score."""
    from genaug.data.traits import tells_note
    note = tells_note([{"trait": "size", "balanced_accuracy": 0.9, "chance": 0.5,
                        "by_class": {0: "1800 x 1500 px", 1: "1300 x 1000 px"}}], ["NORMAL", "PNEUMONIA"])
    table = [_row("cnn", "real", 0.862, 16.0)]
    first, best = in_short(table, [], 64, notes=["a note on duplicates", note])
    assert first.startswith("- The classes differ in their files") and best.startswith("- On real data: cnn")
    assert not in_short(table, [], 64, notes=["a note on duplicates"])[0].startswith("- The classes differ")


def test_in_short_gives_sub_second_epochs_two_significant_digits():
    # a tiny run's epochs take hundredths of a second: to one decimal both sides read 0.0
    table = [_row("cnn", "real", 0.862, 0.094), _row("cnn", "encoded", 0.826, 0.032, within=True)]
    lines = in_short(table, [_comparison("cnn", "encoded", -0.036, -0.056, -0.016, 3)], 32)
    assert "took 0.032 s/epoch against 0.094 for the pixel CNN at 32 px (2.9x)" in lines[1]


@pytest.mark.parametrize("seconds, text", [(16.04, "16.0"), (0.96, "1.0"), (0.94, "0.94"), (0.0344, "0.034"),
                                           (0.2, "0.20"), (0.0, "0.0")])
def test_seconds_text(seconds, text):
    assert seconds_text(seconds) == text


def test_in_short_says_when_accuracy_and_ranking_disagree():
    # session 17: ResNet-34 trained on synthetic images only beat real at the validation threshold
    # (+4.1, +0.4 to +8.0) with a lower ROC-AUC (0.965 -> 0.935)
    table = [_row("resnet34", "real", 0.816, 60.0, auc=0.965), _row("resnet34", "synthetic", 0.857, 28.0, auc=0.935),
             _row("resnet34", "mixed", 0.852, 80.0, auc=0.966)]
    comps = [_comparison("resnet34", "mixed", 0.036, 0.013, 0.068, 6),
             _comparison("resnet34", "synthetic", 0.041, 0.004, 0.080, 6)]
    best, mixed, synthetic, gan_note = in_short(table, comps, 64)
    assert gan_note == "- " + INPUT_RUN_NOTE.format(inputs="GAN", it="that run")
    assert "not retraining that run" in gan_note
    assert "ROC-AUC 0.965 → 0.966" in mixed and "ranking" not in mixed
    assert "**better**; ROC-AUC 0.965 → 0.935 (ranking points the other way" in synthetic
    assert "ranking" not in in_short(table, comps, 64, multi=True)[2]   # no threshold with several classes


def test_in_short_says_when_a_difference_is_gone_at_the_fixed_threshold():
    # the main table's ResNet-34: mixed +3.6 (+1.3 to +6.8) at the validation thresholds, +0.3 (-1.7 to
    # +2.3) at 0.5, ROC-AUC 0.965 -> 0.966 (docs/STATUS.md, issue #5, session 22)
    table = [_row("resnet34", "real", 0.816, 60.0, auc=0.965), _row("resnet34", "mixed", 0.852, 80.0, auc=0.966),
             _row("cnn", "real", 0.862, 16.0), _row("cnn", "mixed", 0.863, 20.0)]
    gone = _comparison("resnet34", "mixed", 0.036, 0.013, 0.068, 6)
    gone["accuracy_difference_at_0.5"] = {"diff": 0.003, "ci": [-0.017, 0.023], "p_value": 0.77, "resamples": 1000}
    same = _comparison("cnn", "mixed", 0.002, -0.018, 0.024, 6)
    same["accuracy_difference_at_0.5"] = {"diff": 0.0, "ci": [-0.015, 0.016], "p_value": 0.95, "resamples": 1000}
    _, resnet, cnn, _ = in_short(table, [gone, same], 64)
    assert resnet.endswith("**better**; ROC-AUC 0.965 → 0.966; at the fixed threshold 0.5 it is +0.3 (-1.7 to +2.3), "
                           "so the verdict rests on where the thresholds are put.")
    assert "threshold 0.5" not in cnn   # both intervals hold 0: nothing to add


def test_in_short_warns_of_one_run_and_of_inputs_that_saw_more_real_images():
    table = [_row("cnn", "real", 0.79, 2.0, frac=0.1, replicates=1),
             _row("cnn", "mixed", 0.82, 3.0, frac=0.1, replicates=1, within=False),
             _row("cnn", "real", 0.86, 16.0, replicates=1), _row("cnn", "mixed", 0.86, 20.0, replicates=1, within=True)]
    comps = [_comparison("cnn", "mixed", 0.03, 0.01, 0.05, 1, frac=0.1), _comparison("cnn", "mixed", 0.0, -0.02, 0.02, 1)]
    lines = in_short(table, comps, 64, notes=["interim report: 1 of 4 planned cells are not trained yet"])
    assert lines[0].startswith("- Interim report: 1 of 4")
    assert lines[1] == ("- On real data at train fraction 0.1: cnn, 79.0% accuracy at the validation threshold, "
                        "ROC-AUC 0.950 (one run).")
    fractional = next(line for line in lines if "against real at train fraction 0.1" in line)
    assert "**better**" in fractional and "its GAN learnt from real images that these cells do not train on" in fractional
    full = next(line for line in lines if "against real at train fraction 1:" in line)
    assert "upper bound" not in full
    assert lines[-2] == f"- {ONE_RUN_NOTE}"
    assert lines[-1].startswith("- These cells used one GAN run.")
    # encoded cells name the autoencoder; cells that need no input run get no such line
    enc = in_short(table, [_comparison("cnn", "encoded", -0.03, -0.05, -0.01, 6)] + comps, 64)
    assert enc[-1].startswith("- These cells used one GAN and one autoencoder run.")
    assert not any("These cells used" in line for line in in_short(table[:1], [], 64))


def test_results_document_gathers_each_benchmark_answer_at_the_top(tmp_path):
    runs = []
    for name, answer in (("run-a", "- cnn, mixed (real + synthetic) against real: +0.2 points"), ("run-b", None)):
        d = tmp_path / name
        d.mkdir()
        _manifest(d / "manifest.json", argv=["genaug", "benchmark"])
        short = f"## In short\n\n{answer}\n\nAccuracy is each run's.\n\n" if answer else ""
        (d / "report.md").write_text(f"# genaug benchmark: x\n\nTest: ...\n\n{short}## Results\n\n- not an answer\n")
        runs.append(d)
    doc = results_document(runs)
    top = doc.split("## `genaug benchmark`: run-a")[0]
    assert "## In short, run by run" in top and "### run-a\n\n- cnn, mixed (real + synthetic) against real: +0.2" in top
    assert "run-b" not in top and "not an answer" not in top and "Accuracy is each run's" not in top
    assert doc.count("- cnn, mixed (real + synthetic) against real: +0.2 points") == 2   # and in the run's own section


def test_results_document_puts_pooled_answers_first_newest_first(tmp_path):
    # RESULTS.md opened with one GAN's "resnet34 mixed: better" and gave the pools that retrain the GAN,
    # and say otherwise, after 42 other runs' answers (line 232), in the order the runs were named
    runs = []
    for name, command, started, answer in (
            ("bench", "benchmark", "2026-11-23T21:41:07+0000", "- resnet34, mixed against real: +3.6 one GAN"),
            ("pool-3", "pool", "2026-12-01T06:38:19+0000", "- resnet34, mixed against real: +0.4 3 GANs"),
            ("pool-5", "pool", "2026-12-05T11:13:29+0000", "- resnet34, mixed against real: -0.2 5 GANs")):
        d = tmp_path / name
        d.mkdir()
        _manifest(d / "manifest.json", command=command, started=started)
        report = "report.md" if command == "benchmark" else "pool.md"
        (d / report).write_text(f"# genaug {command}: x\n\n## In short\n\n{answer}\n\n## Results\n")
        runs.append(d)
    (tmp_path / "pool-3" / "pool.json").write_text(json.dumps({"variant": "mixed", "input": "GAN", "runs": [
        "/elsewhere/benchmark/bench", "/elsewhere/benchmark/other"]}))
    top = results_document(runs).split("## `genaug benchmark`: bench")[0]
    assert top.index("### pool-5") < top.index("### pool-3") < top.index("### bench")
    assert "Pool runs come first, newest first" in top and "counts retraining that run" in top
    # the one-GAN verdict points to the pool that holds its cells (found by the run's name, wherever it was)
    assert ("- resnet34, mixed against real: +3.6 one GAN\n- Its mixed cells are pooled, with those trained on other "
            "GAN runs, in pool-3 (above): its interval counts retraining the GAN; read that answer "
            "before this one.") in top
    # without a pool there is nothing to explain
    assert "Pool runs come first" not in results_document(runs[:1])
    # a pool.json that no longer holds its list of runs loses the pointer, not the document (was a TypeError)
    for broken in ('{"variant": "mixed", "runs": null}', '[1, 2]', '{"runs": "bench"}', 'not json'):
        (tmp_path / "pool-3" / "pool.json").write_text(broken)
        doc = results_document(runs)
        assert "### pool-3" in doc and "Its mixed cells are pooled" not in doc


def test_a_pool_whose_runs_gained_seeds_says_so_and_names_the_newer_pool(tmp_path):
    # session 62: seed 2 was added to the runs of a 2-seed pool, whose page (rightly) keeps its numbers;
    # RESULTS.md gave that answer with no word that its runs now hold a third seed that pairs
    def bench(name, cells):
        d = tmp_path / name
        (d / "cells").mkdir(parents=True)
        _manifest(d / "manifest.json", command="benchmark")
        (d / "report.md").write_text("# genaug benchmark: x\n\n## In short\n\n- an answer\n")
        for variant, seed in cells:
            (d / "cells" / f"densenet121__{variant}__f1__seed{seed}.json").write_text(json.dumps(
                {"model": "densenet121", "variant": variant, "train_fraction": 1.0, "seed": seed,
                 "test_at_val_threshold": {}}))
        return d

    def pool(name, started, seeds):
        d = tmp_path / name
        d.mkdir()
        _manifest(d / "manifest.json", command="pool", started=started)
        (d / "pool.md").write_text(f"# genaug pool: x\n\n## In short\n\n- {name}: -3.8\n")
        (d / "pool.json").write_text(json.dumps({"variant": "mixed", "input": "GAN", "runs": [
            "docs/runs/benchmark/gan8", "docs/runs/benchmark/gan9"], "real_only_runs": [],
            "real_cells_run": "docs/runs/benchmark/real", "rows": [
                {"model": "densenet121", "train_fraction": 1.0, "seeds": seeds}]}))
        return d

    runs = [bench("real", [("real", 0), ("real", 1), ("real", 2)]), bench("gan8", [("mixed", s) for s in (0, 1, 2)]),
            bench("gan9", [("mixed", 0), ("mixed", 1)]), pool("pool-old", "2026-12-05T13:25:51+0000", [0, 1])]
    told = "Its runs now hold cells that pair with real ones"
    assert told not in results_document(runs)   # seed 2 is not in every GAN's run yet: it would not pool
    (tmp_path / "gan9" / "cells" / "densenet121__mixed__f1__seed2.json").write_text(
        (tmp_path / "gan8" / "cells" / "densenet121__mixed__f1__seed2.json").read_text())
    assert (f"- pool-old: -3.8\n- {told} and that it did not pool (densenet121: seed 2): this answer is without "
            "them. Pool the runs again (genaug pool) for an answer with them.") in results_document(runs)
    newer = results_document(runs + [pool("pool-new", "2026-12-05T16:00:00+0000", [0, 1, 2])])
    assert "densenet121: seed 2): this answer is without them. pool-new (above) pools the same runs with them." in newer
    assert newer.count(told) == 1 and newer.index("### pool-new") < newer.index("### pool-old")
    # where a run it pooled is not gathered, what pairs now is not known: the pool is gathered without the line
    assert "- pool-old: -3.8" in (doc := results_document([r for r in runs if r.name != "real"])) and told not in doc


def test_in_short_leaves_small_auc_moves_and_full_data_unlabelled():
    # ROC-AUC 0.910 -> 0.906 against a better accuracy: within AUC_MARGIN, so no ranking remark;
    # a run made at train fraction 0.1 alone still says so
    table = [_row("cnn", "real", 0.79, 2.0, frac=0.1, auc=0.910), _row("cnn", "mixed", 0.825, 3.0, frac=0.1, auc=0.906)]
    lines = in_short(table, [_comparison("cnn", "mixed", 0.035, 0.005, 0.071, 3, frac=0.1)], 64)
    assert lines[0].startswith("- On real data at train fraction 0.1:")
    assert "against real at train fraction 0.1:" in lines[1] and "ranking" not in lines[1]


@pytest.mark.parametrize("classes,labels,kermany", [
    (["NORMAL", "PNEUMONIA"], [0] * 234 + [1] * 390, True),
    (["normal", "pneumonia"], [1] * 390 + [0] * 234, True),            # PneumoniaMNIST: the same test images
    (["NORMAL", "BACTERIA", "VIRUS"], [0] * 234 + [1] * 242 + [2] * 148, True),
    (["NORMAL", "PNEUMONIA"], [0] * 2 + [1] * 2, False),                # a small folder: no published figures
    (["NORMAL", "PNEUMONIA"], [0] * 233 + [1] * 391, False),
])
def test_published_figures_are_set_beside_the_kermany_test_split_only(classes, labels, kermany):
    from types import SimpleNamespace

    from genaug.report import is_kermany_test_split

    bundle = SimpleNamespace(classes=classes, test=SimpleNamespace(labels=np.array(labels)))
    assert is_kermany_test_split(bundle) == kermany


def test_training_curves_show_a_cell_that_ran_one_epoch(tmp_path):
    # a bare line through one point draws nothing: such a cell was missing from the plot, legend aside
    from PIL import Image
    from genaug.report import plot_curves
    cell = {"model": "cnn", "variant": "real", "train_fraction": 1.0, "seed": 0, "best_epoch": 1,
            "history": [{"epoch": 1, "train_loss": 0.8, "val_loss": 0.69}]}
    plot_curves([cell], 1.0, tmp_path / "curves.png")
    img = np.asarray(Image.open(tmp_path / "curves.png").convert("RGB")).astype(int)
    left = img[:, : img.shape[1] // 2]   # the training-loss panel, which has no legend
    blue = (np.abs(left - [0x1f, 0x77, 0xb4]).sum(-1) < 60).sum()   # matplotlib's first colour
    assert blue >= 5, blue


def test_each_variant_has_one_colour_in_every_panel_and_plot(tmp_path, monkeypatch):
    # found in session 85: the CNN's panel (encoded, mixed, real) drew mixed in the colour the other models'
    # panels (mixed, real) gave real, in the ROC and threshold plots
    import matplotlib.figure
    from matplotlib.colors import to_hex
    from genaug.report import plot_curves, plot_roc, plot_threshold_sweep
    rng = np.random.default_rng(0)
    labels = [0] * 10 + [1] * 10

    def cell(model, variant):
        p1 = np.clip(np.array(labels) * 0.5 + rng.random(20) * 0.5, 0, 1)
        return {"model": model, "variant": variant, "train_fraction": 1.0, "seed": 0, "threshold": 0.5,
                "test_labels": labels, "test_probs": np.stack([1 - p1, p1], 1).tolist(), "best_epoch": 1,
                "history": [{"epoch": 1, "train_loss": 0.7, "val_loss": 0.6}, {"epoch": 2, "train_loss": 0.5,
                                                                               "val_loss": 0.5}]}
    cells = [cell("cnn", v) for v in ("encoded", "mixed", "real")] + [cell("resnet34", v) for v in ("mixed", "real")]
    drawn = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: drawn.append(fig))
    for plot in (plot_roc, plot_threshold_sweep, plot_curves):
        plot(cells, 1.0, tmp_path / "x.png")
    colours = {}
    for fig in drawn:
        for ax in fig.axes:
            for line in ax.get_lines():
                name = line.get_label().split(" ")[0].split("/")[-1]
                if name in ("encoded", "mixed", "real"):
                    colours.setdefault(name, set()).add(to_hex(line.get_color()))
    assert {v: len(c) for v, c in colours.items()} == {"encoded": 1, "mixed": 1, "real": 1}
    assert len(set().union(*colours.values())) == 3


def test_the_setup_line_says_mixed_cells_got_fewer_synthetic_images_than_asked():
    """Session 56: reports said "0.5 x real count per class" of mixed cells that took PNEUMONIA 1280 of 1744."""
    from genaug.config import Config
    from genaug.report import _mixed_share
    b = Config().benchmark
    b.synthetic_ratio = 0.5
    assert _mixed_share(b, False) == "0.5 x real count per class"
    assert _mixed_share(b, True) == "0.5 x real count per class asked; fewer where the GAN run had too few, see the notes"
    b.balance = True
    assert _mixed_share(b, False) == "filled to balance classes"
    assert _mixed_share(b, True) == "filled toward balanced classes; the GAN run had too few to fill them, see the notes"


def test_a_benchmark_report_says_when_its_gan_or_autoencoder_trained_in_bf16(tmp_path):
    """Session 76: the cells record their own precision, not that of the GAN or autoencoder behind them."""
    from genaug.report import _trained_in
    for name, text in (("bf16", '{"training_precision": "bf16 autocast"}'), ("fp32", '{"training_precision": "fp32"}'),
                       ("old", '{"classes": {}}'), ("list", "[]"), ("broken", "{")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(text)
    assert _trained_in(tmp_path / "bf16") == ", trained in bf16 autocast on the CPU (--cpu-amp)"
    assert {_trained_in(tmp_path / n) for n in ("fp32", "old", "list", "broken", "absent")} == {""}


def test_a_benchmark_report_says_when_its_gan_or_autoencoder_trained_channels_last(tmp_path):
    """Session 78: --channels-last changes the numbers a GAN trains to (docs/PERFORMANCE.md (t))."""
    from genaug.report import _trained_in
    for name, metrics in (("cl", {"training_precision": "fp32", "training_layout": "channels-last"}),
                          ("bf16", {"training_precision": "bf16 autocast", "training_layout": "channels-last"}),
                          ("both", {"training_precision": "bf16 autocast for 1 of 2 epochs, fp32 for the rest",
                                    "training_layout": "channels-last"}),
                          ("fp32", {"training_precision": "fp32", "training_layout": "contiguous"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(metrics))
    assert _trained_in(tmp_path / "cl") == ", trained in fp32 in the channels-last memory layout (--channels-last)"
    assert _trained_in(tmp_path / "bf16") == ", trained in bf16 autocast on the CPU (--cpu-amp)"
    assert _trained_in(tmp_path / "both") == (", trained in bf16 autocast for 1 of 2 epochs, fp32 for the rest on "
                                              "the CPU (--cpu-amp), its fp32 epochs channels-last (--channels-last)")
    assert _trained_in(tmp_path / "fp32") == ""


@pytest.mark.parametrize("test, train, said", [
    ({"NORMAL": 234, "PNEUMONIA": 390}, {"NORMAL": 1206, "PNEUMONIA": 3487},
     "NORMAL 234, PNEUMONIA 390: NORMAL 37.5% of them against 25.7% of training's, so its accuracy weighs "
     "specificity more than validation's does"),
    ({"NORMAL": 10, "PNEUMONIA": 90}, {"NORMAL": 30, "PNEUMONIA": 70},
     "NORMAL 10, PNEUMONIA 90: NORMAL 10.0% of them against 30.0% of training's, so its accuracy weighs "
     "sensitivity more than validation's does"),
    ({"NORMAL": 27, "PNEUMONIA": 73}, {"NORMAL": 30, "PNEUMONIA": 70}, "NORMAL 27, PNEUMONIA 73"),   # within 5 points
    ({"a": 1, "b": 2, "c": 3}, {"a": 5, "b": 1, "c": 1}, "a 1, b 2, c 3"),
])
def test_the_report_gives_the_test_splits_class_mix_beside_trainings(test, train, said):
    # session 83: accuracy counts each class by its share, and the Kermany test split holds half as many NORMAL
    # images again as training does, which the report's first line did not say
    from genaug.report import _class_mix
    assert _class_mix({"test": {"per_class": test}, "train": {"per_class": train}}, list(test)) == said
