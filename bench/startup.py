"""Issue #8 (h): how long a `genaug` command takes to answer when it does no training: a bad input
(the one-line error, exit 2), a report rewritten from finished cells, a listing of runs, and the
bare imports.

    python bench/startup.py --repeats 5                      # this checkout
    python bench/startup.py --tree /tmp/base --repeats 5     # another checkout of genaug, e.g. a git worktree
    python bench/startup.py --forked --repeats 5             # also as the tests run it (session 79)

Each command runs in a fresh process, as a user's would, with the given checkout first on the
import path (so two checkouts can be timed in turns on the same machine under the same load).
Prints the median and the range of the wall-clock seconds per command, and its exit code.

--forked adds each command forked from a process that has imported torch, as the tests' `genaug(...)`
helper runs it (tests/forkserver.py), and what ending such a process costs: the interpreter's own exit
(which tears down every module), the same after gc.freeze() in the parent, and os._exit after the exit
handlers, which the forked command uses.
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


def fork_exit_seconds(how: str) -> float:
    """Seconds to fork this process (which holds torch, torchvision and torchmetrics) and end the child."""
    import atexit
    import gc
    if how == "gc.freeze, then the interpreter's exit":
        gc.freeze()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        if how == "os._exit after the exit handlers":
            atexit._run_exitfuncs()
            os._exit(0)
        sys.exit(0)
    os.waitpid(pid, 0)
    if how == "gc.freeze, then the interpreter's exit":
        gc.unfreeze()
    return time.perf_counter() - t0


def forked_table(commands: dict, env: dict, work: Path, repeats: int) -> None:
    os.environ.update(env)   # before the server starts: it serves requests of its own environment only
    sys.path.insert(0, str(REPO / "tests"))
    import forkserver
    forkserver.run_command(["--help"], cwd=work)   # the server's start (its imports), not timed
    print("\nforked from a process that has imported torch (tests/forkserver.py):\n")
    print("| command | median s | min-max s | exit |")
    print("|---|---|---|---|")
    for label, cmd in commands.items():
        if cmd[:3] != [sys.executable, "-m", "genaug_cli.main"]:
            continue
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            rc = forkserver.run_command(cmd[3:], cwd=work).returncode
            runs.append((time.perf_counter() - t0, rc))
        secs = [s for s, _ in runs]
        print(f"| {label} | {statistics.median(secs):.2f} | {min(secs):.2f}-{max(secs):.2f} | "
              f"{sorted({rc for _, rc in runs})} |", flush=True)
    import torch  # noqa: F401
    import torchmetrics  # noqa: F401
    import torchvision  # noqa: F401
    print("\nforking a process that holds torch, torchvision and torchmetrics, and ending the child:\n")
    print("| how the child ends | median s | min-max s |")
    print("|---|---|---|")
    for how in ("the interpreter's exit", "gc.freeze, then the interpreter's exit", "os._exit after the exit handlers"):
        secs = [fork_exit_seconds(how) for _ in range(repeats)]
        print(f"| {how} | {statistics.median(secs):.3f} | {min(secs):.3f}-{max(secs):.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=REPO, help="the genaug checkout to time (default: this one)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--forked", action="store_true", help="also time each command as the tests run it")
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
    if a.forked:
        forked_table(commands, env, work, a.repeats)


if __name__ == "__main__":
    main()
