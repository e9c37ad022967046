"""Hostile and broken input: every command processes or skips each file with a reason, never a
traceback, and never changes the input folder."""
import errno
import hashlib
import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_folder_dataset
from forkserver import console_command
from test_cli import genaug, only_run


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header claims width x height (a decompression bomb's calling card)."""
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _snapshot(root):
    out = {}
    for dirpath, _, files in os.walk(os.fsencode(root)):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p):
                out[p] = ("link", os.readlink(p))
            else:
                out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


@pytest.fixture
def hostile(tmp_path):
    root = make_folder_dataset(tmp_path / "hostile", {"train": 16, "test": 6}, size=24)
    d = root / "train" / "NORMAL"
    (d / "IM-0800-0001.jpeg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)       # truncated JPEG
    (d / "IM-0801-0001.jpeg").write_bytes(b"")                                        # zero bytes
    (d / "IM-0802-0001.png").write_text("this is text")                               # text named .png
    Image.new("L", (1, 1)).save(d / "IM-0803-0001.png")                               # 1x1
    Image.fromarray(np.full((24, 24), 50000, np.uint16)).save(d / "IM-0804-0001.png")  # 16-bit
    Image.new("CMYK", (24, 24), (0, 0, 0, 100)).save(d / "IM-0805-0001.jpeg")         # CMYK
    (d / "IM-0806-0001.png").write_bytes(_png_claiming(20000, 20000))                 # bomb header
    os.symlink("IM-0807-0001.png", d / "IM-0807-0001.png")                            # symlink loop
    with open(os.path.join(os.fsencode(d), b"IM-0808-\xff\xfe.png"), "wb") as fh:   # non-UTF-8 name
        Image.new("L", (24, 24), 90).save(fh, "PNG")
    (d / "batch2").mkdir()                                                            # images a level down
    Image.new("L", (24, 24), 70).save(d / "batch2" / "IM-0809-0001.png")
    return root


def test_every_hostile_file_is_processed_or_skipped_with_a_reason(hostile, tmp_path):
    before = _snapshot(hostile)
    r = genaug("data", "info", "--data", hostile, "--size", 16, "--json", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads(r.stdout)
    reasons = {item["path"].split("/")[-1]: item["reason"] for item in info["skipped_files"]}
    assert set(reasons) == {"IM-0800-0001.jpeg", "IM-0801-0001.jpeg", "IM-0802-0001.png", "IM-0803-0001.png",
                            "IM-0806-0001.png", "IM-0807-0001.png", "batch2"}
    assert "guard" in reasons["IM-0806-0001.png"] and "link" in reasons["IM-0807-0001.png"]
    # a sub-folder's images were left out of every count without a word
    assert reasons["batch2"] == "a sub-folder: its files are not read (a class's images go straight in <split>/<CLASS>/)"
    assert "too small" in reasons["IM-0803-0001.png"]
    # the 16-bit, CMYK and oddly named images were read
    assert info["splits"]["train"]["images"] + info["splits"]["val"]["images"] == 16 * 2 + 3
    assert "Traceback" not in r.stderr and _snapshot(hostile) == before


@pytest.mark.slow
def test_commands_on_hostile_folder_finish_and_record_skips(hostile, tmp_path, tiny):
    before = _snapshot(hostile)
    r = genaug("encode", "--data", hostile, "--profile", tiny, "--out", tmp_path / "o")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    manifest = json.loads((only_run(tmp_path / "o", "encode") / "manifest.json").read_text())
    assert len(manifest["skipped"]) == 7   # the six files and the sub-folder
    assert _snapshot(hostile) == before


def test_names_that_are_not_utf8_leave_reports_that_report_and_archive_read(tmp_path, tiny):
    """Found in session 72: a data folder, or a training image copied from the test split, whose name is not
    valid UTF-8 (Linux allows any bytes) had its 0xff byte written into report.md and report.html as it was;
    `genaug report` and `genaug archive` of that run then ended in a UnicodeDecodeError traceback. The reports
    now show such a byte as \\xff."""
    from pathlib import Path
    data = make_folder_dataset(Path(os.fsdecode(os.fsencode(tmp_path) + b"/xrays-\xff")), {"train": 16, "test": 6})
    test_image = sorted((data / "test" / "NORMAL").iterdir())[0]
    with open(os.path.join(os.fsencode(data / "train" / "NORMAL"), b"IM-0900-\xfe.jpeg"), "wb") as fh:
        fh.write(test_image.read_bytes())   # a leak the report names
    before = _snapshot(data)
    r = genaug("benchmark", "--data", data, "--profile", tiny, "--models", "cnn", "--variants", "real", "--out",
               tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    run = only_run(tmp_path / "o", "benchmark")
    for name in ("report.md", "report.html"):
        text = (run / name).read_bytes().decode("utf-8")   # UTF-8 text, as a Markdown or HTML reader expects
        assert "xrays-\\xff" in text, name
    assert "IM-0900-\\xfe.jpeg" in (run / "report.md").read_text(encoding="utf-8")
    r = genaug("report", run, "--out", tmp_path / "results.md")
    assert r.returncode == 0 and "xrays-\\xff" in (tmp_path / "results.md").read_text(encoding="utf-8"), r.stderr[-2000:]
    r = genaug("archive", run, "--to", tmp_path / "kept")
    assert r.returncode == 0, r.stderr[-2000:]
    assert _snapshot(data) == before


@pytest.mark.parametrize("command", [["data", "info", "--data"], ["benchmark", "--models", "cnn", "--variants",
                                                                   "real", "--data"], ["data", "split"]])
def test_a_class_folder_named_in_bytes_that_are_not_utf8_is_refused(tmp_path, tiny, command):
    """Found in session 73: a class folder NORMAL-\\xff trained a whole benchmark cell, then the report's plot
    ended in matplotlib's TypeError traceback (its font cannot draw the byte). A class name goes into every
    table, plot and checkpoint, so it is refused before anything is read or trained."""
    from pathlib import Path
    data = make_folder_dataset(tmp_path / "xrays", {"train": 8, "test": 4})
    root = data / "train" if command[1] == "split" else data
    for folder in ([root] if command[1] == "split" else [data / "train", data / "test"]):
        os.rename(folder / "NORMAL", Path(os.fsdecode(os.fsencode(folder / "NORMAL") + b"-\xff")))
    before = _snapshot(data)
    extra = (["--to", tmp_path / "split"] if command[1] == "split" else
             ["--profile", tiny, "--out", tmp_path / "o"] if command[0] == "benchmark" else [])
    r = genaug(*command, root, *extra)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    where = root if command[1] == "split" else data / "test"   # the first split folder looked in
    assert r.stderr.startswith(f"genaug: error: the class folder {where}/NORMAL-\\xff is not named in UTF-8"), \
        r.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "split").exists()
    assert _snapshot(data) == before


def test_a_class_folder_named_with_a_newline_is_refused(tmp_path):
    """Found in session 73: `NOR\\nMAL` was taken as a class, and each table row it labels broke in two."""
    data = make_folder_dataset(tmp_path / "xrays", {"train": 8, "test": 4})
    for split in ("train", "test"):
        os.rename(data / split / "NORMAL", data / split / "NOR\nMAL")
    r = genaug("data", "info", "--data", data)
    assert r.returncode == 2 and r.stderr == (f"genaug: error: the class folder {data}/test/NOR\\nMAL has a control "
                                              "character ('\\n') in its name: a class name is written into reports, "
                                              "plots and checkpoints; rename the folder (in every split)\n"), r.stderr


def test_a_name_that_is_not_utf8_prints_as_escaped_bytes_on_any_terminal(tmp_path, monkeypatch):
    """Found in session 73: where Python writes stdout strictly (a UTF-8 locale other than C.UTF-8, or
    PYTHONIOENCODING=utf-8), `genaug data split --to` a folder whose name holds a 0xff byte ended in a
    UnicodeEncodeError traceback after the split was written; an error quoting such a name showed the byte as
    \\udcff. Both streams now show it as \\xff, as the documents do."""
    from pathlib import Path
    monkeypatch.setenv("PYTHONIOENCODING", "utf-8")   # strict stdout
    source = make_folder_dataset(tmp_path / "flat", {"train": 12, "test": 0}) / "train"
    dest = Path(os.fsdecode(os.fsencode(tmp_path) + b"/xrays-\xff"))
    r = genaug("data", "split", source, "--to", dest)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"wrote {tmp_path}/xrays-\\xff" in r.stdout, r.stdout
    r = genaug("data", "info", "--data", dest / "missing")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"{tmp_path}/xrays-\\xff/missing" in r.stderr and "udcff" not in r.stderr, r.stderr


def test_threshold_and_predict_on_hostile_labelled_images_name_each_file_they_skip(hostile, tmp_path):
    """genaug threshold reads a user's own labelled images, where such files turn up: each unreadable one is
    named with its reason, the looping link too (it was passed over without a word), and the rest are used."""
    from test_predict import brightness_model

    model, site = brightness_model(tmp_path / "m.pt"), hostile / "train"
    before = _snapshot(hostile)
    r = genaug("threshold", site, "--checkpoint", model, "--out", tmp_path / "site.pt")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    said = dict(line.split(": ", 1) for line in r.stderr.splitlines() if line.startswith("skipped "))
    d = f"skipped {site}/NORMAL"
    assert said == {f"{d}/IM-0800-0001.jpeg": "not an image", f"{d}/IM-0801-0001.jpeg": "not an image",
                    f"{d}/IM-0802-0001.png": "not an image", f"{d}/IM-0803-0001.png": "too small (1x1)",
                    f"{d}/IM-0806-0001.png": "decompression-bomb guard (image too large)",
                    f"{d}/IM-0807-0001.png": "broken or looping symbolic link"}
    # the 16 made, the 16-bit, CMYK and oddly named ones, and batch2/'s (read below a folder given)
    assert f"{site}: 20 images of NORMAL, 16 images of PNEUMONIA" in r.stdout
    r = genaug("predict", site / "NORMAL", "--checkpoint", tmp_path / "site.pt")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1 + 20
    assert f"skipped {site}/NORMAL/IM-0807-0001.png: broken or looping symbolic link" in r.stderr
    assert _snapshot(hostile) == before


def test_unreadable_file_is_skipped_with_its_reason(tmp_path, monkeypatch):
    """A file the user may not read is skipped and named, not a traceback. Root reads every file
    whatever its mode, so under root (as in CI here) the operating system's refusal is simulated
    at the one call that opens image files (genaug.data.decode's open: it hands Pillow a file object); elsewhere
    the file really is chmod 000."""
    import builtins

    from genaug.data import decode, load_data

    root = make_folder_dataset(tmp_path / "d", {"train": 16, "test": 6}, size=24)
    victim = sorted((root / "train" / "NORMAL").iterdir())[0]
    if os.geteuid() == 0:
        def refusing_open(fp, *args, **kwargs):
            if os.fsdecode(fp) == str(victim):
                raise PermissionError(13, "Permission denied", str(fp))
            return builtins.open(fp, *args, **kwargs)

        monkeypatch.setattr(decode, "open", refusing_open, raising=False)
    else:
        victim.chmod(0)
    try:
        b = load_data(str(root), 16, cache_dir=tmp_path / "cache")
    finally:
        victim.chmod(0o644)
    reasons = {os.path.basename(p): why for p, why in b.skipped}
    assert list(reasons) == [victim.name]
    assert "Permission denied" in reasons[victim.name]
    assert len(b.train) + len(b.val) == 16 * 2 - 1


def _without_root_reads() -> list[str]:
    """A command prefix under which the operating system refuses what file modes forbid: root without the
    capabilities that let it read and search anything (setpriv), or no prefix for another user."""
    import shutil
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv(1) to run without root's read capabilities")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def test_permissions_the_operating_system_refuses_are_one_line_or_a_named_skip(tmp_path, tiny):
    """Real refusals by the OS, not simulated ones. Found in session 73: a class folder that cannot be
    listed (chmod 000) was said to hold no images ("the training split has no images of class PNEUMONIA"),
    with nothing naming the folder or the permission."""
    import subprocess

    cmd = _without_root_reads() + console_command()

    def run(*args):
        return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=600)

    data = make_folder_dataset(tmp_path / "xrays", {"train": 16, "test": 6})
    victim = sorted((data / "train" / "NORMAL").iterdir())[0]
    victim.chmod(0)
    try:
        r = run("data", "info", "--data", data, "--cache-dir", tmp_path / "cache")
    finally:
        victim.chmod(0o644)
    assert r.returncode == 0 and f"train/NORMAL/{victim.name}: permission denied" in r.stdout, r.stdout + r.stderr
    classes = data / "train" / "PNEUMONIA"
    classes.chmod(0)
    try:
        r = run("data", "info", "--data", data, "--cache-dir", tmp_path / "cache")
    finally:
        classes.chmod(0o755)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr == (f"genaug: error: the training split of {data} has no images of class PNEUMONIA: every class "
                        "needs training images; train/PNEUMONIA: cannot list (Permission denied): make the folder "
                        "readable (chmod u+rx) or run as a user who may read it\n"), r.stderr
    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o555)
    try:
        r = run("benchmark", "--data", "demo", "--profile", tiny, "--models", "cnn", "--variants", "real",
                "--out", out)
    finally:
        out.chmod(0o755)
    assert r.returncode == 2 and r.stderr == (f"genaug: error: Permission denied: {out}/benchmark (check that the "
                                              "paths given exist and can be written, and that the disk has "
                                              "space)\n"), r.stderr
    assert not list(out.iterdir())


