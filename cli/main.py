"""The ``genaug`` command: parses options and calls the library; all work lives in ``genaug``."""
from __future__ import annotations

import codecs
import json
import logging
import shlex
import signal
import sys
import time
from typing import List, Optional

import typer
from typer.core import TyperGroup

from genaug.errors import GenaugError, is_disk_full, is_out_of_memory
from genaug.config import MAX_BOOTSTRAP, home_expanded
from genaug.inventory import counted
from genaug_cli.common import build_config

# The order a user runs them in: `data` to look, `gan` and `encode` to make inputs, `benchmark` to
# answer, the result commands after; Typer would list the `data` and `gan` groups after all commands.
COMMAND_ORDER = ("data", "gan", "encode", "benchmark", "report", "compare", "pool", "archive", "threshold", "predict",
                 "explain", "runs")


def usage_hint(message: str, ctx: typer.Context) -> str | None:
    """What a bare word given where an option was meant should have been: `genaug data info xray` is
    told "give it as --data xray", where click said only "Got unexpected extra argument(s) (xray)".
    None where no option of the command fits it."""
    import re
    from pathlib import Path

    m = re.match(r"Got unexpected extra argument\S* \((.+)\)$|No such command '(.+)'\.$", message)
    if m is None:
        return None
    given = (m.group(1) or m.group(2)).split(" ")[0]
    options = {opt for param in ctx.command.params for opt in getattr(param, "opts", ())}
    path = Path(given)
    looks_like_data = path.is_dir() or path.suffix == ".npz" or given == "demo" or given.startswith("medmnist:")
    if "--resume" in options and (path / "config.yaml").is_file():   # a run directory
        return f"give it as --resume {given}"
    if "--checkpoint" in options and path.suffix == ".pt":
        return f"give it as --checkpoint {given}"
    if "--profile" in options and path.suffix in (".yaml", ".yml"):
        return f"give it as --profile {given}"
    if "--data" in options and looks_like_data:
        return f"give it as --data {given}"
    if looks_like_data and "info" in getattr(ctx.command, "commands", {}):   # `genaug data xray`
        return f"to look at it: {ctx.command_path} info --data {given}"
    return None


class HintingContext(typer.Context):
    def fail(self, message: str):
        hint = usage_hint(message, self)
        super().fail(f"{message.rstrip('.')}: {hint}" if hint else message)


class PipelineOrderGroup(TyperGroup):
    context_class = HintingContext

    def list_commands(self, ctx) -> list[str]:
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda n: rank.get(n, len(rank)))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None and not isinstance(command, TyperGroup):
            command.context_class = HintingContext   # so that its usage errors get usage_hint's hint too
        return command

    def parse_args(self, ctx, args):
        refuse_repeated_or_empty_words(self, args)   # this group's own options (those of `genaug gan`)
        return super().parse_args(ctx, home_expanded_options(self, args))

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and not isinstance(command, TyperGroup):   # a group checks its own
            refuse_repeated_or_empty_words(command, rest)
            rest = home_expanded_options(command, rest)
        return name, command, rest


# Options whose empty value read as "none given" and did something else (found in session 71): `--resume
# "$RUN"` with RUN unset started a new run, `--out ''` wrote into the current folder, `--gan-run ''` trained
# a GAN of its own, `--shard ''` trained every cell. What each takes, for the error.
NOT_EMPTY = {"out": "a folder or file", "resume": "the run folder to resume", "gan_run": "a genaug gan run folder",
             "encode_run": "a genaug encode run folder", "shard": "I/N", "checkpoint": "a checkpoint or run folder",
             "real_from": "a benchmark run folder", "redo": "a pool run folder", "to": "a new folder",
             "labels": "a CSV file", "image": "an image file or folder", "cache_dir": "a folder",
             "weights_dir": "a folder", "classes": "two or more class names, comma-separated",
             "patient_pattern": "a regular expression", "label_pattern": "a regular expression"}


def _options_by_name(command) -> dict:
    """Each of ``command``'s options by every name it is given by (--cpu-amp and --no-cpu-amp). By what they
    are, not by isinstance: Typer brings its own copy of click, whose classes are not click's."""
    return {opt: p for p in command.params if p.param_type_name == "option" for opt in (*p.opts, *p.secondary_opts)}


# Options that take a path; a ~ at the start of their value is the home folder (`home_expanded_options`)
PATH_OPTIONS = {"out", "resume", "gan_run", "encode_run", "checkpoint", "real_from", "redo", "to", "labels", "image",
                "cache_dir", "weights_dir", "data", "profile"}


def home_expanded_options(command, args: list[str]) -> list[str]:
    """``args`` with a leading ~ in a path option's value made the home folder. A shell does that only at the
    start of a word: `--to=~/xray` laid a split out in ./~/xray, and a quoted "~/xray" was not found (found in
    session 75). Read up to a group's subcommand, as `refuse_repeated_or_empty_words` reads them."""
    by_name = _options_by_name(command)
    subcommands = getattr(command, "commands", {})
    out, i = list(args), 0
    while i < len(out) and out[i] != "--" and out[i] not in subcommands:
        opt, eq, value = out[i].partition("=") if out[i].startswith("--") else (out[i], "", "")
        param = by_name.get(opt)
        if param is None or param.is_flag or param.name not in PATH_OPTIONS:
            i += 1
            continue
        if eq:
            out[i] = f"{opt}={home_expanded(value)}"
        elif i + 1 < len(out):
            out[i + 1] = home_expanded(out[i + 1])
        i += 1 if eq else 2
    return out


def refuse_repeated_or_empty_words(command, args: list[str]) -> None:
    """An option given twice is refused: click keeps the last value without a word, so `--models cnn --models
    resnet34` trained ResNet-34 alone and `--augment ... --no-augment` ran without augmentation (session 70).
    Options meant to repeat (``multiple``, as --profile) are left alone. A group's options are read up to its
    subcommand's name. A path or run option given empty (NOT_EMPTY) is refused too."""
    from genaug.errors import ConfigError

    by_name = _options_by_name(command)
    subcommands = getattr(command, "commands", {})
    seen: dict[str, tuple[str, str]] = {}
    i, positional = 0, 0
    while i < len(args) and args[i] != "--":
        token = args[i]
        opt, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        param = by_name.get(opt)
        if param is None:
            if token in subcommands:
                return
            where = _argument_at(command, positional)   # None: no argument, and click says the word is extra
            if not token.strip() and where:   # found in session 71: `predict "$DIR"`, DIR unset, read every image below '.'
                raise ConfigError(f"an empty argument is given where {where} goes (a shell variable not set?): give "
                                  "it, or '.' for the current folder")
            i, positional = i + 1, positional + 1
            continue
        takes_value = not param.is_flag
        given = bool(eq) or i + 1 < len(args)   # `--out` last with no value: click says it needs one
        if eq or not takes_value:   # --seeds=3, or a flag
            value, i = inline, i + 1
        else:                       # --seeds 3
            value, i = (args[i + 1] if i + 1 < len(args) else ""), i + 2
        if takes_value and given and param.name in NOT_EMPTY and not value.strip():
            raise ConfigError(f"{opt} is given an empty value (a shell variable not set?): give it "
                              f"{NOT_EMPTY[param.name]}, or leave {opt} out")
        if param.multiple or getattr(param, "count", False):   # meant to repeat (--profile)
            continue
        if param.name in seen:
            first_opt, first_value = seen[param.name]
            if not takes_value:
                raise ConfigError(f"{first_opt} and {opt} are both given: give one" if first_opt != opt
                                  else f"{opt} is given twice: give it once")
            listed = f" (it takes a comma list: {opt} {first_value},{value})" if "comma" in (param.help or "") else ""
            raise ConfigError(f"{opt} is given twice ({first_value}, then {value}): give it once{listed}")
        seen[param.name] = (opt, value)


def _argument_at(command, k: int) -> str | None:
    """The metavar of the command's argument that the ``k``-th positional word fills (RUN_A, IMAGES, ...);
    None past the command's arguments."""
    for p in (p for p in command.params if p.param_type_name == "argument"):
        if p.nargs == -1 or k < p.nargs:
            return p.metavar or p.name.upper()
        k -= p.nargs
    return None


app = typer.Typer(
    name="genaug", cls=PipelineOrderGroup,
    help="Generative data augmentation for chest X-rays: does synthetic or compressed data make a classifier "
         "better or faster, and by how much? Test splits stay real and untouched; splits are by patient.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from genaug.runs import package_versions   # what a run's manifest records, as a bug report wants it
        v = package_versions()
        typer.echo(f"genaug {v.pop('genaug')} ({', '.join(f'{k} {x}' for k, x in v.items())})")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="print the versions of genaug and of its main dependencies, then exit")):
    pass


