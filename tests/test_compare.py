import json
import re

import numpy as np
import pytest
import yaml

from genaug.compare import compare_runs, format_comparison, format_pool, input_run_quality, pool_runs
from genaug.errors import CheckpointError, ConfigError
from genaug.report import results_document, short_commit

from test_benchmark import _cell
from test_cli import genaug

DATA = {"data": "demo", "task": "binary", "split_seed": 0, "val_fraction": 0.1}


def _run(path, cells, epochs=12, data=DATA, seeds=2, **settings):
    (path / "cells").mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"data": data, "benchmark": {"epochs": epochs, "seeds": seeds,
                                                                                  **settings}}))
    (path / "manifest.json").write_text(json.dumps({"command": "benchmark"}))
    for c in cells:
        (path / "cells" / f"{c['model']}__{c['variant']}__f1__seed{c['seed']}.json").write_text(json.dumps(c))
    return path


def test_compare_pairs_cells_by_seed_and_reports_what_differs(tmp_path):
    worse = np.ones(40, bool)
    worse[:10] = False                                   # A: 30/40 right
    a = _run(tmp_path / "a", [_cell("cnn", "real", s, worse) for s in (0, 1)])
    # B: 40/40 on the same images; its seed 2 has no partner in A and is left out
    b = _run(tmp_path / "b", [_cell("cnn", "real", s, np.ones(40, bool)) for s in (0, 1, 2)], epochs=24, seeds=3)
    res = compare_runs(a, b, n_boot=200)
    (row,) = res["rows"]
    assert row["pairs"] == 2 and row["seeds"] == [0, 1]
    assert row["accuracy_a"] == pytest.approx(0.75) and row["accuracy_b"] == pytest.approx(1.0)
    assert row["accuracy_difference"]["diff"] == pytest.approx(0.25)
    assert [m["only_b_correct"] for m in row["mcnemar_per_seed"]] == [10, 10]
    assert row["accuracy_difference"]["runs_resampled"] and row["accuracy_difference"]["ci"][0] > 0
    assert ("epochs", 12, 24) in res["settings_differ"]
    text = format_comparison(res)
    assert "- `epochs`: 12 → 24" in text and "What each run holds, not how its cells train: `seeds` 2 → 3" in text and "| cnn | real | 1 | 2 | 75.0 | 100.0 | +25.0 |" in text
    assert "- cnn, real, train fraction 1: +25.0 points of accuracy (95% CI +" in text and "**better**" in text
    assert "With one paired run" not in text
    assert "Identical test probabilities in 0 of 2 paired cells." in text
    # calibration error on test: A puts 0.9 on 30 images of which 20 are positive and 0.1 on 10 negatives
    # (0.2); B is right everywhere at 0.9 / 0.1 (0.1)
    assert "| calibration error (test) A → B |" in text and "| 0.200 → 0.100 |" in text
    assert "Where the paired cells ran: A on not recorded (2 cells); B on not recorded (2 cells)." in text


def test_compare_warns_where_the_data_told_its_classes_apart_by_their_files(tmp_path):
    """Session 82: on a Kermany copy whose NORMAL films were made 260 x 224, `--resize crop` beat squash by +7.3
    points, a shortcut the crop put into the pixels. Compare, like the runs' reports, says so first."""
    from genaug.data.traits import tells_note
    cells = [_cell("cnn", "real", s, np.ones(40, bool)) for s in (0, 1)]
    a, b = _run(tmp_path / "a", cells), _run(tmp_path / "b", cells)
    assert "classes differ in their files" not in format_comparison(compare_runs(a, b, n_boot=50))
    note = tells_note([{"trait": "aspect", "balanced_accuracy": 1.0, "chance": 0.5,
                        "by_class": {0: "1.16", 1: "1.00"}}], ["NORMAL", "PNEUMONIA"])
    (b / "manifest.json").write_text(json.dumps({"command": "benchmark", "data": {"notes": ["other", note]}}))
    text = format_comparison(compare_runs(a, b, n_boot=50))
    assert "In short, B against A:\n\n- The classes differ in their files in this data" in text


def test_runs_on_other_data_are_refused_with_the_values_that_differ(tmp_path):
    # the refusal named only the key ("task differ"): which run had which task was left to the reader
    cells = [_cell("cnn", "real", s, np.ones(40, bool)) for s in (0, 1)]
    a = _run(tmp_path / "a", cells)
    b = _run(tmp_path / "b", cells, data={**DATA, "task": "3class", "split_seed": 1})
    with pytest.raises(ConfigError, match=r"^a and b split different data \(data.task 'binary' against '3class'; "
                                          r"data.split_seed 0 against 1\), so their test images are not the same"):
        compare_runs(a, b, n_boot=50)


def test_a_setting_added_after_a_run_was_made_reads_as_its_default_not_as_a_difference(tmp_path):
    # run A's config was written before benchmark.model_epochs existed; B's carries it, at its default
    cells = [_cell("cnn", "real", s, np.ones(40, bool)) for s in (0, 1)]
    a = _run(tmp_path / "a", cells)
    b = _run(tmp_path / "b", cells, model_epochs="")
    assert compare_runs(a, b, n_boot=50)["settings_differ"] == []
    c = _run(tmp_path / "c", cells, model_epochs="cnn=20")
    assert compare_runs(a, c, n_boot=50)["settings_differ"] == [("model_epochs[cnn]", 12, 20)]   # A's epochs: 12


def test_another_models_own_epochs_leave_the_paired_cells_alone_in_compare_and_pool(tmp_path):
    cells = [_cell("cnn", "real", s, np.ones(40, bool)) for s in (0, 1)]
    a = _run(tmp_path / "a", cells)
    b = _run(tmp_path / "b", cells, model_epochs="resnet34=24")
    res = compare_runs(a, b, n_boot=50)
    assert res["settings_differ"] == [] and res["settings_differ_unpaired_variants"] == [("model_epochs[resnet34]", 12, 24)]
    assert "for variants or models not paired here" in format_comparison(res)
    # pooling CNN mixed cells over two GAN runs: ResNet-34's epochs may differ, the CNN's may not
    mixed = lambda: [_cell(m, v, 0, np.ones(40, bool)) for m, v in (("cnn", "real"), ("cnn", "mixed"))]
    g1 = _run(tmp_path / "g1", mixed(), gan_run="/g1")
    g2 = _run(tmp_path / "g2", mixed(), gan_run="/g2", model_epochs="resnet34=24")
    assert pool_runs([g1, g2], "mixed", n_boot=50)["rows"][0]["model"] == "cnn"
    g3 = _run(tmp_path / "g3", mixed(), gan_run="/g3", model_epochs="cnn=24")
    with pytest.raises(ConfigError, match=r"they differ in model_epochs\[cnn\]"):
        pool_runs([g1, g3], "mixed")


