"""genaug threshold: a two-class model's decision threshold chosen on labelled images from the user's own site."""
import csv
import io
import math
import re
import shutil
import unicodedata
from pathlib import Path

import pytest
import torch
from PIL import Image

from genaug.models import build_classifier

from conftest import make_folder_dataset
from test_cli import genaug

# p(PNEUMONIA) = sigmoid(8 * mean brightness - 4): brighter is more PNEUMONIA, so thresholds are worked by hand
NORMAL_GREYS, PNEUMONIA_GREYS = (20, 60, 100, 140, 220), (150, 180, 200, 230, 250)


def p_pneumonia(grey: int) -> float:
    return 1 / (1 + math.exp(-(8 * grey / 255 - 4)))


def brightness_model(path: Path, classes=("NORMAL", "PNEUMONIA"), threshold=0.9) -> Path:
    model = build_classifier("logreg", len(classes), image_size=16)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.weight[1] = 8 / 256
        model.head.bias.copy_(torch.tensor([0.0, -4.0] + [0.0] * (len(classes) - 2)))
    torch.save({"kind": "classifier", "model_name": "logreg", "model": model.state_dict(), "classes": list(classes),
                "in_channels": 1, "image_size": 16, "threshold": threshold}, path)
    return path


def labelled_folder(root: Path) -> Path:
    for cls, greys in (("NORMAL", NORMAL_GREYS), ("PNEUMONIA", PNEUMONIA_GREYS)):
        (root / cls).mkdir(parents=True)
        for g in greys:   # PNG: a uniform grey decodes to exactly g / 255
            Image.fromarray(torch.full((24, 24), g, dtype=torch.uint8).numpy()).save(root / cls / f"g{g}.png")
    return root


# Youden's J is greatest at p(150), the lowest PNEUMONIA score; genaug threshold places it midway down to the
# next lower score, NORMAL grey 140's
SITE_THRESHOLD = (p_pneumonia(150) + p_pneumonia(140)) / 2


def test_site_threshold_is_youdens_j_on_the_labelled_images(tmp_path):
    """Worked by hand: from p(150) down to just above p(140), every PNEUMONIA image and 4 of 5 NORMAL ones are
    right (J 0.8, the only maximum); at the checkpoint's 0.9 (grey >= 198) 3 of 5 PNEUMONIA and 4 of 5 NORMAL
    (220 is called PNEUMONIA)."""
    from genaug.predict import site_threshold

    found = site_threshold(brightness_model(tmp_path / "m.pt"), labelled_folder(tmp_path / "site"))
    assert found["threshold"] == pytest.approx(SITE_THRESHOLD, abs=1e-5)
    assert found["previous"] == 0.9 and found["counts"] == {"NORMAL": 5, "PNEUMONIA": 5} and not found["skipped"]
    assert found["at_chosen"] == pytest.approx({"accuracy": 0.9, "sensitivity": 1.0, "specificity": 0.8})
    assert found["at_previous"] == pytest.approx({"accuracy": 0.7, "sensitivity": 0.6, "specificity": 0.8})
    assert found["roc_auc"] == pytest.approx(22 / 25)   # of 25 (PNEUMONIA, NORMAL) pairs, 3 are the wrong way round:
    #                                                   NORMAL 220 above PNEUMONIA 150, 180 and 200


