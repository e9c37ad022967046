"""``genaug predict``: class probabilities for new images from a classifier the benchmark saved.

The checkpoint (``models/<cell>.pt``, written with ``--save-models``) carries the model's name,
classes, input size and the decision threshold chosen on validation, so new images get the
preprocessing the model was trained with: grey, resized to its size, equalized if it was
(``--equalize``), scaled to [0, 1]. An encoded
cell's checkpoint also holds the autoencoder that made its latents: images go through its encoder,
and the latents are rounded to float16 as ``genaug encode`` stored them. A cell that averaged test-time
augmented copies (``--tta``) is predicted with the same copies, since its threshold was chosen on them.
"""
from __future__ import annotations

import csv
import io
import os
import unicodedata
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genaug.config import EQUALIZERS, RESIZE_MODES
from genaug.data.decode import (IMAGE_EXTENSIONS, UnreadableImage, decode_image, how_names_differ, is_image_file,
                                 safe_name)
from genaug.data.folder import MASKS_NOT_READ, genaug_run_around, is_mask_folder
from genaug.data.equalize import equalize_images
from genaug.data.traits import labelled_tells_note, sampled_headers, unlike_training_note
from genaug.errors import CheckpointError, ConfigError, DataError
from genaug.inventory import counted
from genaug.models import ConvAutoencoder, EncodedClassifier, build_classifier
from genaug.runs import checkpoint_in_folder, enclosing_run, load_checkpoint, read_manifest, read_run_config
from genaug.train import predict_probs

CLASSIFIER_KEYS = ("kind", "model_name", "model", "classes", "image_size", "in_channels")


def classifier_file(path: str | Path) -> Path:
    """The saved classifier ``path`` names: the file itself, or the one models/<cell>.pt of a benchmark run
    given whole; a run that kept none, or several, is refused, naming what to give."""
    if no_models := saved_no_models(Path(path)):
        raise CheckpointError(f"classifier checkpoint {path} {no_models}")
    if Path(path).is_dir():   # a benchmark run, most likely: its saved classifiers are models/<cell>.pt
        return checkpoint_in_folder(Path(path), "models/*.pt", "classifier checkpoint", "genaug benchmark --save-models")
    return Path(path)


def load_classifier(path: str | Path):
    path = classifier_file(path)
    ckpt = load_checkpoint(path, CLASSIFIER_KEYS, kind="classifier checkpoint")
    if ckpt["kind"] != "classifier":
        raise CheckpointError(f"{path} is a {ckpt['kind']} checkpoint, not a classifier (use models/<cell>.pt "
                              "from genaug benchmark --save-models)")
    if ckpt.get("equalize", "none") not in EQUALIZERS:   # a newer genaug's, or an edited file
        raise CheckpointError(f"{path} asks for equalization {ckpt['equalize']!r}, which this genaug does not know "
                              f"({', '.join(EQUALIZERS)}); predict with the genaug that saved it")
    if input_resize(ckpt) not in RESIZE_MODES:
        raise CheckpointError(f"{path} asks for resize {ckpt['resize']!r}, which this genaug does not know "
                              f"({', '.join(RESIZE_MODES)}); predict with the genaug that saved it")
    latent = ckpt["in_channels"] != 1
    if latent and not isinstance(ckpt.get("autoencoder"), dict):
        raise CheckpointError(f"{path} takes {ckpt['in_channels']}-channel autoencoder latents and holds no "
                              "autoencoder to make them from images")
    model = build_classifier(ckpt["model_name"], len(ckpt["classes"]), ckpt["in_channels"], latent=latent,
                             image_size=ckpt["image_size"])
    try:
        model.load_state_dict(ckpt["model"])
        if latent:
            ae = ckpt["autoencoder"]
            encoder = ConvAutoencoder(ae["image_size"], ae["latent_channels"])
            encoder.load_state_dict(ae["model"])
            model = EncodedClassifier(encoder, model)
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path} does not match a {ckpt['model_name']} ({str(exc)[:100]})") from None
    return model.eval(), ckpt


