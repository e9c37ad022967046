import csv
import io
import json
import math
import re
import os
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genaug.benchmark import (TrainSet, aggregate, build_training_sets, check_provenance, inputs_within_training,
                              subsample_notes)
from genaug.config import Config
from genaug.errors import CheckpointError, ConfigError, DataError
from genaug.data import load_data
from genaug.device import cpu_has_bf16

from conftest import TINY, make_folder_dataset
from test_cli import genaug, only_run


@pytest.fixture(scope="module")
def bundle():
    return load_data("demo", 16, demo_train=60)


def fake_synthetic(bundle, n=30):
    syn = {c: np.full((n, 16, 16), 7, np.uint8) for c in bundle.classes}
    names = {c: [f"{c}/synthetic_{c}_0_{i:05d}.png" for i in range(n)] for c in bundle.classes}
    return syn, names


def predicted(images: Path, checkpoint: Path) -> list[float]:
    """`genaug predict`'s P(PNEUMONIA) for each image, sorted: a cell keeps its probabilities in test order,
    predict in file order, so the two compare as sorted lists."""
    r = genaug("predict", images, "--checkpoint", checkpoint)
    assert r.returncode == 0, r.stderr[-2000:]
    return sorted(float(row["p_PNEUMONIA"]) for row in csv.DictReader(io.StringIO(r.stdout)))


def scored(cell: dict) -> list[float]:
    """The cell's test P(PNEUMONIA), sorted as `predicted` sorts them."""
    return sorted(p[1] for p in cell["test_probs"])


def test_mixed_set_counts_and_provenance(bundle):
    cfg = Config()
    cfg.benchmark.synthetic_ratio = 0.5
    syn, names = fake_synthetic(bundle)
    keep = np.arange(len(bundle.train))
    train, val, test = build_training_sets(bundle, "mixed", keep, cfg, syn, names, None)
    counts = bundle.train.class_counts(2)
    assert len(train.x) == len(bundle.train) + sum(round(0.5 * c) for c in counts)
    assert sum(p.startswith("synthetic:") for p in train.provenance) == sum(round(0.5 * c) for c in counts)
    check_provenance(train, val, test, bundle)  # passes
    assert all(p.startswith("real:") for p in val.provenance + test.provenance)
    cfg.benchmark.balance = True
    train_b, _, _ = build_training_sets(bundle, "mixed", keep, cfg, syn, names, None)
    assert (train_b.y == 0).sum() == (train_b.y == 1).sum()


def test_a_gan_of_some_classes_augments_those_in_mixed_cells_and_is_refused_where_it_cannot(bundle, capsys):
    # the demo's training split: NORMAL 14, PNEUMONIA 38; a GAN run of PNEUMONIA only (genaug gan --class PNEUMONIA)
    from genaug.benchmark import check_synthetic_classes, unaugmented_class_notes, train_class_counts
    from genaug.errors import CheckpointError
    syn, names = fake_synthetic(bundle)
    only_pneumonia = {"PNEUMONIA": syn["PNEUMONIA"]}
    cfg = Config()
    cfg.benchmark.synthetic_ratio = 0.5
    check_synthetic_classes(Path("g"), only_pneumonia, bundle, cfg, {"real", "mixed"})
    assert "mixed cells add synthetic images of PNEUMONIA only: GAN run g has no synthetic images of NORMAL" in \
        capsys.readouterr().out
    keep = np.arange(len(bundle.train))
    train, _, _ = build_training_sets(bundle, "mixed", keep, cfg, only_pneumonia, names, None)
    counts = train_class_counts(train, bundle.classes)
    assert counts == {"NORMAL": {"real": 14, "synthetic": 0}, "PNEUMONIA": {"real": 38, "synthetic": 19}}
    assert unaugmented_class_notes([{"variant": "mixed", "train_class_counts": counts}], bundle.classes) == [
        "mixed cells add synthetic images of PNEUMONIA only, none of NORMAL: the GAN run has none of that class"]
    with pytest.raises(CheckpointError, match="synthetic variant trains on synthetic images alone and needs every class"):
        check_synthetic_classes(Path("g"), only_pneumonia, bundle, cfg, {"synthetic"})
    cfg.benchmark.balance = True   # fills NORMAL, the smaller class, which this GAN cannot
    with pytest.raises(CheckpointError, match="--balance fills NORMAL up to the largest class"):
        check_synthetic_classes(Path("g"), only_pneumonia, bundle, cfg, {"mixed"})
    check_synthetic_classes(Path("g"), {"NORMAL": syn["NORMAL"]}, bundle, cfg, {"mixed"})   # a NORMAL GAN can
    train, _, _ = build_training_sets(bundle, "mixed", keep, cfg, {"NORMAL": syn["NORMAL"]}, names, None)
    assert (train.y == 0).sum() == (train.y == 1).sum() == 38

def test_provenance_fails_when_test_or_val_reaches_training(bundle):
    cfg = Config()
    keep = np.arange(len(bundle.train))
    train, val, test = build_training_sets(bundle, "real", keep, cfg, None, None, None)
    leak = TrainSet(train.x, train.y, train.provenance[:-1] + [f"real:{bundle.test.paths[0]}"])
    with pytest.raises(AssertionError, match="test/val images in training"):
        check_provenance(leak, val, test, bundle)
    leak = TrainSet(train.x, train.y, train.provenance[:-1] + [f"real:{bundle.val.paths[0]}"])
    with pytest.raises(AssertionError, match="test/val images in training"):
        check_provenance(leak, val, test, bundle)
    swapped = TrainSet(test.x, test.y, ["synthetic:x.png"] + test.provenance[1:])
    with pytest.raises(AssertionError, match="not exactly the real test split"):
        check_provenance(train, val, swapped, bundle)


