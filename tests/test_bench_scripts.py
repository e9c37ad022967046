"""The bench/ scripts whose output docs/PERFORMANCE.md or docs/STATUS.md records: each still imports what it
uses from genaug (a renamed function broke none of them silently), and the cheap ones still run end to end."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(script: str):
    """bench/SCRIPT as a module, without running its main."""
    spec = importlib.util.spec_from_file_location(f"bench_{script[:-3]}", BENCH / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_bench_script_imports_and_has_a_main(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))   # as `python bench/X.py` runs it: siblings import (throughput)
    assert callable(_load(script).main)


def _bench(*args: str) -> list[list[str]]:
    """Run bench/ARGS[0] with the rest; its Markdown table rows, cells stripped."""
    r = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return [[c.strip() for c in line.strip("|").split("|")] for line in r.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("|---")]


def test_pool_coverage_prints_a_row_per_gan_spread():
    header, *rows = _bench("pool_coverage.py", "--trials", "2", "--resamples", "20")
    assert header[0] == "GAN sd (points)" and [r[0] for r in rows] == ["0.0", "1.3", "3.0"]
    assert all(cell.endswith("%") for r in rows for cell in r[1:])


def test_cpu_bf16_prints_fp32_bf16_and_their_ratio_per_classifier_the_autoencoder_and_the_gan():
    header, *rows, ae_header, ae, gan_header, gan = _bench(
        "cpu_bf16.py", "--sizes", "16", "--models", "cnn", "--steps", "1", "--batch-size", "4", "--autoencoder-sizes",
        "32", "--autoencoder-batch", "2", "--gan-sizes", "64", "--gan-batch", "2", "--gan-width", "4")
    assert header == ["classifier", "input", "fp32 images/s", "bf16 images/s", "bf16 / fp32"]
    assert [r[:2] for r in rows] == [["cnn", "16 px"], ["cnn (latent)", "14x14x256 latents"]]
    for r in rows:   # the ratio is the two rates' own, to the two decimals printed
        assert float(r[4].rstrip("x")) == pytest.approx(float(r[3]) / float(r[2]), abs=0.01)
    assert ae_header[0] == "input" and ae_header[3] == "bf16 / fp32" and ae[0] == "32 px"
    assert float(ae[3].rstrip("x")) == pytest.approx(float(ae[2]) / float(ae[1]), abs=0.01) and float(ae[4]) > 0
    assert gan_header == ae_header[:2] + ["bf16 images/s (channels-last, gan --cpu-amp)"] + ae_header[3:]
    assert gan[0] == "64 px" and float(gan[3].rstrip("x")) == pytest.approx(float(gan[2]) / float(gan[1]), abs=0.01)


def test_eval_batch_prints_a_row_per_network_and_size():
    header, *rows = _bench("eval_batch.py", "--models", "cnn", "--sizes", "16,24", "--batches", "8,256",
                           "--repeats", "1")
    assert header == ["network", "px", "batch 8", "batch 256", "best / batch 256"]
    assert [r[:2] for r in rows] == [["cnn", "16"], ["cnn", "24"], ["latent CNN", "14"]]
    assert all(float(c) > 0 for r in rows for c in r[2:4]) and all(r[4].endswith("x") for r in rows)


@pytest.mark.parametrize("script,args,last", [
    ("reconstruction_memory.py", ["--images", "8", "--size", "32"], 2),   # PSNR and SSIM
    ("latent_training_memory.py", ["--images", "10", "--views", "1"], None),
])
def test_memory_benches_give_the_same_result_whole_and_in_chunks(script, args, last):
    # what they measure is the memory of chunking; chunking must not change what is computed
    header, whole, chunked = _bench(script, *args, "--chunks", "0,4")
    assert (whole[0], chunked[0]) == ("all", "4") and whole[1] == chunked[1]
    if last:
        assert whole[-last:] == chunked[-last:]


@pytest.mark.parametrize("y,p1,best", [
    ([0, 1, 0, 1], [0.1, 0.4, 0.35, 0.8], 1.0),     # a threshold in (0.35, 0.4] gets all four
    ([0, 1, 1, 0], [0.1, 0.4, 0.35, 0.8], 0.75),    # the top NORMAL costs one image whatever the threshold
    ([0, 1], [0.5, 0.5], 0.5),                      # tied images fall on one side together
])
def test_label_shift_best_threshold_by_hand(y, p1, best):
    import numpy as np
    assert _load("label_shift.py").best_threshold_accuracy(np.array(y), np.array(p1)) == best


def test_label_shift_em_recovers_a_shifted_prior_from_unlabelled_posteriors(tmp_path):
    # posteriors exact under a 25% NORMAL validation split; the test split is 50% NORMAL: EM must find
    # 0.5 from the test posteriors alone, and the correction must not lose accuracy
    import json

    import numpy as np
    rng = np.random.default_rng(0)

    def split(n_normal, n_pneumonia):
        y = np.r_[np.zeros(n_normal, int), np.ones(n_pneumonia, int)]
        score = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
        like = np.exp(-0.5 * (score[:, None] - np.array([-1.0, 1.0])) ** 2)
        post = like * np.array([0.25, 0.75])
        return y, post / post.sum(1, keepdims=True)
    (tmp_path / "run" / "cells").mkdir(parents=True)
    for seed in range(2):
        (yv, pv), (yt, pt) = split(500, 1500), split(1000, 1000)
        acc = lambda thr: float(((pt[:, 1] >= thr) == yt).mean())
        cell = {"model": "cnn", "variant": "real", "train_fraction": 1.0, "seed": seed, "input_shape": [1, 16, 16],
                "n_test": 2000, "val_probs": pv.tolist(), "val_labels": yv.tolist(), "test_probs": pt.tolist(),
                "test_labels": yt.tolist(), "test_at_val_threshold": {"accuracy": acc(0.5)},
                "test_at_0.5": {"accuracy": acc(0.5)}}
        (tmp_path / "run" / "cells" / f"cnn__real__f1__seed{seed}.json").write_text(json.dumps(cell))
        row = _load("label_shift.py").cell_figures(cell)
        assert row["true_share"] == 0.5 and row["val_share"] == 0.25 and abs(row["em_share"] - 0.5) < 0.04
        assert row["em_accuracy"] >= row["at_half"] and row["best_on_test"] >= row["known_prior_accuracy"]
    header, row = _bench("label_shift.py", str(tmp_path / "run"))
    assert header[:6] == ["model", "variant", "train fraction", "px", "test images", "cells"]
    true, val, em = row[8].split(" (")[0].split(" / ")
    assert row[:6] == ["cnn", "real", "1", "16", "2000", "2"] and (true, val) == ("0.500", "0.250")
    assert abs(float(em) - 0.5) < 0.04


def test_site_threshold_draws_whole_patients_in_the_class_mix():
    import numpy as np
    draw_site = _load("site_threshold.py").draw_site
    labels = np.array([0] * 6 + [1] * 12)
    patients = np.array([f"n{i // 2}" for i in range(6)] + [f"p{i // 3}" for i in range(12)])
    for seed in range(20):
        site = draw_site(np.random.default_rng(seed), labels, patients, 6)
        drawn = set(patients[site])
        assert all(i in site for i in np.flatnonzero(np.isin(patients, list(drawn))))   # no patient split
        assert np.sum(labels[site] == 0) == 2 and np.sum(labels[site] == 1) == 6      # 1/3 of 6; 4 → 2 patients of 3


def test_site_threshold_wins_back_what_a_wrong_validation_threshold_loses(tmp_path):
    # test probabilities that split the classes at 0.7, and a validation threshold of 0.2 that calls every
    # image PNEUMONIA: a threshold from 8 labelled test images is right on the rest, the validation one is not
    import json

    import numpy as np
    from conftest import make_folder_dataset
    data = make_folder_dataset(tmp_path / "xray", {"train": 2, "test": 12}, size=8)
    labels, _ = _load("site_threshold.py").test_patients(data)
    # (Youden's J puts the threshold at or just under the lowest PNEUMONIA score drawn: all of that class score
    # alike here)
    p1 = np.where(labels == 1, 0.8, 0.6 + np.linspace(0, 0.05, len(labels)))
    (tmp_path / "run" / "cells").mkdir(parents=True)
    cell = {"model": "cnn", "variant": "real", "train_fraction": 1.0, "seed": 0, "input_shape": [1, 8, 8],
            "test_probs": np.c_[1 - p1, p1].tolist(), "test_labels": labels.tolist(),
            "test_at_val_threshold": {"threshold": 0.2, "accuracy": 0.5}}
    (tmp_path / "run" / "cells" / "cnn__real__f1__seed0.json").write_text(json.dumps(cell))
    header, row = _bench("site_threshold.py", "--data", str(data), "--sizes", "8", "--draws", "3",
                         str(tmp_path / "run"))
    assert header[:6] == ["model", "variant", "train fraction", "px", "cells", "site images"]
    assert row == ["cnn", "real", "1", "8", "1", "8", "50.0", "100.0", "100.0", "100"]
    # PNEUMONIA spread over 0.70-0.74, NORMAL at 0.00-0.05: the score itself (the lowest PNEUMONIA drawn) misses
    # every PNEUMONIA image of the rest below it; midway down to the NORMAL images it misses none
    p1 = np.where(labels == 1, 0.70 + np.linspace(0, 0.04, len(labels)), np.linspace(0, 0.05, len(labels)))
    cell["test_probs"] = np.c_[1 - p1, p1].tolist()
    (tmp_path / "run" / "cells" / "cnn__real__f1__seed0.json").write_text(json.dumps(cell))
    rows = {rule: _bench("site_threshold.py", "--data", str(data), "--sizes", "8", "--draws", "3", "--rule", rule,
                         str(tmp_path / "run"))[1] for rule in ("midpoint", "edge")}
    assert rows["midpoint"][7] == "100.0" and float(rows["edge"][7]) < 100


def test_gpu_check_runs_its_steps_on_the_cpu_and_archives_each_run(tmp_path):
    # a GPU lease is rare and short: the script it runs must not have rotted (a renamed flag) by then
    import os
    import tarfile
    from conftest import make_folder_dataset
    data = make_folder_dataset(tmp_path / "xray", {"train": 12, "test": 4})
    env = {**os.environ, "OUT": str(tmp_path / "out"), "DATA": str(data), "DEVICE": "cpu", "QUICK": "1",
           "PYTHON": sys.executable, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "300"], cwd=BENCH.parent, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    log = (tmp_path / "out" / "gpu_check.log").read_text()
    for step in ("1. genaug benchmark", "2a. bench/throughput.py", "2b. bench/latent_vs_pixel.py",
                 "2b'. bench/latent_vs_pixel.py --n 32 --batch-size 16", "2c. genaug benchmark",
                 "3. genaug benchmark --profile paper", "done"):
        assert f"s {step}" in log
    assert log.count("\nexit 0") == 7 and "| cnn | 32 |" in log
    # on the CPU, deterministic by default, the two runs of step 2c agree to the bit
    assert "cnn__real__f1__seed0: test probabilities identical; accuracy" in log
    for name in ("gpu-demo", "gpu-paper-real"):
        with tarfile.open(tmp_path / "out" / f"{name}.tar.gz") as tar:
            names = tar.getnames()
        assert any(n.endswith(f"-{name}/report.md") for n in names)
        assert not any(n.endswith(".pt") for n in names)   # results, not weights
    # the next lease adds seeds to an archived run: step 3 alone resumes a copy of the unpacked archive
    with tarfile.open(tmp_path / "out" / "gpu-paper-real.tar.gz") as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    archived = next((tmp_path / "unpacked" / "benchmark").glob("*-gpu-paper-real"))
    before = sorted(p.name for p in (archived / "cells").glob("*.json"))
    r = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "300"], cwd=BENCH.parent, timeout=600,
                       env={**env, "OUT": str(tmp_path / "out2"), "STEPS": "3", "RESUME": str(archived), "SEEDS": "2"},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    log = (tmp_path / "out2" / "gpu_check.log").read_text()
    assert "s 1. genaug" not in log and f"s 3. genaug benchmark --resume {archived.name} --seeds 2" in log
    assert log.count("\nexit 0") == 1
    assert sorted(p.name for p in (archived / "cells").glob("*.json")) == before   # the archive is left as it was
    with tarfile.open(tmp_path / "out2" / f"resumed-{archived.name}.tar.gz") as tar:
        cells = [n for n in tar.getnames() if "/cells/" in n and n.endswith(".json")]
    assert len(before) == 1 and sorted(Path(n).name for n in cells) == before + [before[0].replace("seed0", "seed1")]


def test_gpu_send_takes_the_runs_out_of_the_index_for_a_call_and_puts_everything_back(tmp_path):
    # run on a scratch repository: the script edits the git index and .git/info/exclude
    import os
    import shutil
    repo = tmp_path / "repo"
    (repo / "bench").mkdir(parents=True)
    shutil.copy(BENCH / "gpu_send.sh", repo / "bench")
    run = repo / "docs" / "runs" / "benchmark" / "20260101-000000-x"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    (repo / "README.md").write_text("hi\n")
    data = tmp_path / "chest_xray_224" / "train" / "NORMAL"
    data.mkdir(parents=True)
    (data / "a.jpeg").write_bytes(b"x")
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, capture_output=True, text=True, check=True).stdout
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x")
    exclude = (repo / ".git" / "info" / "exclude").read_bytes()
    send = lambda *a: subprocess.run(["bash", "bench/gpu_send.sh", *a], cwd=repo, capture_output=True, text=True,
                                     env={**os.environ, "DATA": str(data.parents[1])})

    r = send("prepare", "docs/runs/benchmark/20260101-000000-x")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "docs/runs" not in git("ls-files") and (run / "manifest.json").is_file()   # out of the index, not off disk
    assert (repo / ".gpudata" / "chest_xray_224" / "train" / "NORMAL" / "a.jpeg").is_file()
    assert (repo / ".gpudata" / "20260101-000000-x" / "manifest.json").is_file()
    # what the device tool would send: tracked and not-ignored files; neither the runs nor the data
    assert git("ls-files", "--others", "--exclude-standard") == ""
    assert send("prepare").returncode == 2                    # twice would lose the saved exclude file

    r = send("restore")
    assert r.returncode == 0 and "restored" in r.stdout, r.stdout + r.stderr
    assert git("status", "--porcelain", "--untracked-files=all") == ""
    assert (repo / ".git" / "info" / "exclude").read_bytes() == exclude and not (repo / ".gpudata").exists()
    assert send("restore").returncode == 2

    (repo / "README.md").write_text("changed\n")               # a dirty tree is refused, and left as it is
    r = send("prepare")
    assert r.returncode == 2 and "commit or stash" in r.stdout and "docs/runs" in git("ls-files")


def test_gan_pairs_prints_each_pairs_fid_difference_and_their_t_interval(tmp_path):
    """Two pairs whose NORMAL FIDs differ by 1 and 3: mean 2, sd sqrt(2), t(1, 0.975) = 12.706, so 2 ± 12.71."""
    import json
    for name, fid, cl in (("a1", 10.0, False), ("b1", 11.0, True), ("a2", 20.0, False), ("b2", 23.0, True)):
        run = tmp_path / name
        run.mkdir()
        (run / "config.yaml").write_text(f"run:\n  seed: {name[1]}\n  name: {name}\n  channels_last: {str(cl).lower()}\n")
        (run / "metrics.json").write_text(json.dumps(
            {"classes": {"NORMAL": {"fid": {"synthetic": fid, "synthetic_bootstrap_std": 1.5}}}}))
        (run / "history-conditional.json").write_text(json.dumps([{"epoch": 1, "seconds": 60.0 if cl else 90.0},
                                                                  {"epoch": 2, "seconds": 60.0}]))
    for name, cpu in (("a1", "X"), ("b1", "X"), ("a2", "X"), ("b2", "Y")):
        (tmp_path / name / "manifest.json").write_text(json.dumps({"device": "cpu", "machine": {"cpu": cpu}}))
    r = subprocess.run([sys.executable, str(BENCH / "gan_pairs.py"), f"{tmp_path / 'a1'}:{tmp_path / 'b1'}",
                        f"{tmp_path / 'a2'}:{tmp_path / 'b2'}"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| 1 | NORMAL | 10.00 ± 1.50 | 11.00 ± 1.50 | +1.00 | 150 | 120 | 1.25x |" in r.stdout
    assert "| 2 | NORMAL | 20.00 ± 1.50 | 23.00 ± 1.50 | +3.00 | 150 | 120 | other machines |" in r.stdout
    assert "| NORMAL | 2 | +2.00 | -10.71 to +14.71 | 2 of 2 |" in r.stdout
    assert "pair 2: a2 -> b2: run.channels_last: False -> True" in r.stdout   # names are left out; the seeds match
    r = subprocess.run([sys.executable, str(BENCH / "gan_pairs.py"), str(tmp_path / "a1")], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and "is not RUN_A:RUN_B" in r.stderr
    r = subprocess.run([sys.executable, str(BENCH / "gan_pairs.py"), f"{tmp_path / 'a1'}:{tmp_path / 'unfinished'}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "unfinished has no metrics.json" in r.stderr and "Traceback" not in r.stderr


def test_batchnorm_layout_prints_both_layouts_errors_per_size():
    header, *rows = _bench("batchnorm_layout.py", "--sizes", "4,8", "--batch", "4", "--channels", "3")
    assert header[0] == "S" and [r[:2] for r in rows] == [["4", "64"], ["8", "256"]]
    for r in rows:   # float32 against float64: errors well above zero and far below one
        assert all(1e-10 < float(v) < 1e-2 for v in (r[2], r[3], r[5], r[6])) and r[4].endswith("x")


def test_startup_times_each_command_fresh_and_forked_and_the_ways_a_forked_child_ends():
    rows = _bench("startup.py", "--forked", "--repeats", "1")
    fresh = {r[0]: r for r in rows[1:8]}
    assert fresh["genaug --help"][3] == "[0]" and fresh["genaug encode --profile missing.yaml (exit 2)"][3] == "[2]"
    assert rows[8][0] == "command" and {r[0] for r in rows[9:15]} == set(fresh) - {"python -c 'import torch'"}
    assert [r[3] for r in rows[9:15]] == [fresh[r[0]][3] for r in rows[9:15]]   # the same exits either way
    assert rows[15][0] == "how the child ends" and [r[0] for r in rows[16:]] == [
        "the interpreter's exit", "gc.freeze, then the interpreter's exit", "os._exit after the exit handlers"]
    assert all(float(r[1]) > 0 for r in rows[1:] if r[0] not in ("command", "how the child ends"))


def test_site_batchnorm_weights_and_draws_by_hand():
    import numpy as np
    import torch

    site = _load("site_batchnorm.py")
    # one NORMAL image and three PNEUMONIA, the probabilities certain: to stand half and half, the NORMAL image
    # weighs 0.5 / 0.25 and each PNEUMONIA one 0.5 / 0.75, so 2 : 2/3 : 2/3 : 2/3 of 4 in all
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    assert site.class_mix_weights(probs, np.array([0.5, 0.5])) == pytest.approx([0.5, 1 / 6, 1 / 6, 1 / 6])
    labels = np.array([0] * 30 + [1] * 70)
    drawn = site.with_share(np.arange(100), labels, 0.5, np.random.default_rng(0))
    assert len(drawn) == 60 and (labels[drawn] == 0).sum() == 30 and len(set(drawn)) == 60
    # the statistics: the plain average of each batch's mean and (unbiased) variance, 64 images a batch;
    # a last batch of one image, which has no variance, is left out
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(1))
    model[0].running_mean.fill_(9.0)
    images = np.concatenate([np.full((64, 2, 2), 51, np.uint8), np.zeros((64, 2, 2), np.uint8),
                             np.full((1, 2, 2), 255, np.uint8)])
    images[0, 0, 0] = 255
    adapted = site.with_site_statistics(model, images)
    first = images[:64].astype(float) / 255
    assert adapted[0].running_mean.item() == pytest.approx(first.mean() / 2, abs=1e-6)
    assert adapted[0].running_var.item() == pytest.approx(first.var(ddof=1) / 2, abs=1e-6)
    assert model[0].running_mean.item() == 9.0 and not adapted.training   # the model given is left as it was


def test_norm_swap_trains_groupnorm_cells_and_resumes_only_its_own_runs(tmp_path, tiny):
    from conftest import make_folder_dataset
    data = make_folder_dataset(tmp_path / "data", {"train": 24, "test": 4})
    r = subprocess.run([sys.executable, str(BENCH / "norm_swap.py"), "--groups", "4", "benchmark", "--profile",
                        str(tiny), "--data", str(data), "--models", "cnn", "--variants", "real", "--save-models",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    run = next((tmp_path / "o" / "benchmark").iterdir())
    assert "GroupNorm(4, C)" in (run / "norm_swap.txt").read_text()
    state = torch.load(run / "models" / "cnn__real__f1__seed0.pt", weights_only=True)["model"]
    assert not any("running_mean" in k for k in state)   # GroupNorm keeps no running statistics
    assert json.loads((run / "cells" / "cnn__real__f1__seed0.json").read_text())["test_probs"]
    # a plain run resumed by the script would mix BatchNorm and GroupNorm cells in one table
    (run / "norm_swap.txt").unlink()
    r = subprocess.run([sys.executable, str(BENCH / "norm_swap.py"), "benchmark", "--resume", str(run)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "has no norm_swap.txt" in r.stderr