def saved_no_models(path: Path) -> str:
    """Where ``path`` is a benchmark run made without --save-models, or a file in one (its cells/*.json,
    report.md), what to do about it; else ''. Found in session 55: such a run given to `genaug predict`
    was told to give "the .pt file that genaug benchmark --save-models wrote", and a cell's .json was
    "not a PyTorch checkpoint", neither saying that no model of the run was kept."""
    run = path if path.is_dir() else enclosing_run(path) if path.suffix != ".pt" else None
    try:
        made_by = read_manifest(run)["command"] if run else None
        benchmark = read_run_config(run).get("benchmark") if made_by == "benchmark" else None
    except CheckpointError:
        return ""
    if not isinstance(benchmark, dict) or benchmark.get("save_models") or any(run.glob("models/*.pt")):
        return ""
    return (("is a benchmark run" if run == path else f"lies in the benchmark run {run}, one") + " made without "
            "--save-models, which kept no model: start a new benchmark with --save-models (a resumed run saves "
            "the models only of the cells it has yet to train)")


def input_size(ckpt: dict) -> int:
    """The side, in pixels, that images are resized to for this classifier."""
    return ckpt["autoencoder"]["image_size"] if "autoencoder" in ckpt else ckpt["image_size"]


def input_resize(ckpt: dict) -> str:
    """How this classifier's images were made square (config.RESIZE_MODES); models saved before session 81
    record none, and were all trained on squashed images."""
    return ckpt.get("resize", "squash")


