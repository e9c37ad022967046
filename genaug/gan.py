"""``genaug gan``: train a class-conditional DCGAN (or one per class), write synthetic images, judge them.

Run directory: checkpoint-<model>.pt (resumable, every epoch), generator-<model>.pt
(EMA generator for sampling), samples/epoch_NNN.png, synthetic/<CLASS>/*.png with
synthetic/manifest.csv, judge.pt (the real-trained classifier behind the quality
report), metrics.json, quality.md, memorization-<CLASS>.png.
"""
from __future__ import annotations

import copy
import csv
import io
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from genaug.config import Config, check_resumed_data, config_from_dict, resumed_settings
from genaug import distributed
from genaug.inventory import counted, training_left
from genaug.jobs import join_ranks, start_job, tell, training_subset
from genaug.data.loading import check_out_outside_data, resolve_classes
from genaug.errors import CheckpointError, ConfigError, DataError, TrainingDiverged
from genaug.models import Discriminator, Generator, dcgan_init
from genaug.tracking import Tracker, tracker_for
from genaug.runs import save_safetensors, Run, atomic_torch_save, check_room_for_files, atomic_write_text, load_checkpoint, nearby_runs_hint, new_run, not_a_run_of, open_run, read_run_config, data_learnt_from, running, write_json
from genaug.train import (as_tensor, autocast, check_finite, epoch_batches, resident_device, to_float,
                          epoch_flags, asked_channels_last, training_layout, training_layout_text, training_precision,
                          trains_in_cpu_bf16)

log = logging.getLogger("genaug")
GEN_KEYS = ("kind", "generator", "nz", "ngf", "image_size", "classes", "conditional")
MIN_CLASS_IMAGES = 16


class TooFewClassImages(DataError):
    """A class asked of the GAN has fewer than MIN_CLASS_IMAGES training images."""


# ----------------------------------------------------------------------------- augmentation


def diff_augment(x: torch.Tensor) -> torch.Tensor:
    """Differentiable augmentation (Zhao et al. 2020): brightness, translation, cutout; same ops on real and fake."""
    b, _, h, w = x.shape
    x = x + (torch.rand(b, 1, 1, 1, device=x.device) - 0.5) * 0.4
    sh, sw = h // 8, w // 8
    tx = torch.randint(-sw, sw + 1, (b,), device=x.device)
    ty = torch.randint(-sh, sh + 1, (b,), device=x.device)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2], theta[:, 1, 2] = 2 * tx / w, 2 * ty / h
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), padding_mode="border",
                      align_corners=False)
    ch, cw = h // 4, w // 4
    cy = torch.randint(0, h - ch + 1, (b, 1, 1), device=x.device)
    cx = torch.randint(0, w - cw + 1, (b, 1, 1), device=x.device)
    yy = torch.arange(h, device=x.device).view(1, h, 1)
    xx = torch.arange(w, device=x.device).view(1, 1, w)
    hole = ((yy >= cy) & (yy < cy + ch) & (xx >= cx) & (xx < cx + cw)).unsqueeze(1)
    return x.masked_fill(hole, -1.0)

# ----------------------------------------------------------------------------- training