def test_compare_says_whether_b_reproduces_a_and_where_each_ran(tmp_path):
    ok = np.ones(40, bool)
    zen4 = {"cpu": "AMD EPYC (family 25, model 17)", "cpu_capability": "AVX512", "cpu_count": 2, "threads": 1}
    zen3 = {**zen4, "cpu": "AMD EPYC (family 25, model 1)", "cpu_capability": "AVX2"}
    a = _run(tmp_path / "a", [{**_cell("cnn", "real", s, ok), "machine": zen4} for s in (0, 1)])
    b = _run(tmp_path / "b", [{**_cell("cnn", "real", s, ok), "machine": zen4} for s in (0, 1)])
    text = format_comparison(compare_runs(a, b, n_boot=50))
    assert "Identical test probabilities in 2 of 2 paired cells: B reproduces A's test probabilities exactly." in text
    assert "A on AMD EPYC (family 25, model 17), AVX512, 1 thread (2 cells)" in text
    # the same settings on another instruction set: other probabilities, and the reason is given
    moved = [{**_cell("cnn", "real", s, ok), "machine": zen3} for s in (0, 1)]
    for c in moved:
        c["test_probs"] = [[p0 - 0.01, p1 + 0.01] for p0, p1 in c["test_probs"]]
    c = _run(tmp_path / "c", moved)
    res = compare_runs(a, c, n_boot=50)
    assert res["rows"][0]["identical_pairs"] == 0
    text = format_comparison(res)
    assert "Identical test probabilities in 0 of 2 paired cells, although the settings agree" in text
    assert "B on AMD EPYC (family 25, model 1), AVX2, 1 thread (2 cells)" in text
    assert "other genaug code" not in text   # cells that recorded none, on both sides


def test_compare_names_bf16_cells_on_a_cpu_as_a_difference_of_how_they_trained(tmp_path):
    # --cpu-amp is a run setting a resume may change, so the cells say what they computed in (session 69: B's
    # bf16 cells were "the same settings", their other probabilities put down to kernels)
    ok = np.ones(40, bool)
    xeon = {"cpu": "Intel(R) Xeon(R) Processor (family 6, model 207)", "cpu_capability": "AVX512", "cpu_count": 2,
            "threads": 1}
    a = _run(tmp_path / "a", [{**_cell("cnn", "real", s, ok), "machine": xeon} for s in (0, 1)])
    bf16 = [{**_cell("cnn", "real", s, ok), "machine": {**xeon, "autocast": "bf16"}} for s in (0, 1)]
    for c in bf16:
        c["test_probs"] = [[p0 - 0.01, p1 + 0.01] for p0, p1 in c["test_probs"]]
    text = format_comparison(compare_runs(a, _run(tmp_path / "b", bf16), n_boot=50))
    assert "- `precision`: 'fp32' → 'bf16'" in text and "although the settings agree" not in text
    assert "B on Intel(R) Xeon(R) Processor (family 6, model 207), AVX512, 1 thread, bf16 autocast (2 cells)" in text
    # one of B's cells in fp32 (resumed with --no-cpu-amp): both are named
    bf16[1]["machine"] = xeon
    text = format_comparison(compare_runs(a, _run(tmp_path / "c", bf16), n_boot=50))
    assert "- `precision`: 'fp32' → 'bf16/fp32'" in text
    same = _run(tmp_path / "d", [{**_cell("cnn", "real", s, ok), "machine": xeon} for s in (0, 1)])
    assert "precision" not in format_comparison(compare_runs(a, same, n_boot=50))   # fp32 on both sides
    # a GPU cell computed in bf16 or fp32 by run.amp, which cells before session 69 did not record; since, they do
    h200 = {**xeon, "gpu": "NVIDIA H200"}
    old_gpu = _run(tmp_path / "e", [{**_cell("cnn", "real", s, ok), "machine": h200} for s in (0, 1)])
    new_gpu = _run(tmp_path / "f", [{**_cell("cnn", "real", s, ok), "machine": h200, "precision": "bf16"}
                                    for s in (0, 1)])
    assert "- `precision`: 'fp32' → 'not recorded (GPU)'" in format_comparison(compare_runs(a, old_gpu, n_boot=50))
    assert "- `precision`: 'not recorded (GPU)' → 'bf16'" in format_comparison(compare_runs(old_gpu, new_gpu,
                                                                                           n_boot=50))


def test_compare_tells_bf16_a_cpu_emulated_from_bf16_in_hardware(tmp_path):
    # session 77: a Xeon without AMX or AVX512-BF16 gave an AMX Xeon's fp32 cell bit for bit but other bf16
    # numbers from the first epoch, so two bf16 sides are not alike when one CPU emulated it
    ok = np.ones(40, bool)
    amx = {"cpu": "Intel(R) Xeon(R) Processor (family 6, model 207)", "cpu_capability": "AVX512", "cpu_count": 2,
           "threads": 1, "autocast": "bf16", "bf16_in_hardware": True}
    icelake = {**amx, "cpu": "Intel(R) Xeon(R) Processor @ 2.80GHz (family 6, model 106)", "bf16_in_hardware": False}
    a = _run(tmp_path / "a", [{**_cell("cnn", "real", s, ok), "machine": amx} for s in (0, 1)])
    b = _run(tmp_path / "b", [{**_cell("cnn", "real", s, ok), "machine": icelake} for s in (0, 1)])
    text = format_comparison(compare_runs(a, b, n_boot=50))
    assert "A on Intel(R) Xeon(R) Processor (family 6, model 207), AVX512, 1 thread, bf16 autocast (2 cells)" in text
    assert ("B on Intel(R) Xeon(R) Processor @ 2.80GHz (family 6, model 106), AVX512, 1 thread, bf16 autocast "
            "(emulated: no AMX or AVX512-BF16) (2 cells)") in text


def test_compare_says_when_the_paired_cells_were_trained_by_other_code(tmp_path):
    ok = np.ones(40, bool)
    old = "835995a7f1ce8e6456e026ee1e3ea26b0895365e+dirty"
    a = _run(tmp_path / "a", [{**_cell("cnn", "real", s, ok), "genaug_commit": old} for s in (0, 1)])
    b = _run(tmp_path / "b", [{**_cell("cnn", "real", s, ok), "genaug_commit": "76d087dafd" + "0" * 30} for s in (0, 1)])
    text = format_comparison(compare_runs(a, b, n_boot=50))
    assert "- nothing: the same settings" in text
    assert ("The paired cells were trained by other genaug code: A by 835995a7f1+dirty; B by 76d087dafd. A change "
            "of code may move the results as a change of settings does.") in text
    assert "other genaug code" not in format_comparison(compare_runs(a, _run(tmp_path / "c", [
        {**_cell("cnn", "real", s, ok), "genaug_commit": old} for s in (0, 1)]), n_boot=50))