def _cell(model, variant, seed, correct, n=40):
    y = [0] * (n // 2) + [1] * (n // 2)
    probs = [[0.9, 0.1] if (lab == 0) == ok else [0.1, 0.9] for lab, ok in zip(y, correct)]
    m = {"accuracy": float(np.mean(correct)), "roc_auc": 0.5, "sensitivity": 0.5, "specificity": 0.5, "f1_macro": 0.5}
    return {"model": model, "variant": variant, "train_fraction": 1.0, "seed": seed, "threshold": 0.5,
            "test_probs": probs, "test_labels": y, "test_at_val_threshold": m, "test_at_0.5": m,
            "seconds_per_epoch": 1.0, "train_seconds": 2.0, "epochs_run": 2, "train_images_per_second": 10.0,
            "n_train": 100, "n_train_synthetic": 0}


def test_aggregate_mean_std_and_paired_comparison():
    base = np.ones(40, bool)
    base[:10] = False                                   # real: 30/40 right
    better = np.ones(40, bool)                          # mixed: 40/40 right, on the same images
    cells = [_cell("cnn", "real", s, base) for s in (0, 1)] + [_cell("cnn", "mixed", s, better) for s in (0, 1)]
    out = aggregate(cells, ["N", "P"], n_boot=200)
    rows = {r["variant"]: r for r in out["table"]}
    assert rows["real"]["accuracy_thr_mean"] == pytest.approx(0.75) and rows["real"]["accuracy_thr_std"] == 0
    comp = out["comparisons"][0]
    assert comp["accuracy_difference"]["diff"] == pytest.approx(0.25)
    # two seeds on the same 40 images are not 80 independent pairs: the same 10 images decide both
    assert comp["these_runs"]["p_value"] == pytest.approx(2 * 0.5 ** 10)
    # the seeds agree, so resampling them adds nothing: B is ahead in every resample
    assert comp["accuracy_difference"]["ci"][0] > 0 and comp["accuracy_difference"]["p_value"] == 0
    assert [m["seed"] for m in comp["mcnemar_per_seed"]] == [0, 1]
    # these cells' thresholds are 0.5, so the difference at 0.5 is the same
    assert comp["accuracy_difference_at_0.5"]["diff"] == pytest.approx(0.25)
    assert all(m["only_b_correct"] == 10 for m in comp["mcnemar_per_seed"])
    # calibration: real puts p 0.9 on 30 images of which 20 are positive (gap 0.233) and 0.1 on 10
    # negatives (gap 0.1): 0.75 * 0.233 + 0.25 * 0.1 = 0.2; mixed is right everywhere at 0.9 / 0.1: 0.1.
    # These cells kept no validation probabilities, which the report shows as a dash.
    assert rows["real"]["ece_test_mean"] == pytest.approx(0.2, abs=1e-6)
    assert rows["mixed"]["ece_test_mean"] == pytest.approx(0.1, abs=1e-6)
    assert math.isnan(rows["real"]["ece_val_mean"])
    from genaug.report import calibration_section
    assert "| cnn | real | 1 | 2 | – | 0.200 ± 0.000 |" in calibration_section(out["table"], ["N", "P"])


def _pooled_cell(seed, test_p1, val_p1, own_threshold):
    cell = _cell("cnn", "real", seed, np.ones(4, bool), n=4)
    cell.update(test_probs=[[1 - p, p] for p in test_p1], threshold=own_threshold,
                val_probs=[[1 - p, p] for p in val_p1], val_labels=[0, 0, 1, 1])
    return cell


def test_seed_ensemble_chooses_its_threshold_on_pooled_validation_probabilities():
    # test labels 0,0,1,1; pooled test p1 = (0.3, 0.4, 0.68, 0.9); pooled val p1 = (0.2, 0.5, 0.7, 0.8),
    # where Youden's J first reaches 1 at 0.7 -> predictions 0,0,0,1 on test: 3 of 4 right.
    # The runs' own thresholds (0.6 and 0.7) average 0.65 -> 0,0,1,1: 4 of 4, which is what cells
    # without validation probabilities fall back to.
    cells = [_pooled_cell(0, (0.2, 0.4, 0.66, 0.9), (0.1, 0.5, 0.6, 0.9), 0.6),
             _pooled_cell(1, (0.4, 0.4, 0.70, 0.9), (0.3, 0.5, 0.8, 0.7), 0.7)]
    ens = aggregate(cells, ["N", "P"], n_boot=20)["table"][0]["seed_ensemble"]
    assert ens["threshold"] == pytest.approx(0.7) and ens["threshold_from"] == "pooled validation"
    assert ens["accuracy"] == pytest.approx(0.75) and ens["roc_auc"] == pytest.approx(1.0)
    assert ens["sensitivity"] == pytest.approx(0.5) and ens["specificity"] == pytest.approx(1.0)
    for c in cells:
        del c["val_probs"], c["val_labels"]
    ens = aggregate(cells, ["N", "P"], n_boot=20)["table"][0]["seed_ensemble"]
    assert ens["threshold"] == pytest.approx(0.65) and ens["threshold_from"] == "mean of the runs' thresholds"
    assert ens["accuracy"] == pytest.approx(1.0)


def test_three_class_rows_carry_macro_and_per_class_metrics():
    from genaug.metrics import classification_metrics
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    probs = torch.eye(3)[torch.tensor([0, 1, 1, 1, 2, 0])] * 0.8 + 0.2 / 3   # 4 of 6 right
    m = classification_metrics(y, probs, ["N", "B", "V"])
    cell = {"model": "cnn", "variant": "real", "train_fraction": 1.0, "seed": 0, "fold": None, "threshold": 0.5,
            "test_at_val_threshold": m, "test_at_0.5": m, "test_labels": y.tolist(), "test_probs": probs.tolist(),
            "seconds_per_epoch": 1.0, "train_seconds": 1.0, "epochs_run": 1, "train_images_per_second": 1.0,
            "n_train": 6, "n_train_synthetic": 0}
    row = aggregate([cell], ["N", "B", "V"], n_boot=20)["table"][0]
    assert row["accuracy_thr_mean"] == pytest.approx(4 / 6)
    # recall per class: N 1/2, B 2/2, V 1/2 -> macro 2/3; no binary 'sensitivity' key, so the macro one stands in
    assert row["per_class"]["B"]["recall"] == pytest.approx(1.0) and row["per_class"]["N"]["recall"] == pytest.approx(0.5)
    assert row["sensitivity_thr_mean"] == pytest.approx(2 / 3)
    assert row["specificity_thr_mean"] == pytest.approx(m["specificity_macro"])
    # calibration of the top class: 0.8 + 0.2/3 on every image, right on 4 of 6, so a gap of 0.2;
    # with no threshold to choose, the report's note does not speak of one
    assert row["ece_test_mean"] == pytest.approx(0.2, abs=1e-6)
    from genaug.report import calibration_section
    section = "\n".join(calibration_section([row], ["N", "B", "V"]))
    assert "its most probable class" in section and "threshold" not in section


@pytest.mark.slow
def test_saved_models_predict_the_test_split_as_their_cells_scored_it(tmp_path, tiny):
    # what genaug predict reads from files must be what the benchmark tested: the same decoding and size, and
    # for an encoded cell the same autoencoder and float16 latents, so the probabilities agree image by image
    data = make_folder_dataset(tmp_path / "data", {"train": 40, "test": 6})
    (data / "train" / "PNEUMONIA" / "person999_virus_1.jpeg").write_bytes(b"nope")
    r = genaug("benchmark", "--profile", tiny, "--data", data, "--variants", "real,encoded", "--save-models",
               "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-3000:]
    run = only_run(tmp_path / "o", "benchmark")
    # the report says what the data left unread (log.txt alone did before session 56)
    assert (f"- 1 file under {data} was not read (e.g. train/PNEUMONIA/person999_virus_1.jpeg: not an image); "
            f"genaug data info --data {data} lists each and why") in (run / "report.md").read_text()
    for variant in ("real", "encoded"):
        cell = json.loads((run / "cells" / f"cnn__{variant}__f1__seed0.json").read_text())
        got = predicted(data / "test", run / "models" / f"cnn__{variant}__f1__seed0.pt")
        assert len(got) == len(cell["test_probs"]) == 12
        assert got == pytest.approx(scored(cell), abs=1e-5), variant
    # explain reads images through the autoencoder too, and its heatmap covers the image, not the 14x14 latent
    r = genaug("explain", data / "test" / "NORMAL", "--checkpoint", run / "models" / "cnn__encoded__f1__seed0.pt",
               "--out", tmp_path / "ex")
    assert r.returncode == 0 and "wrote 6 Grad-CAM overlays" in r.stdout, r.stderr[-2000:]
    from PIL import Image
    heat = sorted(only_run(tmp_path / "ex", "explain").glob("*_gradcam.png"))[0]
    # the 32 px image and its overlay side by side, each pixel 8 x 8 to be at least 256 px tall (session 86)
    assert Image.open(heat).size == (2 * 256, 256)

def readme_python_block(**paths) -> dict:
    """Run README.md's "From Python" block with its example paths replaced by ``paths``; its names after."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"## From Python\n.*?```python\n(.*?)```", readme, flags=re.S).group(1)
    for name, value in paths.items():
        if name == "xrays":
            code = code.replace('"xrays/"', repr(str(value)))
        else:
            code, n = re.subn(rf'^{name} = "[^"]*"', f"{name} = {str(value)!r}", code, flags=re.M)
            assert n == 1, name
    names: dict = {}
    exec(compile(code, "README.md", "exec"), names)
    return names


@pytest.mark.slow
def test_benchmark_end_to_end_on_tiny_demo_and_resume(tmp_path, tiny):
    out = tmp_path / "o"
    r = genaug("benchmark", "--profile", tiny, "--variants", "real,mixed,synthetic,encoded", "--save-models",
               "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    first = r
    run = only_run(out, "benchmark")
    # before the first cell, about how long the cells take at their full epochs, from a step of each model timed now
    assert re.search(r"\n4 cells to train here: about (\d+m?\d*s|a second) on cpu if every cell runs all its epochs "
                     r"\(a training step", r.stdout)
    # each epoch's losses on the console, also where no progress bar shows (here: no terminal)
    assert len(re.findall(r"\n    epoch 1 of 1: train \d\.\d{4} val \d\.\d{4} \(\d+\.\d s\)\n", r.stdout)) == 3
    assert re.search(r"\n    epoch 2 of 2: train \d\.\d{4} val \d\.\d{4} \(\d+\.\d s\)\n", r.stdout)   # the latent CNN
    # each cell's first line says what it trains on
    assert re.search(r"\] cnn__real__f1__seed0: \d+ training images\n", r.stdout)
    assert re.search(r"\] cnn__mixed__f1__seed0: \d+ training images \([1-9]\d* synthetic\)\n", r.stdout)
    assert re.search(r"\] cnn__synthetic__f1__seed0: \d+ training images \(all synthetic\)\n", r.stdout)
    assert re.search(r"\] cnn__encoded__f1__seed0: \d+ training images \(as latents\)\n", r.stdout)
    # its own GAN writes as many images as the cells ask, past the profile's gan.n of 12 (session 56): the
    # synthetic cell trains on as many images as the real one
    assert "its GAN writes 51 images a class, not gan.n's 12: the cells ask 51 of PNEUMONIA" in r.stdout
    n_train = {v: json.loads((run / "cells" / f"cnn__{v}__f1__seed0.json").read_text())["n_train"]
               for v in ("real", "synthetic")}
    assert n_train["real"] == n_train["synthetic"] == 69, n_train
    # saved models serve genaug predict with their own preprocessing (an encoded one with its autoencoder)
    assert sorted(p.name for p in (run / "models").glob("*.pt")) == [
        f"cnn__{v}__f1__seed0.pt" for v in ("encoded", "mixed", "real", "synthetic")]
    assert sorted(p.name for p in (run / "models").glob("*.safetensors")) == [
        f"cnn__{v}__f1__seed0.safetensors" for v in ("mixed", "real", "synthetic")]
    imgs = make_folder_dataset(tmp_path / "new", {"train": 2, "test": 1}, size=40) / "train"
    (imgs / "NORMAL" / "notes.png").write_text("not an image")
    r = genaug("predict", imgs, "--checkpoint", run / "models" / "cnn__real__f1__seed0.pt")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 4 and {row["prediction"] for row in rows} <= {"NORMAL", "PNEUMONIA"}
    assert all(abs(float(row["p_NORMAL"]) + float(row["p_PNEUMONIA"]) - 1) < 1e-4 for row in rows)
    thr = torch.load(run / "models" / "cnn__real__f1__seed0.pt", weights_only=True)["threshold"]
    assert all(float(row["threshold_PNEUMONIA"]) == pytest.approx(thr, abs=1e-6) for row in rows)
    assert all(row["prediction"] == ("PNEUMONIA" if float(row["p_PNEUMONIA"]) >= thr else "NORMAL") for row in rows)
    assert "skipped" in r.stderr and "notes.png" in r.stderr
    # the README's "From Python" block, on this run's own inputs and saved model, gives what the commands do
    manifest = json.loads((run / "manifest.json").read_text())
    names = readme_python_block(encode_run=manifest["encode_run"],
                                generator=Path(manifest["gan_run"]) / "generator-conditional.pt",
                                classifier=run / "models" / "cnn__real__f1__seed0.pt", xrays=imgs)
    assert names["ae"].training is False
    assert tuple(names["z"].shape) == (2, 16, 2, 2) and tuple(names["x"].shape) == (2, 1, 32, 32)   # TINY's sizes
    gen_size = torch.load(Path(manifest["gan_run"]) / "generator-conditional.pt", weights_only=True)["image_size"]
    assert names["images"].shape == (16, gen_size, gen_size) and names["images"].dtype == np.uint8
    assert [row["prediction"] for row in rows] == names["predicted"] and len(names["skipped"]) == 1
    assert [float(row["p_PNEUMONIA"]) for row in rows] == pytest.approx(names["probs"][:, 1].tolist(), abs=1e-6)
    # several targets, as a shell glob gives them; a file named again, or inside a named folder, once
    one = sorted((imgs / "PNEUMONIA").glob("*.jpeg"))[0]
    r = genaug("predict", one, imgs / "NORMAL", one, "--checkpoint", run / "models" / "cnn__real__f1__seed0.pt")
    assert r.returncode == 0, r.stderr[-2000:]
    assert [row["file"] for row in csv.DictReader(io.StringIO(r.stdout))] == [str(one)] + sorted(
        str(q) for q in (imgs / "NORMAL").glob("*.jpeg"))
    r = genaug("predict", imgs / "NORMAL" / "notes.png", "--checkpoint", run / "models" / "cnn__real__f1__seed0.pt")
    assert r.returncode == 2 and "no image given could be read (" in r.stderr and "not an image" in r.stderr
    # explain takes the images as predict does (or as --image), and once
    r = genaug("explain", imgs, "--checkpoint", run / "models" / "cnn__real__f1__seed0.pt",
               "--class", "pneumonia", "--out", tmp_path / "ex")   # in any case
    assert r.returncode == 0, r.stderr[-2000:]
    ex = only_run(tmp_path / "ex", "explain")
    rows = list(csv.DictReader((ex / "explanations.csv").open()))
    log = (ex / "log.txt").read_text()   # what the console said, the skipped file too
    assert "skipped" in log and "notes.png" in log and "wrote 4 Grad-CAM overlays" in log
    assert len(rows) == 4 and {row["explained_class"] for row in rows} == {"PNEUMONIA"}
    assert {row["prediction"] for row in rows} <= {"NORMAL", "PNEUMONIA"}   # predict's, beside the class asked
    assert all((ex / row["heatmap"]).is_file() for row in rows)
    r = genaug("explain", one, imgs / "NORMAL", "--checkpoint", run / "models" / "cnn__real__f1__seed0.pt",
               "--out", tmp_path / "ex2")
    assert r.returncode == 0 and "wrote 3 Grad-CAM overlays" in r.stdout, r.stderr[-2000:]
    r = genaug("explain", "--image", imgs, "--checkpoint", run / "models" / "cnn__real__f1__seed0.pt",
               "--class", "COVID", "--out", tmp_path / "ex-bad")
    assert r.returncode == 2 and "unknown class 'COVID'" in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "ex-bad").glob("explain/*"))   # no empty run left behind
    for given in ((), (imgs, "--image", imgs)):
        r = genaug("explain", *given, "--checkpoint", run / "models" / "cnn__real__f1__seed0.pt", "--out", tmp_path / "ex-bad")
        assert r.returncode == 2 and "give" in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "ex-bad").exists() or not list((tmp_path / "ex-bad").glob("explain/*"))
    (tmp_path / "empty").mkdir()
    r = genaug("predict", tmp_path / "empty", "--checkpoint", run / "models" / "cnn__real__f1__seed0.pt")
    assert r.returncode == 2 and "no images" in r.stderr
    r = genaug("predict", imgs, "--checkpoint", run / "config.yaml")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = genaug("predict", imgs, "--checkpoint", run)   # four models saved: which is for the user to say
    assert r.returncode == 2 and r.stderr.startswith(f"genaug: error: classifier checkpoint {run} is a folder; give one "
                                                     f"of the checkpoints in it: {run / 'models' / 'cnn__encoded__f1__seed0.pt'}")
    for name in ("results.csv", "results.json", "report.md", "report.html", "roc.png", "threshold_sweep.png", "confusion.png",
                 "training_curves.png", "synthetic_samples.png", "reconstructions.png", "config.yaml",
                 "manifest.json", "log.txt"):
        assert (run / name).is_file(), name
    assert not (run / "partial").exists(), "a finished run keeps no empty folder of unfinished training state"
    log = (run / "log.txt").read_text()   # each cell's record: when it began, what it scored, how long it took
    for v in ("encoded", "mixed", "real", "synthetic"):
        assert re.search(rf"INFO \[\d/4\] cnn__{v}__f1__seed0: \d+ training images", log), v
        assert re.search(rf"INFO cnn__{v}__f1__seed0: test accuracy 0\.\d+ \(0\.5: 0\.\d+\), ROC-AUC", log), v
        assert f"INFO cnn__{v}__f1__seed0: took " in log
    assert "INFO In short:\n- " in log   # the answer, in the log as on the console (session 54)
    cells = sorted(p.name for p in (run / "cells").glob("*.json"))
    assert cells == [f"cnn__{v}__f1__seed0.json" for v in ("encoded", "mixed", "real", "synthetic")]
    res = json.loads((run / "results.json").read_text())
    assert {r["variant"] for r in res["table"]} == {"real", "mixed", "synthetic", "encoded"}
    assert {c["variant"] for c in res["comparisons"]} == {"mixed", "synthetic", "encoded"}
    # one seed: p is McNemar's exact test
    assert all([m["p_value"] for m in c["mcnemar_per_seed"]] == [c["accuracy_difference"]["p_value"]]
               for c in res["comparisons"])
    assert any("equal epochs, not equal compute" in n for n in res["notes"])
    # the autoencoder wrote 2 augmented views per image, and the encoded cell trained on all 3 encodings
    enc_cell = json.loads((run / "cells" / "cnn__encoded__f1__seed0.json").read_text())
    assert enc_cell["latent_views"] == 2 and enc_cell["input_shape"] == [16, 2, 2]
    assert any(n.startswith("encoded cells train on 1 + 2 encodings") for n in res["notes"])
    assert [h["epoch"] for h in enc_cell["history"]] == [1, 2]   # latent_epochs, not the pixel models' 1
    report = (run / "report.md").read_text()
    assert "The latent CNN (encoded cells): 2 epochs max" in report
    assert "## Calibration (expected calibration error)" in report and "| ECE validation | ECE test |" in report
    assert "ece_val_mean,ece_test_mean" in (run / "results.csv").read_text().splitlines()[0]
    assert report.count("Speed in these cells") == 1 and "train fraction 1: " in report
    assert "demo phantoms" in report and "quoted, not measured" in report and "(1 run)" in report
    assert "| 95% CI (seeds and images) | p | McNemar p by seed |" in report
    # the answer first: one line per variant against real, above the tables, and again at the terminal's end
    short = report.split("## In short")[1].split("## Results")[0]
    assert short.count("against real:") == 3 and "synthetic only (trained on synthetic, tested on real)" in short
    assert "With one paired run" in short and "the latent CNN took" in short
    assert first.stdout.rfind("In short:") > first.stdout.rfind("## ")
    cell = json.loads((run / "cells" / "cnn__real__f1__seed0.json").read_text())
    assert cell["n_test"] == len(cell["test_labels"]) and cell["n_train_synthetic"] == 0
    # where each cell ran, so that a rerun elsewhere can be told apart from a change in the code
    assert cell["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and cell["machine"]["cpu"]
    assert json.loads((run / "manifest.json").read_text())["machine"]["cpu_count"] == os.cpu_count()
    assert sum(v["real"] for v in cell["train_class_counts"].values()) == cell["n_train"]
    mixed = json.loads((run / "cells" / "cnn__mixed__f1__seed0.json").read_text())["train_class_counts"]
    assert {k: v["real"] for k, v in mixed.items()} == {k: v["real"] for k, v in cell["train_class_counts"].items()}
    assert all(v["synthetic"] > 0 for v in mixed.values())
    # rerun with --resume: every cell is kept, nothing retrained
    before = {p.name: p.stat().st_mtime_ns for p in (run / "cells").glob("*.json")}
    r = genaug("benchmark", "--resume", run)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "4 of 4 cells done earlier, kept" in r.stdout
    assert before == {p.name: p.stat().st_mtime_ns for p in (run / "cells").glob("*.json")}
    # a resumed run may add seeds (cells accumulate) but not change how cells train
    r = genaug("benchmark", "--resume", run, "--variants", "real", "--seeds", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "1 of 2 cells done earlier, kept" in r.stdout and (run / "cells" / "cnn__real__f1__seed1.json").is_file()
    assert before == {p.name: p.stat().st_mtime_ns for p in (run / "cells").glob("*.json") if p.name in before}
    res = json.loads((run / "results.json").read_text())
    assert [r["seeds"] for r in res["table"] if r["variant"] == "real"] == [[0, 1]]
    assert {r["variant"] for r in res["table"]} == {"real", "mixed", "synthetic", "encoded"}
    # two seeds of real: pooled into one classifier, thresholded on their pooled validation probabilities
    ens = next(r["seed_ensemble"] for r in res["table"] if r["variant"] == "real")
    assert ens["threshold_from"] == "pooled validation" and 0 <= ens["accuracy"] <= 1
    assert "## Seed ensembles" in (run / "report.md").read_text()
    for changed in (["--epochs", "9"], ["--lr", "0.01"]):
        r = genaug("benchmark", "--resume", run, *changed)
        assert r.returncode == 2 and "keeps its training settings" in r.stderr and "Traceback" not in r.stderr
    # a better autoencoder later: only with --supersede, and only the encoded cell is retrained
    first_enc = json.loads((run / "manifest.json").read_text())["encode_run"]
    r = genaug("encode", "--profile", tiny, "--out", out, "--name", "second")
    assert r.returncode == 0, r.stderr[-2000:]
    second_enc = next(p for p in (out / "encode").iterdir() if p.name.endswith("-second"))
    r = genaug("benchmark", "--resume", run, "--encode-run", second_enc)
    assert r.returncode == 2 and "--supersede" in r.stderr and "Traceback" not in r.stderr
    before = {p.name: p.stat().st_mtime_ns for p in (run / "cells").glob("*.json")}
    r = genaug("benchmark", "--resume", run, "--encode-run", second_enc, "--supersede")
    assert r.returncode == 0, r.stderr[-2000:]
    aside = run / f"superseded-{Path(first_enc).name}"
    assert [p.name for p in aside.iterdir()] == ["cnn__encoded__f1__seed0.json"]
    after = {p.name: p.stat().st_mtime_ns for p in (run / "cells").glob("*.json")}
    # the run has 2 seeds by now, so both encoded seeds train on the new latents; nothing else retrains
    assert set(after) == set(before) | {"cnn__encoded__f1__seed1.json"}
    assert [k for k in before if after[k] != before[k]] == ["cnn__encoded__f1__seed0.json"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert Path(manifest["encode_run"]) == second_enc
    assert manifest["superseded"][0]["cells_moved"] == 1 and manifest["superseded"][0]["old"] == first_enc
    assert f"are kept in {aside.name}/ and are not in these tables" in (run / "report.md").read_text()
    # an archive keeps the results (e.g. for version control) without weights, latents or real X-rays
    r = genaug("archive", run, "--to", tmp_path / "arch")
    assert r.returncode == 0, r.stderr[-2000:]
    arch = tmp_path / "arch" / "benchmark" / run.name
    kept = {p.relative_to(arch).as_posix() for p in arch.rglob("*") if p.is_file()}
    assert {"report.md", "results.json", "config.yaml", "manifest.json", "log.txt", "roc.png",
            "synthetic_samples.png", "cells/cnn__real__f1__seed1.json", "archived.json"} <= kept
    assert any(k.startswith("inputs/gan/") and k.endswith("quality.md") for k in kept)
    assert not [k for k in kept if k.endswith((".pt", ".safetensors", ".npy")) or "reconstructions" in k
                or "memorization" in k or k.startswith("models/") or "/latents/" in k or "/synthetic/" in k]
    left = {d["file"]: d["why"] for d in json.loads((arch / "archived.json").read_text())["left_out"]}
    assert left["reconstructions.png"] == "shows real X-rays" and left["models/"] == "weights"
    # the archived reports say why the grid is missing instead of pointing at a picture that is not there
    assert "](reconstructions.png)" in (run / "report.md").read_text()
    assert "](reconstructions.png)" not in (arch / "report.md").read_text()
    assert 'src="reconstructions.png"' not in (arch / "report.html").read_text()
    assert "(reconstructions.png is not in this archive: shows real X-rays)" in (arch / "report.md").read_text()
    # a report rewritten inside the archive, while the autoencoder run is still there, brings back no real X-rays
    r = genaug("benchmark", "--resume", arch, "--report-only")
    assert r.returncode == 0, r.stderr[-2000:]
    assert not (arch / "reconstructions.png").exists() and (arch / "report.md").is_file()
    assert "reconstructions.png)" not in (arch / "report.md").read_text()
    # the run and its own GAN and encode runs (under inputs/) are gone, as on a new machine: the
    # archive still reports, adds cells that need neither, and says plainly when a cell needs one
    shutil.rmtree(run)
    r = genaug("benchmark", "--resume", arch, "--variants", "real", "--seeds", "3")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((arch / "results.json").read_text())
    assert [r["seeds"] for r in res["table"] if r["variant"] == "real"] == [[0, 1, 2]]
    assert {r["variant"] for r in res["table"]} == {"real", "mixed", "synthetic", "encoded"}
    assert "synthetic_samples.png" in (arch / "report.md").read_text()
    r = genaug("benchmark", "--resume", arch, "--variants", "mixed", "--seeds", "3")
    assert r.returncode == 2 and "is gone" in r.stderr and "--supersede" in r.stderr and "Traceback" not in r.stderr
    r = genaug("archive", tmp_path / "arch", "--to", tmp_path / "arch2")
    assert r.returncode == 2 and "not a genaug run" in r.stderr


def test_mismatched_gan_run_is_refused(tmp_path):
    gan_dir = tmp_path / "g"
    gan_dir.mkdir()
    (gan_dir / "config.yaml").write_text("data:\n  data: demo\n  task: 3class\n  split_seed: 0\n  val_fraction: 0.1\n")
    r = genaug("benchmark", "--data", "demo", "--variants", "mixed", "--gan-run", gan_dir, "--out", tmp_path / "o")
    assert r.returncode == 2 and "data.task='3class'" in r.stderr
    # images drawn by `genaug gan sample` are checked against the GAN run whose generator drew them
    sample_dir = tmp_path / "s"
    sample_dir.mkdir()
    (sample_dir / "manifest.json").write_text(json.dumps({"command": "gan-sample"}))
    (sample_dir / "config.yaml").write_text(f"checkpoint: {gan_dir / 'generator-conditional.pt'}\nn: 5\n")
    r = genaug("benchmark", "--data", "demo", "--variants", "synthetic", "--gan-run", sample_dir, "--out", tmp_path / "o")
    assert r.returncode == 2 and f"GAN run {sample_dir} was made with data.task='3class'" in r.stderr
    (sample_dir / "config.yaml").write_text(f"checkpoint: {tmp_path / 'gone' / 'generator-conditional.pt'}\n")
    r = genaug("benchmark", "--data", "demo", "--variants", "synthetic", "--gan-run", sample_dir, "--out", tmp_path / "o")
    assert r.returncode == 2 and "whose genaug gan run is gone or moved" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()   # refused before a run directory was made


@pytest.mark.slow
def test_kfold_schedule_augmentation_switches_and_tensorboard(tmp_path):
    prof = tmp_path / "tiny.yaml"
    prof.write_text(TINY.replace("epochs: 1\n  batch_size: 16\n  bootstrap", "epochs: 3\n  batch_size: 16\n  bootstrap"))
    out = tmp_path / "o"
    r = genaug("benchmark", "--profile", prof, "--variants", "real", "--folds", 2, "--schedule", "onecycle",
               "--lr", "0.004", "--threads", "1", "--augmentations", "flip,shear,noise,pca", "--tensorboard", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    run = only_run(out, "benchmark")
    assert sorted(p.name for p in (run / "cells").glob("*.json")) == [
        "cnn__real__f1__seed0__fold0.json", "cnn__real__f1__seed0__fold1.json"]
    cells = [json.loads(p.read_text()) for p in sorted((run / "cells").glob("*.json"))]
    # the two folds validate on disjoint patients and train on the rest; the test split never moves
    assert [c["fold"] for c in cells] == [0, 1] and cells[0]["n_val"] + cells[1]["n_val"] == \
        cells[0]["n_val"] + cells[0]["n_train"]
    assert cells[0]["test_labels"] == cells[1]["test_labels"]
    assert "fold 1 of 2" in cells[0]["val_origin"] and "fold 2 of 2" in cells[1]["val_origin"]
    lrs = [h["lr"] for h in cells[0]["history"]]
    assert lrs[0] < lrs[1]   # one-cycle warms up
    assert 1e-3 < max(lrs) <= 0.004   # to --lr, not to the default 1e-3
    res = json.loads((run / "results.json").read_text())
    assert res["table"][0]["folds"] == [0, 1] and res["table"][0]["replicates"] == 2
    assert res["config"]["benchmark"]["augmentations"] == "flip,shear,noise,pca"
    assert res["config"]["benchmark"]["lr"] == 0.004
    assert res["config"]["run"]["threads"] == 1 and cells[0]["machine"]["threads"] == 1
    report = (run / "report.md").read_text()
    assert "2-fold cross-validation" in report and "seeds × folds" in report and "| 1x2 |" in report
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run / "tensorboard")).Reload()
    tags = acc.Tags()
    assert "cnn__real__f1__seed0__fold0/loss/val" in tags["scalars"]
    assert "cnn__real__f1__seed0__fold1/lr" in tags["scalars"]
    assert any(t.startswith("cnn__real__f1__seed0__fold0/weights/") for t in tags["histograms"])
    # a bad switch is one line, exit 2
    r = genaug("benchmark", "--profile", prof, "--augmentations", "rotate,warp", "--out", out)
    assert r.returncode == 2 and "unknown augmentation warp" in r.stderr and "Traceback" not in r.stderr


def test_own_input_run_is_found_in_the_runs_inputs_wherever_the_run_now_is(tmp_path):
    from genaug.benchmark import own_input_run
    run = tmp_path / "moved" / "benchmark" / "20260101-000000"
    (run / "inputs" / "gan" / "20260101-000001-gan").mkdir(parents=True)
    # recorded from the directory the command ran in, before the run was moved
    assert own_input_run(run, "o/benchmark/20260101-000000/inputs/gan/20260101-000001-gan") == \
        run / "inputs" / "gan" / "20260101-000001-gan"
    assert own_input_run(run, "/elsewhere/gan/20260101-000002") == Path("/elsewhere/gan/20260101-000002")   # given
    assert own_input_run(run, "o/x/inputs/encode/20260101-000003-encode") == \
        Path("o/x/inputs/encode/20260101-000003-encode")   # not in this run: left as recorded, to be told gone
    (run / "archived.json").write_text("{}")   # an archive's inputs/ holds reports, not what cells train on
    assert own_input_run(run, "o/benchmark/20260101-000000/inputs/gan/20260101-000001-gan") == \
        Path("o/benchmark/20260101-000000/inputs/gan/20260101-000001-gan")


@pytest.mark.slow
def test_a_moved_run_resumes_with_the_gan_it_trained_itself(tmp_path, tiny):
    # a run made with a relative --out records its own GAN run from the directory the command ran in; moved,
    # or resumed from elsewhere, it said "this benchmark's GAN run ... is gone" (found in session 53)
    r = genaug("benchmark", "--profile", tiny, "--models", "cnn", "--variants", "mixed", "--seeds", 1,
               "--out", "o", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    shutil.move(tmp_path / "o", tmp_path / "moved")
    run = only_run(tmp_path / "moved", "benchmark")
    r = genaug("benchmark", "--resume", run, "--seeds", 2)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in (run / "cells").glob("*.json")) == ["cnn__mixed__f1__seed0.json",
                                                                      "cnn__mixed__f1__seed1.json"]
    own = next((run / "inputs" / "gan").iterdir())
    assert json.loads((run / "manifest.json").read_text())["gan_run"] == str(own)


@pytest.mark.slow
def test_shards_split_the_cells_and_the_last_one_writes_the_report(tmp_path, tiny):
    out = tmp_path / "o"
    r = genaug("benchmark", "--profile", tiny, "--variants", "real", "--seeds", 3, "--shard", "1/2", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    run = only_run(out, "benchmark")
    assert sorted(p.name for p in (run / "cells").glob("*.json")) == [
        "cnn__real__f1__seed0.json", "cnn__real__f1__seed2.json"]
    assert "1 of 3 cells is still with other shards" in r.stdout and not (run / "report.md").exists()
    assert f"other shards join this run with: genaug benchmark --resume {run} --shard 2/2" in r.stdout + r.stderr
    assert "report: " not in r.stdout + r.stderr   # it wrote none, so it names none
    # an interim report of the cells so far, training nothing and saying what it lacks; the manifest keeps
    # the machine that trained (a report names it for cells that kept no machine of their own)
    # It needs no accelerator: here the cells "trained on a GPU" (as an H200 run reported on a laptop), and the
    # report keeps that device where the old code refused ("no CUDA GPU is visible") or, given --device cpu,
    # wrote cpu over it.
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "machine": {"cpu": "the one that trained"},
                                                   "device": "cuda"}))
    config = (run / "config.yaml").read_text()
    assert config.count("device: cpu") == 1
    (run / "config.yaml").write_text(config.replace("device: cpu", "device: cuda"))
    r = genaug("benchmark", "--resume", run, "--report-only")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((run / "results.json").read_text())["config"]["run"]["device"] == "cuda"
    assert json.loads((run / "manifest.json").read_text())["device"] == "cuda"
    (run / "config.yaml").write_text(config)   # the shard below trains here, on the CPU
    assert len(list((run / "cells").glob("*.json"))) == 2 and not list((run / "partial").glob("*"))
    assert json.loads((run / "results.json").read_text())["table"][0]["seeds"] == [0, 2]
    assert "interim report: 1 of 3 planned cells are not trained yet (cnn__real__f1__seed1)" in (
        run / "report.md").read_text()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["missing_cells"] == 1 and "finished" not in manifest
    assert manifest["machine"] == {"cpu": "the one that trained"}
    for bad in (["--profile", tiny, "--report-only", "--out", out], ["--resume", run, "--report-only", "--seeds", 4]):
        r = genaug("benchmark", *bad)
        assert r.returncode == 2 and "--report-only reports a run as it is" in r.stderr and "Traceback" not in r.stderr
    r = genaug("benchmark", "--resume", run, "--shard", "2/2")
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"report: {run / 'report.md'}" in r.stdout + r.stderr
    assert "interim report" not in (run / "report.md").read_text()
    assert len(list((run / "cells").glob("*.json"))) == 3 and (run / "report.md").is_file()
    assert json.loads((run / "results.json").read_text())["table"][0]["seeds"] == [0, 1, 2]
    assert (run / "manifest-shard1of2.json").is_file() and (run / "manifest-shard2of2.json").is_file()
    # the same shard run again keeps its earlier run in the record the report lists
    r = genaug("benchmark", "--resume", run, "--shard", "2/2")
    assert r.returncode == 0, r.stderr[-3000:]
    argv = json.loads((run / "manifest-shard2of2.json").read_text())["resume_argv"]
    assert [a[-2:] for a in argv].count(["--shard", "2/2"]) == 2
    # shards must share the run's cells, bad shard specs and missing input runs are one-line errors
    r = genaug("benchmark", "--resume", run, "--shard", "2/2", "--seeds", 4)
    assert r.returncode == 2 and "the same command with --extend-only instead of --shard" in r.stderr
    # --extend-only records the added cells and trains none; a refused extension leaves the config as it was
    config = (run / "config.yaml").read_text()
    r = genaug("benchmark", "--resume", run, "--variants", "real,mixed", "--extend-only")
    assert r.returncode == 2 and "needs --gan-run" in r.stderr and (run / "config.yaml").read_text() == config
    r = genaug("benchmark", "--resume", run, "--variants", "real,mixed", "--gan-run", tmp_path / "nope", "--extend-only")
    assert r.returncode == 2 and f"--gan-run {tmp_path / 'nope'} not found" in r.stderr \
        and (run / "config.yaml").read_text() == config
    for bad in (["--resume", run, "--extend-only"], ["--resume", run, "--seeds", 4, "--extend-only", "--shard", "1/2"]):
        r = genaug("benchmark", *bad)
        assert r.returncode == 2 and "--extend-only adds cells to a run" in r.stderr and "Traceback" not in r.stderr
    r = genaug("benchmark", "--resume", run, "--seeds", 4, "--extend-only")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "recorded 4 cells" in r.stdout and "1 of them to train" in r.stdout
    assert len(list((run / "cells").glob("*.json"))) == 3 and "seeds: 4" in (run / "config.yaml").read_text()
    r = genaug("benchmark", "--resume", run, "--shard", "2/2")   # cells 2 and 4 of 4: seed 3 is new
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run / "cells" / "cnn__real__f1__seed3.json").is_file() and "report: " in r.stdout + r.stderr
    r = genaug("benchmark", "--profile", tiny, "--shard", "3/2", "--out", out)
    assert r.returncode == 2 and "--shard expects I/N" in r.stderr
    r = genaug("benchmark", "--profile", tiny, "--variants", "real,mixed", "--shard", "1/2", "--out", tmp_path / "o2")
    assert r.returncode == 2 and "needs --gan-run" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_three_class_task_end_to_end_through_gan_encode_and_benchmark(tmp_path):
    """--task 3class: the benchmark trains its own GAN and autoencoder on the 3 classes, and every
    cell, the per-class table and the 3x3 confusion matrices cover normal / bacteria / virus."""
    prof = tmp_path / "tiny.yaml"
    prof.write_text(TINY.replace("demo_train: 80", "demo_train: 160"))   # >= 16 viral images for the GAN
    out = tmp_path / "o"
    r = genaug("benchmark", "--data", "demo", "--task", "3class", "--profile", prof,
               "--variants", "real,mixed,encoded", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    run = only_run(out, "benchmark")
    gan_run = Path(json.loads((run / "manifest.json").read_text())["gan_run"])
    gan_classes = json.loads((gan_run / "metrics.json").read_text())
    assert set(gan_classes["classes"]) == {"NORMAL", "BACTERIA", "VIRUS"}
    for variant in ("real", "mixed", "encoded"):
        cell = json.loads((run / "cells" / f"cnn__{variant}__f1__seed0.json").read_text())
        cm = np.array(cell["test_at_val_threshold"]["confusion_matrix"])
        assert cm.shape == (3, 3) and cm.sum() == cell["n_test"]
    report = (run / "report.md").read_text()
    assert "## Per class" in report and "| VIRUS |" in report and "nan" not in report
    # no threshold with three classes: no validation-threshold or 0.5 columns that would only repeat
    assert "val thr" not in report and "(0.5)" not in report and "validation-chosen threshold" not in report
    told = [line for line in r.stdout.splitlines() if line.startswith("    test accuracy ")]
    assert len(told) == 3 and not [line for line in told if "(0.5:" in line], told   # nor in the console's
    header = next(line for line in report.splitlines() if line.startswith("| model | variant | train frac | seeds"))
    rows = [line for line in report.splitlines() if line.startswith("| cnn | real | 1 |")]
    assert header.count("|") == rows[0].count("|")
    # found in session 86: with three classes the sensitivity and specificity are means over the classes
    assert "| ROC-AUC (macro) | 95% CI AUC | sensitivity (macro) | specificity (macro) | macro F1 |" in header


@pytest.mark.slow
def test_any_n_class_folder_works_without_code_changes(tmp_path, tiny):
    """The COVID-19 Radiography layout (four classes, one with a space in its name) runs through
    the benchmark as it is: classes come from the folders, metrics and report from their count."""
    from PIL import Image

    rng = np.random.default_rng(0)
    classes = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]
    for split, n in (("train", 24), ("test", 6)):
        for k, cls in enumerate(classes):
            d = tmp_path / "covid" / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 60, (20, 20)) + 40 * k   # class k is brighter
                Image.fromarray(img.astype(np.uint8)).save(d / f"{cls}-{split}-{i}.png")
    r = genaug("benchmark", "--data", tmp_path / "covid", "--profile", tiny, "--variants", "real",
               "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-3000:]
    run = only_run(tmp_path / "o", "benchmark")
    cell = json.loads((run / "cells" / "cnn__real__f1__seed0.json").read_text())
    assert np.array(cell["test_at_val_threshold"]["confusion_matrix"]).shape == (4, 4)
    assert set(cell["test_at_val_threshold"]["f1_per_class"]) == set(classes)
    report = (run / "report.md").read_text()
    assert "| Viral Pneumonia |" in report and "nan" not in report


@pytest.mark.parametrize("cells, says", [
    ([("real", 0.1), ("mixed", 1.0), ("encoded", 1.0)], None),
    ([("real", 0.1), ("mixed", 0.1), ("encoded", 0.25)], "encoded/mixed cells at train fraction < 1"),
])
def test_subsampled_cells_say_their_gan_saw_the_whole_training_split(cells, says):
    notes = subsample_notes([{"variant": v, "train_fraction": f} for v, f in cells])
    assert (notes == []) if says is None else (len(notes) == 1 and notes[0].startswith(says) and "upper bound" in notes[0])


def test_cells_whose_inputs_saw_only_their_own_images_carry_no_upper_bound_note():
    cells = [{"variant": "mixed", "train_fraction": 0.1, "input_run_within_training": True},
             {"variant": "encoded", "train_fraction": 0.1, "input_run_within_training": False}]
    fair = "mixed cells at train fraction 0.1: the GAN or autoencoder behind them learnt only from real images"
    assert len(subsample_notes(cells[:1])) == 1 and subsample_notes(cells[:1])[0].startswith(fair)
    assert [n[:40] for n in subsample_notes(cells)] == [fair[:40], "encoded cells at train fraction < 1 use "]


def test_inputs_within_training_allows_the_whole_split_or_a_subset_and_refuses_other_images():
    whole = [f"train/A/{i}.png" for i in range(10)]
    cell = whole[:4]
    check = lambda variant, seen: inputs_within_training(  # noqa: E731
        variant, {"gan": seen, "encode": seen}, cell, whole, 0.4, "G", "E")
    assert check("real", set(whole)) is None                    # real cells have no input run
    assert check("mixed", set(whole)) is False                  # whole split: allowed, read as an upper bound
    assert check("encoded", set(whole[:2])) is True             # learnt from a part of the cell's own images
    assert check("mixed", set(cell)) is True
    with pytest.raises(ConfigError, match=r"the gan run G learnt from 2 real training images that the mixed cells "
                                          r"at --train-fraction 0.4 do not train on"):
        check("mixed", set(whole[2:6]))


@pytest.mark.slow
def test_save_models_given_on_resume_says_the_kept_cells_have_none(tmp_path, tiny):
    # a finished run resumed with --save-models printed its report and saved nothing, without a word
    r = genaug("benchmark", "--profile", tiny, "--variants", "real", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "benchmark")
    r = genaug("benchmark", "--resume", run, "--save-models", "--seeds", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert ("--save-models: the 1 cell done earlier saved no model, and a resumed run does not retrain them; "
            "cells trained from now on save theirs") in r.stdout
    assert [p.name for p in (run / "models").glob("*.pt")] == ["cnn__real__f1__seed1.pt"]
    r = genaug("benchmark", "--resume", run, "--report-only")
    assert r.returncode == 0 and "--save-models:" not in r.stdout   # no cells to train: nothing to say


def test_a_benchmark_whose_own_gan_is_refused_leaves_no_run(tmp_path, tiny):
    # the GAN's decode cache, written under the benchmark's inputs/, had kept the refused run as
    # "stopped", and `genaug runs` offered a --resume that could only fail the same way
    data = make_folder_dataset(tmp_path / "xray")   # 14 NORMAL training images once val is carved out
    out = tmp_path / "o"
    r = genaug("benchmark", "--data", data, "--profile", tiny, "--variants", "real,mixed", "--out", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert ("genaug: error: the GAN this benchmark trains for its mixed and synthetic cells: class NORMAL has 14 "
            "training images; a GAN needs at least 16: give more images of it; or give --gan-run a run of genaug gan, "
            "or leave mixed and synthetic out of --variants (run folder ") in r.stderr
    # the folder the command's first line named is gone, and its error line says so
    named = re.search(r"^genaug benchmark: (\S+)$", r.stdout, re.M).group(1)
    assert r.stderr.endswith(f" (run folder {named} removed: it held nothing yet)\n") and r.stderr.count("\n") == 1
    assert not list(out.glob("benchmark/*"))
    # the GAN's 64 px decode went to the benchmark's own cache: for the next run to reuse
    assert len(list((out / "cache").glob("*.npy"))) >= 3   # 32 px train and test, 64 px train


def test_low_data_cells_get_a_gan_that_saw_only_their_own_patients(tmp_path):
    """One --train-fraction: the benchmark's own GAN learns from those patients only, its cells say so
    and carry no upper-bound note; a larger fraction may reuse it (the patients nest); a smaller
    fraction is refused in one line, since that GAN saw images its cells would not train on."""
    from genaug.jobs import read_training_list
    prof = tmp_path / "tiny.yaml"
    prof.write_text(TINY.replace("demo_train: 80", "demo_train: 160"))   # >= 16 NORMAL images at 0.5
    out = tmp_path / "o"
    r = genaug("benchmark", "--data", "demo", "--profile", prof, "--variants", "real,mixed",
               "--train-fraction", "0.5", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    run = only_run(out, "benchmark")
    gan_run = Path(json.loads((run / "manifest.json").read_text())["gan_run"])
    gan_manifest = json.loads((gan_run / "manifest.json").read_text())
    listed = read_training_list(gan_run)
    assert gan_manifest["train_fraction"] == 0.5 and gan_manifest["train_images"] == len(listed)
    gan_cfg = (gan_run / "config.yaml").read_text()
    assert "epochs: 4" in gan_cfg and "train_fraction: 0.5" in gan_cfg   # TINY's 2 epochs, as many steps
    assert gan_manifest["train_images"] < gan_manifest["data"]["splits"]["train"]["images"]
    assert "0.5 of the training patients" in (gan_run / "quality.md").read_text()   # its judge learnt from them too
    cell = json.loads((run / "cells" / "cnn__mixed__f0.5__seed0.json").read_text())
    assert cell["input_run_within_training"] is True
    report = (run / "report.md").read_text()
    assert "upper bound" not in report and "mixed cells at train fraction 0.5: the GAN or autoencoder" in report
    r = genaug("benchmark", "--resume", run, "--train-fraction", "0.5,1.0")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((run / "cells" / "cnn__mixed__f1__seed0.json").read_text())["input_run_within_training"]
    r = genaug("benchmark", "--data", "demo", "--profile", prof, "--variants", "real,mixed", "--train-fraction", "0.25",
               "--gan-run", gan_run, "--out", tmp_path / "o2")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "do not train on; give a run made with --train-fraction 0.25 or smaller" in r.stderr
    assert "cnn__real" not in r.stdout   # refused before the real cells trained, so the empty run is gone
    assert not list((tmp_path / "o2").glob("benchmark/*"))
    # more images from the same generator: the benchmark traces them to the GAN run and what it learnt from
    r = genaug("gan", "sample", "--checkpoint", gan_run / "generator-conditional.pt", "--n", 30, "--out", tmp_path / "s")
    assert r.returncode == 0, r.stderr[-2000:]
    sample = only_run(tmp_path / "s", "gan-sample")
    r = genaug("benchmark", "--data", "demo", "--profile", prof, "--variants", "real,mixed", "--train-fraction", "0.5",
               "--gan-run", sample, "--out", tmp_path / "o3")
    assert r.returncode == 0, r.stderr[-3000:]
    run3 = only_run(tmp_path / "o3", "benchmark")
    cell = json.loads((run3 / "cells" / "cnn__mixed__f0.5__seed0.json").read_text())
    assert cell["input_run_within_training"] is True and cell["n_train_synthetic"] > 0
    # rewritten, the report still names the run given where the manifest does not (the archived runs' manifests
    # in docs/runs did not): a --report-only loads no input run, and said "GAN run: none (no mixed/synthetic
    # variant)" of their mixed cells (found in session 56)
    manifest = json.loads((run3 / "manifest.json").read_text())
    assert manifest["gan_run"] == str(sample)
    (run3 / "manifest.json").write_text(json.dumps({**manifest, "gan_run": None}))
    r = genaug("benchmark", "--resume", run3, "--report-only")
    assert r.returncode == 0 and f"- GAN run: `{sample}`" in (run3 / "report.md").read_text(), r.stderr[-2000:]
    assert json.loads((run3 / "manifest.json").read_text())["gan_run"] == str(sample)
    r = genaug("benchmark", "--data", "demo", "--profile", prof, "--variants", "mixed", "--train-fraction", "0.25",
               "--gan-run", sample, "--out", tmp_path / "o4")
    assert r.returncode == 2 and "do not train on; give a run made with --train-fraction 0.25" in r.stderr


def test_class_mix_note_names_variants_whose_class_shares_move():
    from genaug.benchmark import TrainSet, class_mix_notes, train_class_counts
    t = TrainSet(torch.zeros(5, 1, 2, 2), torch.tensor([0, 1, 1, 0, 1]),
                 ["real:a", "real:b", "synthetic:c", "synthetic:d", "real:e"])
    assert train_class_counts(t, ["N", "P"]) == {"N": {"real": 1, "synthetic": 1}, "P": {"real": 2, "synthetic": 1}}

    def cell(variant, n, p, frac=1.0, synthetic=False):
        kind = "synthetic" if synthetic else "real"
        other = "real" if synthetic else "synthetic"
        return {"variant": variant, "train_fraction": frac,
                "train_class_counts": {"N": {kind: n, other: 0}, "P": {kind: p, other: 0}}}
    # session 17: a GAN run of 1280 images per class against 1206 NORMAL and 3487 PNEUMONIA real ones
    cells = [cell("real", 1206, 3487), cell("synthetic", 1206, 1280, synthetic=True), cell("mixed", 1809, 4767),
             cell("encoded", 1206, 3487), {"variant": "mixed", "train_fraction": 0.1}]   # an older cell: no counts
    notes = class_mix_notes(cells, ["N", "P"])
    assert len(notes) == 1   # mixed moves 1.8 points (74.3% -> 72.5% P), inside the 5-point margin
    assert notes[0].startswith("synthetic cells train on another class mix than real cells (N 49%, P 51%, "
                               "against N 26%, P 74%)")
    assert class_mix_notes([cell("mixed", 5, 5, frac=0.1)], ["N", "P"]) == []   # no real cells to set it against


def test_mixed_cells_short_of_the_synthetic_images_asked_are_told(bundle, capsys):
    """Session 56: the cpu profile's GAN writes 1280 images a class, 0.5 x 3487 real PNEUMONIA images asks 1744;
    every real-data mixed cell took the 1280 and its report said "0.5 x real count per class" (log.txt alone
    said otherwise)."""
    from genaug.benchmark import check_synthetic_classes, synthetic_shortfall_notes, train_on_synthetic_shortfall_notes
    b = Config().benchmark
    b.synthetic_ratio = 0.5
    counted = {"variant": "mixed", "train_fraction": 1.0, "n_train": 6576, "n_train_synthetic": 1883,
               "train_class_counts": {"N": {"real": 1206, "synthetic": 603}, "P": {"real": 3487, "synthetic": 1280}}}
    older = {"variant": "mixed", "train_fraction": 0.1, "n_train": 708, "n_train_synthetic": 236}   # no class counts
    # the older cell's 236 are 0.5 x its 472 real images: it had all it asked
    assert synthetic_shortfall_notes([counted, older, {**counted, "variant": "real"}], ["N", "P"], b) == [
        "mixed cells add fewer synthetic images than --synthetic-ratio 0.5 asks, the GAN run having no more: P 1280 "
        "of 1744 asked (0.37 x its 3487 real images). genaug gan sample draws more from its generator, and "
        "--gan-run takes that run"]
    older["n_train_synthetic"] = 200
    older["n_train"] = 672
    assert synthetic_shortfall_notes([older], ["N", "P"], b)[0].startswith(
        "mixed cells at train fraction 0.1 add fewer synthetic images than --synthetic-ratio 0.5 asks, the GAN run "
        "having no more: 200 of about 236 asked in all (0.42 x the 472 real images)")
    b.balance = True   # fills N up to P's 3487: 2281 asked
    counted["train_class_counts"]["N"]["synthetic"], counted["train_class_counts"]["P"]["synthetic"] = 1280, 0
    assert "N 1280 of 2281 asked (1.06 x its 1206 real images)" in synthetic_shortfall_notes([counted], ["N", "P"], b)[0]
    # and before any cell trains: the demo's training split is NORMAL 14, PNEUMONIA 38
    cfg = Config()
    cfg.benchmark.synthetic_ratio = 1.0
    syn, _ = fake_synthetic(bundle)
    check_synthetic_classes(Path("g"), {"NORMAL": syn["NORMAL"], "PNEUMONIA": syn["PNEUMONIA"][:20]}, bundle, cfg,
                            {"real", "mixed"})
    assert capsys.readouterr().out.strip() == ("note: the mixed cells ask up to 38 synthetic PNEUMONIA images; GAN run g "
                                               "has 20: they take those 20 (genaug gan sample draws more from its "
                                               "generator)")
    # train-on-synthetic takes as many as there are real images (and said so nowhere)
    cfg.benchmark.synthetic_ratio = 0.5
    check_synthetic_classes(Path("g"), {"NORMAL": syn["NORMAL"][:10], "PNEUMONIA": syn["PNEUMONIA"]}, bundle, cfg,
                            {"real", "mixed", "synthetic"})
    assert capsys.readouterr().out.strip() == ("note: the mixed and synthetic cells ask up to 14 synthetic NORMAL images; "
                                               "GAN run g has 10: they take those 10 (genaug gan sample draws more "
                                               "from its generator)\nnote: the mixed and synthetic cells ask up to 38 "
                                               "synthetic PNEUMONIA images; GAN run g has 30: they take those 30 (genaug "
                                               "gan sample draws more from its generator)")
    real = {"variant": "real", "train_fraction": 1.0, "train_class_counts": {"N": {"real": 1206, "synthetic": 0},
                                                                             "P": {"real": 3487, "synthetic": 0}}}
    alone = {"variant": "synthetic", "train_fraction": 1.0, "train_class_counts": {"N": {"real": 0, "synthetic": 1206},
                                                                                   "P": {"real": 0, "synthetic": 1280}}}
    assert train_on_synthetic_shortfall_notes([real, alone], ["N", "P"]) == [
        "synthetic cells train on fewer images than real cells, the GAN run having no more: P 1280 synthetic against "
        "3487 real. genaug gan sample draws more from its generator, and --gan-run takes that run"]
    assert train_on_synthetic_shortfall_notes([alone], ["N", "P"]) == []   # no real cell to count against
    older = [{"variant": v, "train_fraction": 1.0, "n_train": n, "n_train_synthetic": k}   # no class counts
             for v, n, k in (("real", 4693, 0), ("synthetic", 2486, 2486))]
    assert train_on_synthetic_shortfall_notes(older, ["N", "P"])[0].startswith(
        "synthetic cells train on fewer images than real cells, the GAN run having no more: 2486 synthetic images "
        "against 4693 real in all.")


def test_a_benchmark_s_own_gan_writes_as_many_images_as_its_cells_ask(bundle):
    """Session 56: the cpu profile's GAN wrote its gan.n of 1280 a class where 0.5 x 3487 PNEUMONIA asks 1744.
    The demo's training split here: NORMAL 14, PNEUMONIA 38."""
    from genaug.benchmark import synthetic_images_asked
    cfg = Config()
    cfg.benchmark.synthetic_ratio = 0.5
    assert synthetic_images_asked(cfg, bundle, {"real", "mixed"}) == {"NORMAL": 7, "PNEUMONIA": 19}
    assert synthetic_images_asked(cfg, bundle, {"mixed", "synthetic"}) == {"NORMAL": 14, "PNEUMONIA": 38}
    assert synthetic_images_asked(cfg, bundle, {"real"}) == {"NORMAL": 0, "PNEUMONIA": 0}
    cfg.benchmark.balance = True
    assert synthetic_images_asked(cfg, bundle, {"mixed"}) == {"NORMAL": 24, "PNEUMONIA": 0}


def test_machine_note_only_when_cells_ran_on_two_recorded_machines():
    from genaug.benchmark import machine_notes
    zen4 = {"cpu": "AMD EPYC (family 25, model 17)", "cpu_capability": "AVX512", "threads": 1}
    zen3 = {"cpu": "AMD EPYC (family 25, model 1)", "cpu_capability": "AVX2", "threads": 1}
    assert machine_notes([{"machine": zen4}, {"machine": zen4}, {}]) == []   # one machine and older cells
    (note,) = machine_notes([{"machine": zen4}, {"machine": zen3}, {"machine": zen3}, {}])
    assert note.startswith("cells ran on more than one machine or thread count (AMD EPYC (family 25, model 1), AVX2, 1 thread: 2 cells; "
                           "AMD EPYC (family 25, model 17), AVX512, 1 thread: 1 cell; not recorded: 1 cell)")
    # one CPU at two thread counts picks other kernels too (seen in session 19), so it is noted as well
    (note,) = machine_notes([{"machine": zen4}, {"machine": {**zen4, "threads": 2}}])
    assert "1 thread: 1 cell; AMD EPYC (family 25, model 17), AVX512, 2 threads: 1 cell)" in note


@pytest.mark.slow
def test_an_autoencoder_made_on_another_split_is_refused_before_any_cell_trains(tmp_path, tiny):
    """An autoencoder reused with `encode --checkpoint` keeps the list of images it learnt from: made
    on another validation split, it saw images this benchmark holds out for validation."""
    data = make_folder_dataset(tmp_path / "x", {"train": 24, "test": 6})   # no val folder: val is carved
    other = tmp_path / "other-split.yaml"
    other.write_text(TINY.replace("demo_train: 80", "demo_train: 80\n  split_seed: 1"))
    r = genaug("encode", "--data", data, "--profile", other, "--out", tmp_path / "a")
    assert r.returncode == 0, r.stderr[-2000:]
    trained = only_run(tmp_path / "a", "encode")
    r = genaug("encode", "--data", data, "--profile", tiny, "--checkpoint", trained / "autoencoder.pt",
               "--out", tmp_path / "b")
    assert r.returncode == 0, r.stderr[-2000:]
    reused = only_run(tmp_path / "b", "encode")
    assert "genaug benchmark will refuse these latents" in (reused / "log.txt").read_text()
    assert (reused / "training_images.txt").read_text() == (trained / "training_images.txt").read_text()
    r = genaug("benchmark", "--data", data, "--profile", tiny, "--variants", "real,encoded",
               "--encode-run", reused, "--out", tmp_path / "o")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"the encode run {reused} learnt from" in r.stderr and "holds out as val" in r.stderr
    assert "cnn__real" not in r.stdout and not list((tmp_path / "o").glob("benchmark/*"))


def test_time_left_counts_each_cell_at_its_models_pace():
    from genaug.benchmark import time_left
    from genaug.inventory import duration

    assert [duration(t) for t in (45, 750, 3900, 59.6, 2 * 86400 + 3 * 3600 + 59)] == [
        "45s", "12m30s", "1h05m", "1m00s", "2d03h"]
    cnn, latent_cnn, densenet, resnet = ("cnn", False), ("cnn", True), ("densenet121", False), ("resnet34", False)
    # no timed steps (torchrun): every plan 1, so two cnn cells at 90 s and a densenet121 cell at 600 s
    took = [(cnn, 1.0, 60.0), (cnn, 1.0, 120.0), (densenet, 1.0, 600.0)]
    assert time_left(took, [(cnn, 1.0), (densenet, 1.0), (cnn, 1.0)]) == \
        "3 cells left here, about 13m00s at this pace"
    # resnet34 not trained yet: the mean of all three cells, 260 s
    assert time_left(took, [(resnet, 1.0)]) == ("1 cell left here, about 4m20s at this pace "
                                                "(models not trained yet counted at the mean)")
    # planned from timed steps: cnn ran at 180 / 200 of its plan, densenet121 at 600 / 1000, all at 780 / 1200
    took = [(cnn, 100.0, 60.0), (cnn, 100.0, 120.0), (densenet, 1000.0, 600.0)]
    # 0.9 * 100 + 0.6 * 1000 + 0.9 * 50 (a cell on a share of the data) = 735 s
    assert time_left(took, [(cnn, 100.0), (densenet, 1000.0), (cnn, 50.0)]) == \
        "3 cells left here, about 12m15s at this pace"
    # kinds not trained yet, ResNet-34 and the latent CNN: 0.65 * (400 + 20) = 273 s, not the mean of the cells
    assert time_left(took, [(resnet, 400.0), (latent_cnn, 20.0)]) == (
        "2 cells left here, about 4m33s at this pace (models not trained yet counted from their timed steps)")
    assert time_left(took, []) == ""


def test_a_cell_that_never_left_chance_is_named_in_the_notes():
    from genaug.benchmark import did_not_learn, did_not_learn_notes

    def cell(model, seed, losses, auc):
        return {"model": model, "variant": "real", "seed": seed, "fold": None, "train_fraction": 1.0,
                "history": [{"epoch": i + 1, "train_loss": v} for i, v in enumerate(losses)],
                "test_at_val_threshold": {"roc_auc": auc}}

    stuck = cell("alexnet", 0, [0.698, 0.6935, 0.6931], 0.32)   # AlexNet's seed 0 on the Kermany data
    learnt = cell("alexnet", 1, [0.69, 0.45, 0.30], 0.93)
    assert did_not_learn(stuck, 2) and not did_not_learn(learnt, 2)
    assert not did_not_learn(cell("cnn", 0, [1.02, 0.80], 0.9), 3)       # under ln 3 = 1.099 by enough
    assert did_not_learn(cell("cnn", 0, [1.10, 1.099], 0.5), 3)
    assert not did_not_learn({"history": []}, 2)                          # nothing recorded: no claim
    [note] = did_not_learn_notes([stuck, learnt], 2)
    assert note.startswith("did not learn: alexnet real seed 0 (training loss never under 0.693, test ROC-AUC 0.320)")
    assert "chance is ln 2 = 0.693" in note
    assert did_not_learn_notes([learnt], 2) == []
    # an epoch's mean loss at chance while the weights at its end rank validation perfectly (one epoch
    # on tiny data): "did not learn" stood beside a test ROC-AUC of 1.000
    barely = {**cell("cnn", 1, [0.837], 1.0), "val_roc_auc": 1.0}
    assert did_not_learn(barely, 2)
    did, near = did_not_learn_notes([{**stuck, "val_roc_auc": 0.435}, barely], 2)
    assert did.startswith("did not learn: alexnet real seed 0 (training loss never under 0.693, test ROC-AUC 0.320);")
    assert near.startswith("scores near chance: cnn real seed 1 (training loss never under 0.837, validation "
                           "ROC-AUC 1.000, test ROC-AUC 1.000); chance is ln 2 = 0.693. They rank images")
    assert near.endswith("more epochs for the model (benchmark.model_epochs in a profile) may train them")
    [latent] = did_not_learn_notes([{**barely, "variant": "encoded"}], 2)
    assert latent.endswith("more epochs for the model (benchmark.latent_epochs in a profile) may train them")
    [both] = did_not_learn_notes([barely, {**barely, "variant": "encoded"}], 2)
    assert "(benchmark.model_epochs, or benchmark.latent_epochs for encoded cells, in a profile)" in both
    [only] = did_not_learn_notes([{**barely, "val_roc_auc": float("nan")}], 2)   # one class in validation
    assert only.startswith("did not learn: cnn real seed 1")


def test_a_cell_that_did_not_learn_is_said_when_it_finishes_with_the_lr_to_change(tmp_path, tiny):
    # a learning rate far too small keeps the training loss at chance: the same signal as VGG-19 at
    # 1e-3 on the Kermany data, where the weights went nowhere for the opposite reason
    r = genaug("benchmark", "--data", "demo", "--profile", tiny, "--variants", "real", "--lr", "1e-9",
               "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "did not learn: the training loss never fell clearly below chance (ln 2 = 0.693)" in r.stdout
    assert ("A new run at a lower --lr (this one's is 1e-09), or with more epochs for it (benchmark.model_epochs: "
            "cnn=2 in a profile), may train it") in r.stdout
    report = (only_run(tmp_path / "o", "benchmark") / "report.md").read_text()
    assert "did not learn: cnn real seed 0" in report and "a new run at a lower learning rate" in report
    assert "or with more epochs for the model (benchmark.model_epochs" in report


def test_a_cell_whose_loss_stayed_at_chance_but_ranks_validation_is_told_so_not_that_it_did_not_learn(tmp_path, tiny):
    # one epoch on tiny folder data: the epoch's mean loss stays above ln 2 while validation ROC-AUC is 1.000
    data = make_folder_dataset(tmp_path / "x", {"train": 20, "test": 6})
    r = genaug("benchmark", "--data", data, "--profile", tiny, "--variants", "real", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    assert ("scores near chance, though they rank validation images (ROC-AUC 1.000): the training loss never fell "
            "clearly below chance (ln 2 = 0.693); the report names it. A new run with more epochs for it") in r.stdout
    assert "did not learn" not in r.stdout and "lower --lr" not in r.stdout
    report = (only_run(tmp_path / "o", "benchmark") / "report.md").read_text()
    assert "scores near chance: cnn real seed 0 (training loss never under" in report
    assert "did not learn" not in report


def test_a_latent_classifier_saved_without_its_autoencoder_is_refused_in_one_line(tmp_path):
    from genaug.errors import CheckpointError
    from genaug.models import build_classifier
    from genaug.predict import load_classifier
    model = build_classifier("cnn", 2, 16, latent=True, image_size=2)
    torch.save({"kind": "classifier", "model_name": "cnn", "model": model.state_dict(), "classes": ["A", "B"],
                "image_size": 2, "in_channels": 16}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="holds no autoencoder to make them from images"):
        load_classifier(tmp_path / "m.pt")


def test_a_run_folder_given_as_the_classifier_names_its_saved_models(tmp_path):
    # it was told "classifier checkpoint not found: <run>", as if the run were missing
    from genaug.errors import CheckpointError
    from genaug.predict import load_classifier
    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="is a folder; it holds no models/\\*.pt file; give the .pt file "
                                              "that genaug benchmark --save-models wrote"):
        load_classifier(run)
    # a run that saved one model stands for it (session 59), as a run is named everywhere else
    from genaug.predict import classifier_file
    (run / "models" / "cnn__real__f1__seed0.pt").write_bytes(b"")
    assert classifier_file(run) == run / "models" / "cnn__real__f1__seed0.pt"
    with pytest.raises(CheckpointError, match=f"classifier checkpoint {run / 'models' / 'cnn__real__f1__seed0.pt'} "
                                              "is an empty file"):
        load_classifier(run)
    (run / "models" / "cnn__real__f1__seed0.pt").unlink()
    for name in ("b", "a", "c", "d"):
        (run / "models" / f"cnn__real__f1__seed{name}.pt").write_bytes(b"")
    with pytest.raises(CheckpointError) as told:
        load_classifier(run)
    assert str(told.value) == (f"classifier checkpoint {run} is a folder; give one of the checkpoints in it: "
                               + ", ".join(str(run / "models" / f"cnn__real__f1__seed{n}.pt") for n in "abc")
                               + " (4 in all)")


def test_a_benchmark_run_that_kept_no_model_says_so_where_a_classifier_is_wanted(tmp_path):
    """Found in session 55: a run made without --save-models, given to predict, was told to give "the .pt file
    that genaug benchmark --save-models wrote"; its cells/<key>.json was "not a PyTorch checkpoint"."""
    import json

    import yaml

    from genaug.errors import CheckpointError
    from genaug.predict import load_classifier
    run = tmp_path / "run"
    (run / "cells").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"command": "benchmark"}))
    (run / "config.yaml").write_text(yaml.safe_dump({"benchmark": {"save_models": False}}))
    (run / "cells" / "cnn__real__f1__seed0.json").write_text("{}")
    kept_none = "made without --save-models, which kept no model: start a new benchmark with --save-models"
    with pytest.raises(CheckpointError, match=f"checkpoint {run} is a benchmark run {kept_none}"):
        load_classifier(run)
    with pytest.raises(CheckpointError, match=f"lies in the benchmark run {run}, one {kept_none}"):
        load_classifier(run / "cells" / "cnn__real__f1__seed0.json")
    # a run that saved its models: a file of it that is none names them
    (run / "config.yaml").write_text(yaml.safe_dump({"benchmark": {"save_models": True}}))
    (run / "models").mkdir()
    torch.save({"kind": "classifier"}, run / "models" / "cnn__real__f1__seed0.pt")
    with pytest.raises(CheckpointError) as told:
        load_classifier(run / "cells" / "cnn__real__f1__seed0.json")
    assert str(told.value).endswith(f"is not a PyTorch checkpoint (neither a zip archive nor a pickle); give "
                                    f"{run / 'models' / 'cnn__real__f1__seed0.pt'}")


