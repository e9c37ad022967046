"""Issue #8 (g): peak memory (RSS) of gathering an encoded cell's training latents into memory.

    python bench/latent_training_memory.py --latents outputs/encode/<run> --chunks 0,256
    python bench/latent_training_memory.py --images 4690 --views 4 --chunks 0,256   # made-up latents

`genaug benchmark` copies the training rows of the encode run's memory-mapped shards (the plain
latents and their augmented views, float16 14x14x256) into one array per encoded cell
(`genaug.encode.gather_rows`). Chunk 0 copies all rows in one fancy-indexing step, as genaug did
before session 28. Each setting runs in a child process of its own, so each peak is that setting's
alone. Pages of the memory-mapped files count in RSS too ("file" below); the kernel can drop
those, the copy ("anon") it cannot.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def status() -> dict[str, float]:
    """RssAnon and RssFile of this process, GiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            out[key] = int(rest.split()[0]) / 2 ** 20
    return out


def child(latents: Path, chunk: int) -> None:
    from genaug.encode import gather_rows, load_latents
    lat = load_latents(latents)
    plain, views = lat["splits"]["train"][0], lat["views"]["train"]
    keep = np.arange(len(plain))    # train fraction 1: every row
    t0 = time.perf_counter()
    x = np.empty((len(keep), 1 + views.shape[1], *plain.shape[1:]), dtype=plain.dtype)
    gather_rows(x[:, 0], plain, keep, chunk=chunk)
    gather_rows(x[:, 1:], views, keep, chunk=chunk)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    s = status()
    print(f"| {chunk or 'all'} | {x.shape} | {x.nbytes / 2 ** 30:.2f} GiB | {peak:.2f} GiB | "
          f"{s['RssAnon']:.2f} / {s['RssFile']:.2f} GiB | {seconds:.1f} |", flush=True)


def made_up_latents(root: Path, images: int, views: int) -> Path:
    """A latent set in write_latents' layout (meta.json, train.npy, train_views.npy), random values."""
    import json
    shape = (256, 14, 14)
    rng = np.random.default_rng(0)
    plain = np.lib.format.open_memmap(root / "train.npy", mode="w+", dtype=np.float16, shape=(images, *shape))
    vw = np.lib.format.open_memmap(root / "train_views.npy", mode="w+", dtype=np.float16,
                                   shape=(images, views, *shape))
    for i in range(0, images, 256):
        plain[i:i + 256] = rng.standard_normal((len(plain[i:i + 256]), *shape), dtype=np.float32)
        vw[i:i + 256] = rng.standard_normal((len(vw[i:i + 256]), views, *shape), dtype=np.float32)
    plain.flush(), vw.flush()
    np.save(root / "train_labels.npy", np.zeros(images, dtype=np.int64))
    (root / "meta.json").write_text(json.dumps({"counts": {"train": images}, "latent_shape": list(shape),
                                                "views": views, "view_splits": ["train"]}))
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latents", type=Path, default=None, help="a genaug encode run (or its latents/ folder)")
    ap.add_argument("--images", type=int, default=4690, help="made-up latents: training images (Kermany: 4690)")
    ap.add_argument("--views", type=int, default=4, help="made-up latents: augmented views per image (cpu profile: 4)")
    ap.add_argument("--chunks", default="0,256", help="comma list; 0 = all rows in one step")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        return child(a.latents, a.child)
    with tempfile.TemporaryDirectory(prefix="genaug-latents-") as tmp:
        latents = a.latents or made_up_latents(Path(tmp), a.images, a.views)
        print(f"latents: {a.latents or f'made up, {a.images} images x (1 + {a.views} views)'}")
        print("| chunk | training array | its size | peak RSS | anon / file RSS after | seconds |")
        print("|---|---|---|---|---|---|")
        for c in a.chunks.split(","):
            subprocess.run([sys.executable, __file__, "--latents", str(latents), "--child", c.strip()], check=True)


if __name__ == "__main__":
    main()