def test_compare_sets_b_minus_a_at_half_beside_the_validation_thresholds_and_says_where_they_part(tmp_path):
    # A ranks every image right but validation put its threshold at 0.2, below the normals' 0.3: it
    # calls every normal pneumonia (20 of 40 right); at 0.5 it is all right, as B is at both
    y = [0] * 20 + [1] * 20
    a = _run(tmp_path / "a", [{**_cell("cnn", "real", s, np.ones(40, bool)), "threshold": 0.2,
                               "test_probs": [[0.7, 0.3] if lab == 0 else [0.1, 0.9] for lab in y]} for s in (0, 1)])
    b = _run(tmp_path / "b", [_cell("cnn", "real", s, np.ones(40, bool)) for s in (0, 1)])
    res = compare_runs(a, b, n_boot=200)
    (row,) = res["rows"]
    assert row["accuracy_difference"]["diff"] == pytest.approx(0.5)
    assert row["accuracy_difference_at_0.5"]["diff"] == 0.0
    text = format_comparison(res)
    assert "at threshold 0.5: B − A (95% CI)" in text
    # (the accuracy and ROC-AUC columns are the cells' recorded figures, which this fixture leaves alone)
    assert "| +50.0 | +35.0 to +65.0 |" in text and "| +0.0 (+0.0 to +0.0) | 0.500 → 0.500 |" in text
    assert ("**better**; at the fixed threshold 0.5 it is +0.0 (+0.0 to +0.0), so the verdict rests on where the "
            "thresholds are put.") in text
    # where both thresholds agree, the clause is left out (the column stays)
    same = format_comparison(compare_runs(b, _run(tmp_path / "c", [_cell("cnn", "real", s, np.ones(40, bool))
                                                                   for s in (0, 1)]), n_boot=50))
    assert "at the fixed threshold 0.5 it is" not in same and "| +0.0 (+0.0 to +0.0) |" in same


def test_settings_of_variants_not_paired_are_set_apart_from_those_that_explain_b_minus_a(tmp_path):
    ok = np.ones(40, bool)
    a = _run(tmp_path / "a", [_cell("cnn", "real", s, ok) for s in (0, 1)], latent_epochs=0, gan_run="/g1")
    moved = [_cell("cnn", "real", s, ok) for s in (0, 1)]
    for c in moved:
        c["test_probs"] = [[p0 - 0.01, p1 + 0.01] for p0, p1 in c["test_probs"]]
    # B trained its encoded and mixed cells otherwise, but only real cells are paired
    b = _run(tmp_path / "b", moved, latent_epochs=24, gan_run="/g2")
    res = compare_runs(a, b, n_boot=50)
    assert res["settings_differ"] == []
    assert res["settings_differ_unpaired_variants"] == [("gan_run", "/g1", "/g2"), ("latent_epochs", 0, 24)]
    text = format_comparison(res)
    assert "- nothing: the same settings" in text
    assert ("Settings that differ for variants or models not paired here, so they leave these cells alone: "
            "`gan_run` '/g1' → '/g2'; `latent_epochs` 0 → 24") in text
    assert "Identical test probabilities in 0 of 2 paired cells, although the settings agree" in text
    # once a mixed cell is paired, the GAN run is a setting that can explain B − A
    a2 = _run(tmp_path / "a2", [_cell("cnn", "mixed", 0, ok)], gan_run="/g1")
    b2 = _run(tmp_path / "b2", [_cell("cnn", "mixed", 0, ok)], gan_run="/g2")
    res = compare_runs(a2, b2, n_boot=50)
    assert res["settings_differ"] == [("gan_run", "/g1", "/g2")] and res["settings_differ_unpaired_variants"] == []


def test_compare_refuses_runs_on_other_data_or_without_shared_cells(tmp_path):
    ok = np.ones(40, bool)
    a = _run(tmp_path / "a", [_cell("cnn", "real", 0, ok)])
    b = _run(tmp_path / "b", [_cell("cnn", "real", 0, ok)], data={**DATA, "split_seed": 1})
    with pytest.raises(ConfigError, match="split_seed"):
        compare_runs(a, b)
    c = _run(tmp_path / "c", [_cell("resnet34", "real", 0, ok)])
    with pytest.raises(ConfigError, match="share no cell: a holds model cnn, c resnet34. compare pairs the same cells"):
        compare_runs(a, c)
    d = _run(tmp_path / "d", [_cell("cnn", "real", 3, ok)])   # the same cell at another seed
    with pytest.raises(ConfigError, match=r"share no cell \(same model, variant, train fraction and seed\); add seeds"):
        compare_runs(a, d)
    with pytest.raises(ConfigError, match="are one run; compare two benchmark runs"):
        compare_runs(a, a.parent / ".." / a.parent.name / a.name)   # one run, spelt two ways
    # found in session 55: a --folds 3 run and one without were told to add seeds
    e = _run(tmp_path / "e", [])
    for fold in range(3):
        cell = {**_cell("cnn", "real", 0, ok), "fold": fold}
        (e / "cells" / f"cnn__real__f1__seed0__fold{fold}.json").write_text(json.dumps(cell))
    with pytest.raises(ConfigError, match="share no cell: a trains with one validation split, e with --folds 3, so "
                                          "their cells are trained and validated otherwise; compare runs made with "
                                          "the same --folds"):
        compare_runs(a, e)
    # a run without a finished cell: one still training is not told to resume, which its lock refuses (session 58)
    from genaug import locks
    f = _run(tmp_path / "f", [])
    with pytest.raises(CheckpointError, match="f has no finished cells yet; resume it first$"):
        compare_runs(a, f)
    held = locks.acquire(f)
    try:
        with pytest.raises(CheckpointError, match=r"f has no finished cells yet: it is at work \(pid \d+ on .*\); run "
                                                  "this again once a cell has finished$"):
            compare_runs(a, f)
    finally:
        locks.release(held)