@pytest.mark.parametrize("command,key,said", [
    ("gan", "gan_run", "GAN run {d} stopped before its synthetic images were all written (interrupted (Ctrl-C)): "
                       "genaug gan --resume {d}, then run this again"),
    ("gan-sample", "gan_run", "GAN run {d} stopped before its synthetic images were all written (interrupted "
                              "(Ctrl-C)): draw its images again with genaug gan sample, and give that run"),
    ("encode", "encode_run", "autoencoder run {d} stopped before its latents were all written (interrupted "
                             "(Ctrl-C)): genaug encode --resume {d}, then run this again"),
])
def test_an_input_run_stopped_before_its_output_says_how_to_finish_it(tmp_path, command, key, said):
    """Found in session 55: a GAN run stopped by Ctrl-C, given as --gan-run, was "no synthetic images
    (expected synthetic/manifest.csv from genaug gan)", naming no --resume."""
    import json

    from genaug.benchmark import INPUT_RUNS, check_given_input_run
    from genaug.errors import CheckpointError
    d = tmp_path / "run"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"command": command, "finished": False}))
    (d / "log.txt").write_text("2026-12-04 21:40:53,483 INFO epoch 1\n"
                               "2026-12-04 21:40:54,001 ERROR stopped: interrupted (Ctrl-C)\n")
    with pytest.raises(CheckpointError) as told:
        check_given_input_run(Config(), str(d), key, INPUT_RUNS[key])
    assert str(told.value) == said.format(d=d)


