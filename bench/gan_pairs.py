"""Issue #3: does a training setting change the quality of the GANs it trains, over several seeds?

One GAN run's FID carries a bootstrap spread over the draw of held-out images (quality.md's "±"), not the
spread over GAN seeds, which is larger: the ten distinct fp32 results of the cpu profile's GAN config on record
span 11.83-29.22 in NORMAL's FID. So a setting (--channels-last, --cpu-amp) is judged on pairs of runs, each pair the same
config and seed trained both ways, and the question is whether the difference within pairs stays away from
zero. This reads the pairs' metrics.json and history files (nothing is trained) and prints:
- per pair and class: FID of A and of B, B - A, and each run's training seconds (its epochs' sum), with their
  ratio where the two manifests name the same machine;
- per class: the mean B - A with a 95% t interval over the pairs, and how many pairs B came out higher;
- each pair's config differences, so that a pair that differs in more than the setting shows.

    python bench/gan_pairs.py RUN_A1:RUN_B1 RUN_A2:RUN_B2 [...]

The figures are in docs/PERFORMANCE.md (t) and docs/STATUS.md.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from genaug.config import config_from_dict
from genaug.runs import read_run_config

# settings that name a run or where it ran, not how it trained
_IGNORED = {("run", "name"), ("run", "out_root"), ("run", "threads")}


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom, from scipy (which scikit-image brings)."""
    from scipy.stats import t
    return float(t.ppf(0.975, df))


def mean_interval(diffs: list[float]) -> tuple[float, float, float]:
    """The mean of ``diffs`` and its 95% t interval (nan wide for one value)."""
    d = np.asarray(diffs, dtype=float)
    mean = float(d.mean())
    if len(d) < 2:
        return mean, math.nan, math.nan
    half = t_quantile_975(len(d) - 1) * float(d.std(ddof=1)) / math.sqrt(len(d))
    return mean, mean - half, mean + half


def training_seconds(run: Path) -> float:
    """The sum of the seconds of every epoch the run's history files record."""
    return sum(h["seconds"] for f in sorted(run.glob("history-*.json"))
               for h in json.loads(f.read_text(encoding="utf-8")))


def config_differences(a: Path, b: Path) -> list[str]:
    """'section.key: A -> B' for each resolved setting in which the two runs differ, except names and threads."""
    ca, cb = (config_from_dict(read_run_config(r)).to_dict() for r in (a, b))
    return [f"{s}.{k}: {ca[s][k]} -> {cb[s].get(k)}" for s in ca for k in ca[s]
            if (s, k) not in _IGNORED and ca[s][k] != cb[s].get(k)]


def machine(run: Path) -> str | None:
    """The CPU (or GPU) its manifest records, which a speed ratio between two runs needs to share."""
    try:
        m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return f"{m.get('device')} {(m.get('machine') or {}).get('cpu')}" if isinstance(m, dict) else None


def fids(run: Path) -> dict[str, tuple[float, float]]:
    """Each class's synthetic FID and its bootstrap std, from the run's metrics.json."""
    m = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    return {c: (r["fid"]["synthetic"], r["fid"].get("synthetic_bootstrap_std", math.nan))
            for c, r in m["classes"].items() if "fid" in r}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", help="RUN_A:RUN_B, the same config and seed trained without (A) and with (B)")
    args = ap.parse_args(argv)
    pairs = []
    for p in args.pairs:
        a, sep, b = p.partition(":")
        if not sep or not a or not b:
            ap.error(f"{p!r} is not RUN_A:RUN_B")
        for run in (a, b):
            if not (Path(run) / "metrics.json").is_file():
                ap.error(f"{run} has no metrics.json: give finished genaug gan runs")
        pairs.append((Path(a), Path(b)))
    print("| pair | class | FID A | FID B | B - A | training s A | training s B | B/A speed |")
    print("|---|---|---|---|---|---|---|---|")
    diffs: dict[str, list[float]] = {}
    for i, (a, b) in enumerate(pairs, 1):
        fa, fb = fids(a), fids(b)
        sa, sb = training_seconds(a), training_seconds(b)
        for c in fa:
            if c not in fb:
                continue
            diffs.setdefault(c, []).append(fb[c][0] - fa[c][0])
            # a ratio of seconds from two machines says nothing of the setting
            speed = f"{sa / sb:.2f}x" if machine(a) == machine(b) else "other machines"
            print(f"| {i} | {c} | {fa[c][0]:.2f} ± {fa[c][1]:.2f} | {fb[c][0]:.2f} ± {fb[c][1]:.2f} | "
                  f"{fb[c][0] - fa[c][0]:+.2f} | {sa:.0f} | {sb:.0f} | {speed} |")
    print()
    print("| class | pairs | mean B - A | 95% t interval | B higher in |")
    print("|---|---|---|---|---|")
    for c, d in diffs.items():
        mean, lo, hi = mean_interval(d)
        print(f"| {c} | {len(d)} | {mean:+.2f} | {lo:+.2f} to {hi:+.2f} | {sum(x > 0 for x in d)} of {len(d)} |")
    print()
    for i, (a, b) in enumerate(pairs, 1):
        print(f"pair {i}: {a.name} -> {b.name}: " + ("; ".join(config_differences(a, b)) or "the same config"))


if __name__ == "__main__":
    main()