def test_compare_command_prints_the_table_and_fails_in_one_line(tmp_path):
    ok = np.ones(40, bool)
    a = _run(tmp_path / "a", [_cell("cnn", "real", 0, ok)])
    b = _run(tmp_path / "b", [_cell("cnn", "real", 0, ok)], epochs=24)
    r = genaug("compare", a, b, "--out", tmp_path / "cmp.md")
    assert r.returncode == 0, r.stderr[-2000:]
    doc = (tmp_path / "cmp.md").read_text()
    assert "| cnn | real | 1 | 1 | 100.0 | 100.0 | +0.0 |" in doc
    assert "**no difference detected**" in doc and "With one paired run" in doc
    # found in session 71: --bootstrap 99999999999 (a slip for 1000) ran out of memory, told to "run fewer jobs"
    for command in (["compare", a, b], ["pool", a, b]):
        r = genaug(*command, "--bootstrap", "99999999999")
        assert r.returncode == 2 and "Traceback" not in r.stderr and "out of memory" not in r.stderr, r.stderr
        assert "'--bootstrap'" in r.stderr and "100000" in r.stderr, r.stderr
    r = genaug("compare", a, tmp_path / "missing")
    assert r.returncode == 2 and f"benchmark run not found: {tmp_path / 'missing'}" in r.stderr
    assert "Traceback" not in r.stderr
    gan = tmp_path / "gan-run"
    gan.mkdir()
    (gan / "manifest.json").write_text(json.dumps({"command": "gan"}))
    r = genaug("compare", a, gan)   # said "(no manifest.json and cells/)" of a run that has a manifest
    assert r.returncode == 2 and (f"{gan} is not a genaug benchmark run; it is a genaug gan run: this command takes "
                                  "a genaug benchmark run's folder") in r.stderr, r.stderr
    r = genaug("pool", a / "cells", b)
    assert r.returncode == 2 and f"it lies inside the run {a.resolve()}: give that folder" in r.stderr, r.stderr
    (b / "cells" / "cnn__real__f1__seed0.json").write_text('{"model": "cnn", "variant"')   # edited, cut short
    r = genaug("compare", a, b)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "cnn__real__f1__seed0.json is not valid JSON" in r.stderr and "move it out of cells/" in r.stderr
    assert f"rerun with genaug benchmark --resume {b} to train that cell again" in r.stderr   # not RUN_DIR
    (b / "cells" / "cnn__real__f1__seed0.json").write_text("{}")   # parses, but is no cell: a KeyError traceback
    r = genaug("compare", a, b)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert ("cnn__real__f1__seed0.json is not a genaug cell (no model, variant, train_fraction, seed, "
            "test_at_val_threshold); move it out of cells/") in r.stderr


def _gan_runs(tmp_path, right_by_run, seeds=(0, 1, 2), real_in_each=False, **settings):
    """Benchmark runs alike but for their GAN run: run 0 holds real cells (30 of 40 images right)
    and each run its mixed cells, the given number of images right."""
    base = np.ones(40, bool)
    base[:10] = False
    runs = []
    for g, right in enumerate(right_by_run):
        mixed = np.zeros(40, bool)
        mixed[:right] = True
        cells = [_cell("cnn", "mixed", s, mixed) for s in seeds]
        if g == 0 or real_in_each:
            cells += [_cell("cnn", "real", s, base) for s in seeds]
        runs.append(_run(tmp_path / f"b{g}", cells, gan_run=f"/runs/gan/seed{g}", seeds=len(seeds), **settings))
    return runs


def test_a_pool_or_comparison_made_while_a_run_trains_says_its_later_cells_are_not_in_it(tmp_path):
    # session 62: a pool made while seed 2 of its real run trained gave the 2-seed answer with no word
    # that the run was at work, and a pool page keeps its numbers (--redo refuses once cells change)
    from genaug import locks
    runs = _gan_runs(tmp_path, [34, 30], seeds=(0, 1))
    assert "at_work" not in pool_runs(runs, "mixed", n_boot=200) and "Made while" not in format_pool(
        pool_runs(runs, "mixed", n_boot=200))
    held = locks.acquire(runs[0])
    try:
        pooled, compared = pool_runs(runs, "mixed", n_boot=200), compare_runs(runs[1], runs[0], n_boot=200)
    finally:
        locks.release(held)
    assert list(pooled["at_work"]) == [str(runs[0])] and list(compared["at_work"]) == [str(runs[0])]
    short = format_pool(pooled).split("## In short\n\n")[1]
    assert re.match(r"- Made while b0 was at work \(pid \d+ on .*\): the cells it finishes later are not in this "
                    r"pool; pool the runs again as a new run \(genaug pool\) once it has finished\.\n- cnn, mixed", short)
    assert re.search(r"In short, B against A:\n\n- Made while b0 was at work \(pid \d+ .*\): the cells it finishes "
                     r"later are not in this comparison; compare again once it has finished\.\n- cnn, mixed",
                     format_comparison(compared))


def test_pool_pairs_every_gan_runs_mixed_cells_with_one_set_of_real_cells(tmp_path):
    runs = _gan_runs(tmp_path, [34, 30, 26], real_in_each=True)
    res = pool_runs(runs, "mixed", n_boot=400)
    (row,) = res["rows"]
    assert [p["diff"] for p in row["per_input_run"]] == pytest.approx([0.1, 0.0, -0.1])
    assert row["accuracy_difference"]["diff"] == pytest.approx(0.0) and row["accuracy_difference"]["input_runs"] == 3
    assert row["between_input_runs_sd"] == pytest.approx(0.1)
    assert row["real_from"] == ["b0"] and (row["real_identical"], row["real_rechecked"]) == (6, 6)
    # the GAN runs disagree, so the pooled interval is wider than any one run's (whose seeds agree)
    lo, hi = row["accuracy_difference"]["ci"]
    assert lo < -0.05 and hi > 0.05
    assert all(p["ci"][1] - p["ci"][0] < hi - lo for p in row["per_input_run"])
    text = format_pool(res)
    assert "# mixed against real, pooled over 3 GAN runs" in text
    assert "(95% CI" in text and "3 seeds on each of 3 GAN runs): **no difference detected**" in text
    assert "| cnn | 1 | seed0 | not found | 3 | 75.0 | 85.0 | +10.0 |" in text
    assert "| cnn | 1 | **pooled (3)** | | 3 | 75.0 | 75.0 | +0.0 |" in text
    assert "real cells from b0; the other runs' real cells of the same seeds have identical test probabilities in 6 of 6" in text
    # how many synthetic images each run's mixed cells added (session 56: the archived ones got fewer than asked)
    assert "cnn: each run's mixed cells trained on 0 synthetic and 100 real images (0.00 x real)." in text
    # ... and "In short" gives the share, so pools of other shares read apart at the top of RESULTS.md
    assert "- cnn, mixed (real + synthetic at 0.00 x real) against real: " in text
    for s in (0, 1, 2):
        path = runs[1] / "cells" / f"cnn__mixed__f1__seed{s}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "n_train": 150, "n_train_synthetic": 50}))
    assert ("cnn: the runs' mixed cells trained on other numbers of synthetic images (b0: 0 synthetic and 100 real "
            "images (0.00 x real); b1: 50 synthetic and 100 real images (0.50 x real); b2: 0 synthetic and 100 real "
            "images (0.00 x real)), so the pooled "
            "difference mixes those shares.") in (text := format_pool(pool_runs(runs, "mixed", n_boot=100)))
    assert "- cnn, mixed (real + synthetic at 0.00 to 0.50 x real) against real: " in text
    # a pool over data whose classes differ in their files says so first (session 82), as compare does
    assert "classes differ in their files" not in text
    from genaug.data.traits import tells_note
    note = tells_note([{"trait": "format", "balanced_accuracy": 1.0, "chance": 0.5,
                        "by_class": {0: "PNG 100%", 1: "JPEG 100%"}}], ["NORMAL", "PNEUMONIA"])
    manifest = json.loads((runs[2] / "manifest.json").read_text())
    (runs[2] / "manifest.json").write_text(json.dumps({**manifest, "data": {"notes": [note]}}))
    assert "## In short\n\n- The classes differ in their files in this data" in format_pool(pool_runs(runs, "mixed",
                                                                                                      n_boot=100))


