"""Optional TensorBoard logging for every training loop (``run.tensorboard`` / ``--tensorboard``).

A run's event files go to ``<run>/tensorboard``; view them with ``tensorboard --logdir <run>``.
Without the switch a ``Tracker`` does nothing, so the loops call it unconditionally.
"""
from __future__ import annotations

from pathlib import Path

import torch

from genaug import distributed
from genaug.errors import ConfigError


class Tracker:
    def __init__(self, log_dir: str | Path | None = None):
        self.writer = None
        if log_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch's writer needs the tensorboard package
            raise ConfigError("--tensorboard needs the tensorboard package: pip install 'genaug[tensorboard]' "
                              "(or leave --tensorboard off)") from None
        self.writer = SummaryWriter(str(log_dir))

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if v is not None:
                self.writer.add_scalar(f"{prefix}/{k}", float(v), step)

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        """``grid`` is (C, H, W) in [0, 1], e.g. from torchvision.utils.make_grid."""
        if self.writer is not None:
            self.writer.add_image(tag, grid.detach().float().clamp(0, 1).cpu(), step)

    def histograms(self, prefix: str, model: torch.nn.Module, step: int) -> None:
        if self.writer is None:
            return
        for name, p in model.named_parameters():
            self.writer.add_histogram(f"{prefix}/weights/{name}", p.detach().float().cpu(), step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def tracker_for(cfg, run) -> Tracker:
    """The run's tracker: TensorBoard under ``<run>/tensorboard`` when ``run.tensorboard`` is on."""
    return Tracker(run.path("tensorboard") if cfg.run.tensorboard and distributed.is_main() else None)