data_app = typer.Typer(help="Inspect a dataset (counts per split and class, patients, skipped files, duplicates, "
                            "file traits that tell classes apart), or lay out "
                            "class folders as train/ and test/ by patient.",
                       no_args_is_help=True, cls=PipelineOrderGroup)
app.add_typer(data_app, name="data")

# Options shared by every command (Typer needs them spelled out per command).
DataOpt = typer.Option(None, "--data", help="demo | folder in the Kaggle layout (ROOT/train/CLASS/*: JPEG, PNG, BMP, TIFF, DICOM) | file.npz | medmnist:NAME")
TaskOpt = typer.Option(None, "--task", help="binary (class folders) | 3class (normal/bacteria/virus from file names)")
ProfileOpt = typer.Option(None, "--profile", "--config", help="profile name in configs/ (demo, cpu, paper) or a YAML file of overrides; given again, each applies over the ones before it (--profile cpu --config mine.yaml)")
SeedOpt = typer.Option(None, "--seed", help="training seed (splits use data.split_seed, fixed across seeds)")
DeviceOpt = typer.Option(None, "--device", help="auto | cpu | cuda (cuda:N: one GPU of several) | mps (auto: cuda, then mps, then cpu)")
OutOpt = typer.Option(None, "--out", help="run root (default: outputs)")
NameOpt = typer.Option(None, "--name", help="suffix of the run directory name")
RUN_NAME = typer.Option("", "--name", help="suffix of the run directory name")
DEVICE_AUTO = typer.Option("auto", "--device", help="auto | cpu | cuda (cuda:N: one GPU of several) | mps (auto: cuda, then mps, then cpu)")
CacheOpt = typer.Option(None, "--cache-dir", help="decode-once cache (default: <out>/cache; a resumed run's own run root, or <out> where that is not on this machine)")
ThreadsOpt = typer.Option(None, "--threads", help="CPU threads for training (default or 0: torch's, about one per core); "
                          "give each of several runs sharing a machine its share, e.g. 1 each for two on 2 cores")
ResizeOpt = typer.Option(None, "--resize", help="how an image that is not square becomes the square every model "
                         "reads: squash (default: stretched, its aspect ratio not kept), crop (the centred square "
                         "of its short side, as torchxrayvision does) or pad (centred on black to its long side); "
                         "genaug data info counts the images that are not square")
ClassesOpt = typer.Option(None, "--classes", help="the data's classes to use, comma-separated (e.g. COVID,Normal "
                          "of the COVID-19 Radiography Database's four); the others' images are left out of every "
                          "split (default: every class)")
TensorboardOpt = typer.Option(None, "--tensorboard/--no-tensorboard",
                              help="log losses, metrics, learning rate, images and weight histograms to <run>/tensorboard")


def _common(data, task, seed, device, out, name, cache, tensorboard=None, threads=None, **data_extra):
    return (dict(data=data, task=task, cache_dir=cache, **data_extra),
            dict(seed=seed, device=device, out_root=out, name=name, tensorboard=tensorboard, threads=threads))


def _check_data(cfg, resume, data_flag: str | None, profile: list[str] | None, makes_runs: bool = True) -> None:
    """A mistyped --data is told before torch loads, in well under a second (a resumed run reads its own).
    A path that came from a profile says so: `--profile cpu` away from the project root had been told only
    "data folder not found: ../shared/data/chest_xray_224", with no word of where that path came from."""
    if resume:
        return
    from genaug.data import check_data_spec, check_out_outside_data
    from genaug.errors import DataError
    if makes_runs:   # `data info` keeps only its decode cache under --out
        check_out_outside_data(cfg.run.out_root, cfg.data.data)
    try:
        check_data_spec(cfg.data.data, cfg.data.task, cfg.data.classes)
    except DataError as exc:
        from genaug.config import profile_that_sets
        if data_flag is not None or not (source := profile_that_sets(profile or [], "data", "data")):
            raise
        import os
        spec = cfg.data.data   # a relative path is read from the current folder, not from the profile's
        where = "" if os.path.isabs(spec) or ":" in spec else f", read from this folder as {os.path.abspath(spec)}"
        raise DataError(f"{exc}; that is data.data in the profile {source}{where}: give --data PATH to read "
                        "data from elsewhere") from None


def _checkpoint_file(path: str, pattern: str, writer: str) -> str:
    """The checkpoint file --checkpoint names, told before the run directory is made: a folder (the run
    itself, most often) stands for the one ``pattern`` file in it, and is refused, naming them, where it
    holds none or several."""
    from pathlib import Path

    from genaug.errors import ConfigError
    from genaug.runs import checkpoint_in_folder, missing_run_hint
    if Path(path).is_dir():
        found = str(checkpoint_in_folder(Path(path), pattern, "--checkpoint", writer))
        typer.echo(f"--checkpoint {path}: using {found}, the {pattern} file in it", err=True)
        return found
    if not Path(path).is_file():
        raise ConfigError(f"--checkpoint {path}: no such file (give {pattern} from {writer}){missing_run_hint(path)}")
    return path


@data_app.command("info", help=(
    "Counts per split and class, patients, image sizes and modes, skipped files, origin of val; duplicates "
    "across and within splits; file traits (size, format, JPEG quality) that alone tell the classes, or the test "
    "split, apart."))
def data_info_cmd(
    data: Optional[str] = DataOpt, task: Optional[str] = TaskOpt, profile: Optional[List[str]] = ProfileOpt,
    size: int = typer.Option(64, "--size", help="working resolution to decode at"),
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help="share of train patients carved as val"),
    download: bool = typer.Option(False, "--download", help="fetch medmnist:NAME when missing"),
    out: Optional[str] = OutOpt, cache: Optional[str] = CacheOpt, resize: Optional[str] = ResizeOpt,
    classes: Optional[str] = ClassesOpt,
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
):
    from pathlib import Path

    from genaug.data.info import data_info, format_info
    from genaug.errors import ConfigError
    from genaug.jobs import load_bundle

    if size < 1:
        raise ConfigError(f"--size must be at least 1 px, got {size}")
    cfg = build_config(profile, data=dict(data=data, task=task, cache_dir=cache, val_fraction=val_fraction,
                                          download=download or None, resize=resize, classes=classes),
                       run=dict(out_root=out))
    _check_data(cfg, None, data, profile, makes_runs=False)
    bundle = load_bundle(cfg, size)
    root = Path(cfg.data.data) if bundle.source == "folder" else None
    info = data_info(bundle, root, cfg.data.resize)
    typer.echo(json.dumps(info, indent=2) if as_json else format_info(info))


@data_app.command("split", help=(
    "Hold out whole patients as a test split, for data that comes as class folders only, or as a folder of "
    "images and a CSV of their labels (--labels).\n\n"
    "Patients come from DICOM headers (PatientID) or the file names (Kermany person1234_… and IM-0001-…, NIH "
    "ChestX-ray14 00000001_000.png; with --labels, CheXpert's patient00001/ and MIMIC-CXR's p10000032/ folders), "
    "the labels file's --patient-column, or, with --patient-folders, the folder each image lies in below its "
    "class folder (SOURCE/<CLASS>/<PATIENT>/); an image that carries none counts as "
    "its own patient, and the summary says how many did. Patients that hold identical files (a file saved "
    "twice under two names) go to one side together. The images are hard-linked (copied across file "
    "systems) into a new folder, the source is only read, and TO/split.json records the split. Use TO as "
    "--data in every command, so that no GAN, autoencoder or classifier ever trains on its test patients.\n\n"
    "With --labels, e.g. the RSNA pneumonia challenge: genaug data split stage_2_train_images --labels "
    "stage_2_train_labels.csv --image-column patientId --label-column Target --class NORMAL=0 --class "
    "PNEUMONIA=1 --to rsna. Image paths are relative to SOURCE (an image extension is added where the table "
    "leaves it out); a file listed twice with one class is taken once, with two classes it is left out; "
    "rows whose label no --class names are left out and counted."))