def test_pool_says_where_cells_ran_and_warns_where_a_pair_crosses_machines(tmp_path):
    amd = {"cpu": "AMD EPYC (family 25, model 17)", "cpu_capability": "AVX512", "cpu_count": 2, "threads": 1}
    intel = {**amd, "cpu": "Intel(R) Xeon(R) Processor (family 6, model 207)"}
    runs = _gan_runs(tmp_path, [34, 30])
    for run, machine in zip(runs, (amd, intel)):   # run b0 (real and mixed) on one CPU, b1's mixed on another
        for path in (run / "cells").glob("*.json"):
            path.write_text(json.dumps({**json.loads(path.read_text()), "machine": machine}))
    (row,) = pool_runs(runs, "mixed", n_boot=100)["rows"]
    assert row["real_machines"] == {"AMD EPYC (family 25, model 17), AVX512, 1 thread": 3}
    assert [p["machines"] for p in row["per_input_run"]][1] == {
        "Intel(R) Xeon(R) Processor (family 6, model 207), AVX512, 1 thread": 3}
    text = format_pool({"variant": "mixed", "input": "GAN", "runs": [str(r) for r in runs], "rows": [row]})
    assert ("cnn: real cells ran on AMD EPYC (family 25, model 17), AVX512, 1 thread (3 cells); b0's mixed cells on "
            "AMD EPYC (family 25, model 17), AVX512, 1 thread (3 cells); b1's mixed cells on Intel(R) Xeon(R) "
            "Processor (family 6, model 207), AVX512, 1 thread (3 cells).") in text
    assert "cnn: in b1 a seed's mixed cell and its real cell trained on different machines" in text
    unrecorded = dict(row, real_machines={"not recorded": 3})
    text = format_pool({"variant": "mixed", "input": "GAN", "runs": [str(r) for r in runs], "rows": [unrecorded]})
    assert "cnn: in b0, b1 a seed's mixed cell and its real cell trained on machines not recorded as the same" in text
    # all on one machine (here: none recorded): no warning
    assert "different machines" not in format_pool(pool_runs(_gan_runs(tmp_path / "same", [34, 30]), "mixed", n_boot=100))


def test_pool_names_the_genaug_commits_where_its_cells_were_trained_by_other_code(tmp_path):
    # pooled runs must agree in every setting, but one trained before a fix and one after read alike
    runs = _gan_runs(tmp_path, [34, 30])
    for run, commit in zip(runs, ("835995a7f1" + "0" * 30 + "+dirty", "76d087dafd" + "0" * 30)):
        for path in (run / "cells").glob("*.json"):
            path.write_text(json.dumps({**json.loads(path.read_text()), "genaug_commit": commit}))
    (row,) = pool_runs(runs, "mixed", n_boot=100)["rows"]
    assert row["real_commits"] == ["835995a7f1+dirty"] and [p["commits"] for p in row["per_input_run"]] == [
        ["835995a7f1+dirty"], ["76d087dafd"]]
    text = format_pool({"variant": "mixed", "input": "GAN", "runs": [str(r) for r in runs], "rows": [row]})
    assert ("cnn: the cells were trained by other genaug code: real cells by 835995a7f1+dirty; b0's mixed cells by "
            "835995a7f1+dirty; b1's mixed cells by 76d087dafd. A change of code may move a run's difference as a "
            "change of settings does.") in text
    # one commit throughout, or none recorded (cells from before commits were kept): nothing said
    assert "other genaug code" not in format_pool(pool_runs(_gan_runs(tmp_path / "none", [34, 30]), "mixed", n_boot=100))
    older = {k: v for k, v in row.items() if k != "real_commits"}   # a pool.json written before this line existed
    assert "other genaug code" not in format_pool({"variant": "mixed", "input": "GAN", "runs": [], "rows": [older]})


def test_pool_sets_the_difference_at_the_validation_threshold_beside_the_one_at_half(tmp_path):
    # real cells rank every image right (ROC-AUC 1) but validation put their threshold at 0.2, below the
    # normals' 0.3: they call every normal pneumonia (20 of 40 right); at 0.5 they are all right
    y = [0] * 20 + [1] * 20
    runs = []
    for g in range(2):
        real = [{**_cell("cnn", "real", s, np.ones(40, bool)), "threshold": 0.2,
                 "test_probs": [[0.7, 0.3] if lab == 0 else [0.1, 0.9] for lab in y]} for s in (0, 1)]
        mixed = [_cell("cnn", "mixed", s, np.ones(40, bool)) for s in (0, 1)]
        runs.append(_run(tmp_path / f"r{g}", mixed + (real if g == 0 else []), gan_run=f"/g{g}"))
    res = pool_runs(runs, "mixed", n_boot=200)
    (row,) = res["rows"]
    assert row["accuracy_difference"]["diff"] == pytest.approx(0.5)
    half = row["at_0.5"]
    assert half["accuracy_real"] == 1.0 and half["accuracy_variant"] == 1.0 and half["per_input_run"] == [0.0, 0.0]
    assert half["accuracy_difference"]["diff"] == 0.0
    text = format_pool(res)
    assert "| cnn | 1 | g0 | not found | 2 | 50.0 | 100.0 | +50.0 |" in text and text.count("| +0.0 |") == 2
    assert "at the fixed threshold 0.5: +0.0 (+0.0 to +0.0, p 1)." in text
    assert "| **pooled (2)** | | 2 | 50.0 | 100.0 | +50.0 |" in text and "| +0.0 (+0.0 to +0.0, p 1) |" in text