class GanState:
    """Generator, discriminator, EMA generator and their optimizers for one model."""

    def __init__(self, cfg: Config, n_classes: int):
        g = cfg.gan
        self.n_classes = n_classes
        self.G = Generator(g.nz, g.ngf, g.image_size, n_classes)
        self.D = Discriminator(g.ndf, g.image_size, n_classes, aux=g.conditioning == "acgan")
        self.G.apply(dcgan_init)
        self.D.apply(dcgan_init)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.G_net, self.D_net = self.G, self.D   # what train_step calls: DDP wrappers under torchrun
        self.optG = torch.optim.Adam(self.G.parameters(), lr=g.lr, betas=(g.beta1, 0.999))
        self.optD = torch.optim.Adam(self.D.parameters(), lr=g.lr, betas=(g.beta1, 0.999))
        self.epoch, self.step, self.history = 0, 0, []

    def to(self, device, layout=torch.contiguous_format):
        """``layout`` for G and D, which train; the EMA generator, which samples, keeps the contiguous one it
        always had, so that its images do not depend on how G and D were trained."""
        for m in (self.G, self.D):
            m.to(device, memory_format=layout)
        self.G_ema.to(device)
        return self

    def distribute(self, device, sync_batchnorm: bool = False) -> None:
        """Under torchrun: DDP around G and D (the wrapped modules are self.G and self.D, so
        checkpoints and the EMA see the trained weights without a 'module.' prefix)."""
        if distributed.active():
            self.G_net = distributed.wrap(self.G, torch.device(device), sync_batchnorm)
            self.D_net = distributed.wrap(self.D, torch.device(device), sync_batchnorm)
            self.G, self.D = distributed.unwrap(self.G_net), distributed.unwrap(self.D_net)

    def state(self, cfg: Config, classes: list[str], key: str) -> dict:
        return {"kind": "gan", "key": key, "G": self.G.state_dict(), "D": self.D.state_dict(),
                "G_ema": self.G_ema.state_dict(), "optG": self.optG.state_dict(), "optD": self.optD.state_dict(),
                "epoch": self.epoch, "step": self.step, "history": self.history, "config": cfg.to_dict(),
                "classes": classes, "n_classes": self.n_classes}

    def load(self, ckpt: dict) -> None:
        for name in ("G", "D", "G_ema", "optG", "optD"):
            getattr(self, name).load_state_dict(ckpt[name])
        self.epoch, self.step, self.history = int(ckpt["epoch"]), int(ckpt["step"]), list(ckpt["history"])

    @torch.no_grad()
    def update_ema(self, decay: float, start: int) -> None:
        # Ramp the decay with the step count so short runs (a few hundred steps on a CPU) average
        # over recent weights only; a fixed 0.999 would keep half of step-200 weights at step 800.
        d = 0.0 if self.step < start else min(decay, (1 + self.step) / (10 + self.step))
        for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
            pe.lerp_(p, 1 - d)
        for be, b in zip(self.G_ema.buffers(), self.G.buffers()):
            be.copy_(b)


def train_step(st: GanState, real: torch.Tensor, labels: torch.Tensor | None, cfg: Config, gen: torch.Generator,
               bf16: bool = False):
    """One non-saturating GAN step with one-sided label smoothing; returns (loss_d, loss_g).

    With AC-GAN conditioning D also learns the class of real images, and G is also trained to
    make D read the requested class from its images. ``bf16``: G and D compute under bf16 autocast
    (--cpu-amp on a CPU); the losses, weights and optimizer steps stay in fp32.
    """
    g = cfg.gan
    b = real.size(0)
    dev = real.device
    aug = diff_augment if g.diffaug else (lambda t: t)
    acgan = st.D.aux

    def judge(x):   # (real/fake logits, class logits or None), in fp32 for the losses
        with autocast(dev, bf16):
            out = st.D_net(aug(x), None if acgan else labels)
        out = out if acgan else (out, None)
        return tuple(None if o is None else o.float() for o in out)

    z = torch.randn(b, g.nz, generator=gen).to(dev)
    with autocast(dev, bf16):
        fake = st.G_net(z, labels)
    d_real, cls_real = judge(real)
    d_fake, _ = judge(fake.detach())
    loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, g.real_label))
              + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
    if acgan:   # the class head learns from real images only, so it stays a real-data classifier
        loss_d = loss_d + g.aux_weight * F.cross_entropy(cls_real, labels)
    st.optD.zero_grad(set_to_none=True)
    loss_d.backward()
    st.optD.step()
    d_gen, cls_gen = judge(fake)
    loss_g = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
    if acgan:
        loss_g = loss_g + g.aux_weight * F.cross_entropy(cls_gen, labels)
    st.optG.zero_grad(set_to_none=True)
    loss_g.backward()
    st.optG.step()
    st.step += 1
    st.update_ema(g.ema_decay, g.ema_start)
    return loss_d.item(), loss_g.item()