def data_split_cmd(
    source: str = typer.Argument(..., metavar="SOURCE", help="folder of class folders: SOURCE/<CLASS>/*.jpeg (or "
                                 "SOURCE/<CLASS>/images/*.png beside a masks/ folder, which is not read); with "
                                 "--labels, the folder the labels file's image paths are relative to"),
    to: str = typer.Option(..., "--to", help="new folder to write: TO/train/<CLASS>/ and TO/test/<CLASS>/"),
    test_fraction: float = typer.Option(0.2, "--test-fraction", help="share of each class's images held out as test"),
    seed: int = typer.Option(0, "--seed", help="which patients go to test (the same seed gives the same split)"),
    labels: Optional[str] = typer.Option(None, "--labels", help="CSV file with a row per image: its path and label "
                                         "(and patient); separated by commas, semicolons or tabs"),
    image_column: str = typer.Option("image", "--image-column", help="the labels file's column of image paths"),
    label_column: str = typer.Option("label", "--label-column", help="the labels file's column of labels"),
    patient_column: Optional[str] = typer.Option(None, "--patient-column", help="the labels file's column of "
                                                 "patient ids (default: from the DICOM header or file name)"),
    classes: Optional[list[str]] = typer.Option(None, "--class", help="NAME=VALUE[,VALUE...]: the class of rows "
                                                "with these labels, once per class; a number matches as a number, 1 "
                                                "the 1.0 a spreadsheet writes (default: each label is a class)"),
    label_separator: Optional[str] = typer.Option(None, "--label-separator", help="a label holds several values "
                                                  "split by this (NIH ChestX-ray14: '|'); a row takes the one class "
                                                  "its values name, and is left out if they name two"),
    patient_folders: bool = typer.Option(False, "--patient-folders", help="SOURCE/<CLASS>/<PATIENT>/: each folder "
                                         "in a class folder holds one patient's images (at any depth below it), "
                                         "and that patient's images go to one side; a SOURCE that comes split "
                                         "(SOURCE/train/<CLASS>/<PATIENT>/...) keeps its own splits"),
    patient_pattern: Optional[str] = typer.Option(None, "--patient-pattern", help="a regular expression that "
                                                  "finds each file's patient in its path relative to SOURCE (its "
                                                  "first group, else the whole match), e.g. '^[^/]+/(P\\d+)_' for "
                                                  "NORMAL/P0017_view2.png; every file must match"),
    label_pattern: Optional[str] = typer.Option(None, "--label-pattern", help="for images that carry their label "
                                                "in their name, with no table: a regular expression that finds it "
                                                "in each image's path relative to SOURCE (its first group, else the "
                                                "whole match), e.g. '_(\\d)\\.png$' for the Shenzhen set's "
                                                "CHNCXR_0001_1.png, with --class NORMAL=0 --class TB=1; images it "
                                                "finds none in are left out and counted"),
):
    from pathlib import Path

    from genaug.config import check_seed
    from genaug.data.folder import write_patient_split
    from genaug.data.labels import write_labelled_split

    check_seed(seed, "--seed")
    if labels and patient_folders:
        raise GenaugError("--patient-folders reads SOURCE/<CLASS>/<PATIENT>/ without a labels file; with --labels, "
                          "name the patient column with --patient-column")
    if patient_pattern is not None and (patient_folders or patient_column):
        raise GenaugError(f"--patient-pattern and {'--patient-folders' if patient_folders else '--patient-column'} "
                          "both say where each patient is: give one")
    if label_pattern is not None and (labels or patient_folders or patient_column):
        other = "--labels" if labels else "--patient-folders" if patient_folders else "--patient-column"
        raise GenaugError(f"--label-pattern reads each image's label from its name, with no labels file or class "
                          f"folders: give it without {other}")
    if label_pattern is not None:
        s = write_labelled_split(Path(source), None, Path(to), "", "", None, classes or [], test_fraction, seed,
                                 label_separator, patient_pattern, label_pattern)
    elif labels:
        s = write_labelled_split(Path(source), Path(labels), Path(to), image_column, label_column, patient_column,
                                 classes or [], test_fraction, seed, label_separator, patient_pattern)
    elif classes or patient_column or label_separator:
        raise GenaugError("--class, --patient-column and --label-separator read a labels file: give it with --labels")
    else:
        s = write_patient_split(Path(source), Path(to), test_fraction, seed, patient_folders, patient_pattern)
    for split in s["images"]:   # train and test; a val split too where the source's own splits are kept
        counts = ", ".join(f"{c} {n}" for c, n in s["images"][split].items())
        typer.echo(f"{split}: {counted(sum(s['images'][split].values()), 'image')} ({counts}), "
                   f"{counted(s['patients'][split], 'patient')}")
    if s["files_without_patient_id"]:
        n = s["files_without_patient_id"]
        typer.echo(f"note: {n} {'image carries' if n == 1 else 'images carry'} no patient id (in the file name or a DICOM "
                   "header); each counts as its own patient, so if one patient has several such images they may sit "
                   "on both sides. Where that matters, give each file's patient: a table of file, class and patient "
                   "(--labels TABLE.csv --patient-column patient; file paths relative to SOURCE, e.g. NORMAL/a.png), "
                   "a pattern that finds it in each file's path (--patient-pattern), or each patient's images in a "
                   "folder of their own (--patient-folders)")
    if (joined := s["patients_joined_by_identical_files"])["patients"]:
        n, (a, b, *_) = joined["patients"], joined["examples"][0]
        typer.echo(f"note: {n} {'patient holds' if n == 1 else 'patients hold'} a file identical to another "
                   f"patient's (e.g. {a} = {b}) and went to the same side as that patient, so "
                   "that no image is both trained and tested on; the files are listed in split.json")
    if unlabelled := s.get("labels", {}).get("files_without_label"):
        typer.echo(f"note: {counted(unlabelled, 'image')} in whose path --label-pattern finds no label "
                   f"{'was' if unlabelled == 1 else 'were'} left out")
    if left_out := s.get("labels", {}).get("values_left_out"):
        typer.echo("left out rows with labels no --class names: "
                   + ", ".join(f"{v!r} {n}" for v, n in list(left_out.items())[:8]))
    if blank := s.get("labels", {}).get("rows_without_image_or_label"):
        typer.echo(f"left out {blank} {'row' if blank == 1 else 'rows'} without an image or a label")
    if s["skipped"]:
        lab = s.get("labels")
        # a labels file's missing files are named in split.json up to 20, then counted in one entry
        n = lab["files_not_found"] + lab["files_given_two_classes"] if lab else len(s["skipped"])
        typer.echo(f"skipped {n} {'entry' if n == 1 else 'entries'} (listed with their reasons in split.json)")
    typer.echo(f"wrote {to} (split recorded in {Path(to) / 'split.json'})")


def threshold_table(positive: str, rows: list[tuple[str, dict]]) -> str:
    """genaug threshold's table: a row per threshold, its first column as wide as the longest entry shown (a
    long or CJK class name in the header put the figures out of line with the rows')."""
    from genaug.data.decode import padded, shown_width
    head = f"threshold on p({positive})"
    width = max([32, shown_width(head)] + [shown_width(label) for label, _ in rows])
    lines = [f"{padded(head, width)} accuracy  sensitivity  specificity"]
    lines += [f"{padded(label, width)} {f['accuracy']:8.3f}  {f['sensitivity']:11.3f}  {f['specificity']:11.3f}"
              for label, f in rows]
    return "\n".join(lines)


InputFractionOpt = typer.Option(
    None, "--train-fraction", help="learn from this share of the training patients only (default 1), the same "
    "patients genaug benchmark --train-fraction keeps, so low-data benchmark cells get inputs that saw no other "
    "real image")