def test_a_run_genaug_may_not_read_is_listed_and_not_archived_in_part(tmp_path):
    """Found in session 73, with the operating system refusing: one run folder that may not be read
    (chmod 000) ended `genaug runs` for every run beside it; and `archive` of a run holding a file that may not
    be read stopped on it with the files before it already copied, an archive without its record that looked
    whole."""
    import subprocess

    cmd = _without_root_reads() + console_command()

    def run(*args):
        return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=600)

    runs = []
    for name in ("20261206-000000-a", "20261206-000001-b"):
        d = tmp_path / "out" / "encode" / name
        d.mkdir(parents=True)
        (d / "manifest.json").write_text('{"command": "encode", "finished": true}')
        (d / "config.yaml").write_text("run: {seed: 0}\n")
        (d / "metrics.json").write_text('{"psnr": 30.0}')
        runs.append(d)
    runs[0].chmod(0)
    try:
        r = run("runs", "--out", tmp_path / "out")
    finally:
        runs[0].chmod(0o755)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(str(runs[1]) in x and " finished " in x for x in lines), r.stdout
    assert any(str(runs[0]) in x and " unreadable " in x for x in lines), r.stdout
    assert f"genaug may not read it (Permission denied: {runs[0]}/manifest.json): make it readable" in r.stdout, \
        r.stdout
    (runs[1] / "metrics.json").chmod(0)
    try:
        r = run("archive", runs[1], "--to", tmp_path / "kept")
    finally:
        (runs[1] / "metrics.json").chmod(0o644)
    assert r.returncode == 2 and r.stderr == (f"genaug: error: cannot read 1 file of {runs[1]} (metrics.json: "
                                              "Permission denied): make it readable, then archive again; nothing "
                                              "was written\n"), r.stderr
    assert not (tmp_path / "kept" / "encode").exists()
    r = run("archive", runs[1], "--to", tmp_path / "kept")
    assert r.returncode == 0 and (tmp_path / "kept" / "encode" / runs[1].name / "metrics.json").is_file(), r.stderr