@pytest.mark.parametrize("command,config,key,said", [
    # found in session 55: a KeyError traceback, as neither run records data settings
    ("explain", "checkpoint: m.pt\n", "gan_run", "GAN run {d} records no data settings; it is a genaug explain run: "
                                                 "--gan-run takes a genaug gan run's folder"),
    ("pool", "pool:\n  variant: mixed\n", "gan_run", "GAN run {d} records no data settings; it is a genaug pool "
                                                      "run: --gan-run takes a genaug gan run's folder"),
    # a stopped run of another command is told what it is, not how to finish it; gan sample as typed
    ("gan-sample", "checkpoint: g.pt\n", "encode_run", "no complete latent set in {d} (meta.json missing); it is a "
                                                       "genaug gan sample run: --encode-run takes a genaug encode run's folder"),
])
def test_an_input_run_of_another_command_is_told_what_it_is(tmp_path, command, config, key, said):
    import json

    from genaug.benchmark import INPUT_RUNS, check_given_input_run
    from genaug.errors import CheckpointError
    d = tmp_path / "run"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"command": command, "finished": command != "gan-sample"}))
    (d / "config.yaml").write_text(config)
    (d / "log.txt").write_text("2026-12-04 21:40:54,001 ERROR stopped: interrupted (Ctrl-C)\n")
    with pytest.raises(CheckpointError) as told:
        check_given_input_run(Config(), str(d), key, INPUT_RUNS[key])
    assert str(told.value) == said.format(d=d)