def fixed_noise(cfg: Config, n_classes: int, per_class: int = 8):
    gen = torch.Generator().manual_seed(cfg.run.seed + 12345)
    rows = max(n_classes, 1)
    z = torch.randn(rows * per_class, cfg.gan.nz, generator=gen)
    labels = torch.arange(rows).repeat_interleave(per_class) if n_classes else None
    return z, labels


def train_gan_model(key: str, images: np.ndarray, labels: np.ndarray | None, n_classes: int, cfg: Config,
                    run: Run, classes: list[str], device, ckpt: dict | None, tracker: Tracker | None = None) -> GanState:
    # torchvision here, not at the top: it takes seconds to import, and bad input should fail fast
    from torchvision.utils import make_grid, save_image
    g = cfg.gan
    st = GanState(cfg, n_classes)
    if ckpt is not None:
        st.load(ckpt)
        log.info("gan %s: resuming after epoch %d", key, st.epoch)
    bf16 = trains_in_cpu_bf16(cfg.run, device)
    layout = training_layout(cfg.run, device)
    st.to(device, layout)
    st.distribute(device, g.sync_batchnorm)
    x = as_tensor(images, resident_device(device))
    y = torch.from_numpy(labels) if labels is not None else None
    # noise and augmentation draws; each rank its own under torchrun
    gen = torch.Generator().manual_seed(cfg.run.seed * 7919 + st.step + 1_000_003 * distributed.rank())
    zfix, yfix = fixed_noise(cfg, n_classes)
    run.path("samples").mkdir(exist_ok=True)
    bs = min(g.batch_size, len(x))
    for epoch in range(st.epoch + 1, g.epochs + 1):
        st.G.train()
        st.D.train()
        t0, sums, n = time.perf_counter(), [0.0, 0.0], 0
        bar = tqdm(epoch_batches(len(x), bs, gen, cfg.run.seed, epoch, drop_last=True), desc=f"gan {key} {epoch}/{g.epochs}", unit="batch", leave=False,
                   disable=distributed.quiet())
        for idx in bar:
            real = (to_float(x[idx].to(device)) * 2 - 1).contiguous(memory_format=layout)
            ld, lg = train_step(st, real, y[idx].to(device) if y is not None else None, cfg, gen, bf16)
            for value, what in ((ld, "discriminator"), (lg, "generator")):
                check_finite(torch.tensor(value), f"GAN {what}")
            sums[0] += ld
            sums[1] += lg
            n += 1
            bar.set_postfix(loss_d=f"{ld:.3f}", loss_g=f"{lg:.3f}")
        # the epoch's mean over all ranks, so every rank takes the same blow-up decision
        (sum_d, count), (sum_g, _) = distributed.mean_over_ranks(sums[0], n), distributed.mean_over_ranks(sums[1], n)
        mean_d, mean_g = sum_d / max(count, 1), sum_g / max(count, 1)
        for m in (st.G, st.D, st.G_ema):   # G_ema copies G's buffers each step
            distributed.sync_buffers(m)
        if mean_g > g.max_loss or mean_d > g.max_loss:
            raise TrainingDiverged(f"GAN {key} blew up in epoch {epoch} (mean loss D {mean_d:.1f}, G {mean_g:.1f}); "
                                   "stopped, and only what finished before it is kept: a new run with --diffaug or a "
                                   "lower --lr may train")
        st.epoch = epoch
        st.history.append({"epoch": epoch, "loss_d": mean_d, "loss_g": mean_g, "steps": st.step,
                           "seconds": time.perf_counter() - t0, "bf16": bf16,
                           "channels_last": layout == torch.channels_last})
        with torch.no_grad():
            st.G_ema.eval()
            grid = st.G_ema(zfix.to(device), yfix.to(device) if yfix is not None else None)
        grid = make_grid((grid.cpu() + 1) / 2, nrow=8)
        if distributed.is_main():
            save_image(grid, run.path("samples", f"{key}_epoch_{epoch:03d}.png"))
        if tracker is not None:
            tracker.scalars(f"gan_{key}", {"loss/discriminator": mean_d, "loss/generator": mean_g}, epoch)
            tracker.image(f"gan_{key}/samples", grid, epoch)
            tracker.histograms(f"gan_{key}/generator", st.G, epoch)
            tracker.histograms(f"gan_{key}/discriminator", st.D, epoch)
            tracker.flush()
        if distributed.is_main():   # each epoch, not only at the end: genaug runs reads progress from it
            write_json(run.path(f"history-{key}.json"), st.history)
        atomic_torch_save(st.state(cfg, classes, key), run.path(f"checkpoint-{key}.pt"))
        msg = (f"gan {key} epoch {epoch} of {g.epochs}: loss D {mean_d:.3f} G {mean_g:.3f} "
               f"({n * bs / max(time.perf_counter() - t0, 1e-9):.0f} img/s{epoch_flags(bf16, layout)})"
               # per-class GANs train one after another: the time left is this class's
               f"{training_left(st.history, g.epochs, 'training' if n_classes else f'{key} training')}")
        log.info(msg)
        distributed.say(msg, flush=True)
    return st