# ----------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs: a real full disk (ENOSPC) for real writes. Needs root and mount(8); skipped elsewhere."""
    import shutil
    import subprocess

    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")

    def resize(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True)

    yield mnt, resize
    subprocess.run(["umount", str(mnt)], check=False)


def test_full_disk_is_one_line_and_the_run_finishes_once_there_is_space(small_disk, tmp_path, tiny):
    """The autoencoder's 2.7 MB checkpoint and its weights do not both fit in 3 MiB: `torch.save` into a
    full disk raised RuntimeError("unexpected pos"), a traceback. Now: one line, exit 2, no temp file
    left; with room again, the command finishes."""
    disk, resize = small_disk
    r = genaug("encode", "--data", "demo", "--profile", tiny, "--out", disk)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    error = [line for line in r.stderr.splitlines() if line.startswith("genaug: error:")]
    assert len(error) == 1 and "no space left on the disk while writing" in error[0]
    assert not list(disk.rglob("*.tmp"))
    resize("64M")
    kept = list((disk / "encode").iterdir()) if (disk / "encode").is_dir() else []
    r = genaug("encode", "--resume", kept[0]) if kept else genaug("encode", "--data", "demo", "--profile", tiny,
                                                                  "--out", disk)
    assert r.returncode == 0, r.stderr
    assert (only_run(disk, "encode") / "latents" / "meta.json").is_file()


