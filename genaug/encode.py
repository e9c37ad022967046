"""``genaug encode``: train the convolutional autoencoder on train only, then encode every split once.

Outputs (in the run directory): checkpoint.pt (resumable), autoencoder.pt (final),
latents/{split}.npy (float16) + {split}_labels.npy + manifest.csv + meta.json (with
``encode.views``, also {split}_views.npy for train and val: pixel-augmented copies, encoded once),
reconstructions.png, history.json, metrics.json and summary.md.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from genaug.config import DEFAULT_AUGMENTATIONS, Config, check_resumed_data, config_from_dict, resumed_settings
from genaug.data import DataBundle
from genaug.data.info import squared_sentence
from genaug import distributed
from genaug.inventory import counted, training_left
from genaug.jobs import TRAINING_LIST, held_out_seen, join_ranks, learnt_from_text, read_training_list, start_job, tell, training_subset
from genaug.errors import CheckpointError, ConfigError
from genaug.metrics import reconstruction_metrics
from genaug.models import ConvAutoencoder
from genaug.tracking import Tracker, tracker_for
from genaug.runs import save_safetensors, Run, atomic_torch_save, check_room_for_bytes, atomic_write, atomic_write_document, atomic_write_text, load_checkpoint, nearby_runs_hint, new_run, not_a_run_of, open_run, read_run_config, running, write_json
from genaug.train import (as_tensor, augment_batch, autocast, batch_indices, check_finite, epoch_batches,
                          resident_device, to_float, training_layout, training_precision, trains_in_cpu_bf16,
                          asked_channels_last, chose_channels_last, epoch_flags, training_layout_text)

log = logging.getLogger("genaug")
AE_KEYS = ("kind", "model", "image_size", "latent_channels")


def load_autoencoder(path: str | Path, image_size: int | None = None, latent_channels: int | None = None):
    """The autoencoder a genaug encode run saved, in eval mode (as load_generator and load_classifier give
    theirs: in training mode its batch norms would use, and update, each batch's statistics), and its
    checkpoint dict."""
    ckpt = load_checkpoint(path, AE_KEYS, kind="autoencoder checkpoint")
    if ckpt["kind"] != "autoencoder":
        raise CheckpointError(f"{path} is a {ckpt['kind']} checkpoint, not an autoencoder")
    if image_size is not None and ckpt["image_size"] != image_size:
        raise CheckpointError(f"autoencoder {path} takes {ckpt['image_size']} px images, not {image_size}; "
                              "match encode.image_size or train a new one")
    if latent_channels is not None and ckpt["latent_channels"] != latent_channels:
        raise CheckpointError(f"autoencoder {path} has {ckpt['latent_channels']} latent channels, not "
                              f"{latent_channels}")
    model = ConvAutoencoder(ckpt["image_size"], ckpt["latent_channels"])
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def autoencoder_of(enc_dir: str | Path) -> Path:
    """The autoencoder checkpoint behind an encode run's latents: the run's own autoencoder.pt, or the
    one it reused (encode.checkpoint)."""
    d = Path(enc_dir)
    if (d / "autoencoder.pt").is_file():
        return d / "autoencoder.pt"
    reused = str(read_run_config(d).get("encode", {}).get("checkpoint") or "") if (d / "config.yaml").is_file() else ""
    if reused and Path(reused).is_file():
        return Path(reused)
    raise CheckpointError(f"encode run {d} has no autoencoder.pt" + (f", and the one it reused ({reused}) is gone"
                          if reused else "") + "; --save-models keeps an encoded cell's model with the autoencoder "
                          "that encodes its input, so give an encode run that still has it (or --no-save-models)")


def _ae_checkpoint(model, opt, sched, epoch, history, cfg: Config, classes) -> dict:
    return {"kind": "autoencoder", "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "epoch": epoch, "history": history, "config": cfg.to_dict(),
            "image_size": model.image_size, "latent_channels": model.latent_channels, "classes": classes}


def train_autoencoder(model: ConvAutoencoder, bundle: DataBundle, cfg: Config, run: Run, device,
                      start: dict | None = None, tracker: Tracker | None = None) -> list[dict]:
    """MSE + Adam on the training split only; val loss per epoch; atomic checkpoint every epoch."""
    e = cfg.encode
    bf16 = trains_in_cpu_bf16(cfg.run, device)
    layout = training_layout(cfg.run, device)
    train_x = as_tensor(bundle.train.images, resident_device(device))
    val_x = as_tensor(bundle.val.images)
    opt = torch.optim.Adam(model.parameters(), lr=e.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=e.epochs)
    history, first = [], 1
    if start is not None:
        model.load_state_dict(start["model"])
        opt.load_state_dict(start["optimizer"])
        sched.load_state_dict(start["scheduler"])
        history, first = list(start["history"]), int(start["epoch"]) + 1
        log.info("resuming autoencoder training at epoch %d", first)
    gen = torch.Generator().manual_seed(cfg.run.seed)
    for _ in range(first - 1):  # keep the shuffling stream as an uninterrupted run would have it
        torch.randperm(len(train_x), generator=gen)
    model.to(device, memory_format=layout)
    net = distributed.wrap(model, torch.device(device))   # DDP under torchrun, else the model itself
    for epoch in range(first, e.epochs + 1):
        model.train()
        total, seen, t0, lr_now = 0.0, 0, time.perf_counter(), opt.param_groups[0]["lr"]
        bar = tqdm(epoch_batches(len(train_x), e.batch_size, gen, cfg.run.seed, epoch), desc=f"autoencoder {epoch}/{e.epochs}", unit="batch", leave=False,
                   disable=distributed.quiet())
        for idx in bar:
            x = to_float(train_x[idx].to(device)).contiguous(memory_format=layout)
            with autocast(device, bf16):
                out = net(x)
            loss = F.mse_loss(out.float(), x)   # the loss in fp32 under bf16 too
            check_finite(loss, "autoencoder")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
            bar.set_postfix(mse=f"{total / seen:.5f}")
        total, seen = distributed.mean_over_ranks(total, seen)
        distributed.sync_buffers(model)
        sched.step()
        val = evaluate_reconstruction(model, val_x, device)
        history.append({"epoch": epoch, "lr": lr_now, "train_mse": total / seen, "val_mse": val["mse"], "val_psnr": val["psnr"],
                        "val_ssim": val["ssim"], "seconds": time.perf_counter() - t0, "bf16": bf16,
                        "channels_last": layout == torch.channels_last})
        # console and log say the same, in the words the classifiers' epochs use
        msg = (f"autoencoder epoch {epoch} of {e.epochs}: train mse {total / seen:.5f}, val psnr {val['psnr']:.2f} dB "
               f"ssim {val['ssim']:.4f} ({time.perf_counter() - t0:.0f} s{epoch_flags(bf16, layout)})"
               f"{training_left(history, e.epochs)}")
        log.info(msg)
        distributed.say(msg, flush=True)
        if tracker is not None:
            tracker.scalars("autoencoder", {"mse/train": total / seen, "mse/val": val["mse"], "psnr/val": val["psnr"],
                                            "ssim/val": val["ssim"], "lr": lr_now}, epoch)
            tracker.histograms("autoencoder", model, epoch)
            tracker.flush()
        # the history first, as the GAN's: a kill between the two leaves it at most one epoch ahead of
        # the checkpoint (genaug runs reads progress from it), never behind
        write_json(run.path("history.json"), history)
        atomic_torch_save(_ae_checkpoint(model, opt, sched, epoch, history, cfg, bundle.classes),
                          run.path("checkpoint.pt"))
    model.to(memory_format=torch.contiguous_format)   # safetensors stores contiguous tensors only
    return history


@torch.no_grad()
def reconstruct(model: ConvAutoencoder, data: torch.Tensor, device, batch_size: int = 64) -> torch.Tensor:
    model.eval()
    out = [model(to_float(data[idx].to(device))).cpu() for idx in batch_indices(len(data), batch_size, False)]
    return torch.cat(out)


@torch.no_grad()
def evaluate_reconstruction(model, data: torch.Tensor, device) -> dict:
    return reconstruction_metrics(to_float(data), reconstruct(model, data, device))


def downsample_baseline(data: torch.Tensor, size: int) -> torch.Tensor:
    """Area-downsample to ``size`` and bicubic-upsample back: what a plain resize keeps."""
    x = to_float(data)
    small = F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(small, size=x.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)


@torch.no_grad()
def encode_split(model: ConvAutoencoder, images: np.ndarray, device, batch_size: int = 64) -> tuple[np.ndarray, float]:
    """Latents (N, C, h, w) float16 for one split in a single no-grad, eval-mode pass; returns images/s too."""
    model.eval()
    data = as_tensor(images)
    out = np.zeros((len(data),) + model.latent_shape, dtype=np.float16)
    t0 = time.perf_counter()
    for idx in batch_indices(len(data), batch_size, False):
        out[idx.numpy()] = model.encode(to_float(data[idx].to(device))).cpu().numpy().astype(np.float16)
    return out, len(data) / max(time.perf_counter() - t0, 1e-9)


@torch.no_grad()
def encode_views(model: ConvAutoencoder, images: np.ndarray, device, views: int, seed: int,
                 augmentations: str = DEFAULT_AUGMENTATIONS, batch_size: int = 64) -> np.ndarray:
    """Latents (N, views, C, h, w) float16 of ``views`` pixel-augmented copies of each image (the
    benchmark's augmentations, drawn from ``seed``): what augmentation gives the pixel models each
    epoch, paid once here, since a latent cannot be rotated or re-lit afterwards."""
    model.eval()
    data = as_tensor(images)
    out = np.zeros((len(data), views) + model.latent_shape, dtype=np.float16)
    gen = torch.Generator().manual_seed(seed)
    for v in range(views):
        for idx in tqdm(list(batch_indices(len(data), batch_size, False)), desc=f"view {v + 1}/{views}",
                        leave=False, unit="batch", disable=distributed.quiet()):
            x = augment_batch(to_float(data[idx].to(device)), gen, enabled=augmentations)
            out[idx.numpy(), v] = model.encode(x).cpu().numpy().astype(np.float16)
    return out


def _save_npy_atomic(path: Path, arr: np.ndarray) -> None:
    atomic_write(path, lambda fh: np.save(fh, arr))


def check_room_for_latents(model: ConvAutoencoder, bundle: DataBundle, out_dir: Path, views: int,
                           overwrite: bool) -> None:
    """Refuse latents that cannot fit on ``out_dir``'s disk before the autoencoder trains: they are written
    only at the end, hours later (a latent set kept as it is needs no room)."""
    if (out_dir / "meta.json").is_file() and not overwrite:
        return
    per_image = int(np.prod(model.latent_shape)) * np.dtype(np.float16).itemsize
    n = sum(len(s) * (1 + views * (name != "test")) for name, s in bundle.splits.items())
    # a resumed run's latents written before it stopped are replaced, in room they hold already
    written = sum(f.stat().st_size for f in out_dir.glob("*.npy")) if out_dir.is_dir() else 0
    among = f" ({counted(views, 'augmented view')} of each train and val image among them)" if views else ""
    what = f"the latents of {n:,} images{among} ({'x'.join(map(str, model.latent_shape))} float16)"
    check_room_for_bytes(out_dir, n * per_image - written, what,
                         "give --out a disk with room" + (", or fewer views (encode.views)" if views else ""))


def write_latents(model: ConvAutoencoder, bundle: DataBundle, out_dir: Path, device, overwrite: bool,
                  source: dict, views: int = 0, seed: int = 0) -> dict:
    """Encode train/val/test into ``out_dir`` (and ``views`` augmented copies of train and val, which
    become training data in K-fold runs; test never is); an existing complete latent set is kept
    unless ``overwrite``."""
    meta_path = out_dir / "meta.json"
    if meta_path.is_file() and not overwrite:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("views", 0) != views:
            raise ConfigError(f"latents in {out_dir} have {meta.get('views', 0)} augmented views, not {views}; "
                              "pass --overwrite to re-encode them")
        log.info("latents in %s exist; kept (pass --overwrite to re-encode)", out_dir)
        return meta
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)  # incomplete until rewritten at the end
    rows, speeds, counts, views_seconds = [], {}, {}, 0.0
    for split, s in bundle.splits.items():
        lat, speeds[split] = encode_split(model, s.images, device)
        _save_npy_atomic(out_dir / f"{split}.npy", lat)
        _save_npy_atomic(out_dir / f"{split}_labels.npy", s.labels)
        counts[split] = len(s)
        if views and split != "test":
            t0 = time.perf_counter()
            _save_npy_atomic(out_dir / f"{split}_views.npy", encode_views(model, s.images, device, views, seed))
            views_seconds += time.perf_counter() - t0
        rows += [(split, i, p, pid, int(lab), bundle.classes[lab])
                 for i, (p, pid, lab) in enumerate(zip(s.paths, s.patients, s.labels))]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["split", "index", "path", "patient", "label", "class"])
    w.writerows(rows)
    atomic_write_text(out_dir / "manifest.csv", buf.getvalue())
    total = sum(counts.values())
    meta = {"latent_shape": list(model.latent_shape), "dtype": "float16", "image_size": model.image_size,
            "classes": bundle.classes, "counts": counts, "data": source,
            "encode_images_per_second": {k: round(v, 1) for k, v in speeds.items()},
            "encode_images_per_second_all": round(total / sum(counts[k] / speeds[k] for k in counts), 1),
            "views": views}
    if views:
        meta.update(view_splits=[k for k in counts if k != "test"], view_augmentations=DEFAULT_AUGMENTATIONS,
                    view_seed=seed, views_seconds=round(views_seconds, 1))
    write_json(meta_path, meta)
    return meta


def latent_set(directory: str | Path) -> Path:
    """The folder of a complete latent set: an encode run's latents/ or the folder itself."""
    d = Path(directory)
    if (d / "latents").is_dir():
        d = d / "latents"
    if not (d / "meta.json").is_file():   # written last, so the set is complete
        raise CheckpointError(f"no complete latent set in {directory} (meta.json missing)"
                              f"{not_a_run_of(directory, 'encode', '--encode-run') or nearby_runs_hint(directory, 'encode') or '; run genaug encode'}")
    return d


def load_latents(directory: str | Path) -> dict:
    """Read a latent set written by ``write_latents``: {split: (latents float16, labels)}, plus meta."""
    d = latent_set(directory)
    meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
    out = {"meta": meta, "splits": {}}
    for split, n in meta["counts"].items():
        try:
            lat = np.load(d / f"{split}.npy", mmap_mode="r")
            lab = np.load(d / f"{split}_labels.npy")
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"latent shard {d / split}.npy is unreadable ({exc}); re-run genaug encode") from None
        if lat.shape != (n, *meta["latent_shape"]) or len(lab) != n:
            raise CheckpointError(f"latent shard {d / split}.npy has shape {lat.shape}, expected {n} x {meta['latent_shape']}")
        out["splits"][split] = (lat, lab)
    if meta.get("views"):
        out["views"] = {}
        for split in meta["view_splits"]:
            path = d / f"{split}_views.npy"
            try:
                v = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise CheckpointError(f"latent views {path} are unreadable ({exc}); re-run genaug encode") from None
            want = (meta["counts"][split], meta["views"], *meta["latent_shape"])
            if v.shape != want:
                raise CheckpointError(f"latent views {path} have shape {v.shape}, expected {want}")
            out["views"][split] = v
    return out


def gather_rows(dst: np.ndarray, src: np.ndarray, rows: np.ndarray, chunk: int = 256) -> np.ndarray:
    """``dst[i] = src[rows[i]]``, ``chunk`` rows at a time (0: all at once). Fancy-indexing a
    memory-mapped latent shard whole builds a temporary copy as large as the result before it is
    stored (1.75 GiB for the Kermany train split's 4 views), so chunks keep the peak to ``dst`` itself."""
    step = chunk or max(len(rows), 1)
    for i in range(0, len(rows), step):
        dst[i:i + step] = src[rows[i:i + step]]
    return dst


def save_reconstruction_grid(original: torch.Tensor, recon: torch.Tensor, path: Path, n: int = 8) -> None:
    # torchvision here, not at the top: it takes seconds to import, and bad input should fail fast
    from torchvision.utils import make_grid, save_image
    n = min(n, len(original))
    save_image(make_grid(torch.cat([to_float(original[:n]), recon[:n]]), nrow=n, padding=2), path)


def compression_summary(image_size: int, latent_shape) -> dict:
    pixels = image_size * image_size
    elems = int(np.prod(latent_shape))
    return {"pixels_per_image": pixels, "latent_elements_per_image": elems,
            "element_ratio": pixels / elems, "bytes_uint8_image": pixels, "bytes_float16_latent": elems * 2,
            "byte_ratio": pixels / (elems * 2)}


def run_encode(cfg: Config, resume: str | None = None, given: dict | None = None) -> Path:
    """The whole job; returns the run directory. A resumed run continues from its checkpoint with its
    own settings; ``given`` (the command line's flags, by section) may change only how it runs."""
    join_ranks(cfg)
    if resume:
        run = open_run(resume, "encode")
        ckpt = load_checkpoint(run.path("checkpoint.pt"), AE_KEYS + ("epoch",), "autoencoder checkpoint") \
            if run.path("checkpoint.pt").is_file() else None
        cfg = config_from_dict(ckpt["config"] if ckpt is not None else read_run_config(run.dir))
        cfg = resumed_settings(cfg, given or {}, run.dir)
        check_resumed_data(cfg.data.data, run.dir)
        reused = None
    else:
        ckpt = None
        # loaded first: a file that is no autoencoder is told before a run is made and the data loaded
        reused = load_autoencoder(cfg.encode.checkpoint, cfg.encode.image_size, cfg.encode.latent_channels)[0] \
            if cfg.encode.checkpoint else None
        run = new_run(cfg.run.out_root, "encode", cfg.run.name, cfg.to_dict())
    with running(run, new=not resume):
        return _encode(cfg, run, ckpt, reused)


def _encode(cfg: Config, run: Run, ckpt: dict | None, reused: torch.nn.Module | None = None) -> Path:
    """``reused``: the autoencoder of encode.checkpoint where the caller has loaded it already."""
    e = cfg.encode
    device, bundle = start_job(cfg, run, e.image_size)
    if e.checkpoint:
        model = reused if reused is not None else load_autoencoder(e.checkpoint, e.image_size, e.latent_channels)[0]
        history = []
        learnt_from = Path(e.checkpoint).parent / TRAINING_LIST   # what the reused model saw, where recorded
        if learnt_from.is_file():
            shutil.copyfile(learnt_from, run.path(TRAINING_LIST))
        log.info("reusing autoencoder %s", e.checkpoint)
        warn_if_model_saw_held_out(read_training_list(run.dir), bundle)
    else:
        model = ConvAutoencoder(e.image_size, e.latent_channels)
    check_room_for_latents(model, bundle, run.path("latents"), e.views, e.overwrite)
    if not e.checkpoint:
        tracker = tracker_for(cfg, run)
        try:
            # it learns from the kept patients only; every image of every split is encoded below
            history = train_autoencoder(model, training_subset(cfg, run, bundle, e.train_fraction, "the autoencoder"),
                                        cfg, run,
                                        device, start=ckpt, tracker=tracker)
            if tracker.enabled:
                from torchvision.utils import make_grid
                x = as_tensor(bundle.test.images[:8])
                tracker.image("autoencoder/test_reconstructions",
                              make_grid(torch.cat([to_float(x), reconstruct(model, x, device)]), nrow=8), len(history))
        finally:
            tracker.close()
        if not distributed.is_main():   # under torchrun: trained together; rank 0 evaluates and encodes
            return run.dir
        atomic_torch_save({"kind": "autoencoder", "model": model.state_dict(), "image_size": e.image_size,
                           "latent_channels": e.latent_channels, "classes": bundle.classes,
                           "config": cfg.to_dict()}, run.path("autoencoder.pt"))
        save_safetensors(model.state_dict(), run.path("autoencoder.safetensors"),
                         {"kind": "autoencoder", "image_size": str(e.image_size),
                          "latent_channels": str(e.latent_channels)})
    model.to(device)
    test_x = as_tensor(bundle.test.images)
    recon = reconstruct(model, test_x, device)
    test = reconstruction_metrics(to_float(test_x), recon)
    bsize = e.baseline_size or e.image_size // 4
    base = reconstruction_metrics(to_float(test_x), downsample_baseline(test_x, bsize))
    save_reconstruction_grid(test_x, recon, run.path("reconstructions.png"))
    meta = write_latents(model, bundle, run.path("latents"), device, e.overwrite,
                         {"data": cfg.data.data, "task": cfg.data.task, "split_seed": cfg.data.split_seed,
                          "val_fraction": cfg.data.val_fraction, "synthetic": bundle.synthetic},
                         views=e.views, seed=cfg.run.seed)
    metrics = {"test": test, "baseline": {"method": f"area {bsize}px + bicubic up", **base},
               "compression": compression_summary(e.image_size, model.latent_shape),
               "baseline_compression": compression_summary(e.image_size, (1, bsize, bsize)),
               "encode_images_per_second": meta["encode_images_per_second_all"],
               "epochs": len(history), "training_precision": training_precision(history) if history else None,
               "training_layout": (training_layout_text(history, asked_channels_last(cfg.run, device))
                                   if history else None),
               "data": bundle.summary(), "resize": cfg.data.resize,
               "train_fraction": e.train_fraction if not e.checkpoint else None,
               "train_images": run.manifest.get("train_images"),
               "views": {k: meta[k] for k in ("views", "view_splits", "view_augmentations", "views_seconds") if k in meta}}
    write_json(run.path("metrics.json"), metrics)
    atomic_write_document(run.path("summary.md"), _summary(metrics, bundle, e))
    run.save_manifest(finished=True)
    tell(f"test: PSNR {test['psnr']:.2f} dB, SSIM {test['ssim']:.4f}, MSE {test['mse']:.6f}  |  baseline "
         f"({bsize}px bicubic): PSNR {base['psnr']:.2f} dB, SSIM {base['ssim']:.4f}")
    tell(f"encoded {sum(meta['counts'].values())} images at {meta['encode_images_per_second_all']} images/s -> "
         f"{run.path('latents')}")
    if meta.get("views"):
        tell(f"encoded {counted(meta['views'], 'augmented view')} of each {'/'.join(meta['view_splits'])} image in "
             f"{meta['views_seconds']} s")
    return run.dir


def warn_if_model_saw_held_out(learnt_from: set[str] | None, bundle: DataBundle) -> None:
    """A reused autoencoder made on another split (another --task, --val-fraction or split seed)
    learnt from images this split holds out: the latents are written, but genaug benchmark will
    refuse them, so say it now rather than when the benchmark starts."""
    for split, saw in held_out_seen(learnt_from, bundle).items():
        log.warning("the reused autoencoder learnt from %d of this run's %s images (it was trained on another "
                    "split): genaug benchmark will refuse these latents; train one on this split", len(saw), split)


def _how_trained(m: dict) -> str:
    """' (bf16 autocast; evaluated and encoded in fp32)' and the like, for summary.md, where the autoencoder
    trained otherwise than in fp32 and the contiguous layout; '' where it did not (or the run does not say)."""
    precision = m.get("training_precision") or "fp32"
    bf16, channels_last = precision != "fp32", chose_channels_last(m)
    if not (bf16 or channels_last):
        return ""
    said = [precision] if bf16 else []
    if channels_last:
        said.append(f"{'its fp32 epochs' if bf16 else 'fp32'} in the channels-last memory layout, --channels-last")
    done_in = {(True, False): "fp32", (False, True): "the contiguous layout", (True, True): "fp32, contiguous"}
    return f" ({'; '.join(said)}; evaluated and encoded in {done_in[bf16, channels_last]})"


def _summary(m: dict, bundle: DataBundle, e) -> str:
    c = m["compression"]
    lines = [f"# Autoencoder report ({bundle.name})", ""]
    if bundle.synthetic:
        lines += ["**Data: built-in demo phantoms, synthetic, not real X-rays.**", ""]
    lines += [
        f"Latent: {e.latent_channels} x {e.image_size // 16} x {e.image_size // 16} from {e.image_size} px input; "
        f"{m['epochs']} epochs trained in this run"
        + _how_trained(m)
        + f". Test split: {len(bundle.test)} images.{squared_sentence(m.get('resize', 'squash'))}",
        "",
        *([f"Trained on {m['train_fraction']:g} of the training patients: "
           f"{learnt_from_text(m['train_images'], len(bundle.train))}, those that `genaug benchmark "
           f"--train-fraction {m['train_fraction']:g}` keeps.", ""]
          if m.get("train_fraction") is not None and m["train_fraction"] < 1 else []),
        "| method | PSNR (dB) | SSIM | MSE | numbers kept per image |",
        "|---|---|---|---|---|",
        f"| autoencoder | {m['test']['psnr']:.2f} | {m['test']['ssim']:.4f} | {m['test']['mse']:.6f} | {c['latent_elements_per_image']} |",
        f"| {m['baseline']['method']} | {m['baseline']['psnr']:.2f} | {m['baseline']['ssim']:.4f} | "
        f"{m['baseline']['mse']:.6f} | {m['baseline_compression']['latent_elements_per_image']} |",
        "",
        f"Compression, honestly: the latent holds {c['latent_elements_per_image']} numbers for "
        f"{c['pixels_per_image']} pixels (ratio {c['element_ratio']:.2f}); stored as float16 it takes "
        f"{c['bytes_float16_latent']} bytes against {c['bytes_uint8_image']} bytes of uint8 pixels "
        f"(ratio {c['byte_ratio']:.2f}). A narrower bottleneck is `--latent-channels`.",
        "",
        f"Encoding throughput: {m['encode_images_per_second']} images/s (eval mode, no autograd).",
        "",
        *([f"Augmented views: {m['views']['views']} per {'/'.join(m['views']['view_splits'])} image "
           f"({m['views']['view_augmentations']}), encoded in {m['views']['views_seconds']} s; `genaug benchmark` "
           "draws one encoding per image per epoch for the latent CNN.", ""] if m["views"].get("views") else []),
        "Test images, originals above and reconstructions below: `reconstructions.png`.",
    ]
    return "\n".join(lines) + "\n"
