"""What every job does first: seed, threads, device, the data at its resolution, the run manifest."""
from __future__ import annotations

from pathlib import Path

import torch

from genaug.config import Config
from genaug.data import DataBundle, load_data
from genaug.device import resolve_device, seed_everything
from genaug.runs import Run


def data_cache_dir(cfg: Config) -> Path:
    return Path(cfg.data.cache_dir) if cfg.data.cache_dir else Path(cfg.run.out_root) / "cache"


def load_bundle(cfg: Config, size: int) -> DataBundle:
    return load_data(cfg.data.data, size, cfg.data.task, cfg.data.val_fraction, cfg.data.split_seed,
                     data_cache_dir(cfg), cfg.data.demo_train, cfg.data.download)


def start_job(cfg: Config, run: Run, size: int) -> tuple[torch.device, DataBundle]:
    seed_everything(cfg.run.seed)
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    device = resolve_device(cfg.run.device)
    bundle = load_bundle(cfg, size)
    run.save_manifest(data=bundle.summary(), device=str(device),
                      skipped=[{"path": p, "reason": r} for p, r in bundle.skipped])
    return device, bundle
