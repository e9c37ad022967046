"""Issue #8 (g): peak memory (RSS) of genaug.metrics.reconstruction_metrics over one split.

    python bench/reconstruction_memory.py --images 624 --size 224 --chunks 0,32,64

`genaug encode` scores the test split's reconstructions (PSNR, SSIM) in one call. Each setting runs
in a child process of its own (one thread), so each peak is that setting's alone; chunk 0 takes the
whole split at once, as genaug did before session 24. Prints the peak RSS before and after the call.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time


def child(n: int, size: int, chunk: int) -> None:
    import torch
    from genaug.metrics import reconstruction_metrics
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, size, size, generator=gen)
    y = (x + 0.05 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    m = reconstruction_metrics(x, y, chunk=chunk or n)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"| {chunk or 'all'} | {n} | {before / 1024 ** 2:.2f} GiB | {after / 1024 ** 2:.2f} GiB | "
          f"{seconds:.1f} | {m['psnr']:.4f} | {m['ssim']:.6f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=624, help="images in the split (the Kermany test split: 624)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--chunks", default="0,32,64", help="comma list; 0 = the whole split in one call")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        return child(a.images, a.size, a.child)
    print(f"{a.images} images at {a.size} px, one thread")
    print("| chunk | images | peak RSS before | peak RSS after | seconds | PSNR | SSIM |")
    print("|---|---|---|---|---|---|---|")
    for c in a.chunks.split(","):
        subprocess.run([sys.executable, __file__, "--images", str(a.images), "--size", str(a.size),
                        "--child", c.strip()], check=True)


if __name__ == "__main__":
    main()