def test_planned_seconds_counts_each_cell_at_its_most_epochs_by_hand():
    from genaug.benchmark import planned_seconds
    from genaug.config import BenchmarkConfig
    per_image = {("cnn", False): 0.01, ("cnn", True): 0.001, ("resnet34", False): 0.1}
    cells = [(None, 1.0, "real", "cnn", 0), (None, 0.5, "mixed", "resnet34", 0), (None, 1.0, "encoded", "cnn", 1)]
    b = BenchmarkConfig(epochs=12, latent_epochs=24, model_epochs="resnet34=20")
    # real cnn: 12 epochs x (100 + 30/3) x 0.01 = 13.2; mixed resnet34 at half the patients with 0.5
    # synthetic, its own 20 epochs: 20 x (50 x 1.5 + 10) x 0.1 = 170; encoded: 24 latent epochs x (100 + 10) x 0.001 = 2.64
    got = planned_seconds(cells, per_image, n_train=100, n_val=30, epochs_for=b.epochs_for, synthetic_share=0.5)
    assert got == pytest.approx(13.2 + 170 + 2.64)
    assert planned_seconds([], per_image, 100, 30, b.epochs_for, 0.5) == 0
    # the end of each cell: validation and 60 test images scored 1 + 4 times (test-time copies), the test once
    # more for its speed, a third of a training image each: real cnn (5 x 90 + 60) / 3 x 0.01 = 1.7 more
    got = planned_seconds(cells[:1], per_image, 100, 30, b.epochs_for, 0.5, n_test=60, tta=4)
    assert got == pytest.approx(13.2 + 1.7)