@app.command("encode")
def encode_cmd(
    data: Optional[str] = DataOpt, task: Optional[str] = TaskOpt, profile: Optional[List[str]] = ProfileOpt,
    epochs: Optional[int] = typer.Option(None, "--epochs", help="autoencoder training epochs"),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="input size, a multiple of 16 (default 224)"),
    latent_channels: Optional[int] = typer.Option(None, "--latent-channels", help="latent channels (default 256)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="images per step (default: the profile's)"),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate (default: the profile's; 1e-3 in code, 3e-3 in the cpu profile)"),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="reuse a trained autoencoder.pt instead of training (or give its encode run)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="re-encode into an existing latent directory"),
    train_fraction: Optional[float] = InputFractionOpt,
    views: Optional[int] = typer.Option(None, "--views", help="also encode this many pixel-augmented copies of "
                                        "each train/val image (0-32; cpu profile 4): the benchmark's latent CNN "
                                        "draws one encoding per image per epoch instead of seeing fixed latents"),
    resume: Optional[str] = typer.Option(None, "--resume", help="run directory to continue from its last checkpoint, with its own settings (only --device, --threads, --cache-dir, --tensorboard and --cpu-amp may change; the run records which epochs ran in bf16)"),
    seed: Optional[int] = SeedOpt, device: Optional[str] = DeviceOpt, out: Optional[str] = OutOpt,
    name: Optional[str] = NameOpt, cache: Optional[str] = CacheOpt, tensorboard: Optional[bool] = TensorboardOpt,
    threads: Optional[int] = ThreadsOpt,
    resize: Optional[str] = ResizeOpt, classes: Optional[str] = ClassesOpt,
    cpu_amp: Optional[bool] = typer.Option(None, "--cpu-amp/--no-cpu-amp", help="train the autoencoder under bf16 "
                                           "autocast on a CPU (default off): on a CPU with AMX or AVX512-BF16 (e.g. "
                                           "Intel Xeon, 4th generation on) a training step at 224 px ran about 3x as "
                                           "fast (docs/PERFORMANCE.md (q)); on an Intel Xeon without them (Ice Lake) "
                                           "it ran 1.4-1.5x slower than in fp32, and 8x slower with oneDNN capped to "
                                           "AVX2 (docs/PERFORMANCE.md (s)). The numbers change and the run records "
                                           "it; evaluation and encoding stay in fp32"),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="train the "
                                                 "autoencoder in fp32 on a CPU in the channels-last layout (default "
                                                 "off; with --cpu-amp it always is): a training step 1.3-1.4x as fast "
                                                 "on two Intel Xeons, two epochs on the real data 1.23x; its test "
                                                 "PSNR after them 30.35 dB against 30.94 for the same seed, so its "
                                                 "effect on quality is unsettled (docs/PERFORMANCE.md (s)). The "
                                                 "numbers change (PyTorch's CPU BatchNorm computes less exactly in "
                                                 "this layout) and the run records it; an earlier run rerun without "
                                                 "it gives its own numbers"),
):
    """Train the autoencoder (224x224 -> 14x14x256) on train only and encode every split to latents."""
    d, r = _common(data, task, seed, device, out, name, cache, tensorboard, threads, resize=resize, classes=classes)
    r["cpu_amp"] = cpu_amp
    r["channels_last"] = channels_last
    given = dict(data=d, run=r, encode=dict(
        epochs=epochs, image_size=image_size, latent_channels=latent_channels, batch_size=batch_size, lr=lr,
        checkpoint=checkpoint, overwrite=overwrite or None, train_fraction=train_fraction, views=views))
    cfg = build_config(profile, **given)  # before importing torch: a bad profile is told at once
    _check_data(cfg, resume, data, profile)
    if cfg.encode.checkpoint and not resume:   # before the data loads; the file, where a run was given
        cfg.encode.checkpoint = _checkpoint_file(cfg.encode.checkpoint, "autoencoder.pt", "a genaug encode run")
        if checkpoint:
            given["encode"]["checkpoint"] = cfg.encode.checkpoint
    from genaug.encode import run_encode

    run_dir = run_encode(cfg, resume=resume, given=given)
    _announce(f"run: {run_dir}")


gan_app = typer.Typer(help="Train a class-conditional DCGAN, write synthetic X-rays and a quality report; "
                             "'gan sample' draws from a trained generator.", invoke_without_command=True,
                     cls=PipelineOrderGroup)
app.add_typer(gan_app, name="gan")


@gan_app.callback()
def gan_cmd(
    ctx: typer.Context,
    class_: Optional[str] = typer.Option(None, "--class", help="class to write (a name from the data, several comma-separated, any case) or 'all' (the default; a resumed run keeps its own)"),
    data: Optional[str] = DataOpt, task: Optional[str] = TaskOpt, profile: Optional[List[str]] = ProfileOpt,
    epochs: Optional[int] = typer.Option(None, "--epochs", help="GAN training epochs (default: the profile's)"),
    n: Optional[int] = typer.Option(None, "--n", help="synthetic images to write per class (default 1280)"),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="64 (default) or 128"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="images per step (default: the profile's)"),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate of both networks (default 2e-4, DCGAN's)"),
    width: Optional[int] = typer.Option(None, "--width", help="generator/discriminator base width (ngf = ndf)"),
    per_class: bool = typer.Option(False, "--per-class", help="one unconditional model per class instead of one conditional model"),
    diffaug: Optional[bool] = typer.Option(None, "--diffaug/--no-diffaug", help="differentiable augmentation for small classes"),
    fid_features: Optional[str] = typer.Option(None, "--fid-features", help="domain (default, offline) | inception (needs torch-fidelity; its FID bootstrap costs about 3 s per resampling on a CPU core, set gan.fid_bootstrap in a profile to change the 100)"),
    conditioning: Optional[str] = typer.Option(None, "--conditioning", help="how the discriminator sees the class: channels (label planes, default) | acgan (auxiliary class head)"),
    aux_weight: Optional[float] = typer.Option(None, "--aux-weight", help="acgan: weight of the class loss beside the real/fake loss (default 1.0; lower trades class fidelity for diversity)"),
    sync_batchnorm: Optional[bool] = typer.Option(None, "--sync-batchnorm", help="under torchrun on GPUs: BatchNorm over the global batch"),
    train_fraction: Optional[float] = InputFractionOpt,
    resume: Optional[str] = typer.Option(None, "--resume", help="run directory to continue from its last checkpoint, with its own settings (only --device, --threads, --cache-dir, --tensorboard and --cpu-amp may change; the run records which epochs ran in bf16)"),
    seed: Optional[int] = SeedOpt, device: Optional[str] = DeviceOpt, out: Optional[str] = OutOpt,
    name: Optional[str] = NameOpt, cache: Optional[str] = CacheOpt, tensorboard: Optional[bool] = TensorboardOpt,
    threads: Optional[int] = ThreadsOpt,
    resize: Optional[str] = ResizeOpt, classes: Optional[str] = ClassesOpt,
    cpu_amp: Optional[bool] = typer.Option(None, "--cpu-amp/--no-cpu-amp", help="train the generator and "
                                           "discriminator under bf16 autocast on a CPU (default off): on a CPU with "
                                           "AMX or AVX512-BF16 (e.g. Intel Xeon, 4th generation on) a training step "
                                           "ran 2.3x as fast at 64 and 128 px (docs/PERFORMANCE.md (r)); on an Intel "
                                           "Xeon without them (Ice Lake) 1.6-1.7x slower than in fp32, and 11x slower "
                                           "with oneDNN capped to AVX2 (docs/PERFORMANCE.md (s)). The images change and the run "
                                           "records it; sampling and the quality report stay in fp32"),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="train the "
                                                 "generator and discriminator in fp32 on a CPU in the channels-last "
                                                 "layout (default off; with --cpu-amp they always are): a training "
                                                 "step 1.1-1.3x as fast on two Intel Xeons, real-data GANs 1.12-1.19x; "
                                                 "over five paired seeds no difference in FID was detected "
                                                 "(docs/PERFORMANCE.md (t)). The images change (PyTorch's CPU "
                                                 "BatchNorm computes less exactly in this layout) and the run records "
                                                 "it; an earlier run rerun without it gives its own images"),
):
    """Train (or --resume) the GAN, write --n images per class with a manifest, grids and a quality report."""
    if ctx.invoked_subcommand is not None:
        return
    if width is not None and width <= 0:   # it sets two config keys; the flag is what the user typed
        from genaug.errors import ConfigError
        raise ConfigError(f"--width must be positive, got {width}")
    d, r = _common(data, task, seed, device, out, name, cache, tensorboard, threads, resize=resize, classes=classes)
    r["cpu_amp"] = cpu_amp
    r["channels_last"] = channels_last
    given = dict(data=d, run=r, gan=dict(
        epochs=epochs, n=n, image_size=image_size, batch_size=batch_size, lr=lr, ngf=width, ndf=width,
        per_class=per_class or None, diffaug=diffaug, fid_features=fid_features, sync_batchnorm=sync_batchnorm,
        conditioning=conditioning, aux_weight=aux_weight, train_fraction=train_fraction))
    cfg = build_config(profile, **given)  # before importing torch: a bad profile is told at once
    _check_data(cfg, resume, data, profile)
    if not resume:
        _check_gan_flags_take_effect(cfg, conditioning, aux_weight)
    if class_ is not None and not resume:   # a mistyped --class, too, is told before torch loads ('' too)
        from genaug.data import classes_from_spec, resolve_classes
        known = classes_from_spec(cfg.data.data, cfg.data.task)
        if known:
            resolve_classes(class_, known)
    from genaug.gan import run_gan

    run_dir = run_gan(cfg, class_, resume=resume, given=given)
    _announce(f"run: {run_dir}")