def test_full_disk_under_the_image_cache_is_told_not_a_bus_error(small_disk, tmp_path):
    """The decode cache is a sparse memory-mapped file: a store the full disk cannot back killed the
    process with SIGBUS and left the half-written file. Its blocks are now reserved first. (In a child
    process: a regression would kill it, not the test session.)"""
    import subprocess
    import sys

    disk, _ = small_disk
    root = make_folder_dataset(tmp_path / "xray", {"train": 200, "test": 2}, size=64)
    assert 400 * 128 * 128 > 3 * 2**20   # more than the disk holds at 128 px
    code = ("import sys; from pathlib import Path; from genaug.data.cache import decode_cached\n"
            "from genaug.errors import DiskFull\n"
            f"root = Path({str(root)!r})\n"
            "rels = sorted(p.relative_to(root).as_posix() for p in (root / 'train').rglob('*.jpeg'))\n"
            "try:\n"
            f"    decode_cached(root, rels, 128, Path({str(disk / 'cache')!r}))\n"
            "except DiskFull as exc:\n"
            "    sys.exit(f'DiskFull: {exc}')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "DiskFull: no space left on the disk for the decoded-image cache" in r.stderr, \
        (r.returncode, r.stderr[-500:])
    assert not list((disk / "cache").iterdir())


def test_an_unwritable_log_is_one_warning_not_a_traceback_per_line(capfd):
    import logging

    from genaug.runs import RunLogHandler

    handler = RunLogHandler("/dev/full")   # every write to it fails with ENOSPC
    logger = logging.getLogger("genaug.test_full_log")
    logger.addHandler(handler)
    try:
        for i in range(3):
            logger.warning("line %d", i)
    finally:
        logger.removeHandler(handler)
        handler.close()
    err = capfd.readouterr().err
    assert err.count("genaug: warning: cannot write /dev/full") == 1 and "Traceback" not in err


@pytest.mark.parametrize("writer", ["numpy", "torch"])
def test_a_streamed_write_into_a_full_disk_is_told_with_its_path(small_disk, writer):
    """Neither writer says "no space": `np.save` reports its short write as an OSError without errno
    ("N requested and M written"), `torch.save` as RuntimeError("unexpected pos"). A write that
    failed with the disk left full is told as a full disk; the file it would replace is unchanged."""
    import torch

    from genaug.encode import _save_npy_atomic
    from genaug.errors import DiskFull
    from genaug.runs import atomic_torch_save

    disk, _ = small_disk
    arr = np.ones((4, 1024, 1024), np.uint8)   # 4 MiB on a 3 MiB disk
    with open(disk / "plain.npy", "wb") as fh, pytest.raises(OSError) as short:
        np.save(fh, arr)
    assert short.value.errno is None           # what numpy itself says
    (disk / "plain.npy").unlink()
    target = disk / ("train.npy" if writer == "numpy" else "checkpoint.pt")
    target.write_bytes(b"kept")
    with pytest.raises(DiskFull, match=target.name):
        if writer == "numpy":
            _save_npy_atomic(target, arr)
        else:
            atomic_torch_save({"w": torch.ones(1024, 1024)}, target)
    assert target.read_bytes() == b"kept" and not list(disk.glob(".*.tmp"))


def test_a_failed_write_with_room_left_is_not_called_a_full_disk(tmp_path):
    from genaug.runs import atomic_write

    def broken(fh):
        raise RuntimeError("a bug in a writer")

    with pytest.raises(RuntimeError, match="a bug in a writer"):   # as it was: DiskFull is no RuntimeError
        atomic_write(tmp_path / "x.bin", broken)
    assert not list(tmp_path.iterdir())


def _cli_entry_raising(monkeypatch, error: BaseException):
    """genaug's console entry point, with the command it runs raising ``error``."""
    import genaug_cli.main as cli

    def raise_it(*args, **kwargs):
        raise error

    monkeypatch.setattr(cli, "app", raise_it)
    monkeypatch.setattr(cli.signal, "signal", lambda *a: None)   # keep pytest's Ctrl-C handler
    return cli.run


def test_a_full_disk_under_any_other_write_is_one_line(monkeypatch, capsys):
    """Figures and PNGs are written by matplotlib and PIL, whose ENOSPC may carry no file name."""

    with pytest.raises(SystemExit) as stop:
        _cli_entry_raising(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("genaug: error: no space left on the disk: free some space") and err.count("\n") == 1


@pytest.mark.parametrize("error", [
    MemoryError("Unable to allocate 37.3 GiB for an array with shape (100000, 100000) and data type float32"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried "
                 "to allocate 40000000000 bytes. Error code 12 (Cannot allocate memory)"),
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
])
def test_running_out_of_memory_is_one_line_naming_what_to_lower(monkeypatch, capsys, error):
    monkeypatch.setattr("sys.argv", ["genaug", "benchmark", "--image-size", "100000"])
    with pytest.raises(SystemExit) as stop:
        _cli_entry_raising(monkeypatch, error)()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("genaug: error: out of memory (") and "lower --image-size or --batch-size" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv,said", [
    (["benchmark", "--shard", "1/2"], "or free memory and then genaug benchmark --resume /r/b --shard 1/2, which keeps"),
    (["gan", "--class", "all"], "and then genaug gan --resume /r/b, which keeps what finished"),
    (["gan", "sample", "--n", "99999999999"], "run fewer jobs at once or free memory, then run the command again"),
    (["predict", "x.png"], "run fewer jobs at once or free memory, then run the command again"),
])
def test_out_of_memory_names_resume_only_where_the_command_can_resume(monkeypatch, capsys, argv, said):
    """Found in session 55: `gan sample --n` past memory was told to --resume its run, which `gan sample`
    cannot, and to lower --image-size or --batch-size, which it has not."""
    error = MemoryError("Unable to allocate 37.3 GiB")
    error.run_dir = "/r/b"   # as genaug.runs.running sets it
    monkeypatch.setattr("sys.argv", ["genaug", *argv])
    with pytest.raises(SystemExit):
        _cli_entry_raising(monkeypatch, error)()
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1
    assert ("--resume" in err) == ("sample" not in argv and "predict" not in argv)