def test_threshold_command_writes_a_copy_that_predict_uses_and_leaves_the_model_as_it_was(tmp_path):
    model = brightness_model(tmp_path / "m.pt")
    before = model.read_bytes()
    site = labelled_folder(tmp_path / "site")
    r = genaug("threshold", site, "--checkpoint", model, "--out", tmp_path / "site.pt")
    assert r.returncode == 0, r.stderr
    assert f"{site}: 5 images of NORMAL, 5 images of PNEUMONIA; ROC-AUC 0.880" in r.stdout
    assert re.search(r"\n0\.900000 \(the checkpoint's\) +0\.700 +0\.600 +0\.800\n", r.stdout), r.stdout
    assert re.search(rf"\n{SITE_THRESHOLD:.6f} \(Youden's J here\) +0\.900 +1\.000 +0\.800\n", r.stdout)
    assert "fewer than 25 images of NORMAL and PNEUMONIA" in r.stderr
    assert model.read_bytes() == before
    saved = torch.load(tmp_path / "site.pt", weights_only=True)
    assert saved["threshold"] == pytest.approx(SITE_THRESHOLD, abs=1e-5)
    assert saved["threshold_origin"]["images"] == {"NORMAL": 5, "PNEUMONIA": 5}
    assert saved["threshold_origin"]["replaced"] == 0.9
    # genaug predict decides by the new threshold: grey 150 is now PNEUMONIA, 220 still is, 140 is not
    rows = {Path(r["file"]).name: r for r in csv.DictReader(io.StringIO(genaug(
        "predict", site, "--checkpoint", tmp_path / "site.pt").stdout))}
    assert [rows[f"g{g}.png"]["prediction"] for g in (140, 150, 220)] == ["NORMAL", "PNEUMONIA", "PNEUMONIA"]
    assert float(rows["g150.png"]["threshold_PNEUMONIA"]) == pytest.approx(SITE_THRESHOLD, abs=1e-5)
    # run again onto the file it wrote, or onto the model itself: refused, nothing replaced
    for out in (tmp_path / "site.pt", model):
        r = genaug("threshold", site, "--checkpoint", model, "--out", out)
        assert r.returncode == 2 and f"--out {out} exists; give a new file name" in r.stderr
    assert model.read_bytes() == before


@pytest.mark.parametrize("positive", ["PNEUMONIA", "bacterial_or_viral_pneumonia", "肺炎"])
def test_the_threshold_table_keeps_its_figures_in_line_for_any_class_name(positive):
    # found in session 74: the first column was 32 characters by len(), so a class name past 17 characters or a
    # CJK one (two columns a character) pushed the header's figures out of line with the rows'
    from genaug.data.decode import shown_width
    from genaug_cli.main import threshold_table
    figures = {"accuracy": 0.9, "sensitivity": 0.95, "specificity": 0.8}
    lines = threshold_table(positive, [("0.5 (the likelier class)", figures),
                                       ("0.612345 (Youden's J here)", figures)]).splitlines()
    assert len(lines) == 3 and len({shown_width(ln) for ln in lines}) == 1, lines
    assert lines[0].startswith(f"threshold on p({positive}) ") and lines[0].endswith(" accuracy  sensitivity  specificity")


def test_threshold_names_the_labelled_images_it_does_not_read(tmp_path):
    # found in session 69: a third class's folder (or a misnamed one) and images beside the class folders were
    # passed over without a word, the threshold chosen on fewer images than the user had labelled
    site = labelled_folder(tmp_path / "site")
    for where in ("COVID", "Pneumonia_viral", ".ipynb_checkpoints"):
        (site / where).mkdir()
        for g in (30, 90):
            Image.fromarray(torch.full((24, 24), g, dtype=torch.uint8).numpy()).save(site / where / f"g{g}.png")
    Image.fromarray(torch.full((24, 24), 90, dtype=torch.uint8).numpy()).save(site / "loose.png")
    (site / "empty").mkdir()
    (site / "notes.txt").write_text("labelled by hand")
    r = genaug("threshold", site, "--checkpoint", brightness_model(tmp_path / "m.pt"), "--out", tmp_path / "s.pt")
    assert r.returncode == 0, r.stderr
    assert ("genaug: note: not read, being in no class folder of this model (NORMAL/, PNEUMONIA/): COVID/ "
            f"(2 images), Pneumonia_viral/ (2 images), loose.png in {site}\n") in r.stderr
    assert f"{site}: 5 images of NORMAL, 5 images of PNEUMONIA; ROC-AUC 0.880" in r.stdout
    # the labelled folder as it should be draws no such note
    r = genaug("threshold", labelled_folder(tmp_path / "clean"), "--checkpoint", tmp_path / "m.pt",
               "--out", tmp_path / "c.pt")
    assert r.returncode == 0 and "not read" not in r.stderr, r.stderr