def _check_gan_flags_take_effect(cfg, conditioning: str | None, aux_weight: float | None) -> None:
    """Refuse a flag the run would ignore (found in session 68: --aux-weight beside label-plane conditioning, and
    --conditioning beside --per-class, trained as though they were not given)."""
    from genaug.errors import ConfigError
    for flag, given in (("--conditioning", conditioning), ("--aux-weight", aux_weight)):
        if given is not None and cfg.gan.per_class:
            raise ConfigError(f"{flag} {given} has no effect with per-class GANs (gan.per_class), which are "
                              "unconditional: drop one of the two")
    if aux_weight is not None and cfg.gan.conditioning != "acgan":
        raise ConfigError(f"--aux-weight weighs the class loss of --conditioning acgan; this run would use "
                          f"conditioning {cfg.gan.conditioning}, which has none: add --conditioning acgan, or drop "
                          "--aux-weight")


@gan_app.command("sample")
def gan_sample_cmd(
    checkpoint: str = typer.Option(..., "--checkpoint", help="generator-*.pt from a genaug gan run (or the run, where it holds one generator)"),
    class_: str = typer.Option("all", "--class", help="class to draw, or 'all'"),
    n: int = typer.Option(500, "--n", help="images per class"),
    seed: int = typer.Option(0, "--seed", help="same seed, same images"),
    device: str = DEVICE_AUTO,
    out: str = typer.Option("outputs", "--out", help="run root: images go to OUT/gan-sample/<time>-<name>/"),
    name: str = RUN_NAME,
):
    """Write images from a trained generator without training."""
    from pathlib import Path

    from genaug.config import check_seed
    from genaug.device import resolve_device
    from genaug.errors import ConfigError
    from genaug.gan import check_sample_out, sample_to_dir
    from genaug.runs import new_run, running

    if n <= 0:
        raise ConfigError(f"--n must be positive, got {n}")
    check_seed(seed, "--seed")
    checkpoint = _checkpoint_file(checkpoint, "generator-*.pt", "a genaug gan run")
    check_sample_out(out, checkpoint)
    dev = resolve_device(device)   # before the run folder: "no CUDA GPU" leaves nothing behind
    # the absolute path lets genaug benchmark find the GAN run behind these images from anywhere
    run = new_run(out, "gan-sample", name, {"checkpoint": str(Path(checkpoint).resolve()), "class": class_, "n": n,
                                            "seed": seed})
    with running(run, new=True):   # refused (e.g. an unknown --class): no empty run left behind
        rows = sample_to_dir(checkpoint, class_, n, seed, run.path("synthetic"), dev,
                             planned=lambda total: run.save_manifest(images_planned=total))
        run.save_manifest(finished=True, synthetic_images=len(rows))
        _echo_and_log(f"wrote {counted(len(rows), 'image')} from {checkpoint} to {run.path('synthetic')}")


@app.command("benchmark")
def benchmark_cmd(
    data: Optional[str] = DataOpt, task: Optional[str] = TaskOpt, profile: Optional[List[str]] = ProfileOpt,
    models: Optional[str] = typer.Option(None, "--models", help="comma list of models (default: cnn,resnet34,densenet121; also alexnet, alexnet_small, vgg19, googlenet, resnet50, lenet5, lmap3, logreg, mlp)"),
    variants: Optional[str] = typer.Option(None, "--variants", help="comma list of real, mixed, synthetic, encoded (default: real,mixed,encoded; mixed and synthetic need a GAN run, encoded an encode run, trained first where none is given)"),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="repeats per cell (seeds seed..seed+N-1), 1 to 1000"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="most epochs of every pixel model's cells, replacing a profile's per-model benchmark.model_epochs (e.g. resnet34=12); early stopping may end sooner (default: the profile's; the latent CNN's: benchmark.latent_epochs, or these)"),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="pixel models' input size"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="images per step (default: the profile's)"),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate of every cell (default 1e-3)"),
    synthetic_ratio: Optional[float] = typer.Option(None, "--synthetic-ratio", help="synthetic per class as a share of real (mixed)"),
    balance: Optional[bool] = typer.Option(None, "--balance/--no-balance", help="fill minority classes up to the majority (mixed)"),
    train_fraction: Optional[str] = typer.Option(None, "--train-fraction", help="real training share(s), by patient, e.g. 0.1,0.25,1.0"),
    gan_run: Optional[str] = typer.Option(None, "--gan-run", help="genaug gan (or genaug gan sample) run directory to take synthetic images from"),
    encode_run: Optional[str] = typer.Option(None, "--encode-run", help="genaug encode run directory to take latents from"),
    pretrained: Optional[bool] = typer.Option(None, "--pretrained/--scratch", help="ImageNet weights from --weights-dir"),
    weights_dir: Optional[str] = typer.Option(None, "--weights-dir", help="folder with torchvision ImageNet .pth files"),
    resume: Optional[str] = typer.Option(None, "--resume", help="benchmark run directory: finished cells are kept; --seeds, --models, --variants and --train-fraction add cells to it; other settings stay the run's own"),
    save_models: Optional[bool] = typer.Option(None, "--save-models/--no-save-models", help="write models/<cell>.pt for each cell, for genaug predict and explain (an encoded cell's holds its autoencoder, so it reads images)"),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="learning-rate schedule: cosine (default), step, exponential, onecycle, constant"),
    augmentations: Optional[str] = typer.Option(None, "--augmentations", help="comma list of flip, rotate, shift, zoom, shear, brightness, contrast, noise, pca (default: rotate,shift,zoom,brightness,contrast)"),
    augment: Optional[bool] = typer.Option(None, "--augment/--no-augment", help="training augmentation on or off"),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="share of each training target spread over the classes, e.g. 0.1 (default 0)"),
    mixup: Optional[float] = typer.Option(None, "--mixup", help="mixup of training images within a batch: the Beta alpha, e.g. 0.2 (default 0: off)"),
    ema: Optional[float] = typer.Option(None, "--ema", help="keep an exponential moving average of each cell's weights with this decay, e.g. 0.99, and validate and test it (default 0: off)"),
    tta: Optional[int] = typer.Option(None, "--tta", help="test-time augmentation: average validation and test probabilities over each image and this many copies augmented as in training, e.g. 8 (default 0: off); the threshold is chosen on them, and genaug predict uses the same copies"),
    equalize: Optional[str] = typer.Option(None, "--equalize", help="per-image contrast equalization of the pixel models' inputs (training, validation, test and genaug predict alike): none (default), clahe (adaptive histogram equalization) or standardize (each image to one mean grey and spread)"),
    folds: Optional[int] = typer.Option(None, "--folds", help="1 (default): one patient-level validation split; K >= 2: K-fold cross-validation over train+val, grouped by patient (test untouched)"),
    supersede: bool = typer.Option(False, "--supersede", help="with --resume and another --gan-run/--encode-run: move the cells trained on the old run to superseded-<old run>/ and retrain them on the new one"),
    report_only: bool = typer.Option(False, "--report-only", help="with --resume RUN: write the report from the cells finished so far (e.g. while shards still train), training nothing"),
    extend_only: bool = typer.Option(False, "--extend-only", help="with --resume RUN and the seeds, models, variants, fractions or input runs to add: record them in the run and train nothing, so that --shard processes can then split the new cells"),
    shard: Optional[str] = typer.Option(None, "--shard", help="I/N: train only every N-th cell starting at I (1-based), to split a run across processes or machines sharing --resume RUN"),
    seed: Optional[int] = SeedOpt, device: Optional[str] = DeviceOpt, out: Optional[str] = OutOpt,
    name: Optional[str] = NameOpt, cache: Optional[str] = CacheOpt, tensorboard: Optional[bool] = TensorboardOpt,
    threads: Optional[int] = ThreadsOpt,
    resize: Optional[str] = ResizeOpt, classes: Optional[str] = ClassesOpt,
    cpu_amp: Optional[bool] = typer.Option(None, "--cpu-amp/--no-cpu-amp", help="bf16 autocast for the classifiers on a CPU as on CUDA (default off): on a CPU with AMX or AVX512-BF16 (e.g. Intel Xeon, 4th generation on) the cpu profile's CNN and DenseNet-121 cells trained 2.3x and 1.6x as fast per epoch (docs/PERFORMANCE.md (p)); on an Intel Xeon without them (Ice Lake) a training step ran 1.4-2.7x slower than in fp32, and 8-12x slower with oneDNN capped to AVX2 (docs/PERFORMANCE.md (s)). The numbers change, and each cell records it. A GAN or an autoencoder the benchmark trains itself trains in bf16 too (genaug gan --cpu-amp, genaug encode --cpu-amp)"),
):
    """Train classifiers on real, mixed, synthetic and encoded data; test on the real test split; write a report."""
    if balance and synthetic_ratio is not None:   # else --balance wins and the ratio is silently not used
        from genaug.errors import ConfigError
        raise ConfigError("--balance and --synthetic-ratio both say how many synthetic images a mixed cell gets: "
                          "give one (--balance fills each class up to the largest)")
    d, r = _common(data, task, seed, device, out, name, cache, tensorboard, threads, resize=resize, classes=classes)
    r["cpu_amp"] = cpu_amp
    flags = dict(models=models, variants=variants, seeds=seeds, epochs=epochs, image_size=image_size,
                 batch_size=batch_size, lr=lr, synthetic_ratio=synthetic_ratio, balance=balance,
                 train_fractions=train_fraction, gan_run=gan_run, encode_run=encode_run, pretrained=pretrained,
                 weights_dir=weights_dir, save_models=save_models, schedule=schedule, augmentations=augmentations,
                 augment=augment, folds=folds, label_smoothing=label_smoothing, mixup=mixup, ema=ema, tta=tta,
                 equalize=equalize)
    if epochs is not None and not resume:
        # a profile's per-model epochs would otherwise outlast the flag: `--profile demo --epochs 2`
        # trained ResNet-34 for the demo's 12
        flags["model_epochs"] = ""
    cfg = build_config(profile, data=d, run=r, benchmark=flags)  # before importing torch: a bad profile is told at once
    _check_data(cfg, resume, data, profile)
    from genaug.benchmark import run_benchmark

    started = time.time()
    run_dir = run_benchmark(cfg, resume=resume, given=dict(data=d, run=r, benchmark=flags),
                            shard=shard, supersede=supersede, report_only=report_only, extend_only=extend_only)
    report = run_dir / "report.md"
    # a shard that leaves cells to other shards writes no report: name only one this command wrote
    wrote = report.is_file() and report.stat().st_mtime >= started - 1
    _announce(f"run: {run_dir}" + (f"\nreport: {report}" if wrote else ""))


