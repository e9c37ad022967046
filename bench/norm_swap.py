"""Issue #5: does normalising each image's features by its own statistics (GroupNorm) carry the validation
threshold to the test split better than BatchNorm's running statistics, which session 83 found shifted there?

Runs the real `genaug benchmark` command with every BatchNorm2d of the classifiers it builds swapped for
GroupNorm(G, C) (G = --groups, 8 by default; C the layer's channels): GroupNorm keeps no running statistics
to go stale on another hospital's images (Wu and He, 2018). Everything else is the command's own; compare
the run with a plain one of the same config with `genaug compare`. The run's config does not record the
swap, so the script writes `norm_swap.txt` into the run directory, and resumes only a run that holds it.

    python bench/norm_swap.py [--groups 8] benchmark --config C --seeds 4 ... [--resume RUN --shard 2/2]

Figures in docs/STATUS.md (session 84).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch.nn as nn

MARK = "norm_swap.txt"


def swap_batchnorm(module: nn.Module, groups: int) -> nn.Module:
    """``module`` with every BatchNorm2d replaced by GroupNorm(groups, channels), in place."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            if child.num_features % groups:
                raise SystemExit(f"norm_swap: {child.num_features} channels do not split into {groups} groups")
            setattr(module, name, nn.GroupNorm(groups, child.num_features))
        else:
            swap_batchnorm(child, groups)
    return module


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    groups = 8
    if argv[:1] == ["--groups"]:
        groups, argv = int(argv[1]), argv[2:]
    if argv[:1] != ["benchmark"]:
        raise SystemExit("usage: python bench/norm_swap.py [--groups G] benchmark [genaug benchmark's options]")
    resumed = [b for a, b in zip(argv, argv[1:] + [""]) if a == "--resume"]
    resumed += [a.split("=", 1)[1] for a in argv if a.startswith("--resume=")]
    if resumed and not (Path(resumed[0]) / MARK).is_file():
        raise SystemExit(f"norm_swap: the run given to --resume has no {MARK}: its cells trained with BatchNorm")
    import genaug.benchmark as gb
    from genaug_cli.main import run as genaug

    build, new_benchmark = gb.build_classifier, gb._new_benchmark
    gb.build_classifier = lambda *a, **k: swap_batchnorm(build(*a, **k), groups)

    def marked(*a, **k):   # marked as soon as the run exists, so that other shards may --resume it at once
        run = new_benchmark(*a, **k)
        (run.dir / MARK).write_text(f"every BatchNorm2d of the classifiers was GroupNorm({groups}, C) "
                                    f"(bench/norm_swap.py): config.yaml does not say so\n")
        return run

    gb._new_benchmark = marked
    sys.argv = ["genaug", *argv]
    genaug()


if __name__ == "__main__":
    main()
