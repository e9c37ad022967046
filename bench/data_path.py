"""Issue #8 (a): genaug's data path against a plain ImageFolder + PIL + DataLoader pipeline.

Same model (SimpleCNN), resolution, batch size, optimizer and number of images, one after
the other in this process. For each pipeline it reports the epoch time and the share of it
spent outside forward/backward/optimizer steps (getting, decoding and augmenting batches).

    python bench/data_path.py [--data ../shared/data/chest_xray_224] [--size 64] [--n 1024]
                              [--batch-size 64] [--workers 0] [--threads 0]

genaug: images decoded once into the uint8 cache (the decode is timed separately, it happens
once per dataset and resolution), batches by indexing, augmentation on the whole batch as
tensors (genaug.train.augment_batch). Plain: torchvision.datasets.ImageFolder, PIL
transforms per image (grayscale, resize, random affine, colour jitter, to tensor), a
DataLoader. Prints a table and exits.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from genaug.data import load_data
from genaug.models import SimpleCNN
from genaug.train import as_tensor, augment_batch, batch_indices, to_float


def step(model, opt, x, y) -> None:
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def run_genaug(x_all, y_all, batch_size, size) -> tuple[float, float]:
    model = SimpleCNN(1, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    total = compute = 0.0
    t_epoch = time.perf_counter()
    t = time.perf_counter()
    for idx in batch_indices(len(x_all), batch_size, True, gen, drop_last=True):
        x = augment_batch(to_float(x_all[idx]), gen)
        y = y_all[idx]
        t1 = time.perf_counter()
        step(model, opt, x, y)
        t2 = time.perf_counter()
        compute += t2 - t1
    total = time.perf_counter() - t_epoch
    return total, compute


def run_plain(folder, n, batch_size, size, workers) -> tuple[float, float]:
    tf = transforms.Compose([
        transforms.Grayscale(1), transforms.Resize((size, size)),
        transforms.RandomAffine(10, translate=(0.08, 0.08), scale=(0.9, 1.1)),
        transforms.ColorJitter(brightness=0.1, contrast=0.1), transforms.ToTensor()])
    ds = datasets.ImageFolder(folder, transform=tf)
    g = torch.Generator().manual_seed(0)
    ds = Subset(ds, torch.randperm(len(ds), generator=g)[:n].tolist())
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers,
                        generator=g, persistent_workers=False)
    model = SimpleCNN(1, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    compute = 0.0
    t_epoch = time.perf_counter()
    for x, y in loader:
        t1 = time.perf_counter()
        step(model, opt, x, y)
        compute += time.perf_counter() - t1
    return time.perf_counter() - t_epoch, compute


def demo_folder(root: Path, n: int) -> Path:
    """Without the real data: write demo phantoms as JPEGs so the plain pipeline has files to decode."""
    from PIL import Image
    b = load_data("demo", 224, demo_train=n)
    for split, s in (("train", b.train), ("test", b.test)):
        for i, (im, lab) in enumerate(zip(s.images, s.labels)):
            d = root / split / b.classes[lab]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(im).save(d / f"demo{i:05d}.jpeg", quality=90)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/chest_xray_224")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n", type=int, default=1024, help="training images per timed epoch")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers for the plain pipeline")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    data = Path(a.data)
    tmp = None
    if not (data / "train").is_dir():
        tmp = tempfile.TemporaryDirectory()
        data = demo_folder(Path(tmp.name), a.n)
        print(f"{a.data} not found: using {a.n} demo phantoms written as JPEG")
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        bundle = load_data(str(data), a.size, cache_dir=Path(cache))
        decode_s = time.perf_counter() - t0
    keep = torch.randperm(len(bundle.train), generator=torch.Generator().manual_seed(0))[:a.n].numpy()
    x_all = as_tensor(bundle.train.images[keep])
    y_all = torch.from_numpy(bundle.train.labels[keep]).long()
    run_genaug(x_all, y_all, a.batch_size, a.size)            # warm-up epoch
    g_total, g_comp = run_genaug(x_all, y_all, a.batch_size, a.size)
    p_total, p_comp = run_plain(data / "train", a.n, a.batch_size, a.size, a.workers)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.n} images of {a.size} px, "
          f"batch {a.batch_size}, SimpleCNN; plain pipeline with {a.workers} DataLoader workers")
    print(f"genaug one-time decode of all splits into the cache: {decode_s:.1f} s "
          f"({len(bundle.train) + len(bundle.val) + len(bundle.test)} images)")
    print("| pipeline | epoch s | images/s | share outside model steps |")
    print("|---|---|---|---|")
    for name, tot, comp in (("genaug (cached uint8, batch tensor augmentation)", g_total, g_comp),
                            ("plain (ImageFolder + PIL transforms + DataLoader)", p_total, p_comp)):
        print(f"| {name} | {tot:.1f} | {a.n / tot:.0f} | {100 * (tot - comp) / tot:.1f}% |")
    print(f"genaug epoch is {p_total / g_total:.2f}x faster")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
