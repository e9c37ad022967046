"""Training speed on a CPU that other processes are also using, with and without OMP_WAIT_POLICY=PASSIVE.

PyTorch's CPU wheels use GNU OpenMP, whose worker threads spin while they wait for the next
parallel region. When another process holds a core, a spinning thread burns the time slice
that the thread it waits for needs, and a step can take many times longer than on one thread.
The `genaug` command therefore sets OMP_WAIT_POLICY=PASSIVE unless the environment already
sets it (cli/__init__.py). This script measures what that costs on an idle machine and what it
saves on a busy one.

For each number of busy neighbours (processes running a one-thread matrix-multiply loop),
each thread count and each OpenMP setting, a fresh Python process times optimizer steps of
DenseNet-121 (or --model) on random data; a setting must be in place before torch loads OpenMP,
hence one process per measurement.

    python bench/oversubscription.py [--busy 0,2] [--threads 1,2] [--model densenet121]
        [--image-size 64] [--batch-size 32] [--steps 5] [--settings default,OMP_WAIT_POLICY=PASSIVE]

Prints a table of seconds per step and exits.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

STEP_TIMER = r"""
import json, sys, time, torch, torch.nn.functional as F
from genaug.models import build_classifier
threads, model_name, size, batch, steps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = build_classifier(model_name, in_channels=1, n_classes=2, image_size=size)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.randn(batch, 1, size, size), torch.randint(0, 2, (batch,))
def step():
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()
step()  # warm-up
t0 = time.perf_counter()
for _ in range(steps):
    step()
print(json.dumps({"s_per_step": (time.perf_counter() - t0) / steps}))
"""


def busy_loop() -> None:
    """A neighbour that keeps one core busy with a one-thread matmul loop, as another training job would."""
    import torch
    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    while True:
        a = torch.tanh(a @ a)


OPENMP_KNOBS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")


def time_steps(threads: int, setting: str, args) -> float:
    """Seconds per step in a fresh process whose environment has ``setting`` ('default' or NAME=VALUE)."""
    env = {k: v for k, v in os.environ.items() if k not in OPENMP_KNOBS}
    if setting != "default":
        name, value = setting.split("=", 1)
        env[name] = value
    out = subprocess.run([sys.executable, "-c", STEP_TIMER, str(threads), args.model, str(args.image_size),
                          str(args.batch_size), str(args.steps)],
                         env=env, capture_output=True, text=True, check=True, timeout=args.timeout)
    return json.loads(out.stdout.strip().splitlines()[-1])["s_per_step"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--busy", default="0,2", help="numbers of busy neighbour processes, comma-separated")
    p.add_argument("--threads", default="1,2", help="torch thread counts, comma-separated")
    p.add_argument("--model", default="densenet121")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--settings", default="default,OMP_WAIT_POLICY=PASSIVE",
                   help="OpenMP environments to compare, comma-separated: 'default' or NAME=VALUE "
                        "(e.g. GOMP_SPINCOUNT=10000); ratios are against the first")
    p.add_argument("--timeout", type=int, default=900, help="seconds allowed for one measurement")
    args = p.parse_args()

    print(f"{args.model}, {args.image_size} px, batch {args.batch_size}, {args.steps} steps after a warm-up; "
          f"os.cpu_count() = {os.cpu_count()}")
    settings = args.settings.split(",")
    print("| busy neighbours | threads | " + " | ".join(f"s/step, {s}" for s in settings)
          + "".join(f" | {settings[0]} / {s}" for s in settings[1:]) + " |")
    print("|---|---|" + "---|" * (2 * len(settings) - 1))
    for n_busy in [int(b) for b in args.busy.split(",")]:
        neighbours = [mp.Process(target=busy_loop, daemon=True) for _ in range(n_busy)]
        for proc in neighbours:
            proc.start()
        time.sleep(2 if n_busy else 0)  # let the neighbours reach their loop
        try:
            for threads in [int(t) for t in args.threads.split(",")]:
                secs = [time_steps(threads, setting, args) for setting in settings]
                print(f"| {n_busy} | {threads} | " + " | ".join(f"{t:.3f}" for t in secs)
                      + "".join(f" | {secs[0] / t:.2f}x" for t in secs[1:]) + " |", flush=True)
        finally:
            for proc in neighbours:
                proc.terminate()
                proc.join()


if __name__ == "__main__":
    main()
