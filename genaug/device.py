"""Device choice and seeding."""
from __future__ import annotations

import os
import random
import re

import numpy as np
import torch

from genaug.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device that is absent is an error."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            torch.backends.cudnn.benchmark = True   # fixed input sizes: let cuDNN pick its fastest kernels
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    # cuda:N names one GPU of several (found in session 68: 'cudax' and 'cuda:1' were told "device 'cuda' ...",
    # and a GPU past the last one would have failed at its first tensor)
    cuda = re.fullmatch(r"cuda(?::(\d+))?", name)
    if name not in ("cpu", "mps") and not cuda:
        raise ConfigError(f"unknown device '{name}'; use auto, cpu, cuda (or cuda:N, one GPU of several) or mps")
    if cuda and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' requested but no CUDA GPU is visible; use --device cpu or auto")
    if cuda and cuda.group(1) is not None and int(cuda.group(1)) >= (n := torch.cuda.device_count()):
        raise ConfigError(f"device '{name}' requested but {n} CUDA GPU{'s are' if n != 1 else ' is'} visible "
                          f"(cuda:0{f' to cuda:{n - 1}' if n > 1 else ''}); give one of them, or cuda")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' requested but MPS is not available; use --device cpu or auto")
    if cuda:
        torch.backends.cudnn.benchmark = True
        if cuda.group(1) is not None:   # the current device too: torch's calls given no device (a bare
            torch.cuda.set_device(int(cuda.group(1)))   # .cuda(), memory statistics) then mean the GPU given
    return torch.device(name)


def set_deterministic(on: bool, device: torch.device) -> None:
    """Deterministic algorithms, so the same seed gives the same metrics. On CPU this costs nothing
    measurable here and runs repeat bit for bit (tests/test_interrupt.py). On CUDA it also turns off
    cuDNN's autotuning, and a kernel with no deterministic version warns instead of failing (none
    warned in the demo benchmark on an H200 under torch 2.11, session 51). There two runs of the demo
    benchmark (CNN, ResNet-34, DenseNet-121 at 32 px, bf16 autocast) gave identical test probabilities
    (session 53, bench/gpu_check.sh step 2c); other models, sizes, GPUs and torch versions are unchecked,
    so GPU runs are not promised identical.
    ``run.deterministic: false`` gives the autotuned speed instead."""
    if device.type == "cuda":
        if on:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = not on
        torch.backends.cudnn.deterministic = on
    torch.use_deterministic_algorithms(on, warn_only=True)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX or AVX512-BF16); elsewhere bf16 trains slower than fp32
    (`emulated_bf16_note`). torch's private checks: a torch without them counts as none."""
    return any(getattr(torch.cpu, check, lambda: False)() for check in ("_is_amx_tile_supported",
                                                                       "_is_avx512_bf16_supported"))


def emulated_bf16_note() -> str:
    """How much slower bf16 trains than fp32 on a CPU without bf16 hardware (bench/cpu_bf16.py): oneDNN emulates
    bf16 on AVX-512, measured on such a CPU (an Ice Lake Xeon, docs/PERFORMANCE.md (s), session 77); on AVX2
    alone it cannot, and torch's own kernels are slower still, measured with oneDNN capped to AVX2 on a newer
    Xeon (docs/PERFORMANCE.md (p), session 75)."""
    onednn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
    # measured on x86 CPUs; an ARM CPU's own bf16 (which cpu_has_bf16 does not see) may differ
    if onednn:
        how = ("oneDNN emulates bf16 on AVX-512, and on such an Intel Xeon (Ice Lake) a training step ran at "
               "0.37-0.71x fp32's speed (docs/PERFORMANCE.md (s))")
    else:
        how = ("oneDNN has no bf16 on this CPU, torch's own kernels do it, and on an x86 CPU limited so a training "
               "step ran at 0.08-0.13x fp32's speed (docs/PERFORMANCE.md (p))")
    return f"this CPU has neither AMX nor AVX512-BF16: {how}; --no-cpu-amp turns it off"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
