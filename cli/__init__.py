"""Typer command-line app over the genaug library (installed as ``genaug_cli``)."""
import os

# PyTorch's CPU wheels use GNU OpenMP, whose idle worker threads spin. When other processes hold
# the cores (a second genaug job, anything else on a shared machine) the spinning threads take the
# time slices that the threads they wait for need: a DenseNet-121 step at 2 threads took 20.6 s
# (0.7 s waiting passively) beside two one-thread jobs on a 2-core machine. Passive waiting costs little
# on an idle machine (bench/oversubscription.py, docs/PERFORMANCE.md (f)). It has to be set before
# torch loads OpenMP, so here, before anything imports torch; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import warnings

# pydicom warns, as raw Python warnings, of each oddity it reads past in a file (excess padding, a VR
# other than the header said, a malformed number). A folder of thousands of files would print them
# between the progress lines; what makes a file unusable is reported as its skip reason instead.
warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