def generator_payload(st: GanState, cfg: Config, classes: list[str], key: str) -> dict:
    return {"kind": "generator", "key": key, "generator": st.G_ema.state_dict(), "nz": cfg.gan.nz,
            "ngf": cfg.gan.ngf, "image_size": cfg.gan.image_size, "classes": classes,
            "conditional": st.n_classes > 0, "class_name": None if st.n_classes else key,
            "epoch": st.epoch, "step": st.step, "config": cfg.to_dict()}


def load_generator(path: str | Path) -> tuple[Generator, dict]:
    ckpt = load_checkpoint(path, GEN_KEYS, kind="generator checkpoint")
    if ckpt["kind"] != "generator":
        raise CheckpointError(f"{path} is a {ckpt['kind']} checkpoint, not a generator")
    G = Generator(ckpt["nz"], ckpt["ngf"], ckpt["image_size"], len(ckpt["classes"]) if ckpt["conditional"] else 0)
    try:
        G.load_state_dict(ckpt["generator"])
    except RuntimeError as exc:
        raise CheckpointError(f"generator {path} does not match its recorded shape ({str(exc)[:120]})") from None
    return G.eval(), ckpt

# ----------------------------------------------------------------------------- sampling


def sample_class(G: Generator, ckpt: dict, class_name: str, n: int, seed: int, device,
                 batch_size: int = 256) -> np.ndarray:
    """``n`` uint8 images of ``class_name``; the same seed gives the same images."""
    return np.concatenate(list(sample_batches(G, ckpt, class_name, n, seed, device, batch_size)))


