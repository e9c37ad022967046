import codecs
import hashlib
import shutil
import http.server
import io
import json
import os
import re
import threading
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genaug.data import load_data, patient_folds, patient_id, split_by_patient
from genaug.data.cache import decode_cached
from genaug.data.decode import decode_image
from genaug.data.demo import demo_dataset
from genaug.data.equalize import equalize_images, equalized_bundle
from genaug.data.folder import three_class_label
from genaug.data.medmnist import INFO, download, load_npz
from genaug.errors import ConfigError, DataError

from conftest import make_folder_dataset


def test_folder_formats_converted_to_one_channel(tmp_path):
    root = make_folder_dataset(tmp_path / "d")
    cls = root / "train" / "NORMAL"
    Image.fromarray(np.full((30, 40), 100, np.uint8), "L").save(cls / "IM-0900-0001.png")
    sixteen = np.full((30, 30), 40000, np.uint16)
    Image.fromarray(sixteen).save(cls / "IM-0901-0001.png")
    Image.fromarray(np.full((30, 30), 3000, np.uint16)).save(cls / "IM-0907-0001.png")
    Image.new("CMYK", (32, 32), (0, 0, 0, 128)).save(cls / "IM-0902-0001.jpeg")
    Image.new("RGB", (32, 32), (10, 200, 10)).save(cls / "IM-0903-0001.bmp")
    Image.new("L", (32, 32), 77).save(cls / "IM-0904-0001.tiff")
    (cls / "IM-0905-0001.jpeg").write_bytes(b"\xff\xd8\xff\xe0 truncated")      # corrupt
    (cls / "IM-0906-0001.png").write_text("not an image at all")
    (root / "test" / "EMPTY").mkdir()                                            # empty class folder
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}

    b = load_data(str(root), 16, val_fraction=0.2, cache_dir=None)
    assert b.classes == ["NORMAL", "PNEUMONIA"]  # the empty class folder is ignored, with a note
    every = np.concatenate([np.asarray(s.images) for s in b.splits.values()])
    assert every.dtype == np.uint8 and every.shape[1:] == (16, 16)
    skipped = {Path(p).name for p, _ in b.skipped}
    assert skipped == {"IM-0905-0001.jpeg", "IM-0906-0001.png", "EMPTY"}
    # a job says so on its console and in its report, an image that failed to decode for example (session 56)
    assert re.fullmatch(rf"3 files under {re.escape(str(root))} were not read \(e\.g\. train/NORMAL/IM-090[56]-0001\.\w+: "
                        rf"[^)]+\)\); genaug data info --data {re.escape(str(root))} lists each and why",
                        b.skipped_note(str(root))), b.skipped_note(str(root))
    paths = [p for s in b.splits.values() for p in s.paths]
    idx = {Path(p).name: (s, i) for s in b.splits.values() for i, p in enumerate(s.paths)}
    s, i = idx["IM-0901-0001.png"]
    assert abs(int(s.images[i].mean()) - round(40000 / 257)) <= 1           # 16-bit scaled, not clipped
    s, i = idx["IM-0907-0001.png"]
    assert abs(int(s.images[i].mean()) - round(3000 * 255 / 4095)) <= 1     # 12 bits in a 16-bit file
    s, i = idx["IM-0900-0001.png"]
    assert int(s.images[i].mean()) == 100
    assert len(paths) == 16 * 2 + 6 * 2 + 6
    # input data is only ever read
    assert before == {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_decode_guards(tmp_path):
    tiny = tmp_path / "one.png"
    Image.new("L", (1, 1)).save(tiny)
    from genaug.data.decode import UnreadableImage
    with pytest.raises(UnreadableImage, match="too small"):
        decode_image(str(tiny), 16)


def test_images_outside_the_class_folders_are_named_as_not_read(tmp_path):
    # found in session 84: an image left in train/ itself, or beside train/ and test/, went unread without a word
    root = make_folder_dataset(tmp_path / "d", {"train": 16, "test": 6})
    some = next((root / "train" / "NORMAL").iterdir())
    shutil.copy(some, root / "train" / "person9_bacteria_1.jpeg")
    shutil.copy(some, root / "IM-0999-0001.jpeg")
    (root / "notes.txt").write_text("not an image: no word of it")
    b = load_data(str(root), 16)
    assert sorted(b.skipped) == [
        ("IM-0999-0001.jpeg", "an image beside the split folders: not read (a class's images go in <split>/<CLASS>/)"),
        ("train/person9_bacteria_1.jpeg",
         "an image in train/ outside its class folders: not read (a class's images go in <split>/<CLASS>/)")]
    assert len(b.train.labels) + len(b.val.labels) == 32   # the class folders' images, as before
    assert b.skipped_note(str(root)).startswith(f"2 files under {root} were not read")


def test_a_multi_page_tiff_is_skipped_with_a_reason_not_read_as_its_first_page(tmp_path):
    from genaug.data.decode import UnreadableImage
    pages = [Image.new("L", (32, 32), v) for v in (40, 200)]
    pages[0].save(tmp_path / "two.tif", save_all=True, append_images=pages[1:])
    pages[0].save(tmp_path / "one.tif")
    with pytest.raises(UnreadableImage, match=r"multi-frame image \(2 frames\); give single images"):
        decode_image(str(tmp_path / "two.tif"), 16)
    assert int(decode_image(str(tmp_path / "one.tif"), 16).mean()) == 40


@pytest.mark.parametrize("name,expected", [
    ("person1234_bacteria_3179.jpeg", "person1234"),
    ("IM-0001-0001.jpeg", "IM-0001"),
    ("NORMAL2-IM-0123-0001.jpeg", "NORMAL2-IM-0123"),
    ("whatever.png", "train/X/whatever"),       # no patient in the name: the file is its own
    ("00000013_005.png", "00000013"),             # NIH ChestX-ray14: one patient's follow-up images
    ("00000013_005_crop.png", "train/X/00000013_005_crop"),
])
def test_patient_id(name, expected):
    assert patient_id(f"train/X/{name}") == expected


@pytest.mark.parametrize("cls,name,expected", [
    ("NORMAL", "IM-0001-0001.jpeg", "NORMAL"),
    ("PNEUMONIA", "person1_bacteria_1.jpeg", "BACTERIA"),
    ("PNEUMONIA", "person1_virus_6.jpeg", "VIRUS"),
    ("PNEUMONIA", "odd.jpeg", None),
])
def test_three_class_labels(cls, name, expected):
    assert three_class_label(cls, name) == expected


def test_patient_split_no_overlap_stratified_deterministic():
    rng = np.random.default_rng(0)
    patients = [f"p{i // 3}" for i in range(300)]
    labels = np.array([(i // 3) % 4 == 0 for i in range(300)], dtype=int)
    rest, carved = split_by_patient(labels, patients, 0.2, seed=7)
    assert not {patients[i] for i in rest} & {patients[i] for i in carved}
    assert sorted(np.concatenate([rest, carved]).tolist()) == list(range(300))
    for c in (0, 1):  # stratified: each class gives about 20% of its images
        share = (labels[carved] == c).sum() / (labels == c).sum()
        assert 0.15 <= share <= 0.3
    rest2, carved2 = split_by_patient(labels, patients, 0.2, seed=7)
    assert carved.tolist() == carved2.tolist()
    _, carved3 = split_by_patient(labels, patients, 0.2, seed=8)
    assert carved.tolist() != carved3.tolist()
    del rng


def test_folder_val_carved_by_patient_and_test_untouched(folder_data):
    b = load_data(str(folder_data), 16, val_fraction=0.25, cache_dir=None)
    assert set(b.splits) == {"train", "val", "test"}
    assert not set(b.train.patients) & set(b.val.patients)
    assert all(p.startswith("test/") for p in b.test.paths) and len(b.test) == 12
    assert "carved" in b.val_origin


def test_a_val_split_far_from_its_fraction_says_what_it_holds(tmp_path):
    few = make_folder_dataset(tmp_path / "few", {"train": 4, "test": 2}, size=12)   # 2 patients per class
    b = load_data(str(few), 12, val_fraction=0.1, cache_dir=None)
    assert len(b.val) == 4 and b.val_origin.endswith("; 4 of 8 images (50%), as whole patients of each class")
    many = make_folder_dataset(tmp_path / "many", {"train": 200, "test": 2}, size=12)
    b = load_data(str(many), 12, val_fraction=0.1, cache_dir=None)
    assert b.val_origin == "carved from train by patient (10%, seed 0)"   # close enough: nothing added


def test_a_validation_carve_that_takes_a_class_from_train_says_so(tmp_path):
    # found in session 80: a class of one training patient went whole to validation, and the error said the
    # training split "has no images of class NORMAL" while train/NORMAL held two
    root = make_folder_dataset(tmp_path / "one", {"train": 8, "test": 2}, size=12)
    for f in sorted((root / "train" / "NORMAL").iterdir())[2:]:
        f.unlink()                                        # NORMAL keeps one patient, IM-0000
    with pytest.raises(DataError) as e:
        load_data(str(root), 12, cache_dir=None)
    msg = str(e.value)
    assert "class NORMAL has 1 training patient" in msg and "both trained on and validated" in msg
    assert "val/" in msg and "\n" not in msg
    # a fraction that carves every patient of every class names the setting to lower
    many = make_folder_dataset(tmp_path / "many", {"train": 8, "test": 2}, size=12)
    with pytest.raises(DataError) as e:
        load_data(str(many), 12, val_fraction=0.99, cache_dir=None)
    msg = str(e.value)
    assert "data.val_fraction 0.99" in msg and "NORMAL, PNEUMONIA" in msg and "lower it" in msg


def test_tiny_val_is_folded_and_recarved(tmp_path):
    root = make_folder_dataset(tmp_path / "v", {"train": 200, "test": 4, "val": 1}, size=12, with_val=True)
    b = load_data(str(root), 12, cache_dir=None)
    assert "folded" in b.val_origin
    assert len(b.train) + len(b.val) == 402


def test_a_given_val_of_one_class_is_folded_and_recarved(tmp_path):
    # found in session 84: val/NORMAL alone was used as given: each model's threshold was chosen by Youden's J
    # with no PNEUMONIA image to count, and a tiny benchmark scored 50% at it (ROC-AUC 1.000)
    root = make_folder_dataset(tmp_path / "v", {"train": 20, "test": 4, "val": 6}, size=12, with_val=True)
    shutil.rmtree(root / "val" / "PNEUMONIA")
    b = load_data(str(root), 12, cache_dir=None)
    assert b.val_origin.startswith("carved from train by patient (10%, seed 0); the given val split had no images "
                                   "of class PNEUMONIA and was folded into train first")
    assert len(b.train) + len(b.val) == 46 and set(np.asarray(b.val.labels).tolist()) == {0, 1}
    assert not any("val split has no images" in n for n in b.notes)


def test_missing_and_empty_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_data(str(tmp_path / "nope"), 16)
    (tmp_path / "e" / "train" / "A").mkdir(parents=True)
    (tmp_path / "e" / "test" / "A").mkdir(parents=True)
    with pytest.raises(DataError, match="has no images"):
        load_data(str(tmp_path / "e"), 16)


def test_a_data_folder_one_step_off_the_layout_says_what_to_give(tmp_path):
    root = make_folder_dataset(tmp_path / "x")
    # a split folder of a laid-out dataset: the dataset is one level up
    with pytest.raises(DataError, match=rf"is the test split of {tmp_path / 'x'}: give --data {tmp_path / 'x'} "):
        load_data(str(root / "test"), 16)
    # a class folder of a split (session 54: it was told to lay its images out from a labels CSV)
    with pytest.raises(DataError, match=rf"is the NORMAL class folder of the train split of {tmp_path / 'x'}: "
                                        rf"give --data {tmp_path / 'x'} "):
        load_data(str(root / "train" / "NORMAL"), 16)
    # images with no class folders: their labels come as a CSV, through data split
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(flat / "a.png")
    with pytest.raises(DataError, match=rf"holds images but no class folders: .*genaug data split {flat} --labels"):
        load_data(str(flat), 16)
    (flat / "a.png").unlink()
    with pytest.raises(DataError, match="no 'train' folder"):   # an empty folder is not said to hold images
        load_data(str(flat), 16)


def test_a_test_split_without_a_class_is_refused(tmp_path):
    root = make_folder_dataset(tmp_path / "x")
    shutil.rmtree(root / "test" / "NORMAL")
    with pytest.raises(DataError, match=f"the test split of {root} has no images of class NORMAL"):
        load_data(str(root), 16, cache_dir=None)
    shutil.rmtree(root / "train" / "PNEUMONIA")
    with pytest.raises(DataError, match=f"the training split of {root} has no images of class PNEUMONIA"):
        load_data(str(root), 16, cache_dir=None)


def test_class_folders_named_apart_by_case_are_told_as_such(tmp_path):
    root = make_folder_dataset(tmp_path / "x")
    (root / "test" / "NORMAL").rename(root / "test" / "normal")
    with pytest.raises(DataError) as told:
        load_data(str(root), 16, cache_dir=None)
    assert str(told.value) == ("the class folders NORMAL (in train) and normal (in test) differ only in case: genaug "
                               "would read them as two classes; name each class's folder alike in every split (merge "
                               "them, or rename one if they are two classes)")


def test_class_folders_named_apart_by_unicode_form_are_told_as_such(tmp_path):
    # macOS writes names decomposed (NFD: "i" + U+0301) where Linux tools write them composed (NFC: one "í");
    # the two print alike, so "no images of class Neumonía" named a folder the user could see (session 75)
    root = make_folder_dataset(tmp_path / "x")
    composed, decomposed = (unicodedata.normalize(form, "Neumonía") for form in ("NFC", "NFD"))
    (root / "train" / "PNEUMONIA").rename(root / "train" / composed)
    (root / "test" / "PNEUMONIA").rename(root / "test" / decomposed)
    with pytest.raises(DataError) as told:
        load_data(str(root), 16, cache_dir=None)
    assert str(told.value) == (
        f"the class folders {decomposed} (in test) and {composed} (in train) print alike but differ in Unicode form "
        "(one composed, NFC, one decomposed, NFD, as macOS writes names): genaug would read them as two classes; "
        "rename the folders so every split spells each class in the same bytes (e.g. convmv -f utf8 -t utf8 --nfc -r "
        "--notest on the data folder)")


def test_a_data_folder_typed_in_the_other_unicode_form_is_pointed_to(tmp_path, monkeypatch):
    # found in session 75: a folder macOS named decomposed (NFD), typed composed (NFC) as a keyboard types
    # it, was "not found", though ls shows it by the same name
    composed, decomposed = (unicodedata.normalize(form, "Radiografías") for form in ("NFC", "NFD"))
    make_folder_dataset(tmp_path / decomposed / "niños")
    with pytest.raises(DataError) as told:
        load_data(str(tmp_path / composed / "niños"), 16, cache_dir=None)
    assert str(told.value) == (f"data folder not found: {tmp_path / composed / 'niños'} (expected ROOT/train/<CLASS>/"
                               f"*.jpeg, or use --data demo); {tmp_path / decomposed / 'niños'} is there, its name "
                               "spelt in another Unicode form or case: give that path (a shell's tab completion "
                               "spells it as it is)")
    # relative to the current folder too, where the first name is the one spelt otherwise
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=f"; {decomposed}/niños is there, its name spelt in another Unicode form"):
        load_data(f"{composed}/niños", 16, cache_dir=None)


def test_two_class_folders_named_alike_in_one_split_are_not_two_classes(tmp_path):
    # found in session 75: data merged from two sources, train/PNEUMONIA beside train/Pneumonia, trained a
    # three-class model whose two pneumonia classes competed, without a word
    from genaug.data.folder import write_patient_split
    root = make_folder_dataset(tmp_path / "x", {"train": 6, "test": 4})
    for split in ("train", "test"):
        shutil.copytree(root / split / "PNEUMONIA", root / split / "Pneumonia")
    told = ("the class folders PNEUMONIA (in test, train) and Pneumonia (in test, train) differ only in case: genaug "
            "would read them as two classes; name each class's folder alike in every split (merge them, or rename one "
            "if they are two classes)")
    with pytest.raises(DataError) as refused:
        load_data(str(root), 16, cache_dir=None)
    assert str(refused.value) == told
    # an empty leftover folder beside its class is no class, and no refusal
    shutil.rmtree(root / "test" / "Pneumonia")
    shutil.rmtree(root / "train" / "Pneumonia")
    (root / "train" / "Pneumonia").mkdir()
    assert load_data(str(root), 16, cache_dir=None).classes == ["NORMAL", "PNEUMONIA"]
    for split in ("train", "test"):
        shutil.rmtree(root / split / "Pneumonia", ignore_errors=True)
        shutil.copytree(root / split / "PNEUMONIA", root / split / "Pneumonia")
    # genaug data split of class folders alone, likewise
    with pytest.raises(DataError) as refused:
        write_patient_split(root / "train", tmp_path / "split")
    assert str(refused.value) == told.replace("(in test, train)", f"(in {root / 'train'})")
    assert not (tmp_path / "split").exists()


@pytest.mark.parametrize("name,pair", [
    ("NORMAL ", "NORMAL (in train) and 'NORMAL ' (in test) differ only in spaces at their start or end"),
    (" normal", "' normal' (in test) and NORMAL (in train) differ in case and in spaces at their start or end")])
def test_class_folders_that_differ_in_spaces_at_their_ends_are_named_so(tmp_path, name, pair):
    # found in session 85: test/'NORMAL ' beside train/NORMAL was told "the training split ... has no images of
    # class NORMAL : every class needs training images", the space invisible
    root = make_folder_dataset(tmp_path / "x", {"train": 6, "test": 4})
    (root / "test" / "NORMAL").rename(root / "test" / name)
    with pytest.raises(DataError) as refused:
        load_data(str(root), 16, cache_dir=None)
    assert str(refused.value) == (f"the class folders {pair}: genaug would read them as two classes; name each "
                                  "class's folder alike in every split (merge them, or rename one if they are two "
                                  "classes)")


@pytest.mark.parametrize("names,order", [
    (("normal", "abnormal"), ["normal", "abnormal"]),          # by name, abnormal came first: normal was positive
    (("Healthy", "Effusion"), ["Healthy", "Effusion"]),
    (("NORMAL", "PNEUMONIA"), ["NORMAL", "PNEUMONIA"]),        # Kermany: as before
    (("0", "1"), ["0", "1"]),
    (("cats", "dogs"), ["cats", "dogs"]),                      # no negative name: by name
    (("negative", "normal"), ["negative", "normal"]),          # two: by name
    (("COVID", "non-COVID"), ["non-COVID", "COVID"]),
    (("nodule", "clear"), ["clear", "nodule"]),                # nodule is a finding, not 'no ...'
])
def test_of_two_classes_the_one_named_as_a_negative_finding_comes_first(tmp_path, names, order):
    from genaug.data.folder import write_patient_split
    root = make_folder_dataset(tmp_path / "x", {"train": 6, "test": 4})
    for split in ("train", "test"):
        for old, new in zip(("NORMAL", "PNEUMONIA"), names):
            (root / split / old).rename(root / split / f"{old}.tmp")
        for old, new in zip(("NORMAL", "PNEUMONIA"), names):
            (root / split / f"{old}.tmp").rename(root / split / new)
    b = load_data(str(root), 16, cache_dir=None)
    assert b.classes == order
    # the positive class's images carry label 1, whatever their folder's place by name
    assert all(Path(p).parts[1] == order[y] for p, y in zip(b.test.paths, b.test.labels.tolist()))
    # data split records the order, and the folder it writes reads in it
    made = write_patient_split(root / "train", tmp_path / "split")
    assert made["classes"] == order and load_data(str(tmp_path / "split"), 16, cache_dir=None).classes == order


def test_data_split_labels_keep_the_class_order_given(tmp_path):
    # --class gives the negative class first; the folders it wrote were read by name, so Normal=0 Abnormal=1 made
    # Normal the positive class
    from genaug.data.labels import write_labelled_split
    src = tmp_path / "images"
    src.mkdir()
    rows = ["image,label"]
    for i in range(12):
        Image.fromarray(np.full((8, 8), 20 * i, np.uint8)).save(src / f"scan{i}.png")
        rows.append(f"scan{i}.png,{i % 2}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    for given, order in ((["Normal=0", "Abnormal=1"], ["Normal", "Abnormal"]),
                         (["Zeta=1", "Alpha=0"], ["Zeta", "Alpha"])):
        out = tmp_path / f"split-{order[0]}"
        write_labelled_split(src, tmp_path / "labels.csv", out, "image", "label", class_specs=given)
        assert load_data(str(out), 16, cache_dir=None).classes == order


def test_hidden_folders_beside_the_class_folders_are_no_class(tmp_path):
    root = make_folder_dataset(tmp_path / "x")
    one = next(root.glob("train/NORMAL/*.jpeg"))
    for where in (root / "train" / ".ipynb_checkpoints", root / "train" / "NORMAL" / ".ipynb_checkpoints"):
        where.mkdir()
        shutil.copy(one, where / one.name)   # Jupyter's copy of a file a notebook opened
    bundle = load_data(str(root), 16, cache_dir=None)
    assert bundle.classes == ["NORMAL", "PNEUMONIA"]
    assert not any(".ipynb" in p for s in bundle.splits.values() for p in s.paths)
    from genaug.predict import list_images
    shown = sorted(root.glob("train/NORMAL/*.jpeg")) + sorted(root.glob("train/PNEUMONIA/*.jpeg"))
    assert list_images([root / "train"]) == shown   # predict passes them over too
    hidden = root / "train" / ".ipynb_checkpoints"
    assert list_images([hidden]) == [hidden / one.name]   # unless given by name


def test_predict_reads_folders_linked_into_the_one_given_and_ends_at_a_link_back_up(tmp_path):
    """Found in session 60: `genaug predict scans/` passed over the images of scans/ward -> /elsewhere/ward,
    without a word (rglob does not follow links to folders). Each real folder is read once."""
    from genaug.predict import list_images
    xrays = make_folder_dataset(tmp_path / "xrays", {"train": 4, "test": 2})
    scans = tmp_path / "scans"
    (scans / "own").mkdir(parents=True)
    shutil.copy(next(xrays.glob("test/NORMAL/*.jpeg")), scans / "own" / "a.jpeg")
    (scans / "ward").symlink_to(xrays / "test" / "PNEUMONIA")
    (scans / "own" / "up").symlink_to(scans)            # a loop: scans/own/up/own/up/...
    (scans / "again").symlink_to(scans / "own")          # the same real folder by a second name
    linked = sorted(xrays.glob("test/PNEUMONIA/*.jpeg"))
    listed = list_images([scans])
    assert sorted(p.resolve() for p in listed) == sorted([(scans / "own" / "a.jpeg").resolve()] + linked)
    assert len(listed) == 1 + len(linked)


def test_predict_passes_over_genaug_runs_inside_a_folder_unless_one_is_named(tmp_path):
    # `genaug predict .` in a project folder read outputs/ too: a benchmark run's plots were predicted as X-rays
    # (found in session 53), and a GAN run's synthetic images would have been
    from genaug.errors import DataError
    from genaug.predict import list_images, read_images
    xrays = make_folder_dataset(tmp_path / "xrays", {"train": 4, "test": 2})
    run = tmp_path / "outputs" / "gan" / "20260101-000000"
    (run / "synthetic" / "NORMAL").mkdir(parents=True)
    (run / "config.yaml").write_text("data:\n  data: demo\n")
    (run / "manifest.json").write_text('{"command": "gan"}')
    for f in sorted(xrays.glob("test/NORMAL/*.jpeg"))[:2]:
        shutil.copy(f, run / "synthetic" / "NORMAL" / f.name)   # stand-ins for synthetic images
    shutil.copy(f, run / "samples.jpeg")
    real = sorted(xrays.rglob("*.jpeg"))
    assert list_images([tmp_path]) == real
    names, images, skipped = read_images([tmp_path], 16)
    assert len(names) == len(real) == len(images)
    assert skipped == [(str(run),
                        "a genaug run: its images are genaug's own (synthetic X-rays, overlays, plots), not X-rays to "
                        "classify; name its folder to read them")]
    # named: its synthetic images are read, not its sample grid (nor a benchmark run's plots, session 58)
    assert list_images([run]) == list_images([run / "synthetic"]) == sorted((run / "synthetic").rglob("*.jpeg"))
    bench = tmp_path / "outputs" / "benchmark" / "20260101-000000"
    bench.mkdir(parents=True)
    (bench / "config.yaml").write_text("data:\n  data: demo\n")
    (bench / "manifest.json").write_text('{"command": "benchmark"}')
    shutil.copy(f, bench / "roc.png")
    with pytest.raises(DataError, match=f"^{bench} is a genaug benchmark run: its images are plots and grids, not "
                                        "X-rays; name a folder of X-rays .a GAN run's synthetic images are in its "
                                        "synthetic/ folder.$"):
        list_images([bench])
    with pytest.raises(DataError, match="no images in .* outside the genaug runs in it .2, e.g. "):
        list_images([tmp_path / "outputs"])


def test_file_names_without_patient_ids_are_noted(tmp_path):
    root = make_folder_dataset(tmp_path / "x")
    assert not any("no patient id" in n for n in load_data(str(root), 16, cache_dir=None).notes)
    renamed = sorted(root.glob("train/PNEUMONIA/*.jpeg"))[:5]
    for i, p in enumerate(renamed):
        p.rename(p.with_name(f"scan{i}.jpeg"))
    notes = load_data(str(root), 16, cache_dir=None).notes
    assert any(n.startswith("5 of 44 images carry no patient id") for n in notes), notes


def test_files_without_patient_ids_named_alike_in_two_folders_are_two_patients(tmp_path):
    # found in session 59: a patient was the file's stem, so cats/scan_000.png and dogs/scan_000.png were
    # one patient (data split said "48 images, 24 patients" while noting each counts as its own patient),
    # and train/ and test/'s 0001.png were a patient "in both train and test"
    from genaug.data.folder import write_patient_split
    flat = tmp_path / "flat"
    for cls, value in (("cats", 60), ("dogs", 190)):
        (flat / cls).mkdir(parents=True)
        for i in range(10):
            Image.new("L", (16, 16), value + i).save(flat / cls / f"scan_{i:03d}.png")
    made = write_patient_split(flat, tmp_path / "laid-out", test_fraction=0.2, seed=0)
    assert made["files_without_patient_id"] == 20
    assert made["patients"] == {"train": 16, "test": 4}     # one a file, as the note says
    b = load_data(str(tmp_path / "laid-out"), 16, val_fraction=0.25, cache_dir=None)
    patients = [p for s in b.splits.values() for p in s.patients]
    assert len(set(patients)) == len(patients) == 20
    assert not any("in both train/val and the dataset's own test split" in n for n in b.notes), b.notes
    same_names = tmp_path / "same"   # train/ and test/ each numbering its files from 0000
    for split, n in (("train", 8), ("test", 4)):
        for cls, value in (("cats", 60), ("dogs", 190)):
            (same_names / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("L", (16, 16), value + i).save(same_names / split / cls / f"{i:04d}.png")
    notes = load_data(str(same_names), 16, val_fraction=0.25, cache_dir=None).notes
    assert any(n.startswith("24 of 24 images carry no patient id") for n in notes), notes
    assert not any("in both train/val and the dataset's own test split" in n for n in notes), notes


def test_a_patient_in_train_and_the_given_test_split_is_noted_in_the_singular(tmp_path):
    # found in session 68: "1 patient ids occur ... (e.g. person1 is bacterial in train, viral in test)" read
    # as though the example were about the user's data; it is a fact of the Kermany set
    for split, cls, names in (("train", "NORMAL", ["person1_a", "person2_a", "person3_a", "person4_a"]),
                              ("train", "PNEUMONIA", ["person5_bacteria_1", "person6_bacteria_2",
                                                      "person7_bacteria_3", "person8_bacteria_4"]),
                              ("test", "NORMAL", ["person1_b"]), ("test", "PNEUMONIA", ["person9_virus_5"])):
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            Image.new("L", (16, 16), 40 * i + (0 if cls == "NORMAL" else 20)).save(tmp_path / split / cls / f"{name}.png")
    notes = [n for n in load_data(str(tmp_path), 16, val_fraction=0.25, cache_dir=None).notes
             if "own test split" in n]
    assert len(notes) == 1 and notes[0].startswith("1 patient id occurs in both train/val and the dataset's own "
                                                   "test split (e.g. person1)"), notes
    assert "in the Kermany set, person1 is bacterial in train, viral in test" in notes[0]


def test_cache_hit_and_invalidation(folder_data, tmp_path):
    cache = tmp_path / "cache"
    rels = sorted(str(p.relative_to(folder_data)) for p in (folder_data / "train").rglob("*.jpeg"))
    a, ok, _ = decode_cached(folder_data, rels, 16, cache)
    assert isinstance(a, np.memmap) and ok.all()
    assert len(list(cache.glob("*.npy"))) == 1
    b, _, _ = decode_cached(folder_data, rels, 16, cache)        # hit: same file, no new entry
    assert np.array_equal(a, b) and len(list(cache.glob("*.npy"))) == 1
    # change one input: a new key, so the stale entry is never read
    target = folder_data / rels[0]
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(target, format="JPEG")
    os.utime(target, ns=(1, 1))
    c, _, _ = decode_cached(folder_data, rels, 16, cache)
    assert c[0].max() < 10
    # the stale entry can never be read again, so it is deleted, while the files of another split, or the
    # same files at another size, keep theirs; a process still reading the old one keeps its map
    assert len(list(cache.glob("*.npy"))) == 1 and a.shape == (len(rels), 16, 16) and a[1].any()
    tests = sorted(str(p.relative_to(folder_data)) for p in (folder_data / "test").rglob("*.jpeg"))
    decode_cached(folder_data, tests, 16, cache)
    decode_cached(folder_data, rels, 8, cache)
    assert len(list(cache.glob("*.npy"))) == 3
    # an entry of an older cache version is deleted once a new entry is written
    old = next(cache.glob("*.json"))
    old.write_text(json.dumps({**json.loads(old.read_text()), "version": 1}))
    decode_cached(folder_data, rels[:3], 16, cache)
    assert not old.exists() and not old.with_suffix(".npy").exists() and len(list(cache.glob("*.npy"))) == 3
    # a corrupt index is rebuilt, not trusted
    for j in cache.glob("*.json"):
        j.write_text("{broken")
    d, _, _ = decode_cached(folder_data, rels, 16, cache)
    assert np.array_equal(c, d)


def test_a_cache_dir_shared_with_the_users_own_files_deletes_only_genaug_entries(folder_data, tmp_path):
    # --cache-dir may be any folder; before session 52 a JSON file there without a matching "version"
    # counted as a superseded entry and was deleted, with the .npy of the same name
    cache = tmp_path / "mine"
    cache.mkdir()
    theirs = {"notes.json": '{"a": 1}', "notes.npy": "x", "old.json": '{"version": 0, "b": 2}',
              "0123456789abcdef01234567.json": '{"version": 0}', "0123456789abcdef01234567.npy": "y",
              "list.json": "[1, 2]"}
    for name, text in theirs.items():
        (cache / name).write_text(text)
    rels = sorted(str(p.relative_to(folder_data)) for p in (folder_data / "train").rglob("*.jpeg"))
    decode_cached(folder_data, rels, 16, cache)
    target = folder_data / rels[0]                  # a changed input: the first entry is superseded
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(target, format="JPEG")
    os.utime(target, ns=(1, 1))
    decode_cached(folder_data, rels, 16, cache)
    assert {name: (cache / name).read_text() for name in theirs} == theirs
    assert len(list(cache.glob("*.npy"))) == 3     # theirs two and the one current entry


def test_demo_deterministic_and_imbalanced():
    a, b = demo_dataset(32, 120, seed=3), demo_dataset(32, 120, seed=3)
    assert np.array_equal(a.train.images, b.train.images) and a.train.paths == b.train.paths
    c = demo_dataset(32, 120, seed=4)
    assert not np.array_equal(a.train.images, c.train.images)
    share_normal = (a.train.labels == 0).mean()
    assert 0.2 < share_normal < 0.32 and a.synthetic
    big = demo_dataset(64, 120, seed=3)
    assert big.train.images.shape == (120, 64, 64)
    # an opacity brightens the lungs of the same patient drawn with the same noise
    from genaug.data.demo import _patient, render
    for cause in ("bacteria", "virus"):
        p = _patient(np.random.default_rng(1), cause)
        sick = render(p, 64, np.random.default_rng(2)).astype(int)
        healthy = render(dict(p, opac=[]), 64, np.random.default_rng(2)).astype(int)
        assert (sick >= healthy).all() and (sick - healthy).sum() > 64 * 64 * 0.5


def test_demo_three_class():
    b = load_data("demo", 32, task="3class", demo_train=120)
    assert b.classes == ["NORMAL", "BACTERIA", "VIRUS"]
    assert set(np.unique(b.train.labels)) == {0, 1, 2}


def _npz_bytes(size=28, n=(20, 6, 8)) -> bytes:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, k in zip(("train", "val", "test"), n):
        arrays[f"{split}_images"] = rng.integers(0, 255, (k, size, size), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(k) % 2).reshape(-1, 1).astype(np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_medmnist_npz_any_size(tmp_path):
    p = tmp_path / "pneumoniamnist_64.npz"
    p.write_bytes(_npz_bytes(64))
    b = load_npz(p, 32)
    assert b.classes == ["NORMAL", "PNEUMONIA"]
    assert b.train.images.shape == (20, 32, 32) and len(b.val) == 6 and len(b.test) == 8
    full = load_data(str(p), 64)
    assert full.val_origin.startswith("given")


def _npz_with(path, **changes):
    """A small valid .npz (train 20, val 6, test 8 images of 28 px) with ``changes`` made (None: key dropped)."""
    arrays = dict(np.load(io.BytesIO(_npz_bytes(28))))
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


_U8 = np.zeros((20, 28, 28), np.uint8)


# found in session 68: each gave a traceback, or was read as something it was not (at the file's own size, float
# pixels in [0, 1] cast to 0 and 16-bit ones to their low byte)
@pytest.mark.parametrize("changes,told", [
    (dict(val_labels=None), "lacks 'val_labels' (expected MedMNIST keys train_images, train_labels, test_images, "
                            "test_labels and, optionally, val_images with val_labels)"),
    (dict(val_images=None), "lacks 'val_images'"),
    (dict(train_labels=np.zeros((19, 1), np.uint8)), ": train has 20 images but 19 labels; give one label per image"),
    (dict(train_labels=np.arange(20) % 2 - 1), ": train_labels holds -1; class indices start at 0"),
    (dict(train_labels=np.linspace(0, 1, 20)), ": train_labels holds float64 values that are not whole numbers"),
    (dict(train_labels=np.zeros((20, 3), np.uint8)), ": train_labels has shape (20, 3): one label per image is "
                                                     "needed (multi-label sets such as ChestMNIST are not supported)"),
    (dict(test_images=_U8[:0], test_labels=np.zeros((0, 1), np.uint8)), ": test has no images; every split given "
                                                                         "needs some"),
    (dict(train_images=_U8 / 255.0), ": train_images holds float64 pixels; genaug reads 8-bit images (uint8, 0-255) "
                                     "as MedMNIST stores them: convert them first, e.g. (x * 255).round()"),
    (dict(train_images=_U8.astype(np.uint16)), ": train_images holds uint16 pixels;"),
    (dict(train_images=np.zeros((20, 3, 28, 28), np.uint8)), ": train_images has shape (20, 3, 28, 28); expected "
                                                             "(N, H, W) greyscale or (N, H, W, C) with C 1, 3 or 4"),
    (dict(train_images=np.array([1, "a"] * 10, dtype=object)), ": train arrays cannot be read (ValueError: Object "
                                                               "arrays cannot be loaded when allow_pickle=False)"),
])
def test_a_malformed_npz_is_told_by_array(tmp_path, changes, told):
    from genaug.errors import DataError
    with pytest.raises(DataError) as caught:
        load_npz(_npz_with(tmp_path / "x.npz", **changes), 16)
    assert told in str(caught.value)


def test_an_npz_with_one_channel_last_is_greyscale(tmp_path):
    arrays = dict(np.load(io.BytesIO(_npz_bytes(28))))
    b = load_npz(_npz_with(tmp_path / "x.npz", **{k: v[..., None] for k, v in arrays.items() if "images" in k}), 28)
    assert b.train.images.shape == (20, 28, 28) and np.array_equal(b.train.images, arrays["train_images"])


@pytest.fixture
def loopback_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(served), **kw)

        def log_message(self, *a):
            hits.append(self.path)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield served, f"http://127.0.0.1:{srv.server_address[1]}", hits
    srv.shutdown()
    srv.server_close()


def test_medmnist_download_md5_and_retries(loopback_server, tmp_path, monkeypatch):
    served, url, hits = loopback_server
    payload = _npz_bytes(28)
    (served / "pneumoniamnist.npz").write_bytes(payload)
    monkeypatch.setitem(INFO["pneumoniamnist"]["md5"], 28, hashlib.md5(payload).hexdigest())
    dest = download("pneumoniamnist", 28, tmp_path / "dl", base_url=url, backoff=0)
    assert dest.read_bytes() == payload
    assert load_npz(dest, 28).train.images.shape == (20, 28, 28)
    # wrong checksum: retried, then a clear error with manual steps, and no partial file left
    monkeypatch.setitem(INFO["pneumoniamnist"]["md5"], 28, "0" * 32)
    with pytest.raises(DataError, match="md5 mismatch.*by hand"):
        download("pneumoniamnist", 28, tmp_path / "dl2", base_url=url, retries=2, backoff=0)
    assert not list((tmp_path / "dl2").iterdir())
    assert len(hits) == 3
    # nothing listening: same clear error
    with pytest.raises(DataError, match="could not download"):
        download("pneumoniamnist", 28, tmp_path / "dl3", base_url="http://127.0.0.1:9", retries=1)


def test_a_missing_medmnist_file_names_a_command_that_fetches_it(tmp_path):
    # it said "rerun with --download", an option only genaug data info has
    with pytest.raises(DataError) as told:
        load_data("medmnist:pneumoniamnist", 100, cache_dir=tmp_path / "cache")
    dest = tmp_path / "cache" / "medmnist" / "pneumoniamnist_128.npz"   # the smallest file at least 100 px
    assert str(told.value) == (
        f"{dest} is missing; fetch it with genaug data info --data medmnist:pneumoniamnist --size 128 --download "
        f"--cache-dir {tmp_path / 'cache'} (or data.download: true in a profile), or download "
        f"https://zenodo.org/records/10519652/files/pneumoniamnist_128.npz?download=1 by hand, check its md5 is "
        f"{INFO['pneumoniamnist']['md5'][128]}, and put it at {dest}")


def test_duplicates_across_splits_are_flagged(tmp_path):
    root = make_folder_dataset(tmp_path / "d", {"train": 16, "test": 6}, size=32)
    src = root / "train" / "PNEUMONIA" / "person0_bacteria_1.jpeg"
    shutil.copyfile(src, root / "test" / "PNEUMONIA" / "person1900_bacteria_1.jpeg")       # exact copy
    with Image.open(root / "train" / "NORMAL" / "IM-0000-0001.jpeg") as im:                  # re-saved, resized
        im.resize((40, 40)).save(root / "test" / "NORMAL" / "IM-1900-0001.png")
    b = load_data(str(root), 32, val_fraction=0.2)
    pairs = b.duplicates["pairs"]
    test_side = [y for k in ("train-test", "val-test") for y in
                 [e[1] for e in pairs[k]["exact"]] + [e[1] for e in pairs[k]["near"]]]
    assert sorted(Path(p).name for p in test_side) == ["IM-1900-0001.png", "person1900_bacteria_1.jpeg"]
    counts = b.summary()["duplicates_across_splits"]
    assert sum(counts[k]["exact"] for k in counts) == 1 and sum(counts[k]["near"] for k in counts) == 1
    assert "LEAKAGE" in b.notes[-1]
    clean = load_data(str(make_folder_dataset(tmp_path / "c", size=32)), 32)
    assert "LEAKAGE" not in clean.notes[-1]


def test_identical_images_within_a_split_are_counted_and_conflicting_labels_named(tmp_path):
    # found in session 74: the Kermany test split holds 6 files twice (NORMAL2-IM-0095-0001 and -0096-0001 are
    # one image under two patients), and nothing said so; an image under two classes went unremarked as well
    root = make_folder_dataset(tmp_path / "d", {"train": 16, "test": 6}, size=32)
    test = root / "test"
    shutil.copyfile(test / "PNEUMONIA" / "person1000_bacteria_1.jpeg", test / "PNEUMONIA" / "person1000_bacteria_2.jpeg")
    shutil.copyfile(test / "PNEUMONIA" / "person1001_bacteria_2.jpeg", test / "NORMAL" / "IM-1901-0001.jpeg")
    shutil.copyfile(test / "NORMAL" / "IM-1000-0001.jpeg", test / "NORMAL" / "IM-1950-0001.jpeg")
    b = load_data(str(root), 32, val_fraction=0.2)
    assert b.summary()["duplicates_within_splits"] == {"test": {"copies": 3, "conflicting_labels": 1}}
    note, = [n for n in b.notes if n.startswith("identical images within a split")]
    assert "counted again in training or in the test figures: test 3 (in 3 groups); 1 of those groups" in note
    assert re.search(r"CONFLICTING LABELS: 1 image is held under two classes, e\.g\. \S*"
                     r"(IM-1901-0001\.jpeg \(NORMAL\) = \S*person1001_bacteria_2\.jpeg \(PNEUMONIA\)|"
                     r"person1001_bacteria_2\.jpeg \(PNEUMONIA\) = \S*IM-1901-0001\.jpeg \(NORMAL\))", note), note
    assert re.search(r"1 of those groups holds two patients' names, so one of the patients is probably "
                     r"misnamed, e\.g\. \S*IM-1\d00-0001\.jpeg = \S*IM-1\d\d0-0001\.jpeg\. CONFLICT", note), note
    plain = load_data(str(make_folder_dataset(tmp_path / "c", size=32)), 32)
    assert "duplicates_within_splits" in plain.summary() and not plain.summary()["duplicates_within_splits"]
    assert not any(n.startswith("identical images within a split") for n in plain.notes)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_patient_folds_partition_images_by_whole_patients(k):
    rng = np.random.default_rng(0)
    patients, labels = [], []
    for p in range(40):
        n = int(rng.integers(1, 5))   # uneven images per patient
        patients += [f"p{p}"] * n
        labels += [p % 2] * n
    labels = np.array(labels)
    folds = patient_folds(labels, patients, k, seed=1)
    allidx = np.concatenate(folds)
    assert len(folds) == k and sorted(allidx.tolist()) == list(range(len(patients)))
    owner = {}
    for f, idx in enumerate(folds):
        for i in idx:
            assert owner.setdefault(patients[i], f) == f, "a patient spans two folds"
    for c in (0, 1):   # every fold holds a fair share of each class
        sizes = [int((labels[idx] == c).sum()) for idx in folds]
        assert max(sizes) - min(sizes) <= 4, sizes
    again = patient_folds(labels, patients, k, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again))


def test_patient_folds_need_enough_patients_of_each_class():
    # one patient of a class can fill no two folds (found in session 68: told "use --folds 2 or fewer")
    with pytest.raises(DataError, match=r"^1 patient of one class cannot fill 3 folds \(patients per class in "
                                        r"train\+val: 1, 1\): use --folds 1 \(one validation split\)$"):
        patient_folds(np.array([0, 1]), ["a", "b"], 3, seed=0)
    # 5 patients, but only 2 of class 1: three folds would leave one without it
    with pytest.raises(DataError, match=r"2 patients of one class cannot fill 3 folds \(patients per class in "
                                        r"train\+val: 3, 2\): use --folds 2 or fewer"):
        patient_folds(np.array([0, 0, 0, 1, 1]), ["a", "b", "c", "d", "e"], 3, seed=0)
    assert len(patient_folds(np.array([0, 0, 0, 1, 1]), ["a", "b", "c", "d", "e"], 2, seed=0)) == 2


def test_training_subset_keeps_the_benchmark_patients_nested_and_lists_them(tmp_path):
    from genaug.config import Config
    from genaug.data.splits import subsample_by_patient
    from genaug.jobs import TRAINING_LIST, read_training_list, training_subset
    from genaug.runs import new_run

    cfg = Config()
    bundle = load_data("demo", 16, demo_train=120)
    kept = {}
    for frac in (0.25, 0.5, 1.0):
        run = new_run(tmp_path, "gan", f"f{frac}", cfg.to_dict())
        sub = training_subset(cfg, run, bundle, frac, "the GAN")
        run.close()
        keep = subsample_by_patient(bundle.train.labels, bundle.train.patients, frac, cfg.data.split_seed)
        assert sub.train.paths == [bundle.train.paths[i] for i in keep]      # what benchmark --train-fraction keeps
        assert sub.val.paths == bundle.val.paths and sub.test.paths == bundle.test.paths
        assert read_training_list(run.dir) == set(sub.train.paths) and (run.dir / TRAINING_LIST).is_file()
        assert run.manifest["train_fraction"] == frac and run.manifest["train_images"] == len(sub.train)
        kept[frac] = set(sub.train.paths)
    assert kept[0.25] < kept[0.5] < kept[1.0] == set(bundle.train.paths)   # smaller fractions nest
    assert read_training_list(tmp_path) is None


def test_a_training_list_keeps_file_names_with_newlines_or_bytes_that_are_not_utf8(tmp_path):
    # found in session 67: such a name stopped the reading (UnicodeDecodeError) or was recorded as two files
    from genaug.jobs import read_training_list, training_list_text
    from genaug.runs import TRAINING_LIST, atomic_write_text
    names = [os.fsdecode(b"/d/train/NORMAL/IM-0808-\xff\xfe.png"), "/d/train/NORMAL/IM-0809\n0001.png",
             '/d/train/PNEUMONIA/person1_"x"\\y.jpeg']
    atomic_write_text(tmp_path / TRAINING_LIST, training_list_text(names))
    assert read_training_list(tmp_path) == set(names)
    # a list written before, one plain name a line, is read as it was
    (tmp_path / TRAINING_LIST).write_text("/d/train/NORMAL/IM-0001-0001.jpeg\n/d/train/NORMAL/IM-0002-0001.jpeg\n")
    assert read_training_list(tmp_path) == {"/d/train/NORMAL/IM-0001-0001.jpeg", "/d/train/NORMAL/IM-0002-0001.jpeg"}


@pytest.mark.parametrize("spec,task,needle", [
    ("", "binary", "no data given"),
    ("/no/such/folder", "binary", "data folder not found"),
    ("medmnist:nope", "binary", "unknown MedMNIST dataset 'nope'"),
    # the medmnist: prefix left out: told how to write it (session 67)
    ("PneumoniaMNIST", "binary", "data folder not found: PneumoniaMNIST; for the MedMNIST dataset, give --data "
                                 "medmnist:pneumoniamnist"),
    ("missing.npz", "binary", "npz file not found"),
    ("medmnist:pneumoniamnist", "3class", "--task 3class needs Kermany file names"),
])
def test_data_spec_is_refused_from_its_name(spec, task, needle):
    from genaug.data import check_data_spec
    with pytest.raises(DataError, match=needle.replace("'", ".")):
        check_data_spec(spec, task)


def test_data_spec_checks_the_folder_layout_and_passes_good_specs(tmp_path):
    from genaug.data import check_data_spec
    (tmp_path / "bare" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no 'test' folder"):
        check_data_spec(str(tmp_path / "bare"))
    check_data_spec(str(make_folder_dataset(tmp_path / "x")))
    check_data_spec("demo", "3class")
    check_data_spec("medmnist:pneumoniamnist")   # a missing file is told (or fetched) by load_data


def test_split_folders_named_training_and_testing_are_read_as_train_and_test(tmp_path):
    # as the Kaggle brain MRI set names them: found in session 84 refused as "no 'train' folder"
    root = make_folder_dataset(tmp_path / "x", {"train": 16, "test": 6})
    (root / "train").rename(root / "Training")
    (root / "test").rename(root / "Testing")
    b = load_data(str(root), 16)
    assert (len(b.train.labels) + len(b.val.labels), len(b.test.labels)) == (32, 12)


@pytest.mark.parametrize("first,second", [("val", "valid"), ("Test", "test"), ("train", "training")])
def test_two_folders_of_one_split_are_refused_not_one_of_them_left_unread(tmp_path, first, second):
    # found in session 84: val/ and valid/ (or Test/ and test/) side by side, the second one's images went
    # unread without a word
    from genaug.data import check_data_spec
    root = make_folder_dataset(tmp_path / "x", {"train": 16, "test": 6}, with_val=first == "val")
    if first != "val":
        (root / first.lower()).rename(root / first)
    shutil.copytree(root / first, root / second)
    split = {"valid": "val", "test": "test", "training": "train"}[second]
    with pytest.raises(DataError, match=f"{first} and .*{second} are both the {split} split: genaug would read only "
                                        f"one; merge them into one folder"):
        check_data_spec(str(root))


def test_train_and_val_without_test_is_told_how_val_may_serve(tmp_path):
    from genaug.data import check_data_spec
    root = make_folder_dataset(tmp_path / "x", {"train": 16, "val": 4}, with_val=True)
    shutil.rmtree(root / "test")
    with pytest.raises(DataError, match=r"no 'test' folder .*; if val/ holds patients that train/ does not, rename "
                                        r"it test/ \(genaug carves its validation split from train/ by patient\)"):
        check_data_spec(str(root))


@pytest.mark.parametrize("split,folder", [("test", "test "), ("test", "Test_Set"), ("train", "chest_train")])
def test_a_split_folder_named_nearly_so_is_named_in_the_error(tmp_path, split, folder):
    # found in session 85: 'test ' (a trailing space) beside train/ was told only "no 'test' folder"
    from genaug.data import check_data_spec
    root = make_folder_dataset(tmp_path / "x", {"train": 16, "test": 6})
    (root / split).rename(root / folder)
    with pytest.raises(DataError, match=f"no '{split}' folder .*; it holds '{folder}/': if that is the {split} "
                                        f"split, rename it {split}/$"):
        check_data_spec(str(root))


def test_a_download_as_it_comes_is_told_what_to_give(tmp_path):
    # Kaggle's archive, and the folder it unpacks to, which wraps the data root (chest_xray/) beside __MACOSX/
    from genaug.data import check_data_spec
    (tmp_path / "chest-xray-pneumonia.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match=r"is an archive: unpack it first \(e\.g\. unzip .*chest-xray-pneumonia\.zip -d DIR"):
        check_data_spec(str(tmp_path / "chest-xray-pneumonia.zip"))
    make_folder_dataset(tmp_path / "archive" / "chest_xray")
    (tmp_path / "archive" / "__MACOSX" / "train").mkdir(parents=True)
    (tmp_path / "archive" / "__MACOSX" / "test").mkdir()
    with pytest.raises(DataError, match=r"no 'train' folder in .*archive \(.*\); .*archive/chest_xray has both: "
                                        r"give --data .*archive/chest_xray$"):
        check_data_spec(str(tmp_path / "archive"))


def test_classes_from_the_spec_are_those_load_data_finds(tmp_path):
    from genaug.data import classes_from_spec
    folder = str(make_folder_dataset(tmp_path / "x"))
    for spec, task in (("demo", "binary"), ("demo", "3class"), (folder, "binary")):
        assert classes_from_spec(spec, task) == load_data(spec, 16, task=task, demo_train=60).classes, (spec, task)
    assert classes_from_spec("medmnist:pneumoniamnist") == ["NORMAL", "PNEUMONIA"]
    assert classes_from_spec("anything.npz") is None     # only the file's labels say


def test_resolve_classes_matches_names_without_case():
    from genaug.data import resolve_classes
    assert resolve_classes("virus,normal", ["NORMAL", "BACTERIA", "VIRUS"]) == ["VIRUS", "NORMAL"]
    assert resolve_classes("all", ["A", "B"]) == ["A", "B"]
    assert resolve_classes("NORMAL,normal, VIRUS", ["NORMAL", "BACTERIA", "VIRUS"]) == ["NORMAL", "VIRUS"]  # once each
    with pytest.raises(ConfigError, match="unknown class 'COVID'; the data has: A, B"):
        resolve_classes("COVID", ["A", "B"])
    # ',' named no class: a GAN trained, then wrote no image and failed in its report
    with pytest.raises(ConfigError, match="^--class ' , ' names no class; give one or more of A, B, or all$"):
        resolve_classes(" , ", ["A", "B"])
    with pytest.raises(ConfigError, match="'all' already takes every class; give it alone"):
        resolve_classes("ALL,A", ["A", "B"])
    # found in session 75: a class typed on a keyboard (composed, NFC) was unknown to data whose folders macOS had
    # named (decomposed, NFD), the two printing alike in the message
    composed, decomposed = (unicodedata.normalize(form, "Neumonía") for form in ("NFC", "NFD"))
    assert resolve_classes(composed, ["NORMAL", decomposed]) == [decomposed]
    assert resolve_classes(decomposed.upper(), ["NORMAL", composed]) == [composed]


def test_loading_at_a_size_under_one_pixel_is_refused_in_one_line():
    # --size 0 divided by zero inside PIL's JPEG draft mode
    from genaug.data import load_data
    with pytest.raises(ConfigError, match="^the image size to load at must be at least 1 px, got 0$"):
        load_data("demo", 0)


def test_the_data_layer_loads_without_torch():
    # the CLI checks --data with it before torch loads (2-3 s), so a mistyped path is told at once
    import subprocess
    import sys
    code = "import sys, genaug.data; assert 'torch' not in sys.modules, 'genaug.data imported torch'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("maximum, bits", [(0, 8), (255, 8), (256, 10), (1023, 10), (4095, 12), (16383, 14),
                                           (16384, 16), (65535, 16), (70000, 16)])
def test_stored_bits_is_the_smallest_standard_depth_holding_the_maximum(maximum, bits):
    from genaug.data.decode import stored_bits
    assert stored_bits(maximum) == bits


def test_a_12_bit_xray_in_a_16_bit_png_keeps_its_grey_levels(tmp_path):
    from genaug.data.decode import decode_image
    ramp = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)   # 0..4095, as a 12-bit detector stores
    Image.fromarray(ramp).save(tmp_path / "x.png")
    gray = decode_image(str(tmp_path / "x.png"), 64)
    assert gray.min() == 0 and gray.max() == 255 and len(np.unique(gray)) == 256


def _png_16bit_colour(path: Path, samples: np.ndarray) -> None:
    """``samples`` (H, W, 2, 3 or 4) as a 16-bit gray+alpha, RGB or RGBA PNG, its rows filtered None, Sub, Up, Sub, ... so that
    the decoder's unfiltering, which reads bytes a pixel back, is exercised (Pillow writes no such PNG)."""
    import struct
    import zlib
    h, w, c = samples.shape
    rows = samples.astype(">u2").reshape(h, w * c).view(np.uint8).reshape(h, w * c * 2).astype(np.int32)
    bpp, out = 2 * c, []
    for r in range(h):
        kind = (0, 1, 2)[r % 3] if r else 0
        prev = rows[r - 1] if r else np.zeros_like(rows[r])
        back = np.concatenate([np.zeros(bpp, np.int32), rows[r][:-bpp]])
        filtered = {0: rows[r], 1: rows[r] - back, 2: rows[r] - prev}[kind] % 256
        out.append(bytes([kind]) + filtered.astype(np.uint8).tobytes())

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", w, h, 16, {2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(out)))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels, depth", [(3, 12), (4, 12), (2, 12), (3, 16), (2, 16)])
def test_a_16_bit_colour_or_gray_alpha_png_keeps_its_grey_levels(tmp_path, channels, depth):
    """Found in session 76: Pillow keeps each sample's high byte, so 12-bit data in a 16-bit colour or
    gray+alpha PNG came out 16 grey levels, near black (0 to 15), as a 16-bit grayscale PNG did until session 35."""
    ramp = (np.arange(64 * 64).reshape(64, 64) * (2 ** depth - 1) // (64 * 64 - 1)).astype(np.uint16)
    samples = np.repeat(ramp[..., None], channels, axis=2)
    if channels in (2, 4):
        samples[..., -1] = 65535   # opaque
    _png_16bit_colour(tmp_path / "x.png", samples)
    gray = decode_image(str(tmp_path / "x.png"), 64).astype(int)
    expected = np.rint(ramp * (255 / (2 ** depth - 1)))
    assert np.abs(gray - expected).max() <= 1 and gray.max() == 255 and len(np.unique(gray)) == 256


@pytest.mark.parametrize("how", [{}, {"byteorder": ">"}, {"compression": "zlib"}])
def test_a_16_bit_colour_tiff_keeps_its_grey_levels_and_orientation(tmp_path, how):
    """Found in session 76: as for PNG, Pillow kept each sample's high byte (both byte orders; libtiff's
    native-order unpacking when compressed), so 12 bits in a 16-bit RGB TIFF came out 16 grey levels."""
    tifffile = pytest.importorskip("tifffile")
    ramp = (np.arange(64 * 64).reshape(64, 64) * 4095 // (64 * 64 - 1)).astype(np.uint16)
    stored = np.ascontiguousarray(np.rot90(ramp, k=1))   # on its side; orientation 6 turns it back
    tifffile.imwrite(tmp_path / "x.tif", np.repeat(stored[..., None], 3, axis=2), photometric="rgb",
                     extratags=[(274, 3, 1, 6, True)], **how)
    gray = decode_image(str(tmp_path / "x.tif"), 64).astype(int)
    assert np.abs(gray - np.rint(ramp * (255 / 4095))).max() <= 1 and len(np.unique(gray)) == 256


def test_a_16_bit_min_is_white_tiff_is_read_the_right_way_round(tmp_path):
    """Found in session 76: Pillow inverts an 8-bit MinIsWhite TIFF (PhotometricInterpretation 0), not a 16-bit
    one, which came out as its negative, as DICOM's MONOCHROME1 would without genaug's turn."""
    tifffile = pytest.importorskip("tifffile")
    ramp = (np.arange(64 * 64).reshape(64, 64) * 4095 // (64 * 64 - 1)).astype(np.uint16)
    for bits, pixels in ((16, ramp), (8, (ramp >> 4).astype(np.uint8))):
        tifffile.imwrite(tmp_path / f"x{bits}.tif", pixels, photometric="miniswhite")
        gray = decode_image(str(tmp_path / f"x{bits}.tif"), 64).astype(int)
        assert gray[0, 0] == 255 and gray[-1, -1] == 0, bits   # stored 0 is white
        assert np.all(np.diff(gray.ravel()) <= 0), bits


@pytest.mark.parametrize("case", ["float64", "float64 MinIsWhite", "float64 RGB", "16-bit RGB by planes"])
def test_tiffs_pillow_cannot_open_or_garbles_are_read_through_tifffile(tmp_path, case):
    """Found in session 76: Pillow does not open a 64-bit float TIFF (skipped as "not an image"), and unpacked
    16-bit colour stored a plane at a time a byte a sample, garbling it without a word."""
    tifffile = pytest.importorskip("tifffile")
    ramp = (np.arange(64 * 64).reshape(64, 64) * 4095 // (64 * 64 - 1)).astype(np.uint16)
    pixels, kw = {"float64": (ramp / 4095.0, {}), "float64 MinIsWhite": (ramp / 4095.0, {"photometric": "miniswhite"}),
                  "float64 RGB": (np.repeat(ramp[..., None] / 4095.0, 3, axis=2), {"photometric": "rgb"}),
                  "16-bit RGB by planes": (np.stack([ramp] * 3), {"photometric": "rgb", "planarconfig": "separate"}),
                  }[case]
    tifffile.imwrite(tmp_path / "x.tif", pixels, **kw)
    gray = decode_image(str(tmp_path / "x.tif"), 64).astype(int)
    expected = np.rint(ramp * (255 / 4095))
    assert np.abs(gray - (255 - expected if "MinIsWhite" in case else expected)).max() <= 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tifffile_turns_an_image_by_its_orientation_as_pillow_does(tmp_path, orientation):
    tifffile = pytest.importorskip("tifffile")
    pixels = np.random.default_rng(orientation).integers(0, 256, (40, 64)).astype(np.uint8)
    pixels[0, 0], pixels[-1, -1] = 0, 255   # the float copy stretches over the same range
    tag = [(274, 3, 1, orientation, True)]
    tifffile.imwrite(tmp_path / "pillow.tif", pixels, extratags=tag)                  # 8-bit: Pillow reads it
    tifffile.imwrite(tmp_path / "tifffile.tif", pixels / 255.0, extratags=tag)       # float64: tifffile does
    size = 64   # square, as every decode: both turned first, then resized alike
    assert np.array_equal(decode_image(str(tmp_path / "tifffile.tif"), size),
                          decode_image(str(tmp_path / "pillow.tif"), size))


def test_a_tiff_of_a_kind_genaug_does_not_read_says_so(tmp_path):
    from genaug.data.decode import UnreadableImage
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "x.tif", np.zeros((4, 32, 32)), photometric="separated", planarconfig="separate")
    with pytest.raises(UnreadableImage, match="PhotometricInterpretation 5 with 4 samples a pixel"):
        decode_image(str(tmp_path / "x.tif"), 32)


def test_data_info_names_16_bit_colour_and_the_tiffs_pillow_cannot_open(tmp_path):
    """`genaug data info`'s modes (session 76): a 16-bit colour PNG showed as Pillow's 8-bit "RGB", and a float64
    TIFF, which genaug now reads through tifffile, was left out of the count."""
    from genaug.data.info import original_image_stats
    tifffile = pytest.importorskip("tifffile")
    ramp = (np.arange(32 * 32).reshape(32, 32) * 4095 // (32 * 32 - 1)).astype(np.uint16)
    _png_16bit_colour(tmp_path / "a.png", np.repeat(ramp[..., None], 3, axis=2))
    tifffile.imwrite(tmp_path / "b.tif", ramp / 4095.0)
    tifffile.imwrite(tmp_path / "c.tif", np.repeat(ramp[..., None], 3, axis=2), photometric="rgb")
    Image.fromarray((ramp >> 4).astype(np.uint8)).save(tmp_path / "d.png")
    stats = original_image_stats(tmp_path, ["a.png", "b.tif", "c.tif", "d.png"])
    assert stats["modes"] == {"RGB 16-bit": 2, "TIFF float64 x1": 1, "L": 1} and stats["sizes"] == {"32x32": 4}


def test_data_info_says_that_images_not_square_are_squeezed_to_a_square(tmp_path):
    """Every image is resized to a square of the working size, its aspect ratio not kept (a chest film of
    2:3 comes out wider than it was, its heart with it): `data info` says how many images that changes."""
    from genaug.data.info import data_info, format_info
    root = make_folder_dataset(tmp_path / "d", {"train": 8, "test": 2}, size=20)
    for f in sorted((root / "train" / "NORMAL").iterdir())[:3]:
        Image.open(f).resize((30, 20)).save(f)
    Image.open(root / "test" / "NORMAL" / "IM-1000-0001.jpeg").resize((20, 50)).save(root / "test" / "NORMAL" / "IM-1000-0001.jpeg")
    info = data_info(load_data(str(root), 16, cache_dir=None), root)
    assert info["original_images"]["not_square"] == 4 and info["original_images"]["widest_aspect"] == 2.5
    assert ("shapes: 4 of 20 images are not square (up to 2.5:1); every image is resized to a 16 x 16 px "
            "square, its aspect ratio not kept (--resize crop or pad keeps it)") in format_info(info).splitlines()
    info = data_info(load_data(str(root), 16, cache_dir=None, resize="pad"), root, "pad")
    assert ("shapes: 4 of 20 images are not square (up to 2.5:1); each is centred on a black square of its long "
            "side (--resize pad), then resized to 16 x 16 px") in format_info(info).splitlines()
    square = make_folder_dataset(tmp_path / "s", {"train": 8, "test": 2}, size=20)
    info = data_info(load_data(str(square), 16, cache_dir=None), square)
    assert info["original_images"]["not_square"] == 0 and "shapes:" not in format_info(info)


_TALL = np.arange(1, 9, dtype=np.uint8).reshape(4, 2) * 10   # rows 10 20 / 30 40 / 50 60 / 70 80


@pytest.mark.parametrize("image, size, resize, expected", [
    (_TALL, 2, "crop", [[30, 40], [50, 60]]),                    # the middle rows: the centred 2 x 2
    (_TALL.T, 2, "crop", [[30, 50], [40, 60]]),                  # a wide one: the middle columns
    (_TALL, 4, "pad", [[0, 10, 20, 0], [0, 30, 40, 0], [0, 50, 60, 0], [0, 70, 80, 0]]),
    (_TALL.T, 4, "pad", [[0, 0, 0, 0], [10, 30, 50, 70], [20, 40, 60, 80], [0, 0, 0, 0]]),
    (_TALL[:2], 2, "crop", [[10, 20], [30, 40]]),                # square: as it is, whichever mode
    (_TALL[:2], 2, "pad", [[10, 20], [30, 40]]),
])
def test_to_square_crops_or_pads_an_image_that_is_not_square(image, size, resize, expected):
    from genaug.data.decode import to_square
    assert to_square(image, size, resize).tolist() == expected


def test_to_square_squashes_by_default_as_every_run_before_session_81_did():
    from genaug.data.decode import to_square
    out = to_square(_TALL, 2)
    assert out.shape == (2, 2) and out.dtype == np.uint8
    assert out.tolist() == np.asarray(Image.fromarray(_TALL).resize((2, 2), Image.BILINEAR)).tolist()
    with pytest.raises(ValueError, match="resize must be one of squash, crop, pad"):
        to_square(_TALL, 2, "stretch")


def test_each_resize_has_its_own_cache_entry_and_squash_keeps_the_old_name(tmp_path):
    """A crop run beside a squash run of the same files must not read, or delete, the other's decoded images;
    and the entries decoded before data.resize existed (all squashed) keep their names, so are still read."""
    from genaug.data.cache import CACHE_VERSION, cache_key, file_signature
    root = make_folder_dataset(tmp_path / "d", {"train": 8, "test": 2}, size=20)
    for f in root.rglob("*.jpeg"):
        Image.open(f).resize((20, 30)).save(f)
    rels = sorted(str(f.relative_to(root)) for f in (root / "test").rglob("*.jpeg"))
    signature = file_signature(root, rels)
    before = hashlib.sha256(json.dumps([CACHE_VERSION, str(root.resolve()), 16, signature],
                                       ensure_ascii=True).encode()).hexdigest()[:24]   # session 80's key
    assert cache_key(root, signature, 16) == cache_key(root, signature, 16, "squash") == before
    assert len({cache_key(root, signature, 16, m) for m in ("squash", "crop", "pad")}) == 3
    cache = tmp_path / "cache"
    loaded = {m: load_data(str(root), 16, cache_dir=cache, resize=m) for m in ("squash", "crop", "pad")}
    assert len(list(cache.glob("*.npy"))) == 6   # train and test, each three ways
    again = load_data(str(root), 16, cache_dir=cache, resize="crop")   # read from its own entry, not another's
    assert np.array_equal(again.test.images, loaded["crop"].test.images)
    assert not np.array_equal(loaded["crop"].test.images, loaded["squash"].test.images)
    assert not np.array_equal(loaded["pad"].test.images, loaded["squash"].test.images)


@pytest.mark.parametrize("sizes, expected", [
    ({"20x20": 3}, {"not_square": 0, "widest_aspect": 1.0}),
    ({"1858x2090": 2, "2090x1858": 1, "20x20": 5}, {"not_square": 3, "widest_aspect": 1.12}),
    ({"unknown": 1, "0x5": 1, "30x10": 2}, {"not_square": 2, "widest_aspect": 3.0}),   # headers without a size
])
def test_not_square_counts_the_images_a_square_resize_squeezes(sizes, expected):
    from collections import Counter

    from genaug.data.info import not_square
    assert not_square(Counter(sizes)) == expected


@pytest.mark.parametrize("groups,labels,expected", [
    # by hand: group 0 holds 2 of class 0's 3 images and 1 of class 1's 5, so it guesses 0; group 1 guesses 1;
    # class 0's recall 2/3, class 1's 4/5
    ([0, 0, 0, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1, 0], (2 / 3 + 4 / 5) / 2),
    # group 0 holds 1 of 1 class-0 image against 3 of 9 class-1 ones: a plain majority would guess class 1
    # everywhere (0.5); relative to each class's size it guesses 0: recalls 1 and 6/9
    ([0, 0, 0, 0] + [1] * 6, [0, 1, 1, 1] + [1] * 6, (1 + 6 / 9) / 2),
    ([0, 1, 0, 1], [0, 0, 1, 1], 0.5),   # a trait that says nothing
    ([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2], 1.0),   # three classes, told apart
])
def test_lookup_balanced_accuracy_by_hand(groups, labels, expected):
    from genaug.data.traits import lookup_balanced_accuracy
    assert lookup_balanced_accuracy(np.array(groups), np.array(labels), 3) == pytest.approx(expected)


@pytest.mark.parametrize("quality", [10, 30, 50, 75, 90, 95, 100])
def test_jpeg_quality_is_read_back_from_the_files_tables(tmp_path, quality):
    from genaug.data.traits import read_header
    Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16)).save(tmp_path / "a.jpeg", quality=quality)
    Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16)).save(tmp_path / "a.png")
    assert read_header(str(tmp_path / "a.jpeg")) == (16, 16, "L", "JPEG", quality)
    assert read_header(str(tmp_path / "a.png")) == (16, 16, "L", "PNG", None)
    # a camera's .jpg holding a second picture, which Pillow opens as MPO: the same codec
    rgb = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16)).convert("RGB")
    rgb.save(tmp_path / "b.jpg", format="MPO", save_all=True, append_images=[rgb], quality=quality)
    assert Image.open(tmp_path / "b.jpg").format == "MPO"
    assert read_header(str(tmp_path / "b.jpg")) == (16, 16, "RGB", "JPEG", quality)