@pytest.mark.parametrize("error,said", [
    (MemoryError("Unable to allocate 18.6 TiB"), "lower --width, --image-size or --batch-size in a new run, or run "
     "fewer jobs at once or free memory and then run the command again (run folder /r/g removed: it held nothing yet)"),
    (OSError(errno.ENOSPC, "No space left on device"),
     "free some space, then run the command again (run folder /r/g removed: it held nothing yet)"),
])
def test_a_removed_empty_run_is_not_to_be_resumed(monkeypatch, capsys, error, said):
    """Found in session 72: a new run out of memory before it wrote anything was told to --resume."""
    error.run_dir = error.removed_run = "/r/g"   # as genaug.runs.running sets them
    monkeypatch.setattr("sys.argv", ["genaug", "gan", "--width", "100000"])
    with pytest.raises(SystemExit):
        _cli_entry_raising(monkeypatch, error)()
    err = capsys.readouterr().err
    assert err.endswith(said + "\n") and "--resume" not in err and err.count("\n") == 1, err


@pytest.mark.parametrize("argv,said", [
    (["benchmark", "--image-size", "100000"], "lower --image-size or --batch-size in a new run"),
    # found in session 71: `gan --width 100000` (20 TB of weights) was told to lower --image-size or --batch-size
    (["gan", "--width", "100000"], "lower --width, --image-size or --batch-size in a new run"),
    (["encode", "--latent-channels", "100000"], "lower --image-size, --latent-channels or --batch-size in a new run"),
])
def test_out_of_memory_names_the_size_flags_of_the_command(monkeypatch, capsys, argv, said):
    monkeypatch.setattr("sys.argv", ["genaug", *argv])
    with pytest.raises(SystemExit):
        _cli_entry_raising(monkeypatch, MemoryError("Unable to allocate 37.3 GiB"))()
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1