def test_threshold_and_predict_pass_over_folders_of_masks(tmp_path):
    # found in session 86: a site laid out as the COVID-19 Radiography Database (<CLASS>/masks/ beside the images)
    # had its masks read as labelled X-rays of their class; white masks in NORMAL/ moved the threshold
    site = labelled_folder(tmp_path / "site")
    for cls in ("NORMAL", "PNEUMONIA"):
        (site / cls / "lung masks").mkdir()
        for i in range(3):
            Image.fromarray(torch.full((24, 24), 255 * (cls == "NORMAL"), dtype=torch.uint8).numpy()).save(
                site / cls / "lung masks" / f"m{i}.png")
    model = brightness_model(tmp_path / "m.pt")
    r = genaug("threshold", site, "--checkpoint", model, "--out", tmp_path / "s.pt")
    assert r.returncode == 0, r.stderr
    assert f"{site}: 5 images of NORMAL, 5 images of PNEUMONIA; ROC-AUC 0.880" in r.stdout   # as without the masks
    assert (f"skipped {site}/NORMAL/lung masks: masks (by the folder's name), not X-rays: not read; name the folder "
            "to read them") in r.stderr
    r = genaug("predict", "--checkpoint", model, site)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1 + 10 and "lung masks" not in r.stdout, r.stderr
    r = genaug("predict", "--checkpoint", model, site / "NORMAL" / "lung masks")   # named itself: read
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1 + 3, r.stderr
    only = tmp_path / "only"
    (only / "masks").mkdir(parents=True)
    shutil.copy(site / "NORMAL" / "lung masks" / "m0.png", only / "masks" / "m0.png")
    r = genaug("predict", "--checkpoint", model, only)
    assert r.returncode == 2 and r.stderr == (f"genaug: error: no images in {only} outside its folders named as masks "
                                              f"(e.g. {only}/masks), which are not read as X-rays: name such a folder "
                                              "itself to read its images\n"), r.stderr


@pytest.mark.parametrize("case,told", [
    ("no class folder", "has no PNEUMONIA/ subfolder: put each class's labelled images in"),
    # found in session 75: a folder the user could see (in another case, or in the other Unicode form that macOS
    # writes) was said to be missing, without a word on why
    ("a class folder in another case", "has no PNEUMONIA/ subfolder: {site}/pneumonia and the model's class PNEUMONIA "
                                       "differ only in case: rename the folder PNEUMONIA"),
    ("a class folder in another Unicode form",
     "has no Neumonía/ subfolder: {site}/Neumonía and the model's class Neumonía print alike but differ in Unicode form "
     "(one composed, NFC, one decomposed, NFD, as macOS writes names): rename the folder in the model's spelling "
     "(convmv -f utf8 -t utf8 --nfc --notest {site}/Neumonía)"),
    ("a dataset's root", "has no NORMAL/ or PNEUMONIA/ subfolder: give one of {site}/test, {site}/train, which have them"),
    ("one class's folder", "{site}/NORMAL is the NORMAL folder of {site}: give {site}, which holds NORMAL/ and PNEUMONIA/"),
    ("empty class", "no images in"),
    ("unreadable class", "no NORMAL image in {site}/NORMAL could be read ({site}/NORMAL/bad.png: not an image)"),
    ("three classes", "has 3 classes (NORMAL, BACTERIA, VIRUS); a decision threshold applies to a two-class model only"),
    ("not .pt", "give a file name ending in .pt"),
])
def test_threshold_refusals_are_one_line(tmp_path, case, told):
    composed, decomposed = (unicodedata.normalize(form, "Neumonía") for form in ("NFC", "NFD"))
    classes = {"three classes": ("NORMAL", "BACTERIA", "VIRUS"),
               "a class folder in another Unicode form": ("NORMAL", composed)}.get(case, ("NORMAL", "PNEUMONIA"))
    model = brightness_model(tmp_path / "m.pt", classes)
    site = labelled_folder(tmp_path / "site")
    if case == "a class folder in another case":
        (site / "PNEUMONIA").rename(site / "pneumonia")
    if case == "a class folder in another Unicode form":
        (site / "PNEUMONIA").rename(site / decomposed)
        told = told.replace("Neumonía/ subfolder", f"{composed}/ subfolder").replace(
            "{site}/Neumonía and", f"{{site}}/{decomposed} and").replace("class Neumonía", f"class {composed}").replace(
            "{site}/Neumonía)", f"{{site}}/{decomposed})")
    if case == "no class folder":
        for f in (site / "PNEUMONIA").iterdir():
            f.unlink()
        (site / "PNEUMONIA").rmdir()
    if case == "a dataset's root":
        site = make_folder_dataset(tmp_path / "xray", {"train": 2, "test": 2}, size=8)
    if case == "unreadable class":   # named by its class and file
        for f in (site / "NORMAL").iterdir():
            f.unlink()
        (site / "NORMAL" / "bad.png").write_text("not an image")
    if case == "empty class":
        for f in (site / "NORMAL").iterdir():
            f.unlink()
    out = tmp_path / ("site.ckpt" if case == "not .pt" else "site.pt")
    given = site / "NORMAL" if case == "one class's folder" else site
    r = genaug("threshold", given, "--checkpoint", model, "--out", out)
    assert r.returncode == 2 and told.format(site=site) in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_predict_counts_images_not_lines_where_a_file_name_holds_a_newline_or_comma(tmp_path):
    # found in session 67: two images, one named with a newline, were told as "3 images"
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, grey in (("line\nbreak.png", 200), ("a,b.png", 20)):
        Image.fromarray(torch.full((24, 24), grey, dtype=torch.uint8).numpy()).save(folder / name)
    r = genaug("predict", folder, "--checkpoint", brightness_model(tmp_path / "m.pt"), "--out", tmp_path / "p.csv")
    assert r.returncode == 0 and f"wrote {tmp_path / 'p.csv'} (2 images, 0 skipped)" in r.stdout, r.stdout + r.stderr
    rows = {Path(row["file"]).name: row for row in csv.DictReader(open(tmp_path / "p.csv", newline=""))}
    assert set(rows) == {"line\nbreak.png", "a,b.png"}
    assert float(rows["line\nbreak.png"]["p_PNEUMONIA"]) == pytest.approx(p_pneumonia(200), abs=1e-5)


