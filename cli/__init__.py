"""Typer command-line app over the genaug library (installed as ``genaug_cli``)."""
import os

from genaug.cpu_load import busy_cores


def openmp_waiting(environ, busy: float | None) -> dict:
    """How OpenMP's idle threads should wait, as environment settings to add.

    PyTorch's CPU wheels use GNU OpenMP, whose idle worker threads spin 300,000 times before they
    sleep. When other processes hold the cores (a second genaug job, anything else on a shared
    machine) the spinning threads take the time slices that the threads they wait for need: a
    DenseNet-121 step at 2 threads took 20.6 s (0.7 s waiting passively) beside two one-thread jobs
    on a 2-core machine. Passive waiting is slow in its turn on an idle machine, most for small
    networks, whose steps are many short parallel regions: 1.4-1.8x per step, and the demo benchmark
    took 241 s against 151 s with a 10,000-spin wait; beside busy jobs that short spin was 1.3-3x
    slower than passive waiting (bench/oversubscription.py, docs/PERFORMANCE.md (f)). So: the short
    spin when less than half a core is busy, else passive waiting, and whatever the user set, kept.
    ``busy`` (cores busy, `busy_cores`) is None where it cannot be told."""
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return {}
    if busy is not None and busy < 0.5:
        return {"GOMP_SPINCOUNT": "10000"}
    return {"OMP_WAIT_POLICY": "PASSIVE"}


# It has to be set before torch loads OpenMP, so here, before anything imports torch; the 50 ms of
# sampling only where the user has not chosen (the tests set passive waiting for their subprocesses)
if not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & os.environ.keys():
    os.environ.update(openmp_waiting(os.environ, busy_cores()))

import warnings

# pydicom warns, as raw Python warnings, of each oddity it reads past in a file (excess padding, a VR
# other than the header said, a malformed number). A folder of thousands of files would print them
# between the progress lines; what makes a file unusable is reported as its skip reason instead.
warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