@app.command("threshold")
def threshold_cmd(
    folder: str = typer.Argument(..., metavar="LABELLED", help="a folder with one subfolder of labelled images per class, "
                                                  "named as the model's classes (e.g. NORMAL/ and PNEUMONIA/), from "
                                                  "where the model is to be used"),
    checkpoint: str = typer.Option(..., "--checkpoint", help="models/<cell>.pt from genaug benchmark --save-models (or the run, where it saved one model)"),
    out: str = typer.Option(..., "--out", help="the checkpoint to write, a new .pt file: the model with the new threshold, for genaug predict and explain"),
    device: str = DEVICE_AUTO,
):
    ("Choose a two-class model's decision threshold on labelled images from your own site, and write a copy of "
     "the model that uses it.\n\n"
     "A benchmark cell chooses its threshold on its validation split, which comes from the same hospital as its "
     "training images; on images from elsewhere the same probability can mean something else, and accuracy is "
     "lost to a threshold that no longer fits (docs/STATUS.md, session 65). This predicts the labelled images as "
     "genaug predict would, picks the threshold that maximises Youden's J (sensitivity + specificity - 1) on "
     "them, as the benchmark does on validation, placed midway between the lowest score it calls positive and "
     "the next lower one (so that a new image just under that score is not missed), and prints accuracy, "
     "sensitivity and specificity at the old and the new threshold. Those figures are measured on the very "
     "images the threshold was chosen on, so the new one's are optimistic: judge it on other labelled images, "
     "of other patients. Where the labelled classes differ in their files (each class from another source), it "
     "says so. The checkpoint given is not changed; the copy records where its threshold came from.")
    from genaug.device import resolve_device
    from genaug.predict import check_threshold_out, site_threshold, write_site_checkpoint

    out_path = check_threshold_out(out)
    checkpoint = _classifier_file(checkpoint)
    found = site_threshold(checkpoint, folder, resolve_device(device))
    for name, why in found["skipped"]:
        typer.echo(f"skipped {name}: {why}", err=True)
    if found["left_out"]:
        typer.echo(f"genaug: note: not read, being in no class folder of this model "
                   f"({', '.join(c + '/' for c in found['counts'])}): {', '.join(found['left_out'])} in {folder}", err=True)
    counts = found["counts"]
    typer.echo(f"{folder}: " + ", ".join(f"{counted(n, 'image')} of {c}" for c, n in counts.items())
               + f"; ROC-AUC {found['roc_auc']:.3f}")
    if found["note"]:
        typer.echo(f"genaug: note: {found['note']}", err=True)
    if few := [c for c, n in counts.items() if n < 25]:
        typer.echo(f"genaug: note: fewer than 25 images of {' and '.join(few)}: a threshold chosen on so few is "
                   "rough; label more where you can", err=True)
    previous = found["previous"]
    rows = [(f"{previous:.6f} (the checkpoint's)" if previous is not None else "0.5 (the likelier class)",
             found["at_previous"]), (f"{found['threshold']:.6f} (Youden's J here)", found["at_chosen"])]
    typer.echo(threshold_table(list(counts)[1], rows))
    write_site_checkpoint(checkpoint, out_path, found, folder)
    typer.echo(f"wrote {out_path}: genaug predict --checkpoint {out_path} IMAGES (these figures are on the images the "
               "threshold was chosen on; judge it on others)")


@app.command("predict")
def predict_cmd(
    targets: list[str] = typer.Argument(..., metavar="IMAGES", help="image files and folders of images (searched recursively, "
                                                  "passing over hidden folders and genaug runs inside them), "
                                                  "e.g. a shell glob such as xrays/*.jpeg"),
    checkpoint: str = typer.Option(..., "--checkpoint", help="models/<cell>.pt from genaug benchmark --save-models (or the run, where it saved one model)"),
    out: Optional[str] = typer.Option(None, "--out", help="CSV file to write (a file already there is replaced only if genaug predict wrote it); default: print"),
    device: str = DEVICE_AUTO,
):
    """Class probabilities for new images, preprocessed as the model was trained (size and threshold from the checkpoint)."""
    import csv
    import io
    from pathlib import Path

    from genaug.device import resolve_device
    from genaug.predict import predict_images
    from genaug.runs import atomic_write_text, check_output_file

    if out:
        check_output_file(out, "predict")
    checkpoint = _classifier_file(checkpoint)
    notes: list[str] = []
    text, skipped = predict_images(checkpoint, targets, resolve_device(device), notes=notes)
    for name, why in skipped:
        typer.echo(f"skipped {name}: {why}", err=True)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    if out:
        atomic_write_text(Path(out), text)
        # rows, not lines: a file name may hold a newline, which the CSV quotes (found in session 67)
        n = sum(1 for _ in csv.reader(io.StringIO(text))) - 1
        typer.echo(f"wrote {out} ({n} {'image' if n == 1 else 'images'}, {len(skipped)} skipped)")
    else:
        typer.echo(text, nl=False)


def _classifier_file(checkpoint: str) -> str:
    """The saved classifier --checkpoint names: a benchmark run given whole stands for its one saved model."""
    from genaug.predict import classifier_file

    found = str(classifier_file(checkpoint))
    if found != checkpoint:
        typer.echo(f"--checkpoint {checkpoint}: using {found}, the one model the run saved", err=True)
    return found


def _echo_and_log(msg: str, err: bool = False) -> None:
    """To the console and to the open run's log.txt, so a run's log says what it did."""
    typer.echo(msg, err=err)
    logging.getLogger("genaug").info(msg)


@app.command("explain", help=(
    "Grad-CAM heatmaps over the input for the class genaug predict gives (or a chosen one), written as PNG "
    "overlays.\n\n"
    "Each PNG shows the image as the model saw it (its input size) beside the heatmap over it, each pixel "
    "enlarged a whole number of times to at least 256 px tall, so that a 64 px model's view is no thumbnail."))