def test_pool_refuses_what_would_not_pool(tmp_path):
    a, b = _gan_runs(tmp_path, [34, 30])
    with pytest.raises(ConfigError, match=f"at least two benchmark runs with mixed cells, each on its own GAN run; "
                                          f"of the 1 given, only {a.name} holds them$"):
        pool_runs([a], "mixed")
    # runs of real and encoded cells, pooled for their (absent) mixed ones, are pointed to --variant encoded
    enc_only = [_run(tmp_path / f"e{i}", [_cell("cnn", v, 0, np.ones(40, bool)) for v in ("real", "encoded")],
                     encode_run=f"/e{i}") for i in (1, 2)]
    with pytest.raises(ConfigError, match="of the 2 given, none does; they hold encoded cells: --variant encoded$"):
        pool_runs(enc_only, "mixed")
    with pytest.raises(ConfigError, match="does not depend on an input run"):
        pool_runs([a, b], "real")
    with pytest.raises(ConfigError, match="used the same GAN run"):   # two benchmark runs on one GAN run
        pool_runs([a, _run(tmp_path / "again", [_cell("cnn", "mixed", 0, np.ones(40, bool))], seeds=3,
                           gan_run="/runs/gan/seed0")], "mixed")
    # one run given twice, however spelt (found in session 55: told it "used the same GAN run")
    (tmp_path / "link").symlink_to(a)
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'link'} is given twice; give each benchmark run once$"):
        pool_runs([a, b, tmp_path / "link"], "mixed")
    with pytest.raises(CheckpointError, match="^benchmark run not found: "):
        pool_runs([a, tmp_path / "missing"], "mixed")
    other = _run(tmp_path / "other", [_cell("cnn", "mixed", 0, np.ones(40, bool))], epochs=24, gan_run="/runs/gan/x")
    with pytest.raises(ConfigError, match="epochs"):
        pool_runs([a, other], "mixed")
    # a setting only encoded cells read may differ; one mixed cells read may not
    enc = _run(tmp_path / "enc", [_cell("cnn", "mixed", 0, np.ones(40, bool))], seeds=3, gan_run="/g", latent_epochs=9)
    assert pool_runs([a, enc], "mixed", n_boot=100)["rows"][0]["seeds"] == [0]
    ratio = _run(tmp_path / "ratio", [_cell("cnn", "mixed", 0, np.ones(40, bool))], seeds=3, gan_run="/h",
                 synthetic_ratio=1.0)   # the others' config leaves it at its default, 0.5
    with pytest.raises(ConfigError, match="synthetic_ratio"):
        pool_runs([a, ratio], "mixed")
    no_real = _run(tmp_path / "nr", [_cell("cnn", "mixed", 0, np.ones(40, bool))], seeds=3, gan_run="/i")
    with pytest.raises(ConfigError, match="^no run given holds a real cell of cnn: name a run that does with "
                                          "--real-from RUN, or add them with genaug benchmark --resume RUN "
                                          "--variants real,mixed$"):
        pool_runs([no_real, b], "mixed")
    # the causes were all told "no seed has a real cell and a mixed cell in every ..." (session 59)
    late = _run(tmp_path / "late", [_cell("cnn", "mixed", 9, np.ones(40, bool))], seeds=3, gan_run="/j")
    with pytest.raises(ConfigError, match="^no seed has a real cell and a mixed cell in every GAN run's benchmark run"):
        pool_runs([a, late], "mixed")
    dense = _run(tmp_path / "dense", [_cell("densenet121", "mixed", 0, np.ones(40, bool))], seeds=3, gan_run="/k")
    with pytest.raises(ConfigError, match=f"^the runs' mixed cells are of different models \\(cnn in {a.name}; "
                                          f"densenet121 in {dense.name}\\): pool the runs of one model together$"):
        pool_runs([a, dense], "mixed")


def test_pool_command_writes_a_run_that_genaug_report_gathers_and_fails_in_one_line(tmp_path):
    runs = _gan_runs(tmp_path, [34, 30])
    r = genaug("pool", *runs, "--out", tmp_path / "out", "--name", "cnn-mixed", "--bootstrap", "200")
    assert r.returncode == 0, r.stderr[-2000:]
    (run,) = (tmp_path / "out" / "pool").glob("*-cnn-mixed")
    assert {"config.yaml", "manifest.json", "pool.md", "pool.json", "log.txt"} <= {p.name for p in run.iterdir()}
    doc = (run / "pool.md").read_text()
    assert "| cnn | 1 | **pooled (2)** | | 3 | 75.0 | 80.0 | +5.0 |" in doc and doc in r.stdout
    assert json.loads((run / "pool.json").read_text())["rows"][0]["input_runs"] == 2
    results = results_document([run])
    assert "## `genaug pool`: " in results and "### " + run.name + "\n\n- cnn, mixed (real + synthetic at 0.00 x real) against real" in results
    r = genaug("pool", runs[0], runs[0], "--out", tmp_path / "refused")
    assert r.returncode == 2 and "is given twice" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "refused").exists()


def test_pool_redo_writes_an_older_pool_page_again_from_what_it_recorded(tmp_path):
    # pool pages written before a line was added (session 56's synthetic-image counts) could only be made
    # again as new runs, leaving the archived page, which RESULTS.md gathers, without it
    runs = _gan_runs(tmp_path, [34, 30])
    r = genaug("pool", *runs, "--out", tmp_path / "out", "--bootstrap", "200")
    assert r.returncode == 0, r.stderr[-2000:]
    (run,) = (tmp_path / "out" / "pool").iterdir()
    page, result = (run / "pool.md").read_text(), (run / "pool.json").read_text()
    (run / "pool.md").write_text("an older genaug's page\n")
    r = genaug("pool", "--redo", run)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (run / "pool.md").read_text() == page and (run / "pool.json").read_text() == result and page in r.stdout
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["resume_argv"][-1][-2:] == ["--redo", str(run)] and len(manifest["redone_by_commit"]) == 1
    assert list((tmp_path / "out" / "pool").iterdir()) == [run]   # in place, no second run
    assert f", written again by `{short_commit(manifest['redone_by_commit'][0])}`" in results_document([run])

    log = (run / "log.txt").read_text()

    def refused(said, *args):   # one line, exit 2, and the page and its log as they were
        r = genaug("pool", "--redo", run, *args)
        assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert (run / "pool.md").read_text() == page and (run / "log.txt").read_text() == log

    refused("--redo takes no --variant: it pools what", "--variant", "encoded")
    refused("--redo takes no RUNS: it pools what", runs[0])
    retrained = runs[1] / "cells" / "cnn__mixed__f1__seed0.json"   # a cell trained again since (--supersede)
    retrained.write_text(json.dumps(_cell("cnn", "mixed", 0, np.ones(40, bool))))
    refused("pooled hold other cells now (cnn: the same seeds, other accuracies (a cell trained again))")
    # the runs gained a seed since: the page would hold other numbers under its old date
    for r_, v in ((runs[0], "real"), (runs[0], "mixed"), (runs[1], "mixed")):
        (r_ / "cells" / f"cnn__{v}__f1__seed3.json").write_text(json.dumps(_cell("cnn", v, 3, np.ones(40, bool))))
    refused("pooled hold other cells now (cnn: seeds [0, 1, 2] then, [0, 1, 2, 3] now); pool them as a new run")
    runs[1].rename(tmp_path / "moved")   # a pooled run moved away since
    refused(f"benchmark run not found: {runs[1]}; {run} recorded it as one of its runs: pool the runs where")
    r = genaug("pool", "--redo", runs[0])
    assert r.returncode == 2 and "is not a genaug pool run; it is a genaug benchmark run" in r.stderr
    (run / "pool.json").write_text("{")   # damaged: it is what says whether the numbers would stay
    refused("pool.json does not parse as the pool it wrote; restore it")


