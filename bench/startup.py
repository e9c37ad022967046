"""Issue #8 (h): how long a `genaug` command takes to answer when it does no training: a bad input
(the one-line error, exit 2), a report rewritten from finished cells, a listing of runs, and the
bare imports.

    python bench/startup.py --repeats 5                      # this checkout
    python bench/startup.py --tree /tmp/base --repeats 5     # another checkout of genaug, e.g. a git worktree

Each command runs in a fresh process, as a user's would, with the given checkout first on the
import path (so two checkouts can be timed in turns on the same machine under the same load).
Prints the median and the range of the wall-clock seconds per command, and its exit code.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TINY = """
data:
  demo_train: 40
run:
  device: cpu
benchmark:
  models: cnn
  image_size: 16
  epochs: 1
  batch_size: 16
  bootstrap: 20
"""


def import_path(tree: Path, into: Path) -> str:
    """A folder in which `genaug` and `genaug_cli` are the checkout's (the CLI lives in cli/)."""
    into.mkdir(parents=True, exist_ok=True)
    for name, src in (("genaug", tree / "genaug"), ("genaug_cli", tree / "cli")):
        link = into / name
        if not link.exists():
            link.symlink_to(src, target_is_directory=True)
    return str(into)


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True).returncode
    return time.perf_counter() - t0, rc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=REPO, help="the genaug checkout to time (default: this one)")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="genaug-startup-"))
    env = dict(os.environ, PYTHONPATH=import_path(a.tree.resolve(), work / "path"), OMP_NUM_THREADS="1")
    (work / "tiny.yaml").write_text(TINY)
    cli = [sys.executable, "-m", "genaug_cli.main"]
    # a finished one-cell run whose report the last command rewrites
    rc = subprocess.run(cli + ["benchmark", "--profile", "tiny.yaml", "--variants", "real", "--out", "o",
                               "--name", "r"], env=env, cwd=work, capture_output=True, text=True)
    if rc.returncode != 0:
        sys.exit(f"the tiny benchmark run failed:\n{rc.stderr[-2000:]}")
    run = next((work / "o" / "benchmark").iterdir())
    commands = {
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "genaug --help": cli + ["--help"],
        "genaug encode --profile missing.yaml (exit 2)": cli + ["encode", "--profile", "missing.yaml"],
        "genaug benchmark --data /nonexistent (exit 2)": cli + ["benchmark", "--data", "/nonexistent", "--out", "o"],
        "genaug gan --class FOO --data demo (exit 2)": cli + ["gan", "--class", "FOO", "--data", "demo", "--out", "o"],
        "genaug benchmark --resume RUN --report-only": cli + ["benchmark", "--resume", str(run), "--report-only"],
        "genaug runs --out o (the one-cell run)": cli + ["runs", "--out", "o"],
    }
    print(f"tree {a.tree.resolve()}, {a.repeats} runs each, {os.cpu_count()} CPUs\n")
    print("| command | median s | min-max s | exit |")
    print("|---|---|---|---|")
    for label, cmd in commands.items():
        runs = [timed(cmd, env, work) for _ in range(a.repeats)]
        secs = [s for s, _ in runs]
        print(f"| {label} | {statistics.median(secs):.2f} | {min(secs):.2f}-{max(secs):.2f} | "
              f"{sorted({rc for _, rc in runs})} |", flush=True)


if __name__ == "__main__":
    main()