@torch.no_grad()
def sample_batches(G: Generator, ckpt: dict, class_name: str, n: int, seed: int, device, batch_size: int = 256):
    """``sample_class``'s images, ``batch_size`` at a time as (b, H, W) uint8, each batch's noise drawn in
    turn from one seeded generator: `gan sample --n 1000000` never holds more than a batch (its noise
    alone, drawn at once, took 400 bytes an image; its images, 4-16 kB each)."""
    if n <= 0:
        raise ConfigError(f"--n must be positive, got {n}")
    classes = ckpt["classes"]
    if ckpt["conditional"]:
        if class_name not in classes:
            raise ConfigError(f"unknown class '{class_name}'; this generator knows {', '.join(classes)}")
        c = classes.index(class_name)
    else:
        if class_name != ckpt["class_name"]:
            raise ConfigError(f"this generator was trained on class {ckpt['class_name']} only, not {class_name}")
        c = classes.index(class_name)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + c)
    G.to(device).eval()
    for s in range(0, n, batch_size):
        zz = torch.randn(min(batch_size, n - s), ckpt["nz"], generator=gen).to(device)
        labels = torch.full((len(zz),), c, dtype=torch.long, device=device) if ckpt["conditional"] else None
        yield ((G(zz, labels).cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)[:, 0].numpy()


def write_synthetic(images: np.ndarray, class_name: str, out_dir: Path, seed: int, checkpoint: str,
                    step: int, start: int = 0) -> list[list]:
    """PNG files under out_dir/<CLASS>/ and their manifest rows (file, class, seed, index, checkpoint, step);
    ``start``: the index of the first image, for images written a batch at a time."""
    d = out_dir / class_name
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, im in enumerate(images, start):
        name = f"{class_name}/synthetic_{class_name}_{seed}_{i:05d}.png"
        Image.fromarray(im).save(out_dir / name)
        rows.append([name, class_name, seed, i, checkpoint, step])
    return rows


def write_manifest_csv(path: Path, rows: list[list]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "class", "seed", "index", "checkpoint", "step"])
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def check_sample_out(out_root: str | Path, checkpoint: str | Path) -> None:
    """``gan sample --out`` outside the data folder the generator's run learnt from: its synthetic images
    would otherwise sit among that data's X-rays (``check_out_outside_data``)."""
    if spec := data_learnt_from(Path(checkpoint).resolve().parent):
        check_out_outside_data(out_root, spec)


def sample_to_dir(checkpoint: str | Path, class_arg: str, n: int, seed: int, out_dir: Path, device,
                  planned=None) -> list[list]:
    """``genaug gan sample``: images from a trained generator, no training. ``planned``: called with the
    number of images to write, once the classes are known (for `genaug runs` to tell the time left)."""
    G, ckpt = load_generator(checkpoint)
    # a --per-class GAN has one generator per class, side by side, and 'all' is the one class each draws.
    # Another class named was told "unknown class 'PNEUMONIA'; the data has: NORMAL" (found in session 55).
    if not ckpt["conditional"] and class_arg.lower() != "all":
        if others := [c for c in resolve_classes(class_arg, ckpt["classes"]) if c != ckpt["class_name"]]:
            beside = Path(checkpoint).with_name(f"generator-{others[0]}.pt")
            raise ConfigError(f"{checkpoint} draws {ckpt['class_name']} only (one generator per class, --per-class); "
                              + (f"{others[0]}'s is {beside}" if beside.is_file() else f"give {others[0]}'s generator")
                              + f", or --class {ckpt['class_name']}")
    names = resolve_classes(class_arg, ckpt["classes"] if ckpt["conditional"] else [ckpt["class_name"]])
    check_room_for_files(out_dir, n * len(names), f"--n {n}")
    if planned:
        planned(n * len(names))
    rows = []
    with tqdm(total=n * len(names), desc="gan sample", unit="img", leave=False, disable=None) as bar:
        for c in names:
            rows += write_class(G, ckpt, c, n, seed, device, out_dir, str(checkpoint), bar)[0]
    write_manifest_csv(out_dir / "manifest.csv", rows)
    return rows


def write_class(G: Generator, ckpt: dict, class_name: str, n: int, seed: int, device, out_dir: Path,
                checkpoint: str, bar, keep: int = 0) -> tuple[list[list], np.ndarray | None]:
    """Draw ``n`` images of a class and write them a batch at a time (``sample_batches``, ``write_synthetic``):
    their manifest rows, and the first ``keep`` images (all a quality report reads; None for 0), never all ``n``."""
    rows, first = [], []
    for images in sample_batches(G, ckpt, class_name, n, seed, device):
        if len(rows) < keep:
            first.append(images[:keep - len(rows)].copy())
        rows += write_synthetic(images, class_name, out_dir, seed, checkpoint, ckpt["step"], start=len(rows))
        bar.update(len(images))
    return rows, np.concatenate(first) if first else None

# ----------------------------------------------------------------------------- the job