def test_pool_shows_each_input_runs_own_quality_where_its_metrics_are(tmp_path):
    gan = tmp_path / "gan"
    gan.mkdir()
    (gan / "metrics.json").write_text(json.dumps({"classes": {"NORMAL": {"fid": {"synthetic": 17.96}},
                                                              "PNEUMONIA": {"fid": {"synthetic": 6.99}}}}))
    ae = tmp_path / "ae"
    ae.mkdir()
    (ae / "metrics.json").write_text(json.dumps({"test": {"psnr": 34.854, "ssim": 0.9334}}))
    assert input_run_quality(gan) == "NORMAL 17.96, PNEUMONIA 6.99"   # as its quality.md writes them
    assert input_run_quality(ae) == "34.85 dB, SSIM 0.933"
    assert input_run_quality(tmp_path / "gone") == ""
    # a GAN run recorded at a path this machine lacks, archived beside the benchmark run (archive/gan/<name>)
    archive = tmp_path / "archive"
    (archive / "gan").mkdir(parents=True)
    gan.rename(archive / "gan" / "20261123-214700-cpu-gan")
    assert input_run_quality("/work/runs/gan/20261123-214700-cpu-gan", archive) == "NORMAL 17.96, PNEUMONIA 6.99"
    # a briefly trained judge's small FIDs were all "0.0"
    small = tmp_path / "small"
    small.mkdir()
    (small / "metrics.json").write_text(json.dumps({"classes": {"NORMAL": {"fid": {"synthetic": 0.0032}},
                                                                "PNEUMONIA": {"fid": {"synthetic": 0.00081}}}}))
    assert input_run_quality(small) == "NORMAL 0.0032, PNEUMONIA 0.00081"
    # runs trained under --cpu-amp say so (session 76): a pool may hold fp32 and bf16 GANs or autoencoders
    (small / "metrics.json").write_text(json.dumps({"classes": {"NORMAL": {"fid": {"synthetic": 3.5}}},
                                                    "training_precision": "bf16 autocast"}))
    assert input_run_quality(small) == "NORMAL 3.50; trained in bf16 autocast"
    (ae / "metrics.json").write_text(json.dumps({"test": {"psnr": 35.791, "ssim": 0.9386},
                                                 "training_precision": "bf16 autocast for 2 of 3 epochs, fp32 for the rest"}))
    assert input_run_quality(ae) == "35.79 dB, SSIM 0.939; trained in bf16 autocast for 2 of 3 epochs, fp32 for the rest"
    # and channels-last (session 78), which changes the numbers a GAN trains to
    (small / "metrics.json").write_text(json.dumps({"classes": {"NORMAL": {"fid": {"synthetic": 3.5}}},
                                                    "training_precision": "fp32", "training_layout": "channels-last"}))
    assert input_run_quality(small) == "NORMAL 3.50; trained channels-last"
    (ae / "metrics.json").write_text(json.dumps({"test": {"psnr": 35.791, "ssim": 0.9386}, "training_layout": "channels-last",
                                                 "training_precision": "bf16 autocast for 2 of 3 epochs, fp32 for the rest"}))
    assert input_run_quality(ae).endswith("; trained in bf16 autocast for 2 of 3 epochs, fp32 for the rest, channels-last")


def test_compare_names_a_resize_difference_and_pool_refuses_it(tmp_path):
    """Runs that made their images square otherwise (data.resize, session 81) test the same images, so compare
    pairs them, naming the difference as a cause; pool, which pools retrained input runs alone, refuses them. A
    run saved before the key existed squashed its images."""
    right = lambda n: np.arange(40) < n
    squashed = _run(tmp_path / "sq", [_cell("cnn", "mixed", s, right(30)) for s in (0, 1)], gan_run="/runs/gan/g0")
    cropped = _run(tmp_path / "cr", [_cell("cnn", "mixed", s, right(34)) for s in (0, 1)], gan_run="/runs/gan/g1",
                   data={**DATA, "resize": "crop"})
    res = compare_runs(squashed, cropped, n_boot=100)
    assert res["settings_differ"][0] == ("resize", "squash", "crop")
    assert "- `resize`: 'squash' → 'crop'" in format_comparison(res)
    with pytest.raises(ConfigError, match="sq and cr train cells otherwise \\(they differ in resize\\)"):
        pool_runs([squashed, cropped], "mixed", n_boot=100)
    also = _run(tmp_path / "sq2", [_cell("cnn", "mixed", s, right(34)) for s in (0, 1)], gan_run="/runs/gan/g2",
                data={**DATA, "resize": "squash"})
    assert "resize" not in [k for k, _, _ in compare_runs(squashed, also, n_boot=100)["settings_differ"]]


def test_pool_takes_real_cells_from_a_run_without_the_input_run(tmp_path):
    # two encode runs' benchmark runs with encoded cells only, and a run of real and mixed cells (no
    # encode run) that supplies their real cells: the real cells need not be trained again
    base = np.ones(40, bool)
    base[:10] = False
    supplier = _run(tmp_path / "real-mixed", [_cell("cnn", v, s, base) for v in ("real", "mixed") for s in (0, 1)],
                    gan_run="/runs/gan/g0")
    encoded = []
    for a, right in enumerate((34, 26)):
        got = np.zeros(40, bool)
        got[:right] = True
        encoded.append(_run(tmp_path / f"ae{a}", [_cell("cnn", "encoded", s, got) for s in (0, 1)],
                            encode_run=f"/runs/encode/ae{a}", latent_epochs=12))
    res = pool_runs([supplier, *encoded], "encoded", n_boot=200)
    (row,) = res["rows"]
    assert row["input_runs"] == 2 and row["real_from"] == ["real-mixed"] and row["seeds"] == [0, 1]
    assert [p["diff"] for p in row["per_input_run"]] == pytest.approx([0.1, -0.1])
    assert res["runs"] == [str(r) for r in encoded] and res["real_only_runs"] == [str(supplier)]
    text = format_pool(res)
    assert "# encoded against real, pooled over 2 autoencoder runs" in text
    assert f"- `{supplier}`: none; its real cells only" in text and "| **pooled (2)** |" in text
    # one input run and a supplier of real cells is not a pool; a run with neither is refused by name
    with pytest.raises(ConfigError, match="at least two benchmark runs with encoded cells, each on its own "
                                          "autoencoder run; of the 2 given, only .* holds them$"):
        pool_runs([supplier, encoded[0]], "encoded")
    longer = _run(tmp_path / "24ep", [_cell("cnn", "real", s, base) for s in (0, 1)], epochs=24)
    with pytest.raises(ConfigError, match="ae0 and 24ep train cells otherwise \\(they differ in epochs\\)"):
        pool_runs([longer, *encoded], "encoded")
    empty = _run(tmp_path / "mixed-only", [_cell("cnn", "mixed", 0, base)], gan_run="/runs/gan/g1")
    with pytest.raises(ConfigError, match="mixed-only records no autoencoder run and holds no real cells"):
        pool_runs([empty, *encoded], "encoded")