def _trait_folder(root: Path, change) -> Path:
    """A 104-image folder dataset whose NORMAL files ``change`` rewrites (a file path in, a file path out)."""
    make_folder_dataset(root, {"train": 40, "test": 12}, size=20)
    for f in sorted(root.glob("*/NORMAL/*.jpeg")):
        change(f)
    return root


def _wider(f):
    Image.open(f).resize((26, 20)).save(f)


def _gray(f):
    Image.open(f).convert("L").save(f)


def _png(f):
    Image.open(f).save(f.with_suffix(".png"))
    f.unlink()


def _jpg(f):
    f.rename(f.with_suffix(".jpg"))


def _finer_jpeg(f):   # another export's setting: the same codec and size, other artefacts
    Image.open(f).save(f, quality=95)


@pytest.mark.parametrize("change,traits,said", [
    (_wider, ["size", "aspect"], "image size (median: NORMAL 26 x 20 px, PNEUMONIA 20 x 20 px) alone tells them apart "
                                 "for 100% of images, aspect ratio (width:height, median: NORMAL 1.30, PNEUMONIA 1.00) "
                                 "100% (balanced accuracy of a lookup by that trait alone; 50% by chance)"),
    (_gray, ["mode"], "pixel format (mostly: NORMAL L 100%, PNEUMONIA RGB 100%) alone tells them apart for 100% of images"),
    (_png, ["format"], "file format (mostly: NORMAL PNG 100%, PNEUMONIA JPEG 100%) alone tells them apart for 100%"),
    (_jpg, [], None),   # .jpg against .jpeg: the same codec, so the same pixels
    (_finer_jpeg, ["jpeg_quality"], "JPEG quality (IJG scale, median: NORMAL 95, PNEUMONIA 75) alone tells them apart "
                                    "for 100% of images"),
    (lambda f: None, [], None),
])
def test_a_class_told_apart_by_its_files_alone_is_named_before_training(tmp_path, change, traits, said):
    """Shortcut learning: NORMAL scanned at another size, stored in another pixel format or file format than
    PNEUMONIA. A classifier can learn the file in place of the lungs, and the test split shares it: `data info`
    (and every training command, from the same bundle) says which trait tells the classes apart."""
    from genaug.data.info import data_info, format_info
    root = _trait_folder(tmp_path / "d", change)
    bundle = load_data(str(root), 16, cache_dir=None)
    assert [t["trait"] for t in bundle.file_tells] == traits and bundle.test_tells == []
    note = [n for n in bundle.notes if n.startswith("the classes differ in their files")]
    assert bool(note) == bool(said) and (said is None or said in note[0])
    assert [t["trait"] for t in data_info(bundle, root)["file_tells"]] == traits
    assert (said is not None) == any("the classes differ in their files" in line for line in
                                     format_info(data_info(bundle, root)).splitlines())