def _hidden_below(path: Path, folder: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def files_below(folder: Path) -> list[Path]:
    """The files under ``folder``, through links to folders too (each real folder once, so a link that leads
    back up ends there), hidden folders left out. ``rglob`` did not follow links: images in a folder linked
    into the one given were passed over without a word (session 60)."""
    seen, files = set(), []
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:   # reached again through a link: go no deeper
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [Path(root, n) for n in names]
    return files


def runs_below(folder: Path, files: list[Path] | None = None) -> list[Path]:
    """The genaug run folders under ``folder`` (``files``: its `files_below`, where known), not ``folder``
    itself. Their images are genaug's own (synthetic X-rays, Grad-CAM overlays, plots), not X-rays to
    classify: `genaug predict .` in a project folder predicted a benchmark run's plots under outputs/
    (session 53), as it would a GAN run's images."""
    return sorted(m.parent for m in (files_below(folder) if files is None else files)
                  if m.name == "manifest.json" and m.parent != folder and (m.parent / "config.yaml").is_file())


def list_images(targets) -> list[Path]:
    """Image files under ``targets``: files as given, folders searched recursively, each file once,
    in the order given (a shell glob such as ``xrays/*.jpeg`` arrives as many targets). Hidden files and
    folders inside a folder are passed over: Jupyter's .ipynb_checkpoints/ holds copies of the images.
    So are genaug's runs inside a folder (`runs_below`); a run's folder named itself gives its synthetic
    images (`_xrays_of_run`)."""
    return _images_and_runs_passed_over(targets)[0]


def _xrays_of_run(folder: Path, target) -> Path:
    """Where to look for X-rays in ``folder``: a genaug run named itself keeps them in synthetic/ (a GAN
    run's, a `gan sample` run's); the rest of a run is plots and sample grids, which `genaug predict RUN`
    predicted as X-rays, and a run with no synthetic/ holds no X-ray at all (session 58)."""
    if not ((folder / "config.yaml").is_file() and (folder / "manifest.json").is_file()):
        return folder
    if (folder / "synthetic").is_dir():
        return folder / "synthetic"
    around = genaug_run_around(folder)
    what = f"a genaug {around[1]} run" if around else "a genaug run"
    raise DataError(f"{target} is {what}: its images are plots and grids, not X-rays; name a folder of X-rays "
                    "(a GAN run's synthetic images are in its synthetic/ folder)")


def _mask_folder_below(path: Path, folder: Path) -> Path | None:
    """The folder between ``folder`` and the file ``path`` that is named as holding masks (`is_mask_folder`), or
    None: `genaug threshold` on a class folder of the COVID-19 Radiography Database read its masks/ as X-rays of
    the class (session 86). A mask folder named itself is read."""
    parts = path.relative_to(folder).parts[:-1]
    return next((folder.joinpath(*parts[:i + 1]) for i, part in enumerate(parts) if is_mask_folder(part)), None)


def _images_and_runs_passed_over(targets) -> tuple[list[Path], list[Path], list[Path]]:
    """The image files under ``targets`` (`list_images`), the genaug runs and the folders of masks passed over."""
    files: list[Path] = []
    passed_over: list[Path] = []
    masks: set[Path] = set()
    for target in [targets] if isinstance(targets, (str, os.PathLike)) else targets:
        p = Path(target)
        if p.is_file():
            files.append(p)
        elif not p.is_dir():
            raise DataError(f"{target} is neither an image file nor a folder")
        else:
            p = _xrays_of_run(p, target)
            below = files_below(p)
            runs = runs_below(p, below)
            passed_over += runs
            # a broken or looping link is kept, to be skipped with its reason (image_chunks), not passed over
            found = sorted(q for q in below if (q.is_file() or q.is_symlink()) and is_image_file(q)
                           and not _hidden_below(q, p) and not any(r in q.parents for r in runs))
            below_masks = {q: m for q in found if (m := _mask_folder_below(q, p))}
            here = set(below_masks.values())
            masks |= here
            found = [q for q in found if q not in below_masks]
            if not found and here:
                raise DataError(f"no images in {target} outside its folders named as masks (e.g. {min(here)}), "
                                "which are not read as X-rays: name such a folder itself to read its images")
            if not found and runs:
                raise DataError(f"no images in {target} outside the genaug runs in it ({len(runs)}, e.g. {runs[0]}), "
                                "whose images genaug made: name a run's folder to read its images")
            if not found:
                raise DataError(f"no images in {target} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}, "
                                "and DICOM files by their content)")
            files.extend(found)
    unique, seen = [], set()
    for f in files:   # a file named and also inside a named folder is predicted once
        if (real := os.path.realpath(f)) not in seen:   # (Path.resolve raises on a looping link)
            seen.add(real)
            unique.append(f)
    if not unique:
        raise DataError("no image given: name image files or folders")
    return unique, passed_over, sorted(masks)


def image_chunks(targets, size: int, skipped: list, chunk: int = 256, desc: str | None = None,
                 resize: str = "squash"):
    """The readable images under ``targets`` (one path or several), decoded ``chunk`` at a time as (names,
    (n, size, size) uint8, made square by ``resize``): a folder of a hundred thousand X-rays is never all in
    memory, and ``desc`` shows a progress bar over the files (on a terminal). Files that cannot be read, and
    genaug runs passed over, are appended to ``skipped`` with reasons as they are met."""
    files, runs, masks = _images_and_runs_passed_over(targets)
    skipped += [(safe_name(os.fspath(r)), "a genaug run: its images are genaug's own (synthetic X-rays, overlays, "
                 "plots), not X-rays to classify; name its folder to read them") for r in runs]
    skipped += [(safe_name(os.fspath(m)), f"{MASKS_NOT_READ}; name the folder to read them") for m in masks]
    names, arrays = [], []
    with tqdm(total=len(files), desc=desc, unit="img", leave=False, disable=None if desc else True) as bar:
        for f in files:
            try:
                if not f.is_file():
                    raise UnreadableImage("broken or looping symbolic link")   # as genaug's data folders say
                arrays.append(decode_image(os.fspath(f), size, resize))
                names.append(safe_name(os.fspath(f)))
            except UnreadableImage as exc:
                skipped.append((safe_name(os.fspath(f)), str(exc)))
            bar.update()
            if len(arrays) == chunk:
                yield names, np.stack(arrays)
                names, arrays = [], []
    if arrays:
        yield names, np.stack(arrays)


def nothing_read(skipped: list[tuple[str, str]]) -> DataError:
    first, why = skipped[0]
    return DataError(f"no image given could be read ({first}: {why}"
                     + (f"; {len(skipped) - 1} more skipped" if len(skipped) > 1 else "") + ")")


def read_images(targets, size: int, resize: str = "squash") -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    """The readable images under ``targets`` (one path or several) as (names, (N, size, size) uint8,
    skipped with reasons), all at once."""
    skipped: list[tuple[str, str]] = []
    parts = list(image_chunks(targets, size, skipped, resize=resize))
    if not parts:
        raise nothing_read(skipped)
    return [n for names, _ in parts for n in names], np.concatenate([a for _, a in parts]), skipped


def decision_threshold(ckpt: dict) -> float | None:
    """For two classes, the threshold on the second's probability that validation chose; None otherwise
    (more classes, or a model saved without one): the likeliest class is then given."""
    thr = ckpt.get("threshold")
    return thr if len(ckpt["classes"]) == 2 and thr is not None else None


def decided_classes(probs: torch.Tensor, ckpt: dict) -> torch.Tensor:
    """The class index genaug predict gives each image: for two classes, the second where its probability
    reaches the threshold validation chose (as the benchmark's accuracy counts it), else the likeliest."""
    thr = decision_threshold(ckpt)
    return probs.argmax(1) if thr is None else (probs[:, 1] >= thr).long()


def checkpoint_probs(model, ckpt: dict, images: np.ndarray, device="cpu") -> torch.Tensor:
    """The model's probabilities for decoded images (N, H, W) as its benchmark cell computed them: with the
    test-time copies its threshold was chosen on, where it was saved with some (``ckpt["tta"]``). An
    encoded cell's copies are of latents, as it trained: the images are encoded first."""
    tta = ckpt.get("tta") or {}
    model.to(device)   # load_classifier builds it on the CPU; on --device cuda the batches would meet it there
    data = torch.from_numpy(images).unsqueeze(1)
    if tta and isinstance(model, EncodedClassifier):
        from genaug.encode import encode_split
        data = torch.from_numpy(encode_split(model.encoder, images, device)[0])   # float16, as genaug encode stores
        model = model.classifier
    return predict_probs(model, data, device=device, **tta)


def images_probs(model, ckpt: dict, targets, skipped: list, device="cpu", chunk: int = 256,
                 desc: str | None = None) -> tuple[list[str], torch.Tensor]:
    """Names and probabilities of the readable images under ``targets``, preprocessed as the checkpoint's cell
    was (size, square, equalization, test-time copies), ``chunk`` images at a time; unreadable files go to
    ``skipped``."""
    names, parts = [], []
    for chunk_names, images in image_chunks(targets, input_size(ckpt), skipped, chunk, desc=desc,
                                            resize=input_resize(ckpt)):
        parts.append(checkpoint_probs(model, ckpt, equalize_images(images, ckpt.get("equalize", "none")), device))
        names += chunk_names
    return names, (torch.cat(parts) if parts else torch.empty(0, len(ckpt["classes"])))


def files_note(ckpt: dict, targets) -> str | None:
    """A note where the image files under ``targets`` differ from those the checkpoint's model learnt from
    (format, pixel format, JPEG quality, size; `data.traits.unlike_training`), or None. Checkpoints saved
    before session 82, or trained on data that is no folder of files, record nothing to compare."""
    trained = ckpt.get("training_files")
    if not isinstance(trained, dict) or not trained:
        return None
    return unlike_training_note(trained, sampled_headers([str(f) for f in list_images(targets)])[1])


def predict_images(checkpoint: str | Path, targets, device="cpu", chunk: int = 256,
                   notes: list[str] | None = None) -> tuple[str, list[tuple[str, str]]]:
    """CSV text (file, prediction, one probability column per class and, for two classes, the threshold
    on the second that decided the prediction) and the files skipped with reasons; ``notes`` gains what
    a user should know beside them (`files_note`)."""
    model, ckpt = load_classifier(checkpoint)
    classes = ckpt["classes"]
    skipped: list[tuple[str, str]] = []
    names, probs = images_probs(model, ckpt, targets, skipped, device, chunk, desc="predict")
    if not names:
        raise nothing_read(skipped)
    if notes is not None and (note := files_note(ckpt, targets)):
        notes.append(note)
    thr = decision_threshold(ckpt)
    pred = decided_classes(probs, ckpt)
    buf = io.StringIO()
    w = csv.writer(buf)
    # the cut-off is written beside the probabilities: p_PNEUMONIA 0.55 predicted NORMAL is right
    # when validation put the threshold at 0.6, and the file should say so without the checkpoint
    w.writerow(["file", "prediction"] + [f"p_{c}" for c in classes] + ([f"threshold_{classes[1]}"] if thr is not None else []))
    for n, k, p in zip(names, pred.tolist(), probs.tolist()):
        w.writerow([n, classes[k]] + [f"{v:.6f}" for v in p] + ([f"{thr:.6f}"] if thr is not None else []))
    return buf.getvalue(), skipped


def labelled_class_folders(folder: str | Path, classes: list[str]) -> list[Path]:
    """``folder``'s subfolder for each of the checkpoint's classes, in its order (``NORMAL/``, ``PNEUMONIA/``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder: give a folder with one subfolder of labelled images per class "
                        f"({', '.join(c + '/' for c in classes)})")
    missing = [c for c in classes if not (folder / c).is_dir()]
    real = folder.resolve()
    if missing and real.name in classes and all((real.parent / c).is_dir() for c in classes):
        # one class's folder given (SITE/NORMAL): every image in it is of that class, so no threshold follows
        raise DataError(f"{folder} is the {real.name} folder of {real.parent}: give {real.parent}, which holds "
                        f"{' and '.join(c + '/' for c in classes)}")
    for c in missing:
        for d in sorted(folder.iterdir()):
            if d.is_dir() and (how := how_names_differ(d.name, c)):
                fix = (f"in the model's spelling (convmv -f utf8 -t utf8 "
                       f"--{'nfc' if c == unicodedata.normalize('NFC', c) else 'nfd'} --notest {d})"
                       if how != "differ only in case" else c)
                raise DataError(f"{folder} has no {c}/ subfolder: {d} and the model's class {c} {how}: rename the "
                                f"folder {fix}")
    if missing:
        # a dataset's root given (train/ and test/ inside, each with the class folders): name those
        inner = sorted(d.name for d in folder.iterdir() if d.is_dir() and all((d / c).is_dir() for c in classes))
        raise DataError(f"{folder} has no {' or '.join(c + '/' for c in missing)} subfolder: "
                        + (f"give one of {', '.join(str(folder / d) for d in inner)}, which have them" if inner else
                           f"put each class's labelled images in {' and '.join(str(folder / c) + '/' for c in classes)}"))
    return [folder / c for c in classes]


def left_out_of_classes(folder: str | Path, classes: list[str]) -> list[str]:
    """What in the labelled ``folder`` holds images but is no class folder of the model, as "OTHER/ (6 images)":
    such images are not read. A third class's folder (COVID/) or a misnamed one (Pneumonia_viral/) was passed
    over without a word (session 69), leaving the threshold chosen on fewer images than the user labelled."""
    folder = Path(folder)
    left = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in classes:
            continue
        try:
            n = len(list_images([entry])) if entry.is_dir() else int(is_image_file(entry))
        except DataError:   # a folder without images: nothing of the user's left unread
            n = 0
        if n and entry.is_dir():
            left.append(f"{entry.name}/ ({counted(n, 'image')})")
        elif n:
            left.append(entry.name)
    return left


def site_threshold(checkpoint: str | Path, folder: str | Path, device="cpu") -> dict:
    """The decision threshold that maximises Youden's J on labelled images from where the model is to be
    used, placed midway in the gap below the lowest score it calls positive (`choose_threshold`'s
    ``midpoint``), with accuracy, sensitivity and specificity there at it and at the checkpoint's own threshold.

    Why: a cell's threshold is chosen on its validation split, carved from the training images by
    patient; on images from elsewhere the model's probabilities may mean something else. On the Kermany
    test split the validation threshold loses accuracy that a threshold from a few labelled images of
    that split recovers (bench/site_threshold.py, docs/STATUS.md session 65)."""
    from genaug.metrics import choose_threshold, classification_metrics

    model, ckpt = load_classifier(checkpoint)
    classes = ckpt["classes"]
    if len(classes) != 2:
        raise CheckpointError(f"{classifier_file(checkpoint)} has {len(classes)} classes ({', '.join(classes)}); a "
                              "decision threshold applies to a two-class model only")
    skipped: list[tuple[str, str]] = []
    probs, labels, counts = [], [], {}
    subfolders = labelled_class_folders(folder, classes)
    left_out = left_out_of_classes(folder, classes)
    for k, sub in enumerate(subfolders):
        names, p = images_probs(model, ckpt, [sub], skipped, device, desc=f"threshold {classes[k]}")
        if not names:
            raise DataError(f"no {classes[k]} image in {sub} could be read"
                            + (f" ({skipped[-1][0]}: {skipped[-1][1]})" if skipped else ""))
        probs.append(p)
        labels.append(torch.full((len(names),), k, dtype=torch.long))
        counts[classes[k]] = len(names)
    y, probs = torch.cat(labels), torch.cat(probs)
    files = [(str(f), k) for k, sub in enumerate(subfolders) for f in list_images([sub])]
    picked, headers = sampled_headers([f for f, _ in files])
    note = labelled_tells_note(headers, [files[i][1] for i in picked], classes)
    previous = decision_threshold(ckpt)
    chosen = choose_threshold(y, probs, midpoint=True)
    at_previous, at_chosen = (classification_metrics(y, probs, classes, t)
                              for t in (0.5 if previous is None else previous, chosen))
    figures = lambda m: {k: m[k] for k in ("accuracy", "sensitivity", "specificity")}
    return {"threshold": chosen, "previous": previous, "counts": counts, "skipped": skipped, "left_out": left_out,
            "at_previous": figures(at_previous), "at_chosen": figures(at_chosen), "roc_auc": at_chosen["roc_auc"],
            "note": note}


def write_site_checkpoint(checkpoint: str | Path, out: str | Path, chosen: dict, folder: str | Path) -> None:
    """A copy of the classifier checkpoint with ``chosen["threshold"]`` in place of its own, and where that
    threshold came from; the checkpoint given is left as it was."""
    from genaug.runs import atomic_torch_save

    ckpt = load_checkpoint(classifier_file(checkpoint), CLASSIFIER_KEYS, kind="classifier checkpoint")
    ckpt["threshold"] = float(chosen["threshold"])
    ckpt["threshold_origin"] = {"rule": "Youden's J, midway to the next lower score",
                                "chosen_on": os.fspath(Path(folder).resolve()),
                                "images": dict(chosen["counts"]), "replaced": chosen["previous"],
                                "from_checkpoint": os.fspath(Path(classifier_file(checkpoint)).resolve())}
    atomic_torch_save(ckpt, Path(out))


def check_threshold_out(out: str | Path) -> Path:
    """``genaug threshold --out``, checked before any image is read: a new .pt file, since the checkpoint it
    writes is a model file that nothing should silently replace (least of all the checkpoint it copies)."""
    from genaug.data.folder import file_in_the_way

    out = Path(out)
    if out.suffix != ".pt":
        raise ConfigError(f"--out {out}: give a file name ending in .pt (the checkpoint to write)")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name in it")
    if out.exists():
        raise ConfigError(f"--out {out} exists; give a new file name (genaug threshold replaces no file)")
    if blocker := file_in_the_way(out.parent):
        raise ConfigError(f"--out {out}: {blocker} is a file, not a folder; give a file name in a folder")
    return out