@pytest.mark.parametrize("pneumonia_as, told", [("jpeg", "file format (mostly: NORMAL PNG 100%, PNEUMONIA JPEG 100%) alone tells them apart for 100% of images"),
                                                ("png", None)])
def test_threshold_says_where_the_labelled_classes_differ_in_their_files(tmp_path, pneumonia_as, told):
    # session 83: a site's NORMAL images exported as PNG from one system and its PNEUMONIA ones as JPEG from
    # another score apart for the source as much as for the disease, and the threshold chosen follows them
    site = tmp_path / "site"
    for cls, ext, greys in (("NORMAL", "png", range(20, 140, 2)), ("PNEUMONIA", pneumonia_as, range(130, 250, 2))):
        (site / cls).mkdir(parents=True)
        for g in greys:
            Image.fromarray(torch.full((24, 24), g, dtype=torch.uint8).numpy()).save(site / cls / f"g{g}.{ext}")
    r = genaug("threshold", site, "--checkpoint", brightness_model(tmp_path / "m.pt"), "--out", tmp_path / "s.pt")
    assert r.returncode == 0, r.stderr
    notes = [ln for ln in r.stderr.splitlines() if "the classes differ in their files" in ln]
    if told is None:
        assert not notes, r.stderr
    else:
        assert len(notes) == 1 and notes[0].startswith("genaug: note: the classes differ in their files here: "
                                                       + told), r.stderr
        assert "label images of every class from the source the model will read" in notes[0]


def test_checkpoint_probs_moves_the_model_to_the_device_its_batches_go_to(monkeypatch):
    # found in session 83: load_classifier builds the model on the CPU and predict / threshold sent only the
    # batches to --device, so on a GPU ("auto") the first batch met CPU weights in a traceback; the "meta"
    # device stands in for a GPU here, and no batch is run
    import genaug.predict as predict

    seen = []
    monkeypatch.setattr(predict, "predict_probs", lambda model, data, device, **k: seen.append(
        (next(model.parameters()).device.type, str(device))))
    model = build_classifier("cnn", 2, image_size=16)
    predict.checkpoint_probs(model, {}, torch.zeros(3, 16, 16, dtype=torch.uint8).numpy(), device="meta")
    assert seen == [("meta", "meta")]
