"""Tiny generated datasets: no real X-ray ever enters the test suite."""
from __future__ import annotations

import os
from pathlib import Path

# Two test workers share the 2 cores (pytest -n 2): OpenMP's default spinning idle threads would make each
# worker's torch ops wait on the other's (30x slower steps, docs/PERFORMANCE.md (f)). Set before torch loads,
# as the genaug command does on a busy machine; the commands the tests start inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest
from PIL import Image


def _phantom(rng: np.random.Generator, size: int, sick: bool) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    img = 80 + 60 * np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) * 8) + rng.normal(0, 6, (size, size))
    if sick:
        img += 70 * np.exp(-((x - 0.3) ** 2 + (y - 0.6) ** 2) * 40)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_folder_dataset(root: Path, n_per_class: dict | None = None, size: int = 20, seed: int = 0,
                        with_val: bool = False) -> Path:
    """ROOT/{train,test}/{NORMAL,PNEUMONIA}/ with Kermany-style names, 2 images per patient."""
    rng = np.random.default_rng(seed)
    n_per_class = n_per_class or {"train": 16, "test": 6}
    splits = ["train", "test"] + (["val"] if with_val else [])
    for split in splits:
        n = n_per_class.get(split, 4)
        for cls in ("NORMAL", "PNEUMONIA"):
            d = root / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pid = i // 2 + (1000 if split == "test" else 2000 if split == "val" else 0)
                if cls == "NORMAL":
                    name = f"IM-{pid:04d}-{i % 2 + 1:04d}.jpeg"
                else:
                    cause = "bacteria" if i % 3 else "virus"
                    name = f"person{pid}_{cause}_{i}.jpeg"
                Image.fromarray(_phantom(rng, size, cls == "PNEUMONIA")).convert("RGB").save(d / name)
    return root


# the smallest settings every command trains with in a few seconds on CPU (tests write it as a profile)
TINY = """
data:
  demo_train: 80
run:
  device: cpu
gan:
  ngf: 8
  ndf: 8
  epochs: 2
  batch_size: 16
  n: 12
  eval_images: 12
  judge_epochs: 1
encode:
  image_size: 32
  latent_channels: 16
  views: 2
  epochs: 1
  batch_size: 16
benchmark:
  models: cnn
  image_size: 32
  epochs: 1
  batch_size: 16
  bootstrap: 50
  latent_epochs: 2
"""


@pytest.fixture
def tiny(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    return p


@pytest.fixture
def folder_data(tmp_path: Path) -> Path:
    return make_folder_dataset(tmp_path / "xray")


def dicom_dataset(pixels: np.ndarray, patient: str = "", photometric: str = "MONOCHROME2",
                  window: tuple[float, float] | None = None, bits_stored: int = 12, modality: str = "CR"):
    """A minimal single-frame DICOM dataset (uncompressed, little endian) of uint16 ``pixels``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    if patient:
        ds.PatientID = patient
    ds.Modality = modality
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype("<u2").tobytes()
    return ds


def write_dicom(path: Path, pixels: np.ndarray, patient: str = "", photometric: str = "MONOCHROME2",
                window: tuple[float, float] | None = None, bits_stored: int = 12) -> Path:
    """``dicom_dataset`` written to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dicom_dataset(pixels, patient, photometric, window, bits_stored).save_as(path, enforce_file_format=True)
    return path


def run_cli_noting_torch(args: list[str]):
    """Run ``genaug ARGS`` in a fresh interpreter whose last stdout line says whether torch was imported
    ("torch loaded: False"): how tests hold commands that train nothing to answering without torch."""
    import subprocess
    import sys
    probe = ("import atexit, sys; from genaug_cli.main import run; "
             "atexit.register(lambda: print('torch loaded:', 'torch' in sys.modules)); "
             f"sys.argv = ['genaug', *{[str(a) for a in args]!r}]; run()")
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