def test_pool_real_from_takes_a_runs_real_cells_and_pools_none_of_its_other_cells(tmp_path):
    # session 58: mixed-only runs at 0.5 x real, and the real cells of an earlier real,mixed run whose mixed
    # cells drew 0.40 x; given as a run, its mixed cells were pooled as one more GAN run
    right = lambda n: np.arange(40) < n   # the first n of 40 test images right
    earlier = _run(tmp_path / "earlier", [_cell("cnn", "real", s, right(32)) for s in range(4)]
                   + [_cell(m, "mixed", s, right(20)) for m in ("cnn", "resnet34") for s in range(4)],
                   gan_run="/runs/gan/old", synthetic_ratio=0.4, seeds=4)
    new = [_run(tmp_path / f"n{g}", [_cell("cnn", "mixed", s, right(n)) for s in (0, 1)],
                gan_run=f"/runs/gan/new{g}", synthetic_ratio=0.5) for g, n in enumerate((36, 28))]
    res = pool_runs(new, "mixed", n_boot=200, real_from=earlier)
    (row,) = res["rows"]   # no resnet34 row: the earlier run's mixed cells are not pooled
    assert res["runs"] == [str(r) for r in new] and res["real_cells_run"] == str(earlier)
    assert row["input_runs"] == 2 and row["real_from"] == [earlier.name] and row["seeds"] == [0, 1]
    assert [p["diff"] for p in row["per_input_run"]] == pytest.approx([0.1, -0.1])
    text = format_pool(res)
    assert f"- `{earlier}`: its real cells only (`--real-from`); its other cells are not pooled" in text
    assert "pooled over 2 GAN runs" in text and "| **pooled (2)** |" in text and "2 seeds on each of 2 GAN runs" in text
    one = [_run(tmp_path / f"one{g}", [_cell("cnn", "mixed", 0, right(n))], gan_run=f"/runs/gan/one{g}",
                synthetic_ratio=0.5, seeds=1) for g, n in enumerate((36, 28))]
    assert "1 seed on each of 2 GAN runs" in format_pool(pool_runs(one, "mixed", n_boot=100, real_from=earlier))
    # a run with seeds the others lack is pooled on the shared ones, and its other cells are named (session 58)
    text = format_pool(pool_runs([new[0], one[1]], "mixed", n_boot=100, real_from=earlier))
    assert ("cnn: pooled on seed 0, those with a real cell and a mixed cell in every run; left out: n0's mixed "
            "cells of seed 1.") in text
    assert "left out" not in format_pool(res)
    # given as a run, its mixed cells would count as a third GAN run: refused here, as its ratio differs
    with pytest.raises(ConfigError, match="differ in synthetic_ratio"):
        pool_runs([*new, earlier], "mixed", n_boot=100)
    bare = _run(tmp_path / "no-real", [_cell("cnn", "mixed", 0, np.ones(40, bool))], gan_run="/runs/gan/x")
    with pytest.raises(ConfigError, match=f"^--real-from {bare} holds no real cells; give a benchmark run with real cells$"):
        pool_runs(new, "mixed", real_from=bare)
    with pytest.raises(ConfigError, match="n0 is given twice"):
        pool_runs(new, "mixed", real_from=new[0])
    # the command records it, and --redo pools the same way
    r = genaug("pool", *new, "--real-from", earlier, "--out", tmp_path / "out", "--bootstrap", "200")
    assert r.returncode == 0, r.stderr[-2000:]
    (pool_dir,) = (tmp_path / "out" / "pool").iterdir()
    assert yaml.safe_load((pool_dir / "config.yaml").read_text())["pool"]["real_from"] == str(earlier)
    before = (pool_dir / "pool.md").read_text()
    r = genaug("pool", "--redo", pool_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (pool_dir / "pool.md").read_text() == before
    r = genaug("pool", "--redo", pool_dir, "--real-from", earlier)
    assert r.returncode == 2 and "--redo takes no --real-from" in r.stderr


def test_results_document_sets_the_pools_of_one_question_side_by_side_most_pairs_first(tmp_path):
    # by session 62 RESULTS.md held 32 pools one after another, six of them on DenseNet-121 mixed at 0.5 x:
    # its answers to one question were found only by reading every pool
    from genaug.compare import run_pool
    runs = _gan_runs(tmp_path, [34, 30, 38], image_size=64)   # real: 30 of 40 right
    two = run_pool(runs[:2], "mixed", n_boot=200, out_root=tmp_path / "out", name="two-gans")
    three = run_pool(runs, "mixed", n_boot=200, out_root=tmp_path / "out", name="three-gans")
    doc = results_document([two, three])   # the runs' configs read where the pools recorded them
    table = doc.split("## Pooled answers, question by question")[1].split("## In short, run by run")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "pool" not in line.split("|")[2]]
    question = "binary: cnn, mixed (real + synthetic at 0.00 x real), pixel models at 64 px"
    assert rows[0].startswith(f"| {question} | {three.name} | 3 GAN runs × 3 seeds | 75.0 → 85.0 | +10.0 (")
    assert rows[1].startswith(f"|  | {two.name} | 2 GAN runs × 3 seeds | 75.0 → 80.0 | +5.0 (")
    assert len(rows) == 2 and table.count(question) == 1
    for row, pool in zip(rows, (three, two)):   # each row is its pool's own interval and verdict
        d = json.loads((pool / "pool.json").read_text())["rows"][0]["accuracy_difference"]
        assert f"({100 * d['ci'][0]:+.1f} to {100 * d['ci'][1]:+.1f}) | **" in row
    # gathered with their runs (read there), the same table; the runs alone answer no pooled question
    for run in runs:
        (run / "report.md").write_text("# genaug benchmark: x\n\n## In short\n\n- one GAN's answer\n")
    assert table in results_document([*runs, two, three])
    assert "## Pooled answers" not in results_document(runs)
    # a pool.json edited by hand loses its rows in the table, not the document (nor its own section)
    (two / "pool.json").write_text(json.dumps({"runs": [str(runs[0])], "rows": [1, {"model": "cnn"}]}))
    table = (doc := results_document([two, three])).split("## In short, run by run")[0]
    assert three.name in table and two.name not in table and f"## `genaug pool`: {two.name}" in doc
