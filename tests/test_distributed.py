"""Multi-process training on CPU with the gloo backend: DDP inside the training loops, and the
real commands under torchrun writing one run directory from rank 0."""
import json
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genaug import distributed
from genaug.models import build_classifier
from genaug.train import fit_classifier
from test_cli import genaug, only_run


def test_rank_batches_split_every_epoch_between_ranks():
    n, bs = 50, 8
    for epoch in (0, 1):
        parts = [torch.cat(distributed.rank_batches(n, bs, seed=3, epoch=epoch, rank_=r, world=2)) for r in (0, 1)]
        assert all(len(b) == bs // 2 for r in (0, 1) for b in distributed.rank_batches(n, bs, 3, epoch, r, 2))
        assert not set(parts[0].tolist()) & set(parts[1].tolist())      # disjoint shares
        assert len(parts[0]) == len(parts[1]) == 24                      # 25 each, cut to whole batches of 4
    e0 = torch.cat(distributed.rank_batches(n, bs, 3, 0, 0, 2))
    e1 = torch.cat(distributed.rank_batches(n, bs, 3, 1, 0, 2))
    assert not torch.equal(e0, e1)                                        # set_epoch reshuffles


def test_single_process_is_not_distributed():
    assert not distributed.active() and distributed.is_main() and distributed.world_size() == 1


def _toy_data():
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(64, 1, 16, 16, generator=g) * 255).to(torch.uint8)
    y = torch.arange(64) % 2
    x[y == 1, :, 4:12, 4:12] = 255   # a learnable signal
    return x, y


def _fit(model_name, batch_size, augment, ema_decay=0.0):
    torch.manual_seed(0)   # same initial weights on every rank (DDP also broadcasts rank 0's)
    x, y = _toy_data()
    model = build_classifier(model_name, 2, image_size=16)
    res = fit_classifier(model, x, y, x[:16], y[:16], 2, epochs=3, batch_size=batch_size, lr=3e-3, patience=5,
                         augment=augment, seed=0, ema_decay=ema_decay)
    return model, res


def _fit_on_rank(rank, world, init_file, out_dir, model_name="cnn", batch_size=16, augment=True, ema_decay=0.0):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model, res = _fit(model_name, batch_size, augment, ema_decay)
        torch.save({"state": model.state_dict(), "history": res.history}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("ema_decay", [0.0, 0.5])   # the average's BatchNorm statistics come from each rank's batches
def test_fit_classifier_under_ddp_keeps_ranks_identical(tmp_path, ema_decay):
    mp.spawn(_fit_on_rank, args=(2, str(tmp_path / "init"), str(tmp_path), "cnn", 16, True, ema_decay), nprocs=2,
             join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for k in a["state"]:
        assert torch.equal(a["state"][k], b["state"][k]), k
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]  # gathered over ranks
    assert [h["val_loss"] for h in a["history"]] == [h["val_loss"] for h in b["history"]]
    assert a["history"][-1]["train_loss"] < a["history"][0]["train_loss"]


def test_ddp_matches_a_single_process_run_within_tolerance(tmp_path):
    """Full-batch logistic regression, balanced classes, no augmentation: the mean of two ranks'
    gradients over 32 images each is the one-process gradient over 64, so two ranks must end
    where one process ends, up to float rounding (order of summation)."""
    mp.spawn(_fit_on_rank, args=(2, str(tmp_path / "init"), str(tmp_path), "logreg", 64, False), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "rank0.pt", weights_only=True)
    single, res = _fit("logreg", 64, False)
    for k, v in single.state_dict().items():
        assert torch.allclose(ddp["state"][k], v, atol=1e-5, rtol=1e-4), k
    assert [h["train_loss"] for h in ddp["history"]] == pytest.approx([h["train_loss"] for h in res.history], rel=1e-4)
    assert [h["val_loss"] for h in ddp["history"]] == pytest.approx([h["val_loss"] for h in res.history], rel=1e-4)


def torchrun(*args, cwd=None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "genaug_cli", *[str(a) for a in args]]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("command, expected", [
    ("benchmark", ["report.md", "results.json", "cells/cnn__real__f1__seed0.json"]),
    ("encode", ["autoencoder.pt", "latents/manifest.csv", "metrics.json"]),
    ("gan", ["generator-conditional.pt", "synthetic/manifest.csv", "metrics.json"]),
])
def test_commands_under_torchrun_write_one_run_from_rank0(tmp_path, command, expected, tiny):
    extra = ["--variants", "real"] if command == "benchmark" else []
    r = torchrun(command, "--data", "demo", "--profile", tiny, "--out", tmp_path / "o", *extra)
    assert r.returncode == 0, r.stderr[-3000:]
    run = only_run(tmp_path / "o", command)          # rank 1 made no directory of its own
    for f in expected:
        assert (run / f).is_file(), f
    assert [ln for ln in r.stdout.splitlines() if ln.startswith("run: ")] == [f"run: {run}"]  # rank 0 speaks once
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["world_size"] == 2
    assert not list(run.rglob(".*.tmp"))


def test_sync_batchnorm_on_cpu_is_a_clear_error(tmp_path):
    r = genaug("gan", "--data", "demo", "--sync-batchnorm", "--device", "cpu", "--out", tmp_path / "o")
    assert r.returncode == 2
    assert "--sync-batchnorm needs CUDA" in r.stderr and "Traceback" not in r.stderr
