"""Hostile and broken input: every command processes or skips each file with a reason, never a
traceback, and never changes the input folder."""
import hashlib
import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import make_folder_dataset
from test_cli import TINY, genaug, only_run


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
    return root


def test_every_hostile_file_is_processed_or_skipped_with_a_reason(hostile, tmp_path):
    before = _snapshot(hostile)
    r = genaug("data", "info", "--data", hostile, "--size", 16, "--json", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads(r.stdout)
    reasons = {item["path"].split("/")[-1]: item["reason"] for item in info["skipped_files"]}
    assert set(reasons) == {"IM-0800-0001.jpeg", "IM-0801-0001.jpeg", "IM-0802-0001.png", "IM-0803-0001.png",
                            "IM-0806-0001.png", "IM-0807-0001.png"}
    assert "guard" in reasons["IM-0806-0001.png"] and "link" in reasons["IM-0807-0001.png"]
    assert "too small" in reasons["IM-0803-0001.png"]
    # the 16-bit, CMYK and oddly named images were read
    assert info["splits"]["train"]["images"] + info["splits"]["val"]["images"] == 16 * 2 + 3
    assert "Traceback" not in r.stderr and _snapshot(hostile) == before


@pytest.mark.slow
def test_commands_on_hostile_folder_finish_and_record_skips(hostile, tmp_path):
    before = _snapshot(hostile)
    prof = tmp_path / "tiny.yaml"
    prof.write_text(TINY)
    r = genaug("encode", "--data", hostile, "--profile", prof, "--out", tmp_path / "o")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    manifest = json.loads((only_run(tmp_path / "o", "encode") / "manifest.json").read_text())
    assert len(manifest["skipped"]) == 6
    assert _snapshot(hostile) == before


def test_unreadable_file_is_skipped_with_its_reason(tmp_path, monkeypatch):
    """A file the user may not read is skipped and named, not a traceback. Root reads every file
    whatever its mode, so under root (as in CI here) the operating system's refusal is simulated
    at the one call that opens image files; elsewhere the file really is chmod 000."""
    from PIL import Image as PILImage

    from genaug.data import load_data

    root = make_folder_dataset(tmp_path / "d", {"train": 16, "test": 6}, size=24)
    victim = sorted((root / "train" / "NORMAL").iterdir())[0]
    if os.geteuid() == 0:
        real_open = PILImage.open

        def refusing_open(fp, *args, **kwargs):
            if os.fsdecode(fp) == str(victim):
                raise PermissionError(13, "Permission denied", str(fp))
            return real_open(fp, *args, **kwargs)

        monkeypatch.setattr(PILImage, "open", refusing_open)
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
