"""What every job does first: seed, threads, device, the data at its resolution, the run manifest."""
from __future__ import annotations

from pathlib import Path

import torch

from genaug import distributed
from genaug.config import Config
from genaug.data import DataBundle, load_data
from genaug.device import resolve_device, seed_everything, set_deterministic
from genaug.runs import Run


def data_cache_dir(cfg: Config) -> Path:
    return Path(cfg.data.cache_dir) if cfg.data.cache_dir else Path(cfg.run.out_root) / "cache"


def load_bundle(cfg: Config, size: int) -> DataBundle:
    return load_data(cfg.data.data, size, cfg.data.task, cfg.data.val_fraction, cfg.data.split_seed,
                     data_cache_dir(cfg), cfg.data.demo_train, cfg.data.download)


def join_ranks(cfg: Config) -> None:
    """Under torchrun, join the process group before the run directory is made (rank 0 makes it)."""
    distributed.init_from_env(resolve_device(cfg.run.device))


def start_job(cfg: Config, run: Run, size: int) -> tuple[torch.device, DataBundle]:
    seed_everything(cfg.run.seed)
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    device = distributed.init_from_env(resolve_device(cfg.run.device))
    set_deterministic(cfg.run.deterministic, device)
    with distributed.main_first():   # under torchrun rank 0 builds the decode cache, the others read it
        bundle = load_bundle(cfg, size)
    run.save_manifest(data=bundle.summary(), device=str(device), world_size=distributed.world_size(),
                      skipped=[{"path": p, "reason": r} for p, r in bundle.skipped])
    return device, bundle
