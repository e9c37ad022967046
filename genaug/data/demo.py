"""Built-in demo data: procedural chest-radiograph-like phantoms.

Two lung fields, ribs, heart and spine shadows, soft tissue and noise; PNEUMONIA
adds a lobar consolidation (``bacteria``) or patchy bilateral opacities (``virus``).
Anatomy is drawn per patient (1-3 images each, with small shifts and exposure
changes), parameters are independent of resolution, and everything is
deterministic by seed.  These are synthetic pictures, not X-rays: every report that
uses them says so.
"""
from __future__ import annotations

import numpy as np

from genaug.data.core import DataBundle, ImageSet

NORMAL_SHARE_TRAIN = 0.26   # Kermany train: 1341 / 5216
NORMAL_SHARE_TEST = 0.375   # Kermany test: 234 / 624
VIRUS_SHARE = 0.35          # of pneumonia images (1345 / 3875)


def _ellipse(x, y, cx, cy, rx, ry, edge=0.04):
    """Soft-edged ellipse mask in [0, 1]."""
    d = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    return 1.0 / (1.0 + np.exp((d - 1.0) / edge))


def _blob(x, y, cx, cy, s):
    return np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s)))


def _patient(rng: np.random.Generator, cause: str) -> dict:
    p = {
        "lung_rx": rng.uniform(0.24, 0.30), "lung_ry": rng.uniform(0.48, 0.60),
        "lung_gap": rng.uniform(0.34, 0.42), "lung_y": rng.uniform(-0.10, 0.0),
        "heart_r": rng.uniform(0.17, 0.24), "rib_spacing": rng.uniform(0.13, 0.17),
        "rib_curve": rng.uniform(0.5, 0.9), "rib_phase": rng.uniform(0, 1),
        "body_rx": rng.uniform(0.80, 0.92), "tissue": rng.uniform(0.40, 0.52), "cause": cause,
        "opac": [],
    }
    if cause == "bacteria":   # one lobar consolidation, lower or middle zone of one lung
        side = rng.choice([-1, 1])
        p["opac"].append(("lobar", side * p["lung_gap"] + rng.uniform(-0.06, 0.06),
                          p["lung_y"] + rng.uniform(0.05, 0.35), rng.uniform(0.10, 0.18),
                          rng.uniform(0.16, 0.32)))
    elif cause == "virus":    # several small patchy opacities in both lungs
        for _ in range(rng.integers(5, 10)):
            side = rng.choice([-1, 1])
            p["opac"].append(("patch", side * p["lung_gap"] + rng.uniform(-0.15, 0.15),
                              p["lung_y"] + rng.uniform(-0.3, 0.4), rng.uniform(0.035, 0.07),
                              rng.uniform(0.10, 0.22)))
    return p


def render(p: dict, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one image of patient ``p`` (with per-image jitter) at ``size`` px as uint8."""
    t = ((np.arange(size) + 0.5) / size * 2 - 1).astype(np.float32)
    x, y = np.meshgrid(t, t)
    dx, dy = rng.uniform(-0.05, 0.05, 2)
    gain, offset = rng.uniform(0.9, 1.1), rng.uniform(-0.04, 0.04)   # drawn before any size-dependent draw
    x, y = x - dx, y - dy
    img = np.full_like(x, 0.04)
    img += p["tissue"] * _ellipse(x, y, 0, 0.08, p["body_rx"], 1.05, 0.06)
    lungs = np.zeros_like(x)
    for side in (-1, 1):
        lungs = np.maximum(lungs, _ellipse(x, y, side * p["lung_gap"], p["lung_y"], p["lung_rx"],
                                           p["lung_ry"], 0.05))
    img -= 0.28 * lungs
    ribs = 0.5 + 0.5 * np.cos(2 * np.pi * ((y - p["rib_curve"] * x ** 2) / p["rib_spacing"] + p["rib_phase"]))
    img += 0.09 * (ribs ** 6) * lungs
    img += 0.20 * _ellipse(x, y, 0.0, 0.0, 0.08, 1.2, 0.12)                      # spine / mediastinum
    img += 0.18 * _ellipse(x, y, 0.12, p["lung_y"] + 0.30, p["heart_r"] * 1.5, p["heart_r"] * 1.1, 0.12)
    img += 0.12 * _ellipse(x, y, 0.0, 0.78, 0.95, 0.25, 0.08)                   # diaphragm / abdomen
    for kind, cx, cy, s, a in p["opac"]:
        if kind == "lobar":
            img += a * _ellipse(x, y, cx, cy, s * 1.2, s, 0.25) * lungs
        else:
            img += a * _blob(x, y, cx, cy, s) * lungs
    img = img * gain + offset                                                   # exposure
    img += rng.normal(0, 0.025, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _make_split(n: int, normal_share: float, size: int, seed: int, split_id: int, pid0: int):
    """Patients and their images come from RNG streams keyed by (seed, split, patient, image), never by
    resolution, so the same data set rendered at 48 px and at 224 px holds the same patients and files."""
    plan_rng = np.random.default_rng([seed, split_id])
    n_norm = int(round(n * normal_share))
    images, labels, patients, paths = [], [], [], []
    made = {"NORMAL": 0, "PNEUMONIA": 0}
    pid = pid0
    while made["NORMAL"] < n_norm or made["PNEUMONIA"] < n - n_norm:
        cls = "NORMAL" if made["NORMAL"] < n_norm else "PNEUMONIA"
        cause = "normal" if cls == "NORMAL" else ("virus" if plan_rng.random() < VIRUS_SHARE else "bacteria")
        pid += 1
        p = _patient(np.random.default_rng([seed, split_id, pid]), cause)
        k_imgs = 1 if cls == "NORMAL" else int(plan_rng.integers(1, 4))
        need = (n_norm if cls == "NORMAL" else n - n_norm) - made[cls]
        for k in range(min(k_imgs, need)):
            images.append(render(p, size, np.random.default_rng([seed, split_id, pid, k])))
            labels.append(0 if cls == "NORMAL" else 1)
            if cls == "NORMAL":
                name, patient = f"IM-{pid:04d}-{k + 1:04d}.png", f"IM-{pid:04d}"
            else:
                name, patient = f"person{pid}_{cause}_{pid * 10 + k}.png", f"person{pid}"
            patients.append(patient)
            paths.append(f"{cls}/{name}")
            made[cls] += 1
    order = np.argsort(paths, kind="stable")
    return ImageSet(np.stack(images)[order], np.array(labels)[order],
                    [patients[i] for i in order], [paths[i] for i in order])


def demo_dataset(size: int = 64, n_train: int = 600, seed: int = 0) -> DataBundle:
    """Train (val carved later by patient, as for the real set) and test phantoms at ``size`` px."""
    train = _make_split(n_train, NORMAL_SHARE_TRAIN, size, seed, split_id=0, pid0=0)
    test = _make_split(max(24, n_train // 4), NORMAL_SHARE_TEST, size, seed, split_id=1, pid0=100_000)
    train.paths = [f"train/{p}" for p in train.paths]
    test.paths = [f"test/{p}" for p in test.paths]
    return DataBundle(name="demo", source="demo", classes=["NORMAL", "PNEUMONIA"],
                      splits={"train": train, "test": test}, image_size=size, synthetic=True,
                      notes=["built-in demo data: procedurally generated phantoms, NOT real X-rays"])