def test_out_of_memory_without_a_message_names_the_error(monkeypatch, capsys):
    # found in session 72: a bare MemoryError (Python's own, from a list too long for memory) printed "out of memory ()"
    monkeypatch.setattr("sys.argv", ["genaug", "predict", "x.png"])
    with pytest.raises(SystemExit):
        _cli_entry_raising(monkeypatch, MemoryError())()
    assert capsys.readouterr().err.startswith("genaug: error: out of memory (MemoryError): run fewer jobs")


def test_other_runtime_errors_keep_their_traceback(monkeypatch):
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        _cli_entry_raising(monkeypatch, RuntimeError("mat1 and mat2 shapes cannot be multiplied"))()


def test_synthetic_images_that_cannot_fit_on_the_disk_are_refused_before_the_first_is_written(small_disk, tmp_path):
    """Each file takes at least one block (a page on tmpfs): one image more than the free blocks hold is
    refused with nothing written, and a count a little under them is written whole (session 70: `gan
    sample --n 100000000` began 200 million files on a disk with room for 19 million)."""
    from genaug.errors import ConfigError
    from genaug.gan import GanState, generator_payload, sample_to_dir
    from genaug.runs import atomic_torch_save
    from test_gan import tiny_cfg

    disk, _ = small_disk
    cfg = tiny_cfg()
    atomic_torch_save(generator_payload(GanState(cfg, 2), cfg, ["A", "B"], "conditional"), tmp_path / "g.pt")
    st = os.statvfs(disk)
    assert st.f_frsize == 4096   # the block this test counts in
    per_class = st.f_bavail // 2 + 1   # two classes: one file more than the disk has blocks for
    with pytest.raises(ConfigError, match=rf"--n {per_class} asks for {2 * per_class:,} files in .*, at least"):
        sample_to_dir(tmp_path / "g.pt", "all", per_class, 0, disk / "out", "cpu")
    assert not list(disk.iterdir())
    # room to spare for the folders and manifest.csv: written, every file
    rows = sample_to_dir(tmp_path / "g.pt", "all", per_class - 40, 0, disk / "out", "cpu")
    assert len(rows) == len(list((disk / "out").rglob("*.png"))) == 2 * (per_class - 40)