def test_model_epochs_gives_named_models_their_own_most_epochs_and_the_report_says_so(tmp_path):
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(TINY.replace("  latent_epochs: 2", "  latent_epochs: 2\n  model_epochs: lenet5=3"))
    r = genaug("benchmark", "--profile", tiny, "--models", "cnn,lenet5", "--variants", "real", "--threads", "1",
               "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "benchmark")
    cells = {c: json.loads((run / "cells" / f"{c}__real__f1__seed0.json").read_text()) for c in ("cnn", "lenet5")}
    assert [len(cells[c]["history"]) for c in ("cnn", "lenet5")] == [1, 3]
    report = (run / "report.md").read_text()
    assert "Pixel models at 32 px, 1 epoch max" in report and " lenet5: 3 epochs max (patience 4, counted from " \
        "epoch 2)." in report
    # --epochs on the command line caps every pixel model, the profile's named ones too
    r = genaug("benchmark", "--profile", tiny, "--models", "cnn,lenet5", "--variants", "real", "--threads", "1",
               "--epochs", "2", "--out", tmp_path / "flag")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "flag", "benchmark")
    assert [len(json.loads((run / "cells" / f"{c}__real__f1__seed0.json").read_text())["history"])
            for c in ("cnn", "lenet5")] == [2, 2]
    assert "lenet5:" not in (run / "report.md").read_text()
    # a name that is no model is refused before a run directory is made, as a wrong --models is
    tiny.write_text(TINY.replace("  latent_epochs: 2", "  latent_epochs: 2\n  model_epochs: resnet=12"))
    r = genaug("benchmark", "--profile", tiny, "--variants", "real", "--out", tmp_path / "bad")
    assert r.returncode == 2 and "'benchmark.model_epochs' names unknown model resnet (known: cnn," in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "bad").exists()