def test_a_test_split_whose_files_differ_from_trainings_is_said_to_come_from_elsewhere(tmp_path):
    """Test images of both classes as PNG, train as JPEG: no class shortcut, but the test split comes from
    another source, which a gap between validation and test figures may come from."""
    root = make_folder_dataset(tmp_path / "d", {"train": 40, "test": 12}, size=20)
    for f in sorted(root.glob("test/*/*.jpeg")):
        _png(f)
    bundle = load_data(str(root), 16, cache_dir=None)
    assert bundle.file_tells == [] and [t["trait"] for t in bundle.test_tells] == ["format"]
    note, = [n for n in bundle.notes if n.startswith("the test split's files differ")]
    assert note.startswith("the test split's files differ from those of train and val: file format (mostly: "
                           "train/val JPEG 100%, test PNG 100%) alone tells them apart for 100% of images")


def test_the_file_trait_check_reads_at_most_its_share_of_headers_evenly_spaced(tmp_path, monkeypatch):
    """Every command loads its data through the check: a large collection is judged on MAX_HEADERS files
    spread through every split and class, not all of them, and not the first ones only."""
    from genaug.data import traits
    root = _trait_folder(tmp_path / "d", _wider)   # 104 images, NORMAL wider
    read = []
    monkeypatch.setattr(traits, "MAX_HEADERS", 100)
    monkeypatch.setattr(traits, "MIN_IMAGES", 50)
    monkeypatch.setattr(traits, "read_header", lambda path, real=traits.read_header: read.append(path) or real(path))
    bundle = load_data(str(root), 16, cache_dir=None)
    assert len(read) == 100 and len(set(read)) == 100
    assert {Path(p).parent.relative_to(root).as_posix() for p in read} == {
        "train/NORMAL", "train/PNEUMONIA", "test/NORMAL", "test/PNEUMONIA"}
    assert [t["trait"] for t in bundle.file_tells] == ["size", "aspect"]