def run_gan(cfg: Config, class_arg: str | None = None, resume: str | None = None, given: dict | None = None) -> Path:
    """A new GAN run, or ``resume`` one from its checkpoints with its own settings; ``given`` (the
    flags of the command line, by config section) may change only how it runs (RESUME_MAY_CHANGE).
    ``class_arg``: a class name or 'all' (None: all, or a resumed run's own classes)."""
    join_ranks(cfg)
    if resume:
        run = open_run(resume, "gan")
        saved = sorted(run.dir.glob("checkpoint-*.pt"))
        cfg = config_from_dict(load_checkpoint(saved[0], ("config",), "GAN checkpoint")["config"] if saved
                               else read_run_config(run.dir))
        cfg = resumed_settings(cfg, given or {}, run.dir)
        check_resumed_data(cfg.data.data, run.dir)
    else:
        if cfg.gan.n <= 0:
            raise ConfigError(f"--n must be positive, got {cfg.gan.n}")
        run = new_run(cfg.run.out_root, "gan", cfg.run.name, cfg.to_dict())
    with running(run, new=not resume):
        return _gan(cfg, run, class_arg)


def _gan(cfg: Config, run: Run, class_arg: str | None) -> Path:
    from genaug.quality import inception_extractor, quality_report

    g = cfg.gan
    device, bundle = start_job(cfg, run, g.image_size)
    # everything below (GAN, judge, near-copy search) sees only the kept patients, as a user who has
    # only that share of the data would
    bundle = training_subset(cfg, run, bundle, g.train_fraction, "the GAN")
    if g.sync_batchnorm and device.type != "cuda":
        raise ConfigError("--sync-batchnorm needs CUDA GPUs (PyTorch has no CPU kernel for SyncBatchNorm); drop it")
    # built before training, so a missing torch-fidelity or weights file fails now, not after it
    inception = inception_extractor(device) if g.fid_features == "inception" else None
    recorded = run.manifest.get("classes_requested")   # set when this is a resumed run
    # --class '' (a shell variable left unset) is no class, not all of them (it trained every class before session 56)
    wanted = (resolve_classes("all" if class_arg is None else class_arg, bundle.classes)
              if class_arg is not None or not recorded else recorded)
    if recorded and wanted != recorded:
        raise ConfigError(f"--class {class_arg} differs from this run's classes ({', '.join(recorded)}); a resumed "
                          "run keeps its own: drop --class, or start a new run")
    counts = dict(zip(bundle.classes, bundle.train.class_counts(len(bundle.classes))))
    if short := [c for c in wanted if counts[c] < MIN_CLASS_IMAGES]:
        enough = [c for c in bundle.classes if counts[c] >= MIN_CLASS_IMAGES]
        other = f", or train a GAN of the others only (--class {','.join(enough)})" if enough else ""
        frac = f" at --train-fraction {g.train_fraction:g}" if g.train_fraction < 1 else ""
        raise TooFewClassImages(f"class {short[0]} has {counted(counts[short[0]], 'training image')}{frac}; a GAN "
                                f"needs at least {MIN_CLASS_IMAGES}: give more images of it{other}")
    if not run.manifest.get("finished"):   # before training: its images would not fit on the disk
        # a resumed run writes its images again over any it wrote before it stopped
        written = sum(1 for _ in run.path("synthetic").glob("*/*.png"))
        check_room_for_files(run.path("synthetic"), g.n * len(wanted) - written, f"--n {g.n}")
    run.save_manifest(classes_requested=wanted)
    if g.per_class:
        plans = [(c, bundle.train.images[bundle.train.labels == bundle.classes.index(c)], None, 0) for c in wanted]
    else:
        plans = [("conditional", bundle.train.images, bundle.train.labels, len(bundle.classes))]
    rows, samples, generators, epochs = [], {}, {}, []
    tracker = tracker_for(cfg, run)
    for key, imgs, labs, n_classes in plans:
        ck_path = run.path(f"checkpoint-{key}.pt")
        ckpt = load_checkpoint(ck_path, ("G", "D", "G_ema", "epoch"), "GAN checkpoint") if ck_path.is_file() else None
        st = train_gan_model(key, np.asarray(imgs), None if labs is None else np.asarray(labs), n_classes, cfg,
                             run, bundle.classes, device, ckpt, tracker)
        payload = generator_payload(st, cfg, bundle.classes, key)
        atomic_torch_save(payload, run.path(f"generator-{key}.pt"))
        save_safetensors(st.G_ema.state_dict(), run.path(f"generator-{key}.safetensors"),
                         {"kind": "generator", "key": key, "classes": ",".join(bundle.classes)})
        write_json(run.path(f"history-{key}.json"), st.history)
        generators[key] = (st.G_ema, payload)
        epochs += st.history   # every model's, a resumed run's included
    if not distributed.is_main():   # under torchrun: trained together; rank 0 samples and judges
        tracker.close()
        return run.dir
    out_dir = run.path("synthetic")
    # the quality report reads the first eval_images of each class: only those stay in memory, so
    # --n 100000 costs disk, not RAM (all --n were held before session 56)
    kept = kept_synthetic(run.dir, wanted, g.n, g.eval_images) if run.manifest.get("finished") else None
    if kept is not None:
        # benchmarks may have trained on these files; sampling again on another CPU or thread count
        # could change pixels under them, so a finished run only rewrites its quality report
        samples = kept
        tell(f"kept the {g.n * len(wanted)} synthetic images this run wrote before in {out_dir}")
    else:
        with tqdm(total=g.n * len(wanted), desc="synthetic", unit="img", leave=False, disable=None) as bar:
            for c in wanted:
                G, payload = generators["conditional" if not g.per_class else c]
                written, samples[c] = write_class(G, payload, c, g.n, cfg.run.seed, device, out_dir,
                                                  f"generator-{payload['key']}.pt", bar, keep=g.eval_images)
                rows += written
        write_manifest_csv(out_dir / "manifest.csv", rows)
        tell(f"wrote {len(rows)} synthetic images to {out_dir}")
    tracker.close()
    metrics = quality_report(run, bundle, samples, cfg, device, inception, training_precision(epochs),
                             training_layout_text(epochs, asked_channels_last(cfg.run, device)))
    metrics["mode"] = "per-class" if g.per_class else "conditional"
    write_json(run.path("metrics.json"), metrics)
    run.save_manifest(finished=True, synthetic_images=g.n * len(wanted))
    return run.dir