def test_label_smoothing_mixup_and_ema_from_the_command_line_reach_the_cells_and_the_report(tmp_path, tiny):
    r = genaug("benchmark", "--profile", tiny, "--models", "cnn", "--variants", "real", "--threads", "1",
               "--label-smoothing", "0.1", "--mixup", "0.2", "--ema", "0.9", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "benchmark")
    import yaml
    saved = yaml.safe_load((run / "config.yaml").read_text())["benchmark"]
    assert (saved["label_smoothing"], saved["mixup"], saved["ema"]) == (0.1, 0.2, 0.9)
    report = (run / "report.md").read_text()
    assert "Training loss with label smoothing 0.1 and mixup (Beta alpha 0.2); validation loss without." in report
    assert "exponential moving average of its weights (decay 0.9), which validation scored" in report
    # they change what a cell learns, so a resumed run may not change them
    r = genaug("benchmark", "--resume", run, "--mixup", "0.4", "--threads", "1")
    assert r.returncode == 2 and "mixup" in r.stderr and "Traceback" not in r.stderr
    r = genaug("benchmark", "--resume", run, "--ema", "0.99", "--threads", "1")
    assert r.returncode == 2 and "made with ema=0.9" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_test_time_augmentation_reaches_the_cells_the_report_and_predict(tmp_path, tiny):
    data = make_folder_dataset(tmp_path / "data", {"train": 40, "test": 6})
    r = genaug("benchmark", "--profile", tiny, "--data", data, "--variants", "real,encoded", "--threads", "1",
               "--tta", "3", "--save-models", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-3000:]
    run = only_run(tmp_path / "o", "benchmark")
    assert ("Validation and test probabilities were averaged over each image and 3 copies augmented as in "
            "training (the same copies for every image); the threshold was chosen on those.") in (run / "report.md").read_text()
    for variant in ("real", "encoded"):
        cell = json.loads((run / "cells" / f"cnn__{variant}__f1__seed0.json").read_text())
        model = run / "models" / f"cnn__{variant}__f1__seed0.pt"
        # predict averages the copies the cell's threshold was chosen on: the same probabilities, image by image
        got = predicted(data / "test", model)
        assert got == pytest.approx(scored(cell), abs=1e-5), variant
        # and without the copies the model gives other probabilities: the cell did average them
        ckpt = torch.load(model, weights_only=True)
        assert ckpt["tta"]["tta"] == 3 and (ckpt["tta"]["spread"] is None) == (variant == "real")
        del ckpt["tta"]
        torch.save(ckpt, tmp_path / "plain.pt")
        plain = predicted(data / "test", tmp_path / "plain.pt")
        assert plain != pytest.approx(got, abs=1e-5), variant
    # it changes the probabilities every cell's threshold and test read, so a resumed run may not change it
    r = genaug("benchmark", "--resume", run, "--tta", "0", "--threads", "1")
    assert r.returncode == 2 and "made with tta=3" in r.stderr and "Traceback" not in r.stderr
    r = genaug("benchmark", "--profile", tiny, "--no-augment", "--tta", "2", "--out", tmp_path / "o2")
    assert r.returncode == 2 and "training augmentation off" in r.stderr and not (tmp_path / "o2").exists()


def test_equalized_inputs_reach_training_the_report_and_the_saved_model_that_predict_reads(tmp_path, tiny):
    data = make_folder_dataset(tmp_path / "data", {"train": 40, "test": 6})
    r = genaug("benchmark", "--profile", tiny, "--data", data, "--variants", "real", "--threads", "1",
               "--equalize", "clahe", "--save-models", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "benchmark")
    assert "was equalized per image (CLAHE)" in (run / "report.md").read_text()
    saved = run / "models" / "cnn__real__f1__seed0.pt"
    assert torch.load(saved, weights_only=True)["equalize"] == "clahe"
    # predict equalizes new images as the test images were: the cell's test probabilities, image by image
    cell = json.loads((run / "cells" / "cnn__real__f1__seed0.json").read_text())
    got = predicted(data / "test", saved)
    assert got == pytest.approx(scored(cell), abs=1e-5)
    # and the same model on the images as decoded, unequalized, scores them otherwise
    from genaug.predict import load_classifier, read_images
    from genaug.train import predict_probs
    model, ckpt = load_classifier(saved)
    _, raw, _ = read_images(data / "test", ckpt["image_size"])
    plain = sorted(predict_probs(model, torch.from_numpy(raw).unsqueeze(1))[:, 1].tolist())
    assert plain != pytest.approx(got, abs=1e-4)
    one = sorted((data / "test" / "NORMAL").glob("*.jpeg"))[0]
    r = genaug("predict", one, "--checkpoint", saved, "--out", tmp_path / "one.csv")
    assert r.returncode == 0 and f"wrote {tmp_path / 'one.csv'} (1 image, 0 skipped)" in r.stdout, r.stderr[-2000:]
    # a saved model asking for an equalization this genaug does not know is refused, not guessed at
    edited = torch.load(saved, weights_only=True) | {"equalize": "hist"}
    torch.save(edited, tmp_path / "edited.pt")
    r = genaug("predict", one, "--checkpoint", tmp_path / "edited.pt")
    assert r.returncode == 2 and "asks for equalization 'hist', which this genaug does not know" in r.stderr
    # it changes what every cell learns: a resumed run keeps it
    r = genaug("benchmark", "--resume", run, "--equalize", "none", "--threads", "1")
    assert r.returncode == 2 and "made with equalize='clahe'" in r.stderr and "Traceback" not in r.stderr


def test_images_made_square_by_crop_reach_training_the_report_and_the_saved_model_that_predict_reads(tmp_path, tiny):
    """`--resize crop` (session 81): images that are not square are cut to their centred square everywhere a
    cell reads them, and `genaug predict` cuts new images as the test images were cut."""
    data = make_folder_dataset(tmp_path / "data", {"train": 40, "test": 6}, size=24)
    for f in data.rglob("*.jpeg"):   # 24 x 40: a tall film
        Image.open(f).resize((24, 40)).save(f)
    r = genaug("benchmark", "--profile", tiny, "--data", data, "--variants", "real,encoded", "--threads", "1",
               "--resize", "crop", "--save-models", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "benchmark")
    said = "Images that are not square were cut to the centred square of their short side (--resize crop)"
    assert said in (run / "report.md").read_text()
    (encode_run,) = (run / "inputs" / "encode").iterdir()   # the autoencoder it trained cropped them too
    assert said in (encode_run / "summary.md").read_text()
    assert json.loads((encode_run / "metrics.json").read_text())["resize"] == "crop"
    saved = run / "models" / "cnn__real__f1__seed0.pt"
    assert torch.load(saved, weights_only=True)["resize"] == "crop"
    cell = json.loads((run / "cells" / "cnn__real__f1__seed0.json").read_text())
    got = predicted(data / "test", saved)
    assert got == pytest.approx(scored(cell), abs=1e-5)
    encoded = json.loads((run / "cells" / "cnn__encoded__f1__seed0.json").read_text())
    assert predicted(data / "test", run / "models" / "cnn__encoded__f1__seed0.pt") == pytest.approx(scored(encoded),
                                                                                                   abs=1e-5)
    # the model records the files it learnt from (session 82): its own test files raise no note, PNGs of them do
    assert torch.load(saved, weights_only=True)["training_files"] == {
        "files": 80, "formats": {"JPEG": 80}, "modes": {"RGB": 80}, "jpeg_qualities": {"75": 80},
        "widths": [24, 24], "heights": [40, 40]}
    r = genaug("predict", data / "test", "--checkpoint", saved)
    assert r.returncode == 0 and "differ from those the model learnt from" not in r.stderr
    (tmp_path / "site").mkdir()
    for f in sorted((data / "test" / "NORMAL").iterdir())[:3]:
        Image.open(f).save(tmp_path / "site" / f"{f.stem}.png")
    r = genaug("predict", tmp_path / "site", "--checkpoint", saved)
    assert r.returncode == 0 and ("note: these files differ from those the model learnt from: file format PNG where "
                                  "the model learnt from JPEG. ") in r.stderr
    # the same model on the images squashed, as every model before session 81 read them, scores them otherwise
    from genaug.predict import load_classifier, read_images
    from genaug.train import predict_probs
    model, ckpt = load_classifier(saved)
    _, squashed, _ = read_images(data / "test", ckpt["image_size"])
    plain = sorted(predict_probs(model, torch.from_numpy(squashed).unsqueeze(1))[:, 1].tolist())
    assert plain != pytest.approx(got, abs=1e-4)
    # a saved model asking for a resize this genaug does not know is refused, not guessed at
    torch.save(torch.load(saved, weights_only=True) | {"resize": "stretch"}, tmp_path / "edited.pt")
    r = genaug("predict", data / "test", "--checkpoint", tmp_path / "edited.pt")
    assert r.returncode == 2 and "asks for resize 'stretch', which this genaug does not know" in r.stderr
    # it changes what every cell learns: a resumed run keeps it
    r = genaug("benchmark", "--resume", run, "--resize", "squash", "--threads", "1")
    assert r.returncode == 2 and "made with data.resize='crop'" in r.stderr and "Traceback" not in r.stderr


def test_an_input_run_that_made_its_images_square_otherwise_is_refused():
    """A GAN or autoencoder run of squashed images given to a benchmark that crops them (or the other way
    round) would mix two geometries under one name; a run saved before data.resize existed squashed."""
    from genaug.benchmark import _same_data
    cfg = Config()
    saved = cfg.to_dict()
    del saved["data"]["resize"]   # as runs before session 81 saved their config
    _same_data(saved, cfg, "encode_run", "R")
    cfg.data.resize = "crop"
    with pytest.raises(CheckpointError, match="autoencoder run R made its images square by data.resize 'squash', "
                                              "this benchmark by 'crop': give --resize squash"):
        _same_data(saved, cfg, "encode_run", "R")
    _same_data(cfg.to_dict(), cfg, "gan_run", "R")