_TRAINED = {"files": 100, "formats": {"JPEG": 90, "PNG": 10}, "modes": {"L": 100}, "jpeg_qualities": {"75": 60, "90": 30},
            "widths": [1000, 2000], "heights": [800, 1800]}


@pytest.mark.parametrize("headers,said", [
    ([(1500, 1200, "L", "JPEG", 75)] * 3 + [(1200, 900, "L", "PNG", None)], []),   # as training's files were
    ([(1500, 1200, "DICOM MONOCHROME2 12-bit", "DICOM")] * 2,
     ["file format DICOM where the model learnt from JPEG, PNG",
      "pixel format DICOM MONOCHROME2 12-bit where the model learnt from L"]),
    ([(1500, 1200, "RGB", "JPEG", 95)] * 3 + [(1500, 1200, "L", "JPEG", 80)],
     ["pixel format RGB where the model learnt from L", "JPEG quality 95 (median) where the model learnt from 75-90"]),
    ([(224, 224, "L", "JPEG", 75)] * 3, ["224 x 224 px (median) where the model learnt from 1000-2000 x 800-1800 px"]),
    ([(224, 224, "L", "JPEG", 75), (1500, 1200, "L", "JPEG", 75)], []),   # half outside is not most
])
def test_files_unlike_those_a_model_learnt_from_are_named(headers, said):
    from genaug.data.traits import Header, unlike_training
    assert unlike_training(_TRAINED, [Header(*h) for h in headers]) == said
    assert unlike_training({}, [Header(*h) for h in headers]) == []   # a model that records nothing