def kept_synthetic(run_dir: Path, wanted: list[str], n: int, keep: int) -> dict[str, np.ndarray] | None:
    """The first ``keep`` images a finished run wrote, per class in index order, if all ``n`` of each
    wanted class are still there; None otherwise (they are then sampled and written again)."""
    try:
        _, rows = synthetic_manifest(run_dir)
    except CheckpointError:
        return None
    out = {}
    for c in wanted:
        mine = sorted((r for r in rows if r["class"] == c), key=lambda r: int(r["index"]))
        if len(mine) != n or not all(r["path"].is_file() for r in mine):
            return None
        out[c] = np.stack([np.asarray(Image.open(r["path"]).convert("L")) for r in mine[:keep]])
    return out


def synthetic_manifest(run_dir: str | Path) -> tuple[Path, list[dict]]:
    """Read a GAN run's (or folder's) synthetic manifest: rows with file paths inside the run."""
    d = Path(run_dir)
    mf = d / "synthetic" / "manifest.csv" if (d / "synthetic").is_dir() else d / "manifest.csv"
    if not mf.is_file():
        raise CheckpointError(f"no synthetic images in {run_dir} (expected synthetic/manifest.csv from genaug gan)"
                              f"{not_a_run_of(d, 'gan', '--gan-run') or nearby_runs_hint(d, 'gan')}")
    base = mf.parent.resolve()
    rows = list(csv.DictReader(mf.open(encoding="utf-8", errors="surrogateescape")))
    for r in rows:
        p = (base / r["file"]).resolve()
        if base not in p.parents:
            raise CheckpointError(f"manifest {mf} points outside its folder ({r['file']}); refused")
        r["path"] = p
    return base, rows