@pytest.mark.parametrize("model, latent, shape", [("cnn", False, (1, 32, 32)), ("resnet34", False, (1, 32, 32)),
                                                  ("cnn", True, (16, 2, 2)), ("cnn", True, (3, 16, 2, 2))])
@pytest.mark.parametrize("ema", [0.0, 0.99])   # with an average, its statistics' pass is timed too
def test_a_training_step_is_timed_for_pixels_and_latents_with_views(model, latent, shape, ema):
    from genaug.benchmark import seconds_per_training_image
    cfg = Config()
    cfg.benchmark.batch_size, cfg.benchmark.ema = 4, ema
    assert 0 < seconds_per_training_image(model, latent, shape, 2, cfg, "cpu") < 5


@pytest.mark.parametrize("device, batch_size, timed", [("cpu", 64, 16), ("cpu", 4, 4), ("cpu", 1, 2),
                                                      ("cuda", 64, 64), ("cuda:0", 128, 128)])
def test_a_gpu_times_the_training_batch_and_a_cpu_at_most_16_images(device, batch_size, timed):
    from genaug.benchmark import timing_batch
    assert timing_batch(batch_size, torch.device(device)) == timed


def test_variant_cells_without_real_ones_are_told_how_to_get_a_comparison(tmp_path):
    from types import SimpleNamespace
    from genaug.benchmark import unpaired_notes
    run = SimpleNamespace(dir=tmp_path / "run")
    cell = lambda m, v, f: {"model": m, "variant": v, "train_fraction": f}
    assert unpaired_notes(run, [cell("cnn", "real", 1.0), cell("cnn", "mixed", 1.0)]) == []
    notes = unpaired_notes(run, [cell("cnn", "real", 1.0), cell("cnn", "mixed", 1.0), cell("cnn", "mixed", 0.1),
                                 cell("resnet34", "synthetic", 1.0)])
    assert notes == [f"cnn mixed at 0.1, resnet34 synthetic: no real cell of the same model and train fraction, so "
                     f"no comparison with real; add them with genaug benchmark --resume {tmp_path / 'run'} "
                     "--variants real,mixed,synthetic"]


def test_a_resumed_run_whose_given_gan_run_is_gone_says_so_and_how_to_go_on(tmp_path, tiny):
    # a run made with --gan-run, resumed on a machine without that GAN run (an archive, say), was told
    # "--gan-run DIR not found" though no --gan-run was given (found in session 69)
    r = genaug("benchmark", "--profile", tiny, "--variants", "real", "--seeds", 1, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "benchmark")
    gan = tmp_path / "gan"
    (gan / "synthetic").mkdir(parents=True)
    (gan / "synthetic" / "manifest.csv").write_text("path,label\n")
    (gan / "config.yaml").write_text((run / "config.yaml").read_text())   # the same data settings
    r = genaug("benchmark", "--resume", run, "--variants", "real,mixed", "--gan-run", gan, "--extend-only")
    assert r.returncode == 0, r.stderr[-2000:]
    shutil.rmtree(gan)
    r = genaug("benchmark", "--resume", run, "--seeds", 2)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert f"this benchmark's GAN run {gan} is gone" in line and "--gan-run" in line and "--supersede" in line
    assert "--gan-run " + str(gan) not in line


def test_cpu_amp_cells_compute_in_bf16_record_it_and_the_report_says_so(tmp_path, tiny):
    r = genaug("benchmark", "--profile", tiny, "--variants", "real", "--seeds", 1, "--cpu-amp", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "note: the classifiers (and a GAN or autoencoder this run trains) compute in bf16 on this CPU (--cpu-amp)" in r.stdout
    run = only_run(tmp_path / "o", "benchmark")
    cell = json.loads((run / "cells" / "cnn__real__f1__seed0.json").read_text())
    assert cell["machine"]["autocast"] == "bf16" and cell["precision"] == "bf16"
    assert cell["machine"]["bf16_in_hardware"] is cpu_has_bf16()   # emulated bf16 gives other numbers (session 77)
    assert "- every cell computed in bf16 on the CPU (--cpu-amp)" in (run / "report.md").read_text()
    # resumed in fp32 (it may change, as --threads may): the new cell says so by leaving it out, and the report
    # counts both and names the two ways they ran
    r = genaug("benchmark", "--resume", run, "--seeds", 2, "--no-cpu-amp")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "compute in bf16" not in r.stdout
    fp32 = json.loads((run / "cells" / "cnn__real__f1__seed1.json").read_text())
    assert "autocast" not in fp32["machine"] and fp32["precision"] == "fp32"
    report = (run / "report.md").read_text()
    assert "- 1 of 2 cells (the rest in fp32) computed in bf16 on the CPU (--cpu-amp)" in report
    emulated = "" if cpu_has_bf16() else " (emulated: no AMX or AVX512-BF16)"
    assert f"bf16 autocast{emulated}: 1 cell" in report and "cells ran on more than one machine" in report


@pytest.mark.parametrize("seconds,device,cpu_amp,hardware,hinted", [
    (3600, "cpu", False, True, True),
    (300, "cpu", False, True, False),     # a few minutes: not worth a line
    (3600, "cpu", True, True, False),     # already asked for
    (3600, "cpu", False, False, False),   # no bf16 hardware: a step 1.4-12x slower (PERFORMANCE (p), (s))
    (3600, "cuda", False, True, False),   # bf16 there already, by run.amp
])
def test_a_long_fp32_run_on_a_cpu_with_bf16_hardware_is_told_of_cpu_amp(monkeypatch, seconds, device, cpu_amp,
                                                                       hardware, hinted):
    import genaug.benchmark as benchmark
    from genaug.config import RunConfig

    monkeypatch.setattr(benchmark, "cpu_has_bf16", lambda: hardware)
    hint = benchmark.cpu_amp_hint(seconds, device, RunConfig(cpu_amp=cpu_amp))
    assert (hint is not None) is hinted
    assert hint is None or "--cpu-amp trains the classifiers faster" in hint


@pytest.mark.parametrize("cores,device,threads,said", [
    (None, "cpu", 2, False), (0.4, "cpu", 2, False), (1.6, "cpu", 2, True), (1.6, "cuda", 2, False),
    (1.0, "cpu", 1, False),   # two one-thread runs side by side on two cores: each has a core of its own
    (1.6, "cpu", 1, True)])
def test_the_estimate_says_when_other_processes_held_the_cpu_while_it_was_timed(monkeypatch, cores, device, threads,
                                                                                said):
    # session 85's "about 47m47s" for cells that took 32m31s may have been timed beside other work
    import genaug.benchmark as benchmark
    monkeypatch.setattr(benchmark.os, "cpu_count", lambda: 2)
    note = benchmark.busy_note(cores, device, threads)
    assert (note is not None) is said
    assert note is None or note.startswith("note: other processes kept about 1.6 of this machine's 2 cores busy while "
                                           "the steps were timed: the estimate counts their load")


def test_a_resumed_run_whose_data_changed_is_refused_until_it_is_put_back(tmp_path, tiny):
    """Found in session 71: images added to the data folder between a run and its --resume put
    seed 1 on another validation split (8 images, then 10) and pooled it with seed 0 as one cell."""
    data = make_folder_dataset(tmp_path / "data", {"train": 16, "test": 6})
    r = genaug("benchmark", "--data", data, "--profile", tiny, "--variants", "real", "--seeds", "1",
               "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "benchmark")
    cells = {p.name: p.read_bytes() for p in (run / "cells").iterdir()}
    added = data / "train" / "NORMAL" / "IM-0900-0001.jpeg"
    shutil.copyfile(data / "train" / "NORMAL" / "IM-0000-0001.jpeg", added)
    r = genaug("benchmark", "--resume", run, "--seeds", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert (f"genaug: error: the data at {data} no longer splits as when run {run} began (train+val 32 images then, "
            "33 now)") in r.stderr, r.stderr
    assert "put the data back as it was, or start a new run" in r.stderr
    assert {p.name: p.read_bytes() for p in (run / "cells").iterdir()} == cells
    # the same counts, another file: a name changed
    added.rename(data / "train" / "NORMAL" / "IM-0901-0001.jpeg")
    (data / "train" / "NORMAL" / "IM-0000-0001.jpeg").unlink()
    r = genaug("benchmark", "--resume", run, "--seeds", "2")
    assert r.returncode == 2 and "the same counts, other files or labels" in r.stderr, r.stderr
    # a report trains nothing: said, not refused
    r = genaug("benchmark", "--resume", run, "--report-only")
    assert r.returncode == 0 and "note: the data at" in r.stdout + r.stderr, r.stderr[-2000:]
    # put back as it was: the run goes on
    (data / "train" / "NORMAL" / "IM-0901-0001.jpeg").rename(data / "train" / "NORMAL" / "IM-0000-0001.jpeg")
    r = genaug("benchmark", "--resume", run, "--seeds", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(list((run / "cells").iterdir())) == 2


@pytest.mark.parametrize("renamed", ["class folders", "files"])
def test_a_resumed_runs_data_renamed_into_the_other_unicode_form_is_told_as_such(tmp_path, renamed):
    # found in session 75: data copied to a Mac and back has its names decomposed (NFD), which print as they
    # did; the refusal said only "other files or labels: renamed, replaced or moved between classes"
    from types import SimpleNamespace
    from genaug.jobs import data_unchanged
    data = make_folder_dataset(tmp_path / "data", {"train": 12, "test": 4})
    composed, decomposed = (unicodedata.normalize(form, "Neumonía") for form in ("NFC", "NFD"))
    for split in ("train", "test"):
        (data / split / "PNEUMONIA").rename(data / split / composed)
        for f in (data / split / "NORMAL").iterdir():   # a name with an accent, each patient's own
            f.rename(f.with_name(f.name.replace("IM-", unicodedata.normalize("NFC", "IMÉ-"))))
    before = load_data(str(data), 16, cache_dir=None)
    run = SimpleNamespace(manifest={"data": before.summary(), "split_digest": before.split_digest()},
                          dir=tmp_path / "run", trains=True)
    for split in ("train", "test"):
        if renamed == "class folders":
            (data / split / composed).rename(data / split / decomposed)
        else:
            for f in (data / split / "NORMAL").iterdir():
                f.rename(f.with_name(unicodedata.normalize("NFD", f.name)))
    after = load_data(str(data), 16, cache_dir=None)
    with pytest.raises(DataError) as told:
        data_unchanged(run, after.summary(), after.split_digest(), str(data), after.split_digest)
    assert ("(the same counts; the names are those the run began with, in another Unicode form: decomposed, NFD, as "
            "macOS writes names, where they were composed, NFC)") in str(told.value)
    assert str(told.value).endswith("put the data back as it was (convmv -f utf8 -t utf8 --nfc -r --notest on the "
                                    "data folder), or start a new run on the data as it is now")


def test_a_resumed_run_whose_classes_this_genaug_orders_otherwise_is_refused(tmp_path):
    # session 85 put a class named as a negative finding first: a run that began with abnormal, normal (by name)
    # holds cells whose labels and probabilities are by that order
    from types import SimpleNamespace
    from genaug.jobs import data_unchanged
    data = make_folder_dataset(tmp_path / "data", {"train": 12, "test": 4})
    for split in ("train", "test"):
        (data / split / "NORMAL").rename(data / split / "normal")
        (data / split / "PNEUMONIA").rename(data / split / "abnormal")
    now = load_data(str(data), 16, cache_dir=None)
    assert now.classes == ["normal", "abnormal"]
    then = dict(now.summary(), classes=["abnormal", "normal"])
    run = SimpleNamespace(manifest={"data": then, "split_digest": "0" * 16}, dir=tmp_path / "run", trains=False)
    with pytest.raises(DataError) as told:
        data_unchanged(run, now.summary(), now.split_digest(), str(data), now.split_digest)
    assert str(told.value) == (f"run {tmp_path / 'run'} gave its classes the order abnormal, normal, and this genaug "
                               "gives them normal, abnormal (of two, a class named as a negative finding now comes "
                               "first, so that sensitivity is the other's recall): its cells would be read, and new "
                               "ones trained, by the other order; resume it with the genaug that began it, or start a "
                               "new run")


def test_a_gan_runs_class_spelt_otherwise_than_the_datas_is_told_as_such(tmp_path):
    # found in session 75: a GAN run made where macOS wrote the class decomposed (NFD) met data composed (NFC),
    # and "GAN run has class Neumonía, the data has NORMAL, Neumonía" named a class the data holds, as printed
    from genaug.benchmark import load_synthetic
    composed, decomposed = (unicodedata.normalize(form, "Neumonía") for form in ("NFC", "NFD"))
    (tmp_path / "synthetic").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "synthetic" / "s0.png")
    (tmp_path / "synthetic" / "manifest.csv").write_text(f"file,class\ns0.png,{decomposed}\n", encoding="utf-8")
    with pytest.raises(CheckpointError) as told:
        load_synthetic(tmp_path, ["NORMAL", composed], 8)
    assert str(told.value) == (
        f"GAN run {tmp_path} has class {decomposed}, the data has NORMAL, {composed} ({decomposed} and {composed} print "
        "alike but differ in Unicode form (one composed, NFC, one decomposed, NFD, as macOS writes names)): use a GAN "
        "run made on this data")