def test_latents_that_cannot_fit_on_the_disk_are_refused_before_the_autoencoder_trains(small_disk, tmp_path, tiny):
    """Latents are written after training, which on real data takes hours: a disk without room for them
    is told before it starts (session 70). The figure is what the .npy files then take, their headers aside."""
    import re

    disk, resize = small_disk
    big = tmp_path / "big.yaml"
    big.write_text("encode:\n  image_size: 128\n  latent_channels: 256\n")   # 256x8x8 float16: 32 KiB an image
    r = genaug("encode", "--data", "demo", "--profile", tiny, "--config", big, "--out", disk)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    train, val, test = map(int, re.search(r"train (\d+) images .* val (\d+) images .* test (\d+) images", r.stdout).groups())
    n = (train + val) * 3 + test   # tiny's 2 augmented views of each train and val image, beside the image's own
    assert (f"error: the latents of {n:,} images (2 augmented views of each train and val image among them) "
            f"(256x8x8 float16) take {n * 256 * 8 * 8 * 2 / 1e6:.1f} MB in ") in r.stderr
    assert "epoch" not in r.stdout and not list(disk.glob("encode/*"))   # nothing trained, no run left
    resize("64M")
    r = genaug("encode", "--data", "demo", "--profile", tiny, "--config", big, "--out", disk)
    assert r.returncode == 0, r.stderr[-2000:]
    written = only_run(disk, "encode") / "latents"
    latents = sum(f.stat().st_size for f in written.glob("*.npy") if not f.name.endswith("_labels.npy"))
    assert n * 256 * 8 * 8 * 2 <= latents < n * 256 * 8 * 8 * 2 + 1024   # the bound: each file's header above it