def test_file_traits_shared_by_both_classes_tell_nothing(tmp_path):
    """Sizes, formats and pixel formats that vary within each class alike raise no note."""
    root = make_folder_dataset(tmp_path / "d", {"train": 40, "test": 12}, size=20)
    for k, f in enumerate(sorted(root.glob("*/*/*.jpeg"), key=lambda f: f.stem)):
        if k % 2:
            Image.open(f).resize((26, 20)).convert("L").save(f.with_suffix(".png"))
            f.unlink()
    bundle = load_data(str(root), 16, cache_dir=None)
    from genaug.data.info import data_info
    stats = data_info(bundle, root)["original_images"]
    assert stats["modes"] == {"L": 52, "RGB": 52} and stats["sizes"] == {"26x20": 52, "20x20": 52}   # they vary
    assert bundle.file_tells == [] and not any("differ in their files" in n for n in bundle.notes)


def _ramp(dtype, lo, hi):
    return np.linspace(lo, hi, 64 * 64).reshape(64, 64).astype(dtype)


@pytest.mark.parametrize("case", ["float with NaN", "float with inf", "signed 16-bit", "32-bit past 16 bits"])
def test_float_images_with_nan_or_inf_and_signed_images_keep_their_grey_levels(tmp_path, case):
    """Found in session 76: one NaN pixel (no data, as a masked float image stores it) made a whole float TIFF
    black, an infinite one too, a signed 16-bit TIFF lost its negative third to black and a 32-bit one past 16 bits
    most of itself to white, all without a word."""
    from genaug.data.decode import decode_image
    pixels = {"signed 16-bit": _ramp(np.int16, -1024, 2000), "32-bit past 16 bits": _ramp(np.int32, 0, 1_000_000)}.get(
        case, _ramp(np.float32, 0.0, 1.0))
    if case.startswith("float"):
        pixels[:4] = np.nan if case == "float with NaN" else np.inf   # the top 4 rows of 64
    Image.fromarray(pixels).save(tmp_path / "x.tif")
    gray = decode_image(str(tmp_path / "x.tif"), 64).astype(int)
    body = gray[8:]   # the ramp below the non-finite rows: stretched over its own range, not blacked out
    assert body.min() < 40 and body.max() == 255 and len(np.unique(body)) > 200
    assert np.all(np.diff(body.ravel()) >= 0)   # the ramp keeps its order
    top = {"float with NaN": 0, "float with inf": 255}.get(case)
    if top is not None:   # NaN as the lowest value, +inf as the highest
        assert (gray[:4] == top).all()


@pytest.mark.parametrize("ext, save", [("pgm", {}), ("ppm", {}), ("pnm", {}), ("webp", {"lossless": True}),
                                       ("jp2", {}), ("j2k", {})])
def test_netpbm_webp_and_jpeg_2000_files_are_read_as_images(tmp_path, ext, save):
    """Found in session 76: a folder of MIAS-style .pgm mammograms, WebP or JPEG 2000 files was skipped file by
    file as "not an image extension", though PIL reads each of them."""
    from genaug.data.decode import is_image_file
    pixels = (np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8)
    path = tmp_path / f"person1_x.{ext}"
    Image.fromarray(pixels).convert("RGB" if ext == "ppm" else "L").save(path, format={"pnm": "PPM"}.get(ext), **save)
    assert is_image_file(path)
    assert np.array_equal(decode_image(str(path), 64), pixels)   # lossless, as saved


def test_a_float_image_without_a_finite_pixel_is_refused_with_its_reason(tmp_path):
    from genaug.data.decode import UnreadableImage
    Image.fromarray(np.full((64, 64), np.nan, dtype=np.float32)).save(tmp_path / "x.tif")
    with pytest.raises(UnreadableImage, match="no finite pixel value"):
        decode_image(str(tmp_path / "x.tif"), 64)



@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF"])
def test_an_image_rotated_by_its_exif_orientation_is_read_as_viewers_show_it(tmp_path, fmt):
    """TIFF since session 76: Pillow, given the path of an uncompressed TIFF whose orientation turns it a quarter,
    mapped the file and laid its rows out at the turned width, scrambling the image."""
    from genaug.data.decode import decode_image
    upright = np.zeros((64, 48), dtype=np.uint8)
    upright[:16, :] = 255                          # a bright band at the top, as a viewer shows the film
    stored = np.rot90(upright, k=1)               # the pixels as a camera stores them, on their side
    exif = Image.Exif()
    exif[0x0112] = 6                               # Orientation 6: turn 90° clockwise to display
    path = tmp_path / f"x.{fmt.lower()}"
    extra = {"JPEG": {"exif": exif, "quality": 95}, "PNG": {"exif": exif}, "TIFF": {"tiffinfo": {0x0112: 6}}}[fmt]
    Image.fromarray(np.ascontiguousarray(stored)).save(path, fmt, **extra)
    gray = decode_image(str(path), 32).astype(int)
    assert gray[:6].mean() > 200 and gray[10:].mean() < 40   # band on top, not on the left


def _flat(root: Path) -> Path:
    """ROOT/<CLASS>/ only: the train folders of a generated dataset, moved up a level."""
    from conftest import make_folder_dataset
    made = make_folder_dataset(root.parent / f"{root.name}-made", {"train": 20})
    shutil.move(str(made / "train"), str(root))
    (root / "NORMAL" / "notes.txt").write_text("not an image")
    # one image kept elsewhere and linked in by a relative symbolic link, as collections are often assembled
    kept = root.parent / f"{root.name}-kept"
    kept.mkdir()
    shutil.move(str(root / "NORMAL" / "IM-0000-0001.jpeg"), str(kept / "IM-0000-0001.jpeg"))
    (root / "NORMAL" / "IM-0000-0001.jpeg").symlink_to(Path("..", "..", kept.name, "IM-0000-0001.jpeg"))
    return root


def test_write_patient_split_holds_out_whole_patients_and_only_reads_the_source(tmp_path):
    from genaug.data.folder import write_patient_split
    from genaug.data.splits import patient_id
    src = _flat(tmp_path / "flat")
    before = {p: p.stat().st_mtime_ns for p in src.rglob("*")}
    made = write_patient_split(src, tmp_path / "laid-out", test_fraction=0.2, seed=3)
    out = tmp_path / "laid-out"
    files = {s: sorted(p.relative_to(out / s).as_posix() for p in (out / s).rglob("*.jpeg")) for s in ("train", "test")}
    assert made["images"] == {"train": {"NORMAL": 16, "PNEUMONIA": 16}, "test": {"NORMAL": 4, "PNEUMONIA": 4}}
    assert made["test_files"] == files["test"] and len(files["train"]) == 32
    assert not {patient_id(f) for f in files["train"]} & {patient_id(f) for f in files["test"]}
    assert made["skipped"] == [{"path": "NORMAL/notes.txt", "reason": "not an image extension (nor DICOM content)"}]
    assert all((out / s / f).read_bytes() == (src / f).read_bytes() for s in files for f in files[s])
    assert json.loads((out / "split.json").read_text())["seed"] == 3
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask      # not mkdtemp's private 0700
    assert before == {p: p.stat().st_mtime_ns for p in src.rglob("*")}
    # the same seed gives the same split; the result loads as a Kaggle-layout folder
    again = write_patient_split(src, tmp_path / "again", test_fraction=0.2, seed=3)
    assert again["test_files"] == made["test_files"]
    b = load_data(str(out), 16, val_fraction=0.2, cache_dir=None)
    assert len(b.test) == 8 and sorted(b.test.paths) == sorted(f"test/{f}" for f in files["test"])


def test_patient_folders_that_cannot_be_split_are_refused_in_one_line(tmp_path):
    from genaug.data.folder import write_patient_split
    src = _flat(tmp_path / "flat")                      # images straight in the class folders
    with pytest.raises(DataError, match=r"class folder .*NORMAL holds no patient folders; --patient-folders reads"):
        write_patient_split(src, tmp_path / "a", patient_folders=True)
    for cls in ("NORMAL", "PNEUMONIA"):
        (src / cls / "empty-patient").mkdir()
        for f in (src / cls).glob("*.jpeg"):
            (src / cls / "p1").mkdir(exist_ok=True)
            if cls == "PNEUMONIA":
                f.rename(src / cls / "p1" / f.name)
    with pytest.raises(DataError, match=r"the patient folders of .*NORMAL hold no images \(supported: "):
        write_patient_split(src, tmp_path / "b", patient_folders=True)
    made = make_folder_dataset(tmp_path / "split")   # split already, its images straight in the class folders
    with pytest.raises(DataError, match=r"the patient folders of .*split/train hold no images \(supported: "):
        write_patient_split(made, tmp_path / "c", patient_folders=True)
    # files whose paths below the patient folder are one name once made flat
    some = next((src / "PNEUMONIA" / "p1").glob("*.jpeg"))
    for cls in ("NORMAL", "PNEUMONIA"):
        shutil.rmtree(src / cls / "empty-patient")
    (src / "NORMAL" / "n__1" / "s").mkdir(parents=True)
    shutil.copy(some, src / "NORMAL" / "n__1" / "s" / "x.jpeg")
    shutil.copy(some, src / "NORMAL" / "n__1" / "s_x.jpeg")
    with pytest.raises(DataError, match=r"^two files would both be linked as NORMAL/n_1__s_x\.jpeg; rename one of them$"):
        write_patient_split(src, tmp_path / "d", patient_folders=True)
    assert not any((tmp_path / d).exists() for d in "abcd")


def _views_of_patients(root: Path, patients: int = 10, views: int = 3) -> Path:
    """ROOT/<CLASS>/P0007N_view2.png: names that give the patient in a way genaug does not read by itself."""
    rng = np.random.default_rng(0)
    for cls in ("NORMAL", "PNEUMONIA"):
        (root / cls).mkdir(parents=True)
        for p in range(patients):
            for v in range(views):
                Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(
                    root / cls / f"P{p:04d}{cls[0]}_view{v}.png")
    return root


def test_a_patient_pattern_reads_each_patient_from_the_file_names(tmp_path):
    # session 86: names such as P0007N_view2.png made each file a patient of its own (three views of one child
    # could sit in train and test) unless the user wrote a table of patients
    from genaug.data.folder import write_patient_split
    src = _views_of_patients(tmp_path / "src")
    made = write_patient_split(src, tmp_path / "xray", test_fraction=0.2, seed=0, patient_pattern=r"/(P\d+\w)_")
    assert made["patient_pattern"] == r"/(P\d+\w)_" and made["files_without_patient_id"] == 0
    assert made["patients"] == {"train": 16, "test": 4}
    b = load_data(str(tmp_path / "xray"), 16, cache_dir=None)   # every later command reads the patients back
    by_split = {name: set(s.patients) for name, s in b.splits.items()}
    assert len(set().union(*by_split.values())) == 20 and not (by_split["test"] & (by_split["train"] | by_split["val"]))
    assert all(len([p for p in s.patients if p == pid]) == 3 for s in b.splits.values() for pid in s.patients)
    # with a labels table, as a --patient-column would give them
    from genaug.data.labels import write_labelled_split
    rows = ["file,finding"] + [f"{f.relative_to(src).as_posix()},{f.parent.name}" for f in sorted(src.rglob("*.png"))]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    labelled = write_labelled_split(src, tmp_path / "labels.csv", tmp_path / "by-table", "file", "finding",
                                    test_fraction=0.2, patient_pattern=r"(P\d+\w)_")
    assert labelled["patients"] == {"train": 16, "test": 4} and labelled["patient_pattern"] == r"(P\d+\w)_"


@pytest.mark.parametrize("pattern,told", [
    (r"(Q\d+)", r"^--patient-pattern '\(Q\\d\+\)' finds no patient in 60 images of 60 \(e\.g\. NORMAL/P0000N_view0\.png; "),
    (r"(P\d+", r"^--patient-pattern '\(P\\d\+' is not a regular expression \(missing \), unterminated subpattern"),
])
def test_a_patient_pattern_that_does_not_fit_is_refused_in_one_line(tmp_path, pattern, told):
    from genaug.data.folder import write_patient_split
    src = _views_of_patients(tmp_path / "src")
    with pytest.raises(DataError, match=told):
        write_patient_split(src, tmp_path / "xray", patient_pattern=pattern)
    assert not (tmp_path / "xray").exists()


def test_data_that_comes_split_with_a_folder_per_patient_is_laid_out_as_given(tmp_path):
    # ROOT/{train,test}/<CLASS>/<PATIENT>/...: the splits are kept as they came, the folders become the patients
    from genaug.data.folder import write_patient_split
    from genaug.data.info import data_info
    made = make_folder_dataset(tmp_path / "made", {"train": 12, "test": 6})
    src = tmp_path / "given"
    for split in ("train", "test"):
        for cls in ("NORMAL", "PNEUMONIA"):
            for i, image in enumerate(sorted((made / split / cls).glob("*.jpeg"))):
                where = src / split / cls / f"{split[:2]}{cls[0]}{i % 3}"
                where.mkdir(parents=True, exist_ok=True)
                shutil.copy(image, where / f"image{i}.jpeg")
    with pytest.raises(DataError, match=r"split 'train' has no images in .*; its class folders hold folders of images "
                                        r"\(train/NORMAL/trN0/\): if each holds one patient's images, lay them out by "
                                        r"patient first: genaug data split .* --patient-folders --to NEW_FOLDER$"):
        load_data(str(src), 16, cache_dir=None)
    out = tmp_path / "laid-out"
    summary = write_patient_split(src, out, patient_folders=True)
    assert summary["splits_as_given"] is True and "test_fraction" not in summary
    assert summary["images"] == {"train": {"NORMAL": 12, "PNEUMONIA": 12}, "test": {"NORMAL": 6, "PNEUMONIA": 6}}
    assert summary["patients"] == {"train": 6, "test": 6}
    b = load_data(str(out), 16, cache_dir=None)
    assert set(b.test.patients) == {f"te{c}{k}" for c in "NP" for k in range(3)}
    assert set(b.train.patients) | set(b.val.patients) == {f"tr{c}{k}" for c in "NP" for k in range(3)}
    assert data_info(b, out)["test_origin"] == (f"as given in {src.resolve()}, laid out by its patient folders "
                                                "with genaug data split")


def _images_beside_masks(root: Path, splits=None, masks: str = "masks") -> Path:
    """The COVID-19 Radiography Database's layout, ROOT/<CLASS>/images/ beside ROOT/<CLASS>/masks/ (masks of the
    same names: a white square), or with ``splits`` COVID-QU-Ex's, ROOT/<split>/<CLASS>/images/ beside "lung
    masks/". Images of a class are one grey, so a model can tell them; masks are black and white."""
    for split in splits or [""]:
        for k, (cls, grey) in enumerate([("Normal", 60), ("COVID", 190)]):
            for sub in ("images", masks):
                (root / split / cls / sub).mkdir(parents=True)
            for i in range(10 if split != "test" else 6):
                name = f"{cls}-{split}{i + 1}.png"
                Image.fromarray(np.full((24, 24), grey + i, np.uint8)).save(root / split / cls / "images" / name)
                mask = np.zeros((24, 24), np.uint8)
                mask[4:20, 4:20] = 255
                Image.fromarray(mask).save(root / split / cls / sub / name)
    return root


def test_data_split_reads_each_class_s_images_folder_and_leaves_its_masks_aside(tmp_path):
    # found in session 86: <CLASS>/images/ beside <CLASS>/masks/ was "no class folders of images", and with
    # --patient-folders (which genaug then suggested) images/ and masks/ became two patients, the masks trained on
    from genaug.data.folder import write_patient_split
    src = _images_beside_masks(tmp_path / "covid")
    (src / "COVID" / "notes.txt").write_text("from the site")
    out = tmp_path / "laid-out"
    summary = write_patient_split(src, out, test_fraction=0.2, seed=0)
    assert summary["classes"] == ["Normal", "COVID"]
    assert sum(summary["images"]["train"].values()) + sum(summary["images"]["test"].values()) == 20
    linked = sorted(p.relative_to(out).parts for p in out.rglob("*.png"))
    assert len(linked) == 20 and {(split, cls) for split, cls, _ in linked} == {   # <split>/<CLASS>/<name>, flat
        (split, cls) for split in ("train", "test") for cls in ("Normal", "COVID")}
    assert all(np.asarray(Image.open(p)).std() == 0 for p in out.rglob("*.png"))   # images, no mask among them
    assert {(d["path"], d["reason"].split(":")[0]) for d in summary["skipped"]} == {
        ("COVID/masks", "masks (by the folder's name), not X-rays"), ("Normal/masks", "masks (by the folder's name), "
                                                                      "not X-rays"),
        ("COVID/notes.txt", "beside images/, from which the class's images are read")}
    b = load_data(str(out), 16, cache_dir=None)
    assert len(b.train) + len(b.val) + len(b.test) == 20
    # --data on it names the command that lays it out, which is the one that works
    with pytest.raises(DataError, match=r"holds class folders \(COVID, Normal\) but no train/ and test/: .* "
                                        r"genaug data split .*covid --to NEW_FOLDER$"):
        load_data(str(src), 16, cache_dir=None)