def explain_cmd(
    targets: Optional[list[str]] = typer.Argument(None, metavar="IMAGES", help="image files and folders of images, as genaug predict takes them"),
    image: Optional[str] = typer.Option(None, "--image", help="one image file or folder, given as an option"),
    checkpoint: str = typer.Option(..., "--checkpoint", help="models/<cell>.pt from genaug benchmark --save-models (or the run, where it saved one model)"),
    class_: str = typer.Option("", "--class", help="class to explain (default: the predicted one)"),
    layer: str = typer.Option("", "--layer", help="module name of the target layer (default: per architecture)"),
    out: str = typer.Option("outputs", "--out", help="run root"), name: str = RUN_NAME,
    device: str = DEVICE_AUTO,
):
    """Grad-CAM heatmaps over the input for the class genaug predict gives (or a chosen one), written as PNG overlays."""
    import csv
    import io

    from genaug.device import resolve_device
    from genaug.errors import ConfigError
    from genaug.explain import check_explain_out, explain_images
    from genaug.runs import atomic_write_text, new_run, running

    # predict takes its images as an argument; explain took only --image: both are accepted, once
    if bool(targets) == (image is not None):
        raise ConfigError("give the images once: genaug explain --checkpoint MODEL.pt IMAGE_OR_FOLDER..."
                          if not targets else f"images given twice ({' '.join(targets)} and --image {image}): give one")
    images = targets or [image]
    checkpoint = _classifier_file(checkpoint)
    check_explain_out(out, checkpoint, images)
    dev = resolve_device(device)   # before the run folder: "no CUDA GPU" leaves nothing behind
    run = new_run(out, "explain", name, {"checkpoint": checkpoint, "images": images, "class": class_, "layer": layer})
    with running(run, new=True):   # refused (e.g. an unknown --class): no empty run left behind
        notes: list[str] = []
        rows, skipped, layer_name = explain_images(checkpoint, images, run.dir, class_, layer, dev, notes=notes)
        buf = io.StringIO()
        csv.writer(buf).writerows([["file", "prediction", "explained_class", "probability", "heatmap"]] + rows)
        atomic_write_text(run.path("explanations.csv"), buf.getvalue())
        run.save_manifest(finished=True, layer=layer_name, images=len(rows),
                          skipped=[{"path": p, "reason": r} for p, r in skipped])
        for p, why in skipped:
            _echo_and_log(f"skipped {p}: {why}", err=True)
        for note in notes:
            _echo_and_log(f"note: {note}", err=True)
        _echo_and_log(f"wrote {counted(len(rows), 'Grad-CAM overlay')} of {checkpoint} (layer {layer_name}) to {run.dir}")


@app.command("report")
def report_cmd(
    runs: list[str] = typer.Argument(..., metavar="RUNS", help="finished gan, encode, benchmark or pool run directories, in the order to show (runs without a report yet are left out and named)"),
    out: Optional[str] = typer.Option(None, "--out", help="Markdown file to write, e.g. docs/RESULTS.md (a file already there is replaced only if genaug report wrote it); default: print"),
    title: str = typer.Option("Results", "--title", help="the document's first heading"),
):
    ("Gather finished runs' own reports, each under the commands that produced it, into one Markdown document.\n\n"
     "Where pool runs are gathered it opens with a table of their answers grouped by question (task, model, "
     "variant and its synthetic share, train fraction, pixel size), the pool with the most pairs first. Then "
     "each benchmark and pool run's \"In short\": pool runs first, newest first, since their "
     "intervals count retraining the GAN or autoencoder; then the others in the order given, each benchmark run's "
     "with the pools that hold its cells. A pool whose runs now hold seeds that pair and that it did not pool "
     "(seeds added since) says so, and names a newer pool of the same runs that counts them.")
    from pathlib import Path

    from genaug.report import results_document
    from genaug.runs import atomic_write_document, check_output_file, each_once

    if out:
        check_output_file(out, "report")
    left_out: list[str] = []
    runs = each_once(runs)
    doc = results_document(runs, title.strip() or "Results", left_out)   # --title "$UNSET": not an empty heading
    for why in left_out:
        typer.echo(f"genaug: note: left out: {why}", err=True)
    if out:
        atomic_write_document(Path(out), doc)
        typer.echo(f"wrote {out} from {counted(len(runs) - len(left_out), 'run')}"
                   + (f"; left out {len(left_out)} without a report (named in it)" if left_out else ""))
    else:
        typer.echo(doc)


@app.command("compare", help=(
    "Compare two benchmark runs on one split cell by cell: B − A, paired by seed.\n\n"
    "For each model, variant and train fraction, over the seeds both runs ran (paired on the same test "
    "images): the difference with a 95% interval and p-value that resample the seeds and the test images "
    "(McNemar's test for one seed), McNemar's p per seed, and the settings in which "
    "the runs differ (e.g. --epochs 12 against 24, 64 against 128 px, --pretrained).\n\n"
    "Also a reproduction check: the machines each side's cells ran on, and how many paired cells have "
    "identical test probabilities (a rerun of the same settings on the same kind of machine should have "
    "all; on another CPU model or a GPU, none, and B − A then says whether the figures hold there)."))
def compare_cmd(
    run_a: str = typer.Argument(..., metavar="RUN_A", help="benchmark run A (the baseline)"),
    run_b: str = typer.Argument(..., metavar="RUN_B", help="benchmark run B, on the same data and split"),
    out: Optional[str] = typer.Option(None, "--out", help="Markdown file to write (a file already there is replaced only if genaug compare wrote it); default: print"),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=100, max=MAX_BOOTSTRAP, help="bootstrap resamples for the intervals (100 to 100,000)"),
):
    from genaug.compare import compare_runs, format_comparison

    from genaug.runs import check_output_file

    if out:
        check_output_file(out, "compare")
    _write_or_print(format_comparison(compare_runs(run_a, run_b, n_boot=bootstrap)), out)


@app.command("pool", help=(
    "Pool benchmark runs that differ only in their GAN (or autoencoder) run: one variant against real, "
    "with an interval that counts retraining the GAN.\n\n"
    "One benchmark run's interval holds its GAN run fixed. Train the GAN again with other --seed values, "
    "run the same benchmark on each (same settings, --gan-run), and pool them: the interval then resamples "
    "the GAN runs as well as the seeds and test images. Each run's own difference is shown beside the pooled one. "
    "Real cells are the same recipe in every run, so one set serves all (the first run's that has them; "
    "the others only need the variant's cells). A run made without such an input run may be given too, "
    "for its real cells alone: e.g. a real,mixed run beside encoded-only runs when pooling encoded.\n\n"
    "Writes OUT/pool/<time>-<name>/ (pool.md, pool.json, config, log), which genaug report and genaug "
    "archive take like any run, and prints pool.md. --redo RUN writes a pool run's page again with this "
    "genaug, from the runs it recorded (an older page gains the lines added since; the numbers stay)."))
def pool_cmd(
    ctx: typer.Context,
    runs: Optional[list[str]] = typer.Argument(None, metavar="RUNS", help="two or more benchmark runs, each on its own GAN (or encode) run, and any runs "
                                                    "whose real cells to use"),
    variant: str = typer.Option("mixed", "--variant", help="mixed, synthetic (GAN runs) or encoded (encode runs)"),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=100, max=MAX_BOOTSTRAP, help="bootstrap resamples for the intervals (100 to 100,000)"),
    out: str = typer.Option("outputs", "--out", help="run root: the result goes to OUT/pool/<time>-<name>/pool.md"),
    name: str = RUN_NAME,
    redo: Optional[str] = typer.Option(None, "--redo", help="a pool run to write again in place, from the benchmark "
                                       "runs, variant and bootstrap it recorded (run from the folder it was run in)"),
    real_from: Optional[str] = typer.Option(None, "--real-from", help="a benchmark run to take the real cells from, "
                                            "pooling none of its other cells (e.g. a real,mixed run whose mixed cells "
                                            "drew another share of synthetic images)"),
):
    from genaug.compare import redo_pool, run_pool
    from genaug.errors import ConfigError

    if redo is not None:
        given = [f"--{p.replace('_', '-')}" for p in ("variant", "bootstrap", "out", "name", "real_from")
                 if ctx.get_parameter_source(p).name != "DEFAULT"]   # typer's own click: compare by name
        if runs or given:   # the run's own record says what to pool; another value would silently differ from it
            raise ConfigError(f"--redo takes no {' or '.join((['RUNS'] if runs else []) + given)}: it pools what "
                              f"{redo} recorded; for other runs or settings, pool them as a new run")
        run_dir = redo_pool(redo)
        typer.echo((run_dir / "pool.md").read_text(encoding="utf-8", errors="backslashreplace"))
        _announce(f"run: {run_dir} (pool.md and pool.json written again)")
        return
    if not runs:
        raise ConfigError("give the benchmark runs to pool: genaug pool RUN RUN... (or --redo POOL_RUN)")
    run_dir = run_pool(runs, variant, n_boot=bootstrap, out_root=out, name=name, real_from=real_from)
    typer.echo((run_dir / "pool.md").read_text(encoding="utf-8", errors="backslashreplace"))
    _announce(f"run: {run_dir}")


