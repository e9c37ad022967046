"""Training loops shared by the jobs: tensor batches from the uint8 cache, batch augmentation, classifiers.

Data stays as one uint8 tensor (N, C, H, W) on the training device; batches are
built by indexing and augmented as whole tensors, so no epoch decodes a file or
runs per-sample PIL code.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from genaug import distributed
# the switches' names and defaults live with the other defaults, in config
from genaug.config import AUGMENTATIONS, DEFAULT_AUGMENTATIONS, SCHEDULES, parse_augmentations  # noqa: F401
from genaug.errors import CheckpointError, ConfigError, TrainingDiverged
from genaug.runs import atomic_torch_save, load_checkpoint

log = logging.getLogger("genaug")


def as_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 1, H, W) uint8 tensor; (N, C, H, W) float latents pass through."""
    arr = np.ascontiguousarray(images)
    if not arr.flags.writeable:  # read-only memmap from the cache: copy once into memory
        arr = arr.copy()
    t = torch.from_numpy(arr)
    if t.dim() == 3:
        t = t.unsqueeze(1)
    return t.to(device)


def resident_device(device) -> torch.device:
    """Where a training set should live: on a CUDA GPU whole (uint8 X-rays are small), else in RAM."""
    dev = torch.device(device)
    return dev if dev.type == "cuda" else torch.device("cpu")


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to [0, 1] float; float latents as float32."""
    return batch.float().div_(255.0) if batch.dtype == torch.uint8 else batch.float()


def batch_indices(n: int, batch_size: int, shuffle: bool, generator: torch.Generator | None = None,
                  drop_last: bool = False):
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - (n % batch_size) if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        yield order[i:i + batch_size]


def epoch_batches(n: int, batch_size: int, gen: torch.Generator, seed: int, epoch: int,
                  drop_last: bool = False) -> list[torch.Tensor]:
    """One epoch's shuffled index batches: under torchrun this rank's share (a DistributedSampler
    seeded by ``seed`` and ``epoch``), else a permutation drawn from ``gen``."""
    if distributed.active():
        return distributed.rank_batches(n, batch_size, seed, epoch)
    return list(batch_indices(n, batch_size, True, gen, drop_last=drop_last))


def gaussian_noise(shape: tuple, generator: torch.Generator, device) -> torch.Tensor:
    """Standard normal numbers of ``shape`` on ``device``, from ``generator`` (a CPU generator, whose state a
    resumed run restores). On the CPU they are drawn from it directly. On a GPU they are drawn there, from a
    generator seeded by one draw of ``generator``; the same seed still gives the same stream on the same GPU.
    A latent batch's noise (64 x 256 x 14 x 14) drawn on a CPU takes 12-13 ms here, likely about half of the
    latent CNN's 23 ms step on an H200 (2,729 images/s in bench/latent_vs_pixel.py, session 51, before this
    change; not yet measured after it), which ran slower than the pixel CNN at 224 px (3,020 images/s)."""
    device = torch.device(device)
    if device.type != "cuda":
        return torch.randn(shape, generator=generator)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.randn(shape, generator=torch.Generator(device=device).manual_seed(seed), device=device)


def augment_batch(x: torch.Tensor, generator: torch.Generator, rotate: float = 10.0, shift: float = 0.08,
                  zoom: float = 0.1, brightness: float = 0.1, contrast: float = 0.1, shear: float = 8.0,
                  noise: float = 0.02, pca: float = 0.1,
                  enabled: frozenset | str = DEFAULT_AUGMENTATIONS, shared: bool = False) -> torch.Tensor:
    """Batch augmentation on a float batch in [0, 1]: one affine grid per image (rotation,
    shift, zoom, shear, flip), then brightness/contrast, Gaussian noise and AlexNet's PCA
    lighting noise, each only if named in ``enabled``. ``shared``: one draw for the whole batch, so an
    image is changed alike whichever batch it is in (test-time augmentation)."""
    on = parse_augmentations(enabled) if isinstance(enabled, str) else enabled
    b = x.size(0)
    dev = x.device
    draws = 1 if shared else b

    def u(lo, hi):
        return (torch.rand(draws, generator=generator) * (hi - lo) + lo).expand(b).to(dev)

    zero, one = torch.zeros(b, device=dev), torch.ones(b, device=dev)
    # draws happen in a fixed order so a given set of switches is reproducible from the seed
    ang = u(-rotate, rotate) * math.pi / 180 if "rotate" in on else zero
    scale = u(1 - zoom, 1 + zoom) if "zoom" in on else one
    tx, ty = (u(-shift, shift) * 2, u(-shift, shift) * 2) if "shift" in on else (zero, zero)
    sh = torch.tan(u(-shear, shear) * math.pi / 180) if "shear" in on else zero
    flip = torch.where(u(0, 1) < 0.5, -one, one) if "flip" in on else one
    if {"rotate", "zoom", "shift", "shear", "flip"} & on:
        cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
        # rotation/zoom, then shear along x, then a horizontal flip of the sampling grid
        theta = torch.stack([torch.stack([cos * flip, (-sin + cos * sh) * flip, tx], 1),
                             torch.stack([sin, cos + sin * sh, ty], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if {"brightness", "contrast"} & on:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        c = u(1 - contrast, 1 + contrast) if "contrast" in on else one
        br = u(-brightness, brightness) if "brightness" in on else zero
        x = (x - mean) * c.view(b, 1, 1, 1) + mean + br.view(b, 1, 1, 1)
    if "noise" in on:
        x = x + gaussian_noise((draws, *x.shape[1:]), generator, dev).expand(x.shape).to(dev) * noise
    if "pca" in on:
        x = x + pca_lighting(x, generator, pca, shared)
    return x.clamp_(0, 1)


def pca_lighting(x: torch.Tensor, generator: torch.Generator, std: float = 0.1, shared: bool = False) -> torch.Tensor:
    """AlexNet's lighting noise: per image, add sum_i alpha_i * lambda_i * p_i to every pixel, where
    (lambda_i, p_i) are the eigenpairs of the channel covariance (of the batch; of each image when
    ``shared``, with one alpha for all, so that an image's change does not depend on its batch) and
    alpha_i ~ N(0, std). For one channel that is an intensity offset scaled by the pixel variance."""
    b, c = x.shape[:2]
    alpha = (torch.randn(1 if shared else b, c, generator=generator) * std).to(x.device)
    if shared:
        return torch.cat([pca_lighting_with(x[i:i + 1], alpha) for i in range(b)])
    return pca_lighting_with(x, alpha)


def pca_lighting_with(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``pca_lighting``'s offset for weights ``alpha`` (rows: one per image, or one for all)."""
    b, c = x.shape[:2]
    flat = x.transpose(0, 1).reshape(c, -1)
    cov = torch.atleast_2d(torch.cov(flat))
    lam, vec = torch.linalg.eigh(cov)
    alpha = alpha.expand(b, c)
    shift = (alpha * lam.clamp_min(0)) @ vec.T          # (b, c)
    return shift.view(b, c, 1, 1)


def augment_latents(z: torch.Tensor, generator: torch.Generator, shift: int = 1, noise: float = 0.1,
                    spread: torch.Tensor | None = None, shared: bool = False) -> torch.Tensor:
    """Latent-space augmentation: a shift of up to ``shift`` cells (16 px at 224 -> 14) with edge
    padding, and Gaussian noise of ``noise`` times each channel's spread: ``spread`` (1, C, 1, 1),
    from `latent_spread` over the training set, or else the batch's own (which costs more than the
    rest of this function together at 64 x 256 x 14 x 14 on one CPU thread). ``shared``: one shift and
    one noise pattern for the whole batch (test-time augmentation; give ``spread`` then)."""
    b, c, h, w = z.shape
    draws = 1 if shared else b
    padded = F.pad(z, (shift, shift, shift, shift), mode="replicate")
    dy = torch.randint(0, 2 * shift + 1, (draws,), generator=generator).expand(b).tolist()
    dx = torch.randint(0, 2 * shift + 1, (draws,), generator=generator).expand(b).tolist()
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
    if not noise:
        return out
    if spread is None:
        spread = z.std(dim=(0, 2, 3), keepdim=True)
    pattern = gaussian_noise((draws, *out.shape[1:]), generator, z.device).expand(out.shape)
    return out + pattern.to(z.device) * noise * spread.to(z.device)


def augment_inputs(x: torch.Tensor, generator: torch.Generator, pixels: bool,
                   augmentations: frozenset | str = DEFAULT_AUGMENTATIONS, spread: torch.Tensor | None = None,
                   shared: bool = False) -> torch.Tensor:
    """A float batch augmented as a cell trains: pixel images by `augment_batch` with ``augmentations``,
    latents by `augment_latents` with the training latents' ``spread``."""
    if pixels:
        return augment_batch(x, generator, enabled=augmentations, shared=shared)
    return augment_latents(x, generator, spread=spread, shared=shared)


def latent_spread(latents: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Per-channel standard deviation (1, C, 1, 1) of training latents (N, C, h, w), or of their plain
    encodings when stored with views (N, views, C, h, w); in float64 chunks, so a float16 set is
    never copied whole into float32."""
    plain = latents[:, 0] if latents.dim() == 5 else latents
    n, c = plain.shape[:2]
    total = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)
    for i in range(0, n, chunk):
        part = plain[i:i + chunk].to("cpu", torch.float64)
        total += part.sum(dim=(0, 2, 3))
        squares += part.square().sum(dim=(0, 2, 3))
    count = n * plain.shape[2] * plain.shape[3]
    var = (squares - total.square() / count) / max(count - 1, 1)
    return var.clamp_min(0).sqrt().float().view(1, c, 1, 1)


def make_scheduler(opt: torch.optim.Optimizer, name: str, epochs: int, steps_per_epoch: int):
    """(scheduler or None, steps per batch?): cosine to 0 over the epochs; step (x0.1 every third
    of the epochs); exponential (down to 1% of the start by the last epoch); one-cycle (warm up
    then anneal, stepped every batch); constant."""
    epochs = max(int(epochs), 1)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs), False
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=max(epochs // 3, 1), gamma=0.1), False
    if name == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.01 ** (1 / epochs)), False
    if name == "onecycle":
        lr = opt.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs,
                                                   steps_per_epoch=max(int(steps_per_epoch), 1)), True
    if name == "constant":
        return None, False
    raise ConfigError(f"unknown learning-rate schedule '{name}' (known: {', '.join(SCHEDULES)})")


def make_ema(model: nn.Module, decay: float) -> "torch.optim.swa_utils.AveragedModel":
    """An exponential moving average of ``model``'s weights, updated after each optimizer step:
    ema = decay * ema + (1 - decay) * weights (torch's AveragedModel). Its BatchNorm statistics are the
    model's until `recompute_batchnorm` gives it its own."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, data: torch.Tensor, device, batch_size: int, amp: bool = False) -> None:
    """``model``'s BatchNorm running statistics recomputed over ``data`` as it is (plain images, the
    first encoding of latents: no augmentation, no random draw), by torch's update_bn, in training's
    batches (a last batch of one would end a BatchNorm1d head in an error).

    Averaged weights need statistics of their own: on the Kermany data at 64 px, over the CNN's first four
    epochs, its average (decay 0.99) with averaged statistics had validation losses of 2.03, 4.29, 5.78, 5.68,
    the trained weights 1.02, 0.67, 0.95, 0.14, and the average with recomputed statistics 0.33, 0.20, 0.15,
    0.12 (bench/ema_batchnorm.py; docs/STATUS.md, session 47). In training mode, dropout draws from torch's
    global generator here, whose state the fit's saved state keeps."""
    from torch.optim.swa_utils import update_bn
    batches = (to_float(on_device(batch_of(data, idx, None, False), device))
               for idx in batch_indices(len(data), batch_size, shuffle=False, drop_last=True))   # as training
    with autocast(device, amp):
        update_bn(batches, model)


def check_finite(loss: torch.Tensor, what: str) -> None:
    if not torch.isfinite(loss):
        # not "the last good checkpoint is kept": in a first epoch there is none (found in session 71)
        raise TrainingDiverged(f"{what} loss became {loss.item()}; training stopped, and only what finished before "
                               "it is kept: lower --lr or check the data")


def load_fit_state(path: Path, epochs: int, seed: int, n_train: int, averaged: bool = False) -> dict:
    """A fit's saved training state, checked to belong to this fit (a stale file from other settings
    would otherwise continue the wrong training)."""
    saved = load_checkpoint(path, ("epoch", "epochs", "seed", "n_train", "model", "optimizer", "best_state"),
                            "classifier training checkpoint")
    mine = {"epochs": epochs, "seed": seed, "n_train": n_train, "weight average": averaged}
    theirs = {**{k: saved[k] for k in ("epochs", "seed", "n_train")}, "weight average": saved.get("ema") is not None}
    if theirs != mine:
        raise CheckpointError(f"{path} holds a fit with {theirs}, not {mine}; delete it to train this one from the start")
    return saved


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 0
    train_seconds: float = 0.0
    images_per_second: float = 0.0


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (mean 1) for the cross-entropy."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = counts.sum() / np.maximum(counts, 1) / n_classes
    return torch.tensor(w, dtype=torch.float32)


def inference_batch(data: torch.Tensor, device) -> int:
    """Images per batch when only predicting: 256 on an accelerator; on a CPU those holding about 2**18
    pixels (8-64 images: 64 at 64 px or of 14x14 latents, 8 at 224 px), whose activations stay in cache.
    At batch 256 a 224 px DenseNet-121 ran at 7.8 images/s here, at batch 8 at 20.1; bench/eval_batch.py
    (docs/PERFORMANCE.md (m)) times each core classifier and the latent CNN by size and batch."""
    if torch.device(device).type != "cpu":
        return 256
    pixels = int(np.prod(data.shape[-2:])) if data.dim() > 2 else 1
    return max(8, min(64, 2 ** 18 // max(pixels, 1)))


@torch.no_grad()
def predict_probs(model: nn.Module, data: torch.Tensor, batch_size: int | None = None,
                  device: torch.device | str = "cpu", amp: bool = False, tta: int = 0,
                  augmentations: frozenset | str = DEFAULT_AUGMENTATIONS, spread: torch.Tensor | None = None,
                  seed: int = 0) -> torch.Tensor:
    """Class probabilities. ``tta`` > 0: averaged over the plain input and ``tta`` copies augmented as the
    model trained (`augment_inputs`; ``spread`` for latents), copy k changed alike in every image by a
    draw from ``seed`` and k, so an image's probabilities do not depend on what else is predicted."""
    model.eval()
    pixels = data.dtype == torch.uint8
    out = []
    for idx in batch_indices(len(data), batch_size or inference_batch(data, device), shuffle=False):
        x = to_float(on_device(data[idx], device))
        total = 0
        for copy in range(tta + 1):
            view = x if copy == 0 else augment_inputs(x, torch.Generator().manual_seed(seed * 1_000_003 + copy),
                                                      pixels, augmentations, spread, shared=True)
            with autocast(device, amp):
                total = total + torch.softmax(model(view).float(), dim=1)
        out.append((total / (tta + 1)).cpu())
    return torch.cat(out) if out else torch.zeros(0)


def autocast(device, amp: bool):
    """bf16 autocast on CUDA or the CPU when ``amp`` (`uses_autocast` decides it for the CPU); a no-op elsewhere."""
    dev = torch.device(device)
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bool(amp) and dev.type in ("cuda", "cpu"))


def uses_autocast(run_cfg, device) -> bool:
    """Whether a benchmark's classifiers compute in bf16 on ``device``: on CUDA with run.amp; on the CPU only
    with run.cpu_amp as well, since CPUs without AMX or AVX512-BF16 emulate bf16 (`cpu_has_bf16`)."""
    kind = torch.device(device).type
    return bool(run_cfg.amp) and (kind == "cuda" or (kind == "cpu" and bool(run_cfg.cpu_amp)))


def trains_in_cpu_bf16(run_cfg, device) -> bool:
    """Whether the GAN or the autoencoder trains under bf16 autocast: on a CPU with run.cpu_amp (--cpu-amp)
    only. On CUDA they stay in fp32, as they always have (their bf16 there is unmeasured); what they are then
    used for (sampling, the quality report's judge, evaluation, encoding) stays in fp32 everywhere."""
    return torch.device(device).type == "cpu" and bool(run_cfg.amp) and bool(run_cfg.cpu_amp)


def asked_channels_last(run_cfg, device) -> bool:
    """Whether run.channels_last (--channels-last) puts fp32 training channels-last here: on a CPU only."""
    return torch.device(device).type == "cpu" and bool(run_cfg.channels_last)


def training_layout(run_cfg, device) -> torch.memory_format:
    """The layout the GAN or the autoencoder trains in: channels-last under bf16 on a CPU (`trains_in_cpu_bf16`),
    where oneDNN's bf16 convolutions run fastest, and in fp32 on a CPU with run.channels_last (--channels-last);
    otherwise contiguous, as every fp32 run trained before session 77, so that a rerun gives its numbers."""
    wanted = trains_in_cpu_bf16(run_cfg, device) or asked_channels_last(run_cfg, device)
    return torch.channels_last if wanted else torch.contiguous_format


def training_precision(history: list[dict]) -> str:
    """How the epochs of ``history`` computed: "fp32", "bf16 autocast", or both, counted (a run resumed with
    the other --cpu-amp setting)."""
    bf16 = sum(1 for h in history if h.get("bf16"))
    if not history or bf16 == 0:
        return "fp32"
    if bf16 == len(history):
        return "bf16 autocast"
    return f"bf16 autocast for {bf16} of {len(history)} epochs, fp32 for the rest"


def training_layout_text(history: list[dict], unrecorded_fp32_channels_last: bool = False) -> str:
    """The layout the epochs of ``history`` trained in: "contiguous", "channels-last", or both, counted.
    Epochs written before the key existed (session 78) trained channels-last in bf16, and in fp32 where
    session 77's --channels-last asked for it (``unrecorded_fp32_channels_last``: the run's setting, which a
    resume may not change), else contiguous."""
    cl = sum(1 for h in history if h.get("channels_last", bool(h.get("bf16")) or unrecorded_fp32_channels_last))
    if not history or cl == 0:
        return "contiguous"
    if cl == len(history):
        return "channels-last"
    return f"channels-last for {cl} of {len(history)} epochs, contiguous for the rest"


def chose_channels_last(metrics: dict) -> bool:
    """Whether a GAN or encode run's metrics say --channels-last chose the layout its fp32 epochs trained in;
    bf16 epochs train channels-last whatever the flag, so a run all in bf16 says nothing by it."""
    return (metrics.get("training_layout") == "channels-last"
            and metrics.get("training_precision", "fp32") != "bf16 autocast")


def epoch_flags(bf16: bool, layout: torch.memory_format) -> str:
    """', bf16' and ', channels-last' as an epoch's console line gives them after its speed."""
    return (", bf16" if bf16 else "") + (", channels-last" if layout == torch.channels_last and not bf16 else "")


def on_device(x: torch.Tensor, device) -> torch.Tensor:
    """A batch on the device, channels_last for 4-d batches: faster convolutions on CUDA, and on this
    CPU 1.04-1.21x per classifier training step (bench/memory_format.py, docs/PERFORMANCE.md)."""
    x = x.to(device, non_blocking=True)
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def batch_of(data: torch.Tensor, idx: torch.Tensor, gen: torch.Generator, augment: bool) -> torch.Tensor:
    """``data[idx]``; latents stored with views, (N, views, C, h, w), give one encoding per image:
    a random one of the plain and the pixel-augmented encodings when augmenting, else the plain one."""
    if data.dim() != 5:
        return data[idx]
    if not augment:
        return data[idx, 0]
    return data[idx, torch.randint(0, data.shape[1], (len(idx),), generator=gen)]


def train_one_epoch(model, opt, data, labels, weights, batch_size, gen, device, augment, desc,
                    amp: bool = False, augmentations: frozenset | str = DEFAULT_AUGMENTATIONS,
                    batch_scheduler=None, batches: list | None = None,
                    spread: torch.Tensor | None = None, label_smoothing: float = 0.0,
                    mixup: float = 0.0, ema=None) -> tuple[float, int]:
    """One pass; ``batches`` (index tensors) replaces the shuffled order: a rank's share under DDP,
    and then the mean loss and the image count returned are those of all ranks together.
    ``spread``: the latents' channel spread for their noise (`latent_spread`), else each batch's.
    ``mixup`` > 0: each batch is blended with itself shifted by one, by a Beta(mixup, mixup) weight
    (torchvision's MixUp, which draws from torch's global generator, restored on resume).
    ``ema`` (`make_ema`): updated from the model after every step."""
    model.train()
    mix = None
    if mixup > 0:
        from torchvision.transforms import v2
        mix = v2.MixUp(alpha=mixup, num_classes=len(weights))
    total, seen = 0.0, 0
    batches_given = batches is not None
    if batches is None:
        batches = list(batch_indices(len(data), batch_size, True, gen, drop_last=True))
    bar = tqdm(batches, desc=desc, leave=False, unit="batch", disable=distributed.quiet())
    for idx in bar:
        x = to_float(on_device(batch_of(data, idx, gen, augment), device))
        if augment:  # pixels are cached as uint8, autoencoder latents as float16
            x = augment_inputs(x, gen, data.dtype == torch.uint8, augmentations, spread)
        y = labels[idx].to(device)
        if mix is not None:
            x, y = mix(x, y)   # y: class probabilities, which cross_entropy weights by class as it does indices
        with autocast(device, amp):
            loss = F.cross_entropy(model(x).float(), y, weight=weights, label_smoothing=label_smoothing)
        check_finite(loss, "classifier")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update_parameters(distributed.unwrap(model))   # the weights inside a DDP wrapper
        if batch_scheduler is not None:
            batch_scheduler.step()
        total += loss.item() * len(idx)
        seen += len(idx)
        bar.set_postfix(loss=f"{total / seen:.4f}")
    if batches_given:
        total, seen = distributed.mean_over_ranks(total, seen)
    return total / max(seen, 1), seen


def stop_early(epoch: int, best_epoch: int, patience: int, min_epochs: int = 0) -> bool:
    """Patience runs out ``patience`` epochs after the best one, but never counts epochs before
    ``min_epochs``: early in a decaying schedule the val loss is too noisy to stop on."""
    return epoch - max(best_epoch, min_epochs) >= patience


@torch.no_grad()
def evaluate_loss(model, data, labels, weights, device, batch_size: int | None = None, amp: bool = False) -> float:
    model.eval()
    total = 0.0
    for idx in batch_indices(len(data), batch_size or inference_batch(data, device), shuffle=False):
        with autocast(device, amp):
            logits = model(to_float(on_device(data[idx], device))).float()
        total += F.cross_entropy(logits, labels[idx].to(device), weight=weights, reduction="sum").item()
    return total / max(len(data), 1)


def rng_states(gen: torch.Generator, home: torch.device) -> dict:
    """The random states a resumed fit needs to draw what the uninterrupted one would have."""
    return {"generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(home) if home.type == "cuda" else None}


def save_fit_state(checkpoint: Path, epoch: int, epochs: int, seed: int, n_train: int, model: nn.Module, opt, sched,
                   gen: torch.Generator, home: torch.device, res: "FitResult", best: float, best_state: dict,
                   images: int, seconds: float, done: bool, ema=None) -> None:
    """A fit's whole state after ``epoch``, which `resume_fit` continues from."""
    atomic_torch_save({
        "kind": "classifier fit", "epoch": epoch, "epochs": epochs, "seed": seed, "n_train": n_train,
        "model": model.state_dict(), "optimizer": opt.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "scheduler": sched.state_dict() if sched is not None else None,
        # after an improving epoch the best weights are the scored ones ("model", or the average in "ema"):
        # not written twice
        # (a quarter of a ResNet-34 state's 341 MB, each such epoch)
        "best": best, "best_epoch": res.best_epoch, "history": res.history,
        "best_state": None if res.best_epoch == epoch else best_state,
        "images": images, "seconds": seconds, "done": done, **rng_states(gen, home)}, checkpoint)


def resume_fit(checkpoint: Path, epochs: int, seed: int, n_train: int, model: nn.Module, opt, sched,
               gen: torch.Generator, home: torch.device, res: "FitResult", ema=None) -> tuple:
    """Load a fit's per-epoch state into ``model``, ``opt``, ``sched``, ``gen``, ``res`` and ``ema``;
    returns (best val loss, best weights, images seen, seconds spent, whether it had stopped)."""
    saved = load_fit_state(checkpoint, epochs, seed, n_train, averaged=ema is not None)
    model.load_state_dict(saved["model"])
    if ema is not None:
        ema.load_state_dict(saved["ema"])
    opt.load_state_dict(saved["optimizer"])
    if sched is not None:
        sched.load_state_dict(saved["scheduler"])
    res.history, res.best_epoch, res.epochs_run = list(saved["history"]), saved["best_epoch"], saved["epoch"]
    gen.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])   # dropout draws from the global generator
    if saved.get("cuda_rng") is not None and home.type == "cuda":
        torch.cuda.set_rng_state(saved["cuda_rng"], home)   # ... or from the GPU's, on a GPU
    # the average's own tensors go on moving as training goes on: a copy, as "model" is one already
    scored = copy.deepcopy(ema.module.state_dict()) if ema is not None else saved["model"]
    best_state = scored if saved["best_state"] is None else saved["best_state"]
    return saved["best"], best_state, saved["images"], saved["seconds"], saved["done"]


def make_optimizer(model: nn.Module, n_train: int, batch_size: int, lr: float, weight_decay: float,
                   schedule: str, epochs: int, ddp: bool = False, seed: int = 0) -> tuple:
    """AdamW and its learning-rate schedule for a fit of ``epochs`` over ``n_train`` images:
    (optimizer, scheduler or None, whether the scheduler steps per batch rather than per epoch).
    Under DDP a rank's epoch is its share of the batches, so a per-batch schedule counts those."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = n_train // batch_size if n_train >= batch_size else 1
    if ddp:
        steps = len(distributed.rank_batches(n_train, batch_size, seed, 0))
    sched, per_batch = make_scheduler(opt, schedule, epochs, steps)
    return opt, sched, per_batch


def close_epoch(model: nn.Module, ema, train_x: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
                weights: torch.Tensor, device, batch_size: int, amp: bool, ddp: bool, epoch_scheduler=None) -> float:
    """After an epoch's steps: the weight average's BatchNorm statistics, the ranks' buffers made alike,
    the per-epoch schedule's step; returns the validation loss of the weights the fit keeps (the average
    where there is one)."""
    if ema is not None:
        recompute_batchnorm(ema.module, train_x, device, batch_size, amp)
    if ddp:
        distributed.sync_buffers(model)
        if ema is not None:   # each rank computed them alike, but kernels may differ in the last bits
            distributed.sync_buffers(ema.module)
    if epoch_scheduler is not None:
        epoch_scheduler.step()
    scored = ema.module if ema is not None else model
    va_loss = evaluate_loss(scored, val_x, val_y, weights, device, amp=amp)
    if ddp:   # every rank computed it on the same weights; rank 0's value decides early stopping for all
        va_loss = distributed.broadcast_object(va_loss)
    return va_loss


def record_epoch(res: "FitResult", tracker, model: nn.Module, desc: str, epoch: int, epochs: int,
                 tr_loss: float, va_loss: float, lr: float) -> None:
    """An epoch's losses into the fit's history, the tracker (TensorBoard) and the log."""
    res.history.append({"epoch": epoch, "train_loss": tr_loss, "val_loss": va_loss, "lr": lr})
    if tracker is not None:
        tracker.scalars(desc, {"loss/train": tr_loss, "loss/val": va_loss, "lr": lr}, epoch)
        tracker.histograms(desc, model, epoch)
    log.info("%s epoch %d of %d: train %.4f val %.4f", desc, epoch, epochs, tr_loss, va_loss)
    res.epochs_run = epoch


def fit_classifier(model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor,
                   val_y: torch.Tensor, n_classes: int, epochs: int, batch_size: int, lr: float,
                   weight_decay: float = 1e-4, patience: int = 4, augment: bool = True, seed: int = 0,
                   device: torch.device | str = "cpu", desc: str = "train", amp: bool = False,
                   schedule: str = "cosine", augmentations: frozenset | str = DEFAULT_AUGMENTATIONS,
                   tracker=None, ranks: bool = True, min_epochs: int = 0,
                   checkpoint: Path | None = None, state_every: float = 0.0, say_epochs: bool = False,
                   label_smoothing: float = 0.0, mixup: float = 0.0, ema_decay: float = 0.0) -> FitResult:
    """Class-weighted cross-entropy, AdamW, a learning-rate schedule, early stopping on val loss with restore-best
    (patience counted from the best epoch, or from ``min_epochs`` if that is later).

    On CUDA the uint8 training and validation tensors move to the GPU once (5,840 images at
    224 px are under 300 MB), so batches never cross the bus; ``amp`` turns on bf16 autocast.
    Under torchrun (and ``ranks``) each rank trains on its share of every epoch with DDP;
    ``ranks=False`` trains in this process alone (e.g. a small job only rank 0 does).

    ``checkpoint``: the whole training state is written there after an epoch once ``state_every`` seconds
    have passed since the last write (0: after every epoch), and a file found there at the start is
    continued from, so an interrupted fit resumes at the epoch after the last write and ends as the
    uninterrupted one would have; a stop loses at most ``state_every`` seconds and the epoch in progress.
    The caller deletes it once the result is kept. Under
    torchrun no such file is used: each rank draws its own augmentations, and a fit there is short.

    ``say_epochs``: each epoch's losses go to the console too, not only to the log.
    ``label_smoothing`` and ``mixup`` (a Beta alpha, 0: off) change the training loss only; the
    validation loss that early stopping reads stays the plain weighted cross-entropy.
    ``ema_decay`` > 0: an exponential moving average of the weights (`make_ema`), with BatchNorm statistics
    recomputed for it over the training images after each epoch (`recompute_batchnorm`), is what validation
    scores, early stopping keeps and the fit returns; the trained weights only feed it.
    """
    model.to(device)
    ddp = ranks and distributed.active()
    if ddp:
        checkpoint = None
    weights = class_weights(train_y.numpy(), n_classes).to(device)
    home = resident_device(device)
    model.to(memory_format=torch.channels_last)   # as on_device lays out the batches
    train_x, train_y, val_x, val_y = (t.to(home) for t in (train_x, train_y, val_x, val_y))
    gen = torch.Generator().manual_seed(seed)
    net = distributed.wrap(model, torch.device(device)) if ddp else model
    if ddp:   # augmentation draws differ per rank; the sampler's order is shared and split
        gen.manual_seed(seed * 1_000_003 + distributed.rank())
    bs = min(batch_size, len(train_x))
    opt, sched, per_batch = make_optimizer(model, len(train_x), bs, lr, weight_decay, schedule, epochs, ddp, seed)
    augmentations = parse_augmentations(augmentations) if isinstance(augmentations, str) else augmentations
    # latents: their channel spread once, not per batch (the per-batch std was a quarter of a latent step)
    spread = latent_spread(train_x).to(device) if augment and train_x.is_floating_point() else None
    ema = make_ema(model, ema_decay) if ema_decay > 0 else None
    scored = ema.module if ema is not None else model   # the weights validation reads and the fit keeps
    best, best_state = math.inf, copy.deepcopy(scored.state_dict())
    res = FitResult()
    start = time.perf_counter()
    images, first, done, earlier_seconds = 0, 1, False, 0.0
    last_write = start
    if checkpoint is not None and Path(checkpoint).is_file():
        best, best_state, images, earlier_seconds, done = resume_fit(checkpoint, epochs, seed, len(train_x), model,
                                                                     opt, sched, gen, home, res, ema)
        first = res.epochs_run + 1
        log.info("%s: resuming at epoch %d of %d from %s", desc, first, epochs, checkpoint)
    for epoch in range(first, epochs + 1):
        if done:
            break
        lr_now = opt.param_groups[0]["lr"]
        t_epoch = time.perf_counter()
        batches = distributed.rank_batches(len(train_x), bs, seed, epoch) if ddp else None
        tr_loss, seen = train_one_epoch(net, opt, train_x, train_y, weights, bs, gen, device, augment,
                                        f"{desc} {epoch}/{epochs}", amp, augmentations,
                                        sched if per_batch else None, batches, spread,
                                        label_smoothing, mixup, ema)
        images += seen
        va_loss = close_epoch(model, ema, train_x, val_x, val_y, weights, device, bs, amp, ddp,
                              sched if not per_batch else None)
        record_epoch(res, tracker, model, desc, epoch, epochs, tr_loss, va_loss, lr_now)
        if va_loss < best - 1e-4:
            best, res.best_epoch = va_loss, epoch
            best_state = copy.deepcopy(scored.state_dict())
        else:
            done = stop_early(epoch, res.best_epoch, patience, min_epochs)
        if checkpoint is not None and time.perf_counter() - last_write >= state_every:
            save_fit_state(Path(checkpoint), epoch, epochs, seed, len(train_x), model, opt, sched, gen, home, res,
                           best, best_state, images, earlier_seconds + time.perf_counter() - start, done, ema)
            last_write = time.perf_counter()
        if say_epochs:   # the bars vanish with each epoch, and show nowhere without a terminal (a batch job's output);
            # the time includes writing the training state when one was written (for ResNet-34, as long as a demo epoch)
            distributed.say(f"    epoch {epoch} of {epochs}: train {tr_loss:.4f} val {va_loss:.4f} "
                            f"({time.perf_counter() - t_epoch:.1f} s)", flush=True)
    model.load_state_dict(best_state)
    res.train_seconds = earlier_seconds + time.perf_counter() - start
    res.images_per_second = images / max(res.train_seconds, 1e-9)
    return res
