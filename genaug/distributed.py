"""Several processes, one training: DistributedDataParallel under ``torchrun``.

``torchrun --nproc_per_node N $(which genaug) benchmark ...`` starts N copies of a command.
Every copy runs the same code: each trains on its own share of every epoch (a
DistributedSampler over the in-memory training set, reshuffled per epoch with
``set_epoch``) and DDP averages the gradients, so the weights stay identical on every
rank. Evaluations run on every rank over the whole validation or test set (same weights,
same data, same numbers), and rank 0's value is broadcast where a decision such as early
stopping depends on it. Rank 0 alone writes files, logs and shows progress bars; the other
ranks' writes are dropped (see ``genaug.runs.atomic_write``).

Backends: gloo on CPU (how the tests run it), NCCL on CUDA with one GPU per rank.
Without ``torchrun`` (WORLD_SIZE unset or 1) every function here is a no-op.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist
import torch.nn as nn

from genaug.errors import ConfigError


def launched() -> bool:
    """True inside a multi-process launch (torchrun sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group torchrun describes; returns this rank's device (cuda:LOCAL_RANK on GPUs)."""
    if not launched():
        return device
    if dist.is_available() and dist.is_initialized():   # joined earlier in this process
        return torch.device("cuda", torch.cuda.current_device()) if device.type == "cuda" else device
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed; run without torchrun")
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise ConfigError(f"torchrun started rank with LOCAL_RANK {local} but only {torch.cuda.device_count()} "
                              "GPUs are visible; lower --nproc_per_node")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
        dist.init_process_group("nccl")
    elif device.type == "cpu":
        dist.init_process_group("gloo")
    else:
        raise ConfigError(f"multi-process training supports cpu (gloo) and cuda (nccl), not {device.type}")
    return device


def barrier() -> None:
    if active():
        dist.barrier()


@contextmanager
def main_first():
    """Rank 0 runs the block first (e.g. builds a cache), then the others, who then find its files."""
    if is_main():
        yield
        barrier()
    else:
        barrier()
        yield


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(total: float, count: int) -> tuple[float, int]:
    """Sum a (total, count) pair over ranks: the loss of the whole epoch, not of rank 0's share."""
    if not active():
        return total, count
    t = torch.tensor([float(total), float(count)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t[0]), int(t[1])


def wrap(model: nn.Module, device: torch.device, sync_batchnorm: bool = False) -> nn.Module:
    """``model`` for training: DDP-wrapped when several ranks run, else as it is."""
    if not active():
        return model
    if sync_batchnorm:
        if device.type != "cuda":
            raise ConfigError("SyncBatchNorm needs CUDA GPUs (PyTorch has no CPU kernel for it); "
                              "drop --sync-batchnorm on CPU")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def sync_buffers(model: nn.Module) -> None:
    """Rank 0's BatchNorm running statistics on every rank. DDP broadcasts them before each forward,
    so after an epoch's last step each rank holds stats updated by its own last batch; syncing
    at the epoch's end keeps evaluations, checkpoints and restore-best identical across ranks."""
    if not active():
        return
    for buf in unwrap(model).buffers():
        dist.broadcast(buf.data, src=0)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def rank_batches(n: int, batch_size: int, seed: int, epoch: int, rank_: int | None = None,
                 world: int | None = None) -> list[torch.Tensor]:
    """This rank's batches for one epoch: a DistributedSampler (shuffled by seed and epoch) deals
    every rank the same number of indices, cut into batches of ``batch_size // world`` so the
    global batch stays what the config says. ``rank_``/``world`` default to this process's."""
    from torch.utils.data import DistributedSampler

    world = world_size() if world is None else world
    rank_ = rank() if rank_ is None else rank_
    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank_, shuffle=True, seed=seed,
                                 drop_last=n >= world)
    sampler.set_epoch(epoch)
    order = torch.tensor(list(sampler), dtype=torch.long)
    per = max(batch_size // world, 1)
    stop = len(order) - len(order) % per if len(order) >= per else len(order)
    return [order[i:i + per] for i in range(0, stop, per)]


def say(*args, **kwargs) -> None:
    """print() on rank 0 only: one voice for all ranks."""
    if is_main():
        print(*args, **kwargs)


def quiet() -> bool | None:
    """tqdm's ``disable``: None (auto, off without a terminal) on rank 0, always off elsewhere."""
    return None if is_main() else True