def test_images_and_masks_are_not_taken_for_patient_folders(tmp_path):
    from genaug.data.folder import write_patient_split
    src = _images_beside_masks(tmp_path / "covid")
    with pytest.raises(DataError, match=r"^.*covid/Normal holds images/, masks/: folders of images and masks, not one "
                                        r"folder per patient; give it without --patient-folders"):
        write_patient_split(src, tmp_path / "a", patient_folders=True)
    # patient folders with a masks/ beside them: refused; masks inside a patient's folder: passed over, said
    given = tmp_path / "patients"
    for cls in ("Normal", "COVID"):
        for p in range(4):
            shutil.copytree(src / cls / "masks", given / cls / f"{cls}-p{p}" / "Lung Masks")
            for i in range(2):   # each patient's own images: identical files would join the patients
                grey = 40 * p + i + 20 * (cls == "COVID")
                Image.fromarray(np.full((24, 24), grey, np.uint8)).save(given / cls / f"{cls}-p{p}" / f"{i}.png")
    (given / "COVID" / "masks").mkdir()
    with pytest.raises(DataError, match=r"patients/COVID/masks is named as a folder of masks, not of one "
                                        r"patient's X-rays: move it out of the class folder"):
        write_patient_split(given, tmp_path / "b", patient_folders=True)
    (given / "COVID" / "masks").rmdir()
    out = tmp_path / "c"
    summary = write_patient_split(given, out, patient_folders=True)
    assert summary["patients"]["train"] + summary["patients"]["test"] == 8
    assert all(np.asarray(Image.open(p)).std() == 0 for p in out.rglob("*.png"))
    assert sum(d["path"].endswith("/Lung Masks") and d["reason"].startswith("masks (by the folder's name)")
               for d in summary["skipped"]) == 8
    assert not any((tmp_path / d).exists() for d in "ab")


def test_a_split_root_with_images_beside_lung_masks_reads_the_images(tmp_path):
    # COVID-QU-Ex: <split>/<CLASS>/images/ beside "lung masks/"; before session 86 each class "held no images"
    root = _images_beside_masks(tmp_path / "qu", splits=["Train", "Val", "test"], masks="lung masks")
    b = load_data(str(root), 16, cache_dir=None)
    assert (len(b.train), len(b.val), len(b.test)) == (20, 20, 12) and b.classes == ["Normal", "COVID"]
    assert all(p.split("/")[2] == "images" for p in b.train.paths + b.test.paths)
    assert (np.asarray(b.test.images).reshape(len(b.test), -1).std(axis=1) == 0).all()   # flat greys: no mask read
    skipped = dict(b.skipped)
    assert skipped["Train/COVID/lung masks"].startswith("masks (by the folder's name), not X-rays: not read")
    assert len([p for p in skipped if p.endswith("lung masks")]) == 6