def _write_or_print(doc: str, out: str | None) -> None:
    """A Markdown document to the --out file (written whole or not at all), or to stdout."""
    from pathlib import Path

    from genaug.runs import atomic_write_document

    if out:
        atomic_write_document(Path(out), doc)
        typer.echo(f"wrote {out}")
    else:
        typer.echo(doc)


@app.command("archive", help=(
    "Copy runs' results without weights, latents, synthetic images or pictures of real X-rays.\n\n"
    "What is copied: config, manifests, log, metrics, cells, reports and plots. An archived benchmark "
    "run can be resumed to add cells, and `genaug report` reads it; archiving again updates it."))
def archive_cmd(
    runs: list[str] = typer.Argument(..., metavar="RUNS", help="run directories (gan, encode, benchmark, ...)"),
    to: str = typer.Option(..., "--to", help="archive root: each run goes to TO/<command>/<run name>/ "
                                             "(e.g. docs/runs, to keep results in version control)"),
):
    from genaug.runs import archive_run, each_once

    for r in map(str, each_once(runs)):
        dest, copied, skipped = archive_run(r, to)
        typer.echo(f"archived {len(copied)} files of {r} to {dest}; left out {len(skipped)} "
                   f"(listed in {dest / 'archived.json'})")
        if busy := json.loads((dest / "archived.json").read_text(encoding="utf-8")).get("still_at_work"):
            typer.echo(f"note: {r} is still at work ({busy}): the archive holds what it had finished; "
                       "archive it again when it ends", err=True)


@app.command("runs")
def runs_cmd(
    out: str = typer.Option("outputs", "--out", help="run root the commands wrote to (their --out), one command's folder in it, or one run"),
    command: Optional[str] = typer.Option(None, "--command", help="only this command's runs (gan, encode, benchmark, ...)"),
    as_json: bool = typer.Option(False, "--json", help="print the states as JSON"),
):
    """Each run under --out: at work (and by which process), finished, or stopped (and why, where its log says), with its progress (and the time left while at work) and how to resume it."""
    from genaug.inventory import format_runs, list_runs, states_as_json

    states = list_runs(out, command)
    typer.echo(states_as_json(states) if as_json else format_runs(states, out), nl=as_json)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM (what schedulers and `kill` send), raised from our own handler so that click
    does not swallow it as 'Aborted!' and the process does not die without a word."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum


def _on_stop_signal(signum, frame):
    raise Interrupted(signum)


def _announce(text: str) -> None:
    """Where a run's results lie; under torchrun said once, by rank 0."""
    from genaug import distributed
    distributed.say(text)


def _escaped_bytes(exc: UnicodeError) -> tuple[str, int]:
    """An encoding error handler for the console: a byte of a name that is not valid UTF-8 (which Python
    holds as a lone surrogate) is shown as \\xff, as the documents show it, anything else the stream cannot
    encode as a backslash escape."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    from genaug.data.decode import safe_name   # here: only an odd name pays for importing the data layer
    return safe_name(exc.object[exc.start:exc.end]).encode("ascii", "backslashreplace").decode("ascii"), exc.end


codecs.register_error("genaug_escaped_bytes", _escaped_bytes)


def _console_never_fails_on_a_name() -> None:
    """Found in session 73: where Python writes stdout strictly (a UTF-8 locale other than C.UTF-8, or
    PYTHONIOENCODING=utf-8), printing a path that is not valid UTF-8 ended in a traceback after the work was
    done, and stderr showed its byte as \\udcff."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:   # a test's captured stream may have none
            reconfigure(errors="genaug_escaped_bytes")


def run() -> None:
    """Console entry point: user errors are one line on stderr and exit code 2, never a traceback."""
    _console_never_fails_on_a_name()
    signal.signal(signal.SIGINT, _on_stop_signal)
    signal.signal(signal.SIGTERM, _on_stop_signal)
    try:
        app()  # standalone: usage errors print click's message and exit 2
    except GenaugError as exc:
        _error(f"{exc}{_removed(exc)}")
        sys.exit(2)
    except OSError as exc:
        if is_disk_full(exc):   # a full disk under a write that is not genaug's own
            _error(f"no space left on the disk{f' writing {exc.filename}' if exc.filename else ''}: "
                   f"free some space, then {_again(exc)}{_removed(exc)}")
            sys.exit(2)
        if exc.filename is None:   # not about a path the user gave: a bug or the system, keep the traceback
            raise
        # e.g. --out on a read-only or missing mount, a full disk: name the path, not a traceback
        _error(f"{exc.strerror or exc}: {exc.filename} (check that the paths given exist "
               "and can be written, and that the disk has space)")
        sys.exit(2)
    except (MemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        # `--image-size 100000` ended in numpy's "_ArrayMemoryError" traceback while the demo images were drawn
        # Python's own MemoryError often carries no message: name the error rather than print "()"
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        _error(f"out of memory ({detail}): "
               + (f"lower {SIZE_FLAGS[sys.argv[1]]} in a new run, or run fewer jobs at once or free memory "
                  f"and then {_again(exc)}" if resumable(sys.argv[1:]) else
                  f"run fewer jobs at once or free memory, then {_again(exc)}") + _removed(exc))
        sys.exit(2)
    except (Interrupted, KeyboardInterrupt) as exc:
        # Checkpoints, cells and shards are written atomically as they finish, so stopping here
        # loses only the epoch or cell in progress.
        signum = getattr(exc, "signum", signal.SIGINT)
        typer.echo(stopped_message(sys.argv[1:], signum, getattr(exc, "run_dir", None)), err=True)
        sys.exit(128 + signum)   # the shell's convention: 130 for Ctrl-C, 143 for SIGTERM


def _error(text: str) -> None:
    """A user's error as one line on stderr: a newline in a path or name the message quotes is shown as
    \\n, not as the start of another line (a run name holding one broke the line in session 67)."""
    typer.echo("genaug: error: " + text.replace("\r", "\\r").replace("\n", "\\n"), err=True)


# what sets the memory a resumable command takes (found in session 71: `gan --width 100000` was told to
# lower --image-size or --batch-size)
SIZE_FLAGS = {"benchmark": "--image-size or --batch-size", "gan": "--width, --image-size or --batch-size",
              "encode": "--image-size, --latent-channels or --batch-size"}


def resumable(args: list[str]) -> bool:
    """Whether the command in ``args`` keeps finished work in a run it can ``--resume``: `gan`, `encode`,
    `benchmark`; not `gan sample`, `predict`, `data info`, ... (found in session 55: `gan sample --n` too large
    for memory was told to --resume a run that command cannot resume)."""
    return args[:1] in (["encode"], ["benchmark"]) or (args[:1] == ["gan"] and args[1:2] != ["sample"])


def _again(exc: BaseException) -> str:
    """How to go on after a full disk or memory: resume the run (set by genaug.runs.running) where the
    command can, else run it again."""
    args, run_dir = sys.argv[1:], getattr(exc, "run_dir", None)
    if resumable(args) and run_dir and run_dir != getattr(exc, "removed_run", None):
        return f"{resume_command(args, run_dir)}, which keeps what finished"
    return "run the command again"


def _removed(exc: BaseException) -> str:
    """What the error line adds where genaug.runs.running removed the new run the command had named."""
    removed = getattr(exc, "removed_run", None)
    return f" (run folder {removed} removed: it held nothing yet)" if removed else ""


def resume_command(args: list[str], run_dir) -> str:
    """The command that resumes ``run_dir``, as the same shard where ``args`` ran one; quoted, so that it
    pastes into a shell as printed."""
    shard = next((f" --shard {b}" for a, b in zip(args, args[1:]) if a == "--shard"), "")
    return f"genaug {args[0]} --resume {shlex.quote(str(run_dir))}{shard}"


def stopped_message(args: list[str], signum: int, run_dir=None) -> str:
    """What a stopped command says: how to resume it where it can be (`gan`, `encode`, `benchmark`); ``run_dir``:
    the run it was working on, when it had made or opened one."""
    word = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    if resumable(args):
        if run_dir is None:
            return f"genaug: {word} before its run directory was made; nothing to resume"
        kept = "finished epochs and cells are" if args[0] == "benchmark" else "finished epochs are"   # gan, encode
        return f"genaug: {word}; {kept} saved: rerun with {resume_command(args, run_dir)}"
    return f"genaug: {word}"


if __name__ == "__main__":
    run()