def _four_classes(root: Path) -> Path:
    """The COVID-19 Radiography Database's four classes, split: each class's images one grey of its own."""
    for split, n in (("train", 12), ("test", 4)):
        for k, cls in enumerate(["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((20, 20), 40 * k + i, np.uint8)).save(root / split / cls / f"{cls}-{split}{i}.png")
    return root


def test_classes_keeps_the_named_classes_of_a_folder_and_leaves_the_rest_out(tmp_path):
    # COVID against Normal out of the COVID-19 Radiography Database's four classes, without copying folders
    root = _four_classes(tmp_path / "four")
    b = load_data(str(root), 16, cache_dir=None, classes=" normal,COVID")
    assert b.classes == ["Normal", "COVID"]            # the negative-named one first, as for any two classes
    for s in b.splits.values():
        assert all(p.split("/")[1] == b.classes[k] for p, k in zip(s.paths, s.labels.tolist()))
    assert len(b.train) + len(b.val) == 24 and len(b.test) == 8
    assert "left out by --classes (data.classes): Lung_Opacity (16 images), Viral Pneumonia (16 images)" in b.notes
    assert load_data(str(root), 16, cache_dir=None).classes == ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]


@pytest.mark.parametrize("wanted,told", [
    ("COVID,Norml", r"^--classes names 'Norml', which .*four has not \(did you mean 'Normal'\?\); its classes: COVID, "
                    r"Lung_Opacity, Normal, Viral Pneumonia$"),
    ("COVID,covid", r"^--classes COVID,covid keeps one class \(COVID\); a classifier needs two or more$"),
])
def test_classes_that_the_data_has_not_or_too_few_are_refused_before_anything_is_read(tmp_path, wanted, told):
    from genaug.data import check_data_spec
    root = _four_classes(tmp_path / "four")
    with pytest.raises(DataError, match=told):
        check_data_spec(str(root), "binary", wanted)   # from the names alone, before a run is made
    with pytest.raises(DataError, match=told):
        load_data(str(root), 16, cache_dir=None, classes=wanted)


def test_classes_of_data_that_is_no_folder_are_kept_after_loading():
    # the demo's three-class task cut to bacterial against viral pneumonia: labels numbered anew
    whole = load_data("demo", 16, task="3class", demo_train=120, cache_dir=None)
    b = load_data("demo", 16, task="3class", demo_train=120, cache_dir=None, classes="VIRUS,BACTERIA")
    assert b.classes == ["BACTERIA", "VIRUS"]
    for split, s in b.splits.items():
        assert set(s.labels.tolist()) == {0, 1}
        before = whole.splits["test"] if split == "test" else None
        if before is not None:   # test is as given: the same images, less the NORMAL ones, relabelled
            kept = [p for p, k in zip(before.paths, before.labels.tolist()) if whole.classes[k] != "NORMAL"]
            assert s.paths == kept
            assert [b.classes[k] for k in s.labels.tolist()] == [
                whole.classes[k] for k in before.labels.tolist() if whole.classes[k] != "NORMAL"]
    assert any(n.startswith("left out by --classes (data.classes): NORMAL (") for n in b.notes)


def _saved_twice(root: Path, n: int = 12) -> Path:
    """ROOT/<CLASS>/scan<i>.png and 'scan<i> (1).png', the same bytes under names that give no patient (as a
    browser saves a file downloaded twice): each pair counts as two patients unless genaug sees they are one."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for cls in ("NORMAL", "PNEUMONIA"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(root / cls / f"scan{i}.png")
            shutil.copyfile(root / cls / f"scan{i}.png", root / cls / f"scan{i} (1).png")
    return root


def _by_content(folder: Path) -> dict[str, set[str]]:
    return {s: {hashlib.sha1(p.read_bytes()).hexdigest() for p in (folder / s).rglob("*.png") if p.stat().st_size}
            for s in ("train", "test")}


@pytest.mark.parametrize("text,width", [("NORMAL", 6), ("肺炎", 4), ("Pneumonía", 9), ("Pneumoni\u0301a", 9),
                                        ("ＡＢ", 4), ("", 0)])
def test_shown_width_counts_the_columns_a_terminal_gives(text, width):
    from genaug.data.decode import padded, shown_width
    assert shown_width(text) == width
    assert shown_width(padded(text, 10)) == shown_width(padded(text, 10, right=True)) == 10


def test_the_data_info_table_keeps_its_columns_for_short_and_wide_class_names(tmp_path):
    # found in session 74: a column was as wide as its class name by len(), so class "A" over 14 images and
    # the CJK name 肺炎 (four columns shown, two characters) put the counts out of line with the header
    from genaug.data.decode import shown_width
    from genaug.data.info import data_info, format_info
    made = make_folder_dataset(tmp_path / "m", size=16)
    root = tmp_path / "d"
    for split in ("train", "test"):
        shutil.copytree(made / split / "NORMAL", root / split / "A")
        shutil.copytree(made / split / "PNEUMONIA", root / split / "肺炎")
    lines = format_info(data_info(load_data(str(root), 16, val_fraction=0.2, cache_dir=None), root)).splitlines()
    table = [ln for ln in lines if ln.startswith(("  split", "  train", "  val", "  test"))]
    assert len(table) == 4 and len({shown_width(ln) for ln in table}) == 1, table
    ends = {shown_width(re.match(r"\s*(\S+\s+){3}\S+", ln).group(0)) for ln in table}
    assert len(ends) == 1, table     # the A column's right edges line up


def test_data_split_keeps_copies_of_one_image_on_one_side(tmp_path):
    # found in session 74: files without a patient id count as a patient each, so a file saved twice under two
    # names went to train and test about half the time, and the benchmark trained on test images
    from genaug.data.folder import write_patient_split
    src = _saved_twice(tmp_path / "src")
    for name in ("IM-0901-0001.png", "IM-0902-0001.png"):   # empty files are alike, but not one image
        (src / "NORMAL" / name).touch()
    for seed in range(4):
        made = write_patient_split(src, tmp_path / f"out{seed}", test_fraction=0.5, seed=seed)
        held = _by_content(tmp_path / f"out{seed}")
        assert held["train"] and held["test"] and not held["train"] & held["test"], seed
        joined = made["patients_joined_by_identical_files"]
        assert joined["patients"] == 24 and len(joined["examples"]) == 5
        assert all(sorted(e) in (sorted([f"{c}/scan{i}.png", f"{c}/scan{i} (1).png"]) for c in ("NORMAL", "PNEUMONIA")
                                 for i in range(12)) for e in joined["examples"])
        assert sum(1 for p in (tmp_path / f"out{seed}" / "test").rglob("*.png") if p.stat().st_size) % 2 == 0
        notes = load_data(str(tmp_path / f"out{seed}"), 16, val_fraction=0.3, cache_dir=None).notes
        assert not any("LEAKAGE" in n for n in notes)


def test_the_validation_carve_and_the_folds_keep_copies_of_one_image_on_one_side(tmp_path):
    from genaug.benchmark import PatientFolds
    from genaug.data.duplicates import image_hashes
    root = tmp_path / "d"
    _saved_twice(root / "train")
    shutil.copytree(make_folder_dataset(tmp_path / "m", {"train": 0, "test": 6}, size=16) / "test", root / "test")
    for seed in range(4):
        b = load_data(str(root), 16, val_fraction=0.5, split_seed=seed, cache_dir=None)
        assert not set(image_hashes(b.train)) & set(image_hashes(b.val)), seed
        assert b.summary()["duplicates_across_splits"]["train-val"] == {"exact": 0, "near": 0}
        folds = PatientFolds(b, 3, seed)
        owner = {}
        for f, idx in enumerate(folds.parts):
            for h in image_hashes(folds.pooled.subset(idx)):
                assert owner.setdefault(h, f) == f, "one image in two folds"


def test_a_split_that_leaves_a_class_without_training_or_test_images_writes_nothing(tmp_path):
    # `genaug data split --test-fraction 0.9` wrote a train split of 0 images
    from genaug.data.folder import write_patient_split
    src = _flat(tmp_path / "flat")     # 10 patients of each class, 2 images each
    with pytest.raises(DataError, match=r"^--test-fraction 0.95 leaves class NORMAL no training image \(it has 10 "
                                        r"patients\): give a smaller --test-fraction$"):
        write_patient_split(src, tmp_path / "most", test_fraction=0.95)
    for f in (src / "NORMAL").glob("IM-000[1-9]*"):   # NORMAL left with patient 0's images only
        f.unlink()
    with pytest.raises(DataError, match="^class NORMAL has images of 1 patient only, who cannot be in both train and "
                                        "test: add images of more patients of it$"):
        write_patient_split(src, tmp_path / "one")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat", "flat-kept", "flat-made"]


def test_write_patient_split_refuses_what_it_would_overwrite_or_misread(tmp_path):
    from genaug.data.folder import write_patient_split
    src = _flat(tmp_path / "flat")
    (tmp_path / "taken").mkdir()
    for dest, fraction, message in [(tmp_path / "taken", 0.2, "already exists"),
                                    (src / "inside", 0.2, "lies inside"),
                                    (tmp_path / "new", 0.0, "between 0 and 1")]:
        with pytest.raises(DataError, match=message):
            write_patient_split(src, dest, fraction)
    nested = tmp_path / "nested"                         # PNEUMONIA/bacteria/*.jpeg: one level too deep
    shutil.copytree(src / "NORMAL", nested / "NORMAL")
    shutil.copytree(src / "PNEUMONIA", nested / "PNEUMONIA" / "bacteria")
    with pytest.raises(DataError, match=r"PNEUMONIA holds no images directly \(it holds folders: bacteria\)"):
        write_patient_split(nested, tmp_path / "n2")
    shutil.rmtree(nested / "PNEUMONIA")
    with pytest.raises(DataError, match=r"holds one class folder \(NORMAL\)"):
        write_patient_split(nested, tmp_path / "n2")
    kaggle = tmp_path / "kaggle"
    from conftest import make_folder_dataset
    make_folder_dataset(kaggle)
    with pytest.raises(DataError, match="needs no split"):
        write_patient_split(kaggle, tmp_path / "k2")
    # a flat folder given as --data says what to run
    with pytest.raises(DataError, match=r"holds class folders \(NORMAL, PNEUMONIA\) but no train/ and test/: .*genaug "
                                        r"data split"):
        load_data(str(src), 16, cache_dir=None)
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".*partial"))


def test_a_folder_with_one_class_of_images_is_refused_by_name_before_anything_loads(tmp_path):
    from conftest import make_folder_dataset
    from genaug.data import check_data_spec
    root = make_folder_dataset(tmp_path / "x", {"train": 4, "test": 2})
    for split in ("train", "test"):                     # PNEUMONIA/bacteria/*.jpeg: one level too deep
        inner = root / split / "PNEUMONIA" / "bacteria"
        inner.mkdir()
        for f in (root / split / "PNEUMONIA").glob("*.jpeg"):
            f.rename(inner / f.name)
    for check in (lambda: check_data_spec(str(root)), lambda: load_data(str(root), 16, cache_dir=None)):
        with pytest.raises(DataError, match=r"only one class has images in .* \(NORMAL\); a classifier needs two or "
                                            r"more: PNEUMONIA holds folders \(bacteria\), not images"):
            check()


def test_write_patient_split_leaves_a_folder_that_appeared_meanwhile_alone(tmp_path, monkeypatch):
    import genaug.data.folder as folder
    src = _flat(tmp_path / "flat")
    dest = tmp_path / "xray"
    real_replace = os.replace

    def racing_replace(a, b):   # another split finished first
        dest.mkdir()
        (dest / "split.json").write_text("theirs")
        return real_replace(a, b)

    monkeypatch.setattr(folder.os, "replace", racing_replace)
    with pytest.raises(DataError, match="appeared while the split was written"):
        folder.write_patient_split(src, dest)
    assert (dest / "split.json").read_text() == "theirs" and not list(tmp_path.glob(".xray*"))


def test_dicom_images_are_rescaled_windowed_and_turned_the_usual_way_round(tmp_path):
    pytest.importorskip("pydicom")
    from conftest import write_dicom
    ramp = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)    # 12 bits stored
    plain = decode_image(str(write_dicom(tmp_path / "a.dcm", ramp, "P1")), 64)
    assert plain.min() == 0 and plain.max() == 255 and len(np.unique(plain)) == 256
    inverted = decode_image(str(write_dicom(tmp_path / "b.dcm", ramp, "P1", photometric="MONOCHROME1")), 64)
    assert np.array_equal(inverted, 255 - plain)                               # white is low in MONOCHROME1
    # the window the file carries: values below its bottom are black, above its top white
    windowed = decode_image(str(write_dicom(tmp_path / "c.dcm", ramp, "P1", window=(1024, 512)).as_posix()), 64)
    flat = windowed.ravel()
    assert (flat[ramp.ravel() < 700] == 0).all() and (flat[ramp.ravel() > 1300] == 255).all()
    (tmp_path / "d.dcm").write_bytes(b"DICM but not really")
    from genaug.data.decode import UnreadableImage
    with pytest.raises(UnreadableImage, match="not a readable DICOM file"):
        decode_image(str(tmp_path / "d.dcm"), 64)


def test_dicom_patients_come_from_the_header_and_splits_keep_them_whole(tmp_path):
    pytest.importorskip("pydicom")
    from conftest import write_dicom
    from genaug.data.folder import write_patient_split
    rng = np.random.default_rng(0)
    flat = tmp_path / "flat"
    for cls in ("NORMAL", "PNEUMONIA"):
        for i in range(12):   # six patients a class, two images each, names that say nothing of them
            write_dicom(flat / cls / f"scan{i:03d}.dcm", rng.integers(0, 4096, (24, 24)).astype(np.uint16),
                        patient=f"{cls[0]}{i // 2}")
    write_dicom(flat / "NORMAL" / "anonymous.dcm", rng.integers(0, 4096, (24, 24)).astype(np.uint16))
    made = write_patient_split(flat, tmp_path / "xray", test_fraction=0.3, seed=1)
    assert made["files_without_patient_id"] == 1 and made["patients"] == {"train": 9, "test": 4}
    b = load_data(str(tmp_path / "xray"), 16, val_fraction=0.2, cache_dir=None)
    assert {p for s in b.splits.values() for p in s.patients} >= {"N0", "P5"}
    seen = {}
    for split, s in b.splits.items():
        for pid in s.patients:
            seen.setdefault(pid, set()).add(split)
    assert all(len(splits) == 1 for splits in seen.values())
    assert any(n.startswith("1 of 25 images carry no patient id") for n in b.notes), b.notes


def _vendor_dicom(name: str) -> Path:
    """A file from pydicom's own test set: real files written by DCMTK, GDCM, scanners and planning systems,
    shipped inside the pydicom package (nothing is downloaded)."""
    pydicom = pytest.importorskip("pydicom")
    return Path(pydicom.__file__).parent / "data" / "test_files" / name


def _vendor_dicom_names() -> list[str]:
    try:
        import pydicom
    except ImportError:
        return []
    return sorted(p.name for p in (Path(pydicom.__file__).parent / "data" / "test_files").glob("*.dcm"))


@pytest.mark.parametrize("name", _vendor_dicom_names())
def test_every_real_world_dicom_file_decodes_or_is_skipped_with_a_reason(name):
    from genaug.data.decode import UnreadableImage
    try:
        gray = decode_image(str(_vendor_dicom(name)), 32)
    except UnreadableImage as exc:     # anything else would end a run of thousands of files in a traceback
        assert len(str(exc)) > 10 and "Unable to decode as exceptions" not in str(exc)
    else:
        assert gray.shape == (32, 32) and gray.dtype == np.uint8


def test_a_header_value_a_file_gets_wrong_skips_the_file_not_the_run():
    from genaug.data.decode import UnreadableImage
    with pytest.raises(UnreadableImage, match=r"DICOM header not understood \(invalid literal for int\(\) .*'1A'"):
        decode_image(str(_vendor_dicom("badVR.dcm")), 32)    # NumberOfFrames '1A'


@pytest.mark.parametrize("name,needs", [("MR_small_implicit.dcm", None), ("MR_small_bigendian.dcm", None),
                                        ("MR_small_RLE.dcm", None), ("MR_small_jpeg_ls_lossless.dcm", "gdcm"),
                                        ("MR_small_jp2klossless.dcm", None)])
def test_one_image_in_every_lossless_transfer_syntax_decodes_to_the_same_pixels(name, needs):
    if needs:
        pytest.importorskip(needs)
    reference = decode_image(str(_vendor_dicom("MR_small.dcm")), 64)   # explicit VR little endian
    assert reference.std() > 20
    assert np.array_equal(decode_image(str(_vendor_dicom(name)), 64), reference)


@pytest.mark.parametrize("name,needs", [("SC_rgb_rle_16bit.dcm", None), ("SC_rgb_rle_32bit.dcm", None),
                                        ("SC_rgb_jpeg_gdcm.dcm", "gdcm")])   # JPEG lossless (process 14)
def test_colour_of_any_depth_or_lossless_compression_decodes_as_the_8_bit_original(name, needs):
    # 16- and 32-bit samples are scaled from their depth, not clipped at 255
    if needs:
        pytest.importorskip(needs)
    eight = decode_image(str(_vendor_dicom("SC_rgb_rle.dcm")), 64).astype(int)
    assert np.abs(decode_image(str(_vendor_dicom(name)), 64).astype(int) - eight).max() <= 1


def test_a_compressed_file_no_decoder_reads_says_which_compression():
    import importlib.util
    from genaug.data.decode import UnreadableImage
    path = str(_vendor_dicom("JPEG-lossy.dcm"))      # 12-bit JPEG Extended: neither Pillow nor GDCM reads it
    if importlib.util.find_spec("libjpeg") is not None:   # pylibjpeg-libjpeg does
        assert decode_image(path, 32).shape == (32, 32)
        return
    with pytest.raises(UnreadableImage, match=r"DICOM 'JPEG Extended \(Process 2 and 4\)' pixel data not "
                                              r"decoded \(.*12-bit precision"):
        decode_image(path, 32)


def test_palette_colour_dicom_is_read_through_its_colour_table(tmp_path):
    pytest.importorskip("pydicom")
    from conftest import write_dicom
    index = (np.arange(16 * 16).reshape(16, 16) % 256).astype(np.uint16)
    path = write_dicom(tmp_path / "p.dcm", index, "P1", bits_stored=8)
    import pydicom
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = "PALETTE COLOR", 8, 8, 7
    ds.PixelData = index.astype(np.uint8).tobytes()
    table = ((255 - np.arange(256)) * 257).astype("<u2").tobytes()    # grey table that turns index i into 255 - i
    for element in (1, 2, 3):   # red, green and blue: descriptor (entries, first index, bits), then the table
        ds.add_new(0x00281100 + element, "US", [256, 0, 16])
        ds.add_new(0x00281200 + element, "OW", table)
    ds.save_as(path, enforce_file_format=True)
    assert np.array_equal(decode_image(str(path), 16), 255 - index)   # not the indices as grey levels


def test_a_dicom_file_written_without_its_meta_header_is_read(tmp_path):
    pytest.importorskip("pydicom")
    import pydicom
    from conftest import write_dicom
    ramp = (np.arange(32 * 32).reshape(32, 32) * 4).astype(np.uint16)
    path = write_dicom(tmp_path / "with.dcm", ramp, "P1")
    ds = pydicom.dcmread(path)
    del ds.file_meta
    ds.preamble = None
    pydicom.dcmwrite(tmp_path / "without.dcm", ds, implicit_vr=True, little_endian=True)   # as older systems wrote
    assert (tmp_path / "without.dcm").read_bytes()[128:132] != b"DICM"
    assert np.array_equal(decode_image(str(tmp_path / "without.dcm"), 32), decode_image(str(path), 32))


def test_a_split_of_undecodable_files_says_why_and_many_skips_are_counted_by_reason(tmp_path, caplog):
    root = make_folder_dataset(tmp_path / "d", {"train": 8, "test": 4})
    for f in (root / "test").rglob("*.jpeg"):    # what an export in a compression nobody can read looks like
        f.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(DataError, match=r"split 'test' of .* has no readable images \(8 files skipped; all for: "
                                        r"corrupt or unreadable"):
        load_data(str(root), 16, val_fraction=0.2, cache_dir=None)
    for f in sorted((root / "test").rglob("*.jpeg"))[1:]:   # found in session 68: "(1 files skipped; all for: ..."
        f.unlink()
    with pytest.raises(DataError, match=r"split 'test' of .* has no readable images \(1 file skipped: corrupt or "
                                        r"unreadable \("):
        load_data(str(root), 16, val_fraction=0.2, cache_dir=None)
    for f in (root / "test").rglob("*.jpeg"):
        f.unlink()
    make_folder_dataset(root, {"test": 4})
    for i in range(25):
        (root / "train" / "NORMAL" / f"IM-09{i:02d}-0001.jpeg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    from genaug.data.info import data_info, format_info
    text = format_info(data_info(load_data(str(root), 16, val_fraction=0.2, cache_dir=None), root))
    assert "skipped files: 25\n" in text and text.count("\n  - train/NORMAL/IM-09") == 20
    assert "  ... and 5 more; all 25 by reason:\n       25  corrupt or unreadable (Truncated File Read)" in text
    from genaug.data.cache import say_skipped
    with caplog.at_level("WARNING", logger="genaug"):
        say_skipped({f"f{i}.dcm": "multi-frame" if i % 3 else "no pixel data" for i in range(30)}, named=5)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5 + 1 + 2 and lines[5].startswith("skipped 25 more; all 30 by reason")
    assert lines[6:] == ["       20  multi-frame", "       10  no pixel data"]


def test_many_compressed_dicom_files_decode_in_processes_to_what_threads_give(tmp_path, monkeypatch, caplog):
    pytest.importorskip("pydicom")
    import genaug.data.cache as cache
    from conftest import write_dicom
    import pydicom
    from pydicom.uid import RLELossless
    rng = np.random.default_rng(0)
    rels = []
    for i in range(6):   # RLE: compressed, and encoded by pydicom itself
        path = write_dicom(tmp_path / "d" / f"IM-{i:04d}-0001.dcm", rng.integers(0, 4096, (40, 40)).astype(np.uint16))
        write_dicom(tmp_path / "plain" / path.name, pydicom.dcmread(path).pixel_array)
        ds = pydicom.dcmread(path)
        ds.compress(RLELossless)
        ds.save_as(path, enforce_file_format=True)
        rels.append(path.name)
    (tmp_path / "d" / "IM-0099-0001.dcm").write_bytes(b"DICM but not really")
    rels.insert(3, "IM-0099-0001.dcm")
    monkeypatch.setattr(cache.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cache, "PROCESSES_FROM", 10**9)               # threads
    by_threads, ok_t, why_t = decode_cached(tmp_path / "d", rels, 24, None)
    monkeypatch.setattr(cache, "PROCESSES_FROM", 2)                   # processes (pydicom's decoders hold the GIL)
    by_processes, ok_p, why_p = decode_cached(tmp_path / "d", rels, 24, None)
    assert np.array_equal(by_threads, by_processes) and by_threads[0].std() > 10
    assert ok_t.tolist() == ok_p.tolist() == [True] * 3 + [False] + [True] * 3
    assert why_t == why_p and why_p[3].startswith("not a readable DICOM file")

    class DeadPool:   # a worker killed (out of memory, say) after the first two files
        def __init__(self, *args, **kwargs):
            pass

        def map(self, fn, jobs, chunksize=1):
            from concurrent.futures.process import BrokenProcessPool
            yield from (fn(job) for job in jobs[:2])
            raise BrokenProcessPool("killed")

        def shutdown(self, **kwargs):
            pass
    monkeypatch.setattr(cache, "ProcessPoolExecutor", DeadPool)
    with caplog.at_level("WARNING", logger="genaug"):
        rescued, ok_r, why_r = decode_cached(tmp_path / "d", rels, 24, None)
    assert np.array_equal(rescued, by_threads) and ok_r.tolist() == ok_t.tolist() and why_r == why_t
    assert "a decoding process died after 2 of 7 files; decoding the rest in this process" in caplog.text

    class TorchWarning(UserWarning):   # as torch's own categories: unpickling them imports their module
        pass
    seen = {}

    class SeenPool(DeadPool):
        def __init__(self, *args, initargs=(), **kwargs):
            seen["filters"] = initargs[0]

        def map(self, fn, jobs, chunksize=1):
            yield from (fn(job) for job in jobs)
    monkeypatch.setattr(cache, "ProcessPoolExecutor", SeenPool)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=TorchWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")
        assert np.array_equal(decode_cached(tmp_path / "d", rels, 24, None)[0], by_threads)
    categories = {f[2] for f in seen["filters"]}
    assert UserWarning in categories and TorchWarning not in categories     # no torch import per worker

    class NoPool:
        def __init__(self, *args, **kwargs):
            raise AssertionError("uncompressed DICOM decodes faster in threads")
    monkeypatch.setattr(cache, "ProcessPoolExecutor", NoPool)
    plain = [r for r in rels if (tmp_path / "plain" / r).is_file()]
    assert np.array_equal(decode_cached(tmp_path / "plain", plain, 24, None)[0], by_threads[ok_t])


def test_dicom_files_named_by_their_patient_id_are_not_counted_as_without_one(tmp_path):
    pytest.importorskip("pydicom")
    from conftest import write_dicom
    from genaug.data.folder import write_patient_split
    rng = np.random.default_rng(0)
    for cls in ("NORMAL", "PNEUMONIA"):
        for i in range(8):   # as the RSNA pneumonia challenge names them: <PatientID>.dcm, one image each
            pid = f"0004cfab-14fd-4e49-80ba-63a80b6bd{cls[0]}{i:02d}"
            write_dicom(tmp_path / "flat" / cls / f"{pid}.dcm", rng.integers(0, 4096, (24, 24)).astype(np.uint16), pid)
    write_dicom(tmp_path / "flat" / "NORMAL" / "anonymous.dcm", rng.integers(0, 4096, (24, 24)).astype(np.uint16))
    made = write_patient_split(tmp_path / "flat", tmp_path / "xray", test_fraction=0.25, seed=0)
    assert made["files_without_patient_id"] == 1          # the file without a PatientID, and only it
    b = load_data(str(tmp_path / "xray"), 16, val_fraction=0.2, cache_dir=None)
    assert any(n.startswith("1 of 17 images carry no patient id") for n in b.notes), b.notes


def test_dicom_files_without_an_extension_are_found_by_their_content(tmp_path):
    pytest.importorskip("pydicom")
    from conftest import write_dicom
    from genaug.data.folder import write_patient_split
    from genaug.predict import list_images
    rng = np.random.default_rng(0)
    flat = tmp_path / "export"
    for cls in ("NORMAL", "PNEUMONIA"):
        for i in range(6):   # a DICOMDIR export's IM000001, an archive's SOP instance UID
            name = f"IM{i:06d}" if i % 2 else f"1.2.840.113619.2.55.3.{ord(cls[0])}.{i}"
            write_dicom(flat / cls / name, rng.integers(0, 4096, (24, 24)).astype(np.uint16), f"{cls[0]}{i // 2}")
    (flat / "NORMAL" / "README").write_text("not an image")
    made = write_patient_split(flat, tmp_path / "xray", test_fraction=0.3, seed=0)
    assert made["files_without_patient_id"] == 0
    assert made["skipped"] == [{"path": "NORMAL/README", "reason": "not an image extension (nor DICOM content)"}]
    b = load_data(str(tmp_path / "xray"), 16, val_fraction=0.2, cache_dir=None)
    assert sum(len(s) for s in b.splits.values()) == 12 and not b.skipped
    assert {p for s in b.splits.values() for p in s.patients} == {f"{c}{k}" for c in "NP" for k in range(3)}
    assert len(list_images([flat])) == 12     # predict finds them too, and not the README


def test_dicom_without_pydicom_says_what_to_install(tmp_path, monkeypatch):
    import sys
    (tmp_path / "a.dcm").write_bytes(b"\0" * 200)
    monkeypatch.setitem(sys.modules, "pydicom", None)     # as if it were not installed
    with pytest.raises(DataError, match=r"DICOM files need pydicom: pip install 'genaug\[dicom\]'"):
        decode_image(str(tmp_path / "a.dcm"), 16)


def test_a_labels_csv_cannot_reach_outside_its_folder_or_name_a_folder_path(tmp_path):
    from genaug.data.labels import write_labelled_split
    images = make_folder_dataset(tmp_path / "d", {"train": 8}) / "train"
    (tmp_path / "secret.png").write_bytes((images / "NORMAL" / "IM-0000-0001.jpeg").read_bytes())
    rows = ["file,finding"] + [f"{p.relative_to(images)},{p.parent.name}" for p in sorted(images.rglob("*.jpeg"))]
    rows[1] = rows[1].replace("/", "\\")                 # a table written on Windows
    rows[2] = f"{images / rows[2]}"                        # an absolute path inside the folder
    (tmp_path / "ok.csv").write_text("\n".join(rows + ["../../secret.png,NORMAL"]) + "\n")
    made = write_labelled_split(images, tmp_path / "ok.csv", tmp_path / "out", "file", "finding")
    assert made["images"]["train"]["NORMAL"] + made["images"]["test"]["NORMAL"] == 8       # not the ninth
    assert {"path": "../../secret.png", "reason": "listed in the labels file, outside the images folder (give a "
            "SOURCE that holds it)"} in made["skipped"]
    # no patient column: patients from the names, as for class folders (IM-0000-0001 -> IM-0000)
    assert made["files_without_patient_id"] == 0 and made["patients"]["train"] + made["patients"]["test"] == 8
    (tmp_path / "bad.csv").write_text("\n".join(rows[:2] + [rows[2].replace(",NORMAL", ",A/B")]) + "\n")
    with pytest.raises(DataError, match=r"label 'A/B' cannot name a class folder; map it with --class NAME=A/B"):
        write_labelled_split(images, tmp_path / "bad.csv", tmp_path / "out2", "file", "finding")
    assert not (tmp_path / "out2").exists()


@pytest.mark.parametrize("sep, encoding", [(",", "utf-8"), (";", "utf-8"), ("\t", "utf-8"), (";", "utf-8-sig"),
                                           (",", "utf-8-sig")])
def test_labels_files_separated_by_semicolons_or_tabs_or_with_a_byte_order_mark(tmp_path, sep, encoding):
    # a spreadsheet saved where the comma is the decimal mark writes ';', a .tsv tabs, Excel a byte-order mark
    from genaug.data.labels import read_labels
    rows = ["file", "finding", "patient"], ["a/IM-0001-0001.jpeg", "NORMAL", "p1"], ["b.jpeg", "Pneumonia, viral", "p2"]
    text = "\n".join(sep.join(f'"{c}"' if sep in c or "," in c else c for c in row) for row in rows) + "\n"
    (tmp_path / "labels.csv").write_text(text, encoding=encoding)
    assert read_labels(tmp_path / "labels.csv", "file", "finding", "patient") == [
        {"image": "a/IM-0001-0001.jpeg", "label": "NORMAL", "patient": "p1"},
        {"image": "b.jpeg", "label": "Pneumonia, viral", "patient": "p2"}]


def test_a_labels_csv_finds_files_named_in_the_other_unicode_form(tmp_path):
    # found in session 75: files that macOS named decomposed (NFD), listed composed (NFC) by a table typed or
    # exported elsewhere, print alike; every one was "not found under the images"
    from genaug.data.labels import write_labelled_split
    rng = np.random.default_rng(0)
    (tmp_path / "images" / unicodedata.normalize("NFD", "niños")).mkdir(parents=True)
    rows = ["file,finding"]
    for i in range(8):
        name = f"niños/paciente{i}_{'año' if i % 2 else 'señal'}.png"
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(
            tmp_path / "images" / unicodedata.normalize("NFD", name))
        rows.append(f"{unicodedata.normalize('NFC', name)},{i % 2}")
    rows.append(f"{unicodedata.normalize('NFC', 'niños/paciente0_señal')},0")   # the extension left out: taken once
    rows.append(f"{tmp_path / 'images' / unicodedata.normalize('NFC', 'niños/paciente2_señal.png')},0")  # absolute
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    made = write_labelled_split(tmp_path / "images", tmp_path / "labels.csv", tmp_path / "out", "file", "finding",
                                class_specs=["NORMAL=0", "PNEUMONIA=1"], test_fraction=0.25)
    assert {c: made["images"]["train"][c] + made["images"]["test"][c] for c in made["classes"]} == \
        {"NORMAL": 4, "PNEUMONIA": 4}
    assert made["skipped"] == []
    linked = sorted(p.name for p in (tmp_path / "out").rglob("*.png"))
    assert len(linked) == 8 and all(unicodedata.is_normalized("NFD", n) for n in linked)   # the files' own names


def test_a_labels_file_saved_as_utf16_is_read_and_one_in_a_windows_code_page_is_refused_in_one_line(tmp_path):
    # found in session 75: Excel saves "Unicode Text" as UTF-16 (tab-separated, with a byte-order mark) and
    # "CSV" in the Windows code page; both ended in "'utf-8' codec can't decode byte 0xff in position 0"
    from genaug.data.labels import read_labels
    text = "file\tfinding\r\nniño.png\tPNEUMONIA\r\nb.png\tNORMAL\r\n"
    for encoding in ("utf-16", "utf-16-be"):
        data = text.encode(encoding)
        (tmp_path / "labels.txt").write_bytes(data if encoding == "utf-16" else codecs.BOM_UTF16_BE + data)
        assert read_labels(tmp_path / "labels.txt", "file", "finding", None) == [
            {"image": "niño.png", "label": "PNEUMONIA", "patient": ""}, {"image": "b.png", "label": "NORMAL", "patient": ""}]
    (tmp_path / "labels.csv").write_bytes(text.replace("\t", ",").encode("cp1252"))
    with pytest.raises(DataError) as told:
        read_labels(tmp_path / "labels.csv", "file", "finding", None)
    assert str(told.value) == (f"the labels file {tmp_path / 'labels.csv'} is not UTF-8 text (byte 0xf1 on line 2), "
                               "as a spreadsheet saves CSV in a Windows code page: save it as UTF-8 (Excel: Save As, "
                               "CSV UTF-8)")
    (tmp_path / "cut.txt").write_bytes(text.encode("utf-16")[:-1])   # half a character pair at the end
    with pytest.raises(DataError, match=r"starts as UTF-16 text but breaks off at byte \d+: save it again, as UTF-8$"):
        read_labels(tmp_path / "cut.txt", "file", "finding", None)


def test_a_labels_csv_written_with_a_space_after_each_comma_is_read_by_its_column_names(tmp_path):
    # found in session 75: "file, label" made the column ' label', refused as 'label' with a "did you mean
    # ' label'?", and a quoted field after a space ('x, "Pneumonia, viral"') was split at its comma
    from genaug.data.labels import read_labels
    (tmp_path / "labels.csv").write_text('file , finding, patient\na.png, NORMAL, p1\nb.png, "Pneumonia, viral", p2\n')
    assert read_labels(tmp_path / "labels.csv", "file", "finding", "patient") == [
        {"image": "a.png", "label": "NORMAL", "patient": "p1"},
        {"image": "b.png", "label": "Pneumonia, viral", "patient": "p2"}]
    # Excel's own hint line, which some exports write first: the separator, then the header
    (tmp_path / "hinted.csv").write_text('sep=;\r\nfile;finding\r\na.png;NORMAL\r\nb.png;"Pneumonia; viral"\r\n')
    assert read_labels(tmp_path / "hinted.csv", "file", "finding", None) == [
        {"image": "a.png", "label": "NORMAL", "patient": ""}, {"image": "b.png", "label": "Pneumonia; viral", "patient": ""}]


def test_nih_style_multi_finding_labels_take_the_class_their_findings_name(tmp_path):
    from genaug.data.labels import write_labelled_split
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    findings = ["No Finding", "Pneumonia", "Effusion|Pneumonia", "Infiltration", "No Finding", "Pneumonia|Mass"]
    rows = ["Image Index,Finding Labels,Follow-up #,Patient ID"]
    for i in range(24):
        name = f"{i // 2:08d}_{i % 2:03d}.png"        # NIH: <patient>_<follow-up>.png, two images a patient
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(images / name)
        rows.append(f"{name},{findings[i % 6]},{i % 2},{i // 2}")
    rows.append("00000099_000.png,No Finding|Pneumonia,0,99")     # a contradiction: left out
    Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(images / "00000099_000.png")
    (tmp_path / "Data_Entry.csv").write_text("\n".join(rows) + "\n")
    made = write_labelled_split(images, tmp_path / "Data_Entry.csv", tmp_path / "nih", "Image Index",
                                "Finding Labels", class_specs=["NORMAL=No Finding", "PNEUMONIA=Pneumonia"],
                                test_fraction=0.25, separator="|")
    per_class = {c: made["images"]["train"][c] + made["images"]["test"][c] for c in made["classes"]}
    assert made["classes"] == ["NORMAL", "PNEUMONIA"] and per_class == {"NORMAL": 8, "PNEUMONIA": 12}
    assert made["labels"]["values_left_out"] == {"Infiltration": 4}
    assert made["skipped"] == [{"path": "00000099_000.png", "reason": "the labels file gives it two classes "
                                                                     "(NORMAL and another)"}]
    # patients from NIH's names: both images of a patient on one side
    train = {p.name[:8] for p in (tmp_path / "nih" / "train").rglob("*.png")}
    assert train.isdisjoint({p.name[:8] for p in (tmp_path / "nih" / "test").rglob("*.png")})


def test_files_listed_by_name_are_found_in_the_folders_below(tmp_path):
    # found in session 86: NIH ChestX-ray14 lists '00000001_000.png' while its files lie in images_001/images/ to
    # images_012/images/; given the folder that holds them all, every row was "a file not under" it
    from genaug.data.labels import write_labelled_split
    rng = np.random.default_rng(0)
    src = tmp_path / "nih"
    rows = ["Image Index,Finding Labels"]
    for i in range(24):
        name = f"{i // 2:08d}_{i % 2:03d}.png"
        folder = src / f"images_{1 + i // 12:03d}" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(folder / name)
        rows.append(f"{name},{['No Finding', 'Pneumonia'][(i // 2) % 2]}")
    # a copy in a hidden folder and a mask of the same name are not looked in; a name two folders hold is not guessed
    (src / ".ipynb_checkpoints").mkdir()
    shutil.copy(src / "images_001" / "images" / "00000000_000.png", src / ".ipynb_checkpoints")
    (src / "mask").mkdir()
    shutil.copy(src / "images_001" / "images" / "00000001_000.png", src / "mask")
    shutil.copy(src / "images_002" / "images" / "00000011_001.png", src / "images_001" / "00000011_001.png")
    (tmp_path / "Data_Entry.csv").write_text("\n".join(rows) + "\n")
    made = write_labelled_split(src, tmp_path / "Data_Entry.csv", tmp_path / "xray", "Image Index", "Finding Labels",
                                class_specs=["NORMAL=No Finding", "PNEUMONIA=Pneumonia"], test_fraction=0.25)
    assert sum(made["images"]["train"].values()) + sum(made["images"]["test"].values()) == 23
    assert made["skipped"] == [{"path": "00000011_001.png", "reason": "listed by its name alone, which several files "
                                                                      "under the images bear: list its path"}]
    linked = {p.name: p.read_bytes() for p in (tmp_path / "xray").rglob("*.png")}
    assert linked["00000000_000.png"] == (src / "images_001" / "images" / "00000000_000.png").read_bytes()
    assert made["patients"]["train"] + made["patients"]["test"] == 12   # from NIH's names, as before


def test_labels_read_from_the_names_by_a_pattern_lay_out_a_split(tmp_path):
    # session 86: the Shenzhen and Montgomery tuberculosis sets name each X-ray MCUCXR_0001_1.png, its finding the
    # last digit, with no table and no class folders; their lung masks lie beside them under ManualMask/
    from genaug.data.labels import write_labelled_split
    rng = np.random.default_rng(0)
    src = tmp_path / "MontgomerySet"
    (src / "CXR_png").mkdir(parents=True)
    (src / "ManualMask" / "leftMask").mkdir(parents=True)
    for i in range(20):
        name = f"MCUCXR_{i:04d}_{i % 2}.png"
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(src / "CXR_png" / name)
        Image.fromarray(np.full((20, 20), 255, np.uint8)).save(src / "ManualMask" / "leftMask" / name)
    Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(src / "CXR_png" / "figure.png")
    made = write_labelled_split(src, None, tmp_path / "tb", "", "", class_specs=["NORMAL=0", "TB=1"],
                                test_fraction=0.2, label_pattern=r"_(\d)\.png$")
    assert made["classes"] == ["NORMAL", "TB"]
    assert {c: made["images"]["train"][c] + made["images"]["test"][c] for c in made["classes"]} == {"NORMAL": 10, "TB": 10}
    assert made["labels"]["label_pattern"] == r"_(\d)\.png$" and made["labels"]["files_without_label"] == 1
    for cls, digit in (("NORMAL", "0"), ("TB", "1")):   # each image under the class its name gives, no mask
        linked = list((tmp_path / "tb").glob(f"*/{cls}/*.png"))
        assert linked and all(f.stem.endswith(f"_{digit}") and np.asarray(Image.open(f)).std() > 0 for f in linked)
    with pytest.raises(DataError, match=r"^--label-pattern 'zz\(\\d\)' finds no label in the 21 images under .*"
                                        r"\(e\.g\. CXR_png/MCUCXR_0000_0\.png\): give a pattern whose first group"):
        write_labelled_split(src, None, tmp_path / "none", "", "", label_pattern=r"zz(\d)")
    with pytest.raises(DataError, match=r"^--label-pattern '_\(\\d' is not a regular expression"):
        write_labelled_split(src, None, tmp_path / "bad", "", "", label_pattern=r"_(\d")
    from genaug.data.folder import write_patient_split   # without it, the refusal names it
    with pytest.raises(DataError, match=r"CXR_png holds images but no class folders: give their labels as a table "
                                        r"\(--labels LABELS.csv\), or, .* as a pattern \(--label-pattern, "):
        write_patient_split(src / "CXR_png", tmp_path / "plain")


def test_chexpert_style_paths_keep_their_patients_when_laid_out(tmp_path):
    from genaug.data.labels import write_labelled_split
    rng = np.random.default_rng(0)
    rows = ["Path,Sex,Pneumonia"]
    for p in range(1, 13):   # every file is named view1_frontal.jpg: the patient is in the folders only
        for study in (1, 2):
            rel = f"CheXpert-v1.0-small/train/patient{p:05d}/study{study}/view1_frontal.jpg"
            (tmp_path / "src" / rel).parent.mkdir(parents=True)
            Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(tmp_path / "src" / rel)
            rows.append(f"{rel},Female,{['0.0', '1.0', '-1.0', ''][p % 4] if study == 1 else ['0.0', '1.0'][p % 2]}")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    made = write_labelled_split(tmp_path / "src", tmp_path / "train.csv", tmp_path / "xray", "Path", "Pneumonia",
                                class_specs=["NORMAL=0.0", "PNEUMONIA=1.0"], test_fraction=0.25)
    assert made["labels"]["values_left_out"] == {"-1.0": 3}             # uncertain; blank rows are not labels
    assert made["files_without_patient_id"] == 0
    assert made["patients"]["train"] + made["patients"]["test"] == 12     # not one patient 'view1_frontal'
    b = load_data(str(tmp_path / "xray"), 16, val_fraction=0.2, cache_dir=None)
    assert {p for s in b.splits.values() for p in s.patients} == {f"patient{p:05d}" for p in range(1, 13)}


def test_a_label_written_as_a_float_takes_the_class_its_number_names(tmp_path):
    # found in session 75: pandas writes an integer column that holds a blank as floats (0.0, 1.0), and
    # --class PNEUMONIA=1 then named no row: "12 have labels no --class names", without the values it met
    from genaug.data.labels import write_labelled_split
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    rows = ["file,label"]
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(tmp_path / "images" / f"p{i}.png")
        rows.append(f"p{i}.png,{['0.0', '1.0', '1', '-1.0'][i % 4]}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    made = write_labelled_split(tmp_path / "images", tmp_path / "labels.csv", tmp_path / "out", "file", "label",
                                class_specs=["NORMAL=0", "PNEUMONIA=1"], test_fraction=0.25)
    assert {c: made["images"]["train"][c] + made["images"]["test"][c] for c in made["classes"]} == \
        {"NORMAL": 3, "PNEUMONIA": 6}
    assert made["labels"]["values_left_out"] == {"-1.0": 3}
    # where no row's label is named, the refusal says which values the rows hold
    with pytest.raises(DataError) as told:
        write_labelled_split(tmp_path / "images", tmp_path / "labels.csv", tmp_path / "out2", "file", "label",
                             class_specs=["NORMAL=no", "PNEUMONIA=yes"])
    assert str(told.value) == (f"no image to lay out from {tmp_path / 'labels.csv'} (12 rows: 12 have labels no --class "
                               "names; the labels held: '0.0' (3 rows), '1.0' (3 rows), '1' (3 rows), '-1.0' (3 rows))")
    assert not (tmp_path / "out2").exists()


def test_double_underscores_name_a_patient_only_in_a_folder_laid_out_from_a_patient_column(tmp_path):
    root = make_folder_dataset(tmp_path / "d", {"train": 8, "test": 4})
    renamed = sorted((root / "train" / "NORMAL").glob("*.jpeg"))
    for i, f in enumerate(renamed):
        f.rename(f.with_name(f"chest__{i}.jpeg"))          # someone's own naming: not '<patient>__'
    b = load_data(str(root), 16, val_fraction=0.2, cache_dir=None)
    mine = [p for s in b.splits.values() for p, path in zip(s.patients, s.paths) if "chest__" in path]
    assert len(mine) == len(renamed) > 1 and len(set(mine)) == len(mine)   # each its own, not one 'chest'


def test_clahe_spreads_a_dim_low_contrast_image_and_leaves_its_input_alone():
    rng = np.random.default_rng(0)
    dim = (100 + rng.integers(0, 20, size=(3, 32, 32))).astype(np.uint8)   # grey levels 100-119 only
    dim.flags.writeable = False   # as a memory-mapped cache is
    out = equalize_images(dim, "clahe")
    assert out.dtype == np.uint8 and out.shape == dim.shape
    assert int(out.max()) - int(out.min()) > 4 * (int(dim.max()) - int(dim.min()))   # a far wider spread
    assert out.mean() > dim.mean()   # and brighter: CLAHE aims at the middle of the range
    assert equalize_images(dim, "none") is dim
    with pytest.raises(ValueError, match="unknown equalization 'hist'"):
        equalize_images(dim, "hist")


def test_standardize_moves_each_image_to_one_mean_grey_and_spread():
    # hand-computed: a checkerboard of 10 and 30 has mean 20 and standard deviation 10, so its squares go to
    # 128 -/+ 48; the same board ten times as bright and twice the contrast gives the same picture
    board = np.indices((4, 4)).sum(axis=0) % 2
    dim, bright = (10 + 20 * board).astype(np.uint8), (100 + 40 * board).astype(np.uint8)
    flat = np.full((4, 4), 7, np.uint8)
    images = np.stack([dim, bright, flat])
    out = equalize_images(images, "standardize")
    assert (out[0] == np.where(board, 176, 80)).all() and (out[1] == out[0]).all()
    assert (out[2] == 128).all() and (images[0] == dim).all()   # a flat image stays flat; the input is untouched


def test_an_equalized_bundle_changes_every_split_and_nothing_else():
    bundle = demo_dataset(size=32, n_train=40)
    eq = equalized_bundle(bundle, "clahe")
    for name, s in bundle.splits.items():
        e = eq.splits[name]
        assert e.images.shape == s.images.shape and not np.array_equal(e.images, s.images), name
        assert e.paths == s.paths and e.patients == s.patients and np.array_equal(e.labels, s.labels)
    assert equalized_bundle(bundle, "none") is bundle


def test_genaug_synthetic_images_are_never_split_or_read_as_validation_or_test_images(tmp_path):
    """Found in session 55: `genaug data split RUN/synthetic --to D` wrote D, and a benchmark on D tested on
    synthetic X-rays, as the reports genaug grew from did. Synthetic images reach training through --gan-run."""
    from genaug.data import check_data_spec
    from genaug.data.folder import write_patient_split
    run = tmp_path / "out" / "gan-sample" / "20261204-223028"
    for c in ("NORMAL", "PNEUMONIA"):
        (run / "synthetic" / c).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (8, 8), 40 * i).save(run / "synthetic" / c / f"synthetic_{c}_0_{i:05d}.png")
    (run / "manifest.json").write_text(json.dumps({"command": "gan-sample"}))
    (run / "config.yaml").write_text("n: 6\n")
    with pytest.raises(DataError, match=f"lies in the genaug gan sample run {run}: its images are genaug's own "
                                        r"\(synthetic X-rays\), not X-rays to split into train and test; synthetic "
                                        "images reach training through genaug benchmark --gan-run"):
        write_patient_split(run / "synthetic", tmp_path / "split", 0.3)
    # copied out of the run, they are known by their names
    shutil.copytree(run / "synthetic", tmp_path / "copied")
    with pytest.raises(DataError, match=r"^12 images in .*copied are named as genaug's synthetic X-rays \(e.g. "
                                        r"NORMAL/synthetic_NORMAL_0_00000.png\): split real X-rays only"):
        write_patient_split(tmp_path / "copied", tmp_path / "split", 0.3)
    assert not (tmp_path / "split").exists()
    # laid out by hand: in train they are the user's own augmentation; in val or test, refused
    data = make_folder_dataset(tmp_path / "data", {"train": 8, "test": 4}, with_val=True)
    for split in ("train", "val", "test"):
        shutil.copy(run / "synthetic" / "NORMAL" / "synthetic_NORMAL_0_00001.png", data / split / "NORMAL")
        if split == "train":
            check_data_spec(str(data))
        else:
            with pytest.raises(DataError, match=f"^the {split} split of {data} holds 1 image named as genaug's "
                                                f"synthetic X-rays \\(e.g. {split}/NORMAL/synthetic_NORMAL_0_00001.png\\): "
                                                "validation and test images must be real X-rays; move them out"):
                check_data_spec(str(data))
            (data / split / "NORMAL" / "synthetic_NORMAL_0_00001.png").unlink()


def _link_test_to_train(root: Path) -> str:
    shutil.rmtree(root / "test")
    (root / "test").symlink_to("train")
    return r"the test folder .*/test and the train folder .*/train are one folder \(.*/train\)"


def _link_test_class_to_train(root: Path) -> str:
    shutil.rmtree(root / "test" / "NORMAL")
    (root / "test" / "NORMAL").symlink_to("../train/NORMAL")
    return r"the class folder .*/test/NORMAL of the test split is .*/train/NORMAL, in the train folder .*/train"


def _val_inside_train(root: Path) -> str:
    shutil.copytree(root / "test", root / "train" / "held")
    (root / "val").symlink_to("train/held")
    return r"the val folder .*/val lies inside the train folder .*/train \(.*/train/held in .*/train\)"


def _link_class_to_class(root: Path) -> str:
    shutil.rmtree(root / "train" / "PNEUMONIA")
    (root / "train" / "PNEUMONIA").symlink_to("NORMAL")
    return (r"the class folders .*/train/NORMAL and .*/train/PNEUMONIA are one folder, or one inside the other "
            r"\(.*/train/NORMAL, .*/train/NORMAL\): their images would carry both labels; give each class a folder "
            "of its own")


@pytest.mark.parametrize("lay_out", [_link_test_to_train, _link_test_class_to_train, _val_inside_train,
                                     _link_class_to_class])
def test_a_folder_that_is_another_by_a_link_is_refused(tmp_path, lay_out):
    """Found in session 73: test/ as a link to train/ (or test/NORMAL to train/NORMAL) trained on the test
    images. Provenance compares paths (train/x is not test/x), so only the duplicate note told of it; and a
    class folder linked to another class's gave each image both labels, unremarked."""
    from genaug.errors import DataError
    root = make_folder_dataset(tmp_path / "xrays", {"train": 8, "test": 4})
    said = lay_out(root)
    if "both labels" not in said:
        said += ": its images would be trained on and tested on; give each split a folder of its own"
    with pytest.raises(DataError, match=said):
        load_data(str(root), 16)
