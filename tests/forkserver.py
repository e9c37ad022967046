"""Run the genaug command for the tests in a process forked from one that has already imported torch.

Why: the suite runs the real command a few hundred times, and each fresh interpreter spends about 6 s of
CPU importing torch, torchvision and torchmetrics before it does any work (a tiny `genaug gan` run took
19 s, 6 of them imports; session 79). Forked from a process that holds those modules, the command starts
at once and is still its own process: its own pid, signal handlers, working directory, environment,
stdin/stdout/stderr and exit status, and it runs the installed console entry point's `run()` at top level,
so an uncaught exception prints its traceback and exits 1 as the interpreter does.

What a fork cannot give, a fresh interpreter is used for (`run_command` falls back by itself):
settings read as the interpreter or torch starts (PYTHON*, OpenMP, MKL/oneDNN, CUDA variables that differ
from the server's), a second command while one is running, and GENAUG_TESTS_SUBPROCESS=1, which runs every
command as the console script in a fresh interpreter (the way to check that nothing here hides a fault).

Run as a script, this file is the server: it imports the heavy modules, says "ready", then for each
request line (JSON: argv, cwd, env, stdout and stderr paths) forks a child that becomes the command, and
answers the child's pid and then its exit status.
"""
from __future__ import annotations

import atexit
import json
import locale
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# read when the interpreter or torch/OpenMP start: a request that differs here cannot be served by a fork
_START_PREFIXES = ("PYTHON", "OMP_", "GOMP_", "KMP_", "MKL", "ONEDNN", "DNNL", "OPENBLAS", "LD_", "CUDA",
                   "TORCH", "NVIDIA", "LC_", "LANG")
# ... but for two that in-process tests leave in the test process's environment, which then set every later
# command apart (the suite took 13:37 instead of 9:14 so, session 79): `genaug.device.seed_everything` sets
# PYTHONHASHSEED for the subprocesses it may start (no command asks for a hash seed; a forked one keeps the
# server's, random as a user's interpreter's is), and torch sets TORCHINDUCTOR_CACHE_DIR to its default as its
# inductor config loads (`torch.use_deterministic_algorithms` loads it), as it does in a command's own process.
_LEFT_BY_IN_PROCESS_CALLS = {"PYTHONHASHSEED", "TORCHINDUCTOR_CACHE_DIR"}

# how many commands each way, so that a test can tell the fork served one
served = {"forked": 0, "fresh": 0}

_server: subprocess.Popen | None = None
# the environment as the test run began, before any test's monkeypatch: the server starts with it, so that one
# test's start-time setting (PYTHONIOENCODING, say) does not send every later command to a fresh interpreter
_server_env: dict[str, str] = dict(os.environ)
_busy = threading.Lock()


def _start_env_differs(env: dict[str, str]) -> bool:
    keys = {k for k in env.keys() | _server_env.keys() if k.startswith(_START_PREFIXES)} - _LEFT_BY_IN_PROCESS_CALLS
    return any(env.get(k) != _server_env.get(k) for k in keys)


def _start_server() -> subprocess.Popen | None:
    global _server
    # unbuffered: a line read is all that is taken from the pipe, so select() sees what is left
    proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=_server_env, bufsize=0)
    if proc.stdout.readline() != b"ready\n":
        proc.kill()
        proc.wait()
        return None
    _server = proc
    atexit.register(_stop_server)
    return proc


def _stop_server() -> None:
    if _server is not None and _server.poll() is None:
        _server.stdin.close()   # end of requests: it exits
        try:
            _server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _server.kill()


def console_command() -> list[str]:
    """How a shell starts genaug: the installed console script, or the module where none is on PATH."""
    exe = shutil.which("genaug")
    return [exe] if exe else [sys.executable, "-m", "genaug_cli.main"]


def _fresh_interpreter(argv: list[str], cwd: str | None, timeout: float) -> subprocess.CompletedProcess:
    served["fresh"] += 1
    # surrogateescape: a path that is not valid UTF-8 is printed as the bytes it is, as the shell gave it
    return subprocess.run(console_command() + argv, capture_output=True, text=True, errors="surrogateescape",
                          cwd=cwd, timeout=timeout)


def _as_text(data: bytes) -> str:
    # as subprocess.run(text=True) gives it: the locale's encoding, universal newlines
    text = data.decode(locale.getpreferredencoding(False), "surrogateescape")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_line(proc: subprocess.Popen, deadline: float) -> bytes | None:
    """The server's next line (b"" where it has ended), or None if none has begun by ``deadline``
    (time.monotonic)."""
    left = max(0.0, deadline - time.monotonic())
    if not select.select([proc.stdout.fileno()], [], [], left)[0]:
        return None
    return proc.stdout.readline()


def run_command(argv: list[str], cwd: str | os.PathLike | None = None,
                timeout: float = 900) -> subprocess.CompletedProcess:
    """The genaug command with ``argv``, as `subprocess.run(capture_output=True, text=True)` would give it."""
    argv = [str(a) for a in argv]
    cwd = None if cwd is None else str(cwd)
    env = dict(os.environ)
    if (os.environ.get("GENAUG_TESTS_SUBPROCESS") == "1" or not hasattr(os, "fork")
            or not _busy.acquire(blocking=False)):
        return _fresh_interpreter(argv, cwd, timeout)
    try:
        proc = _server if _server is not None and _server.poll() is None else _start_server()
        if proc is None or _start_env_differs(env):
            return _fresh_interpreter(argv, cwd, timeout)
        with tempfile.TemporaryDirectory(prefix="genaug-cmd-") as tmp:
            out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
            request = {"argv": console_command()[:1] + argv, "cwd": cwd or os.getcwd(), "env": env,
                       "stdout": str(out), "stderr": str(err)}
            data = (json.dumps(request, ensure_ascii=True) + "\n").encode("ascii")
            while data:
                data = data[proc.stdin.write(data):]
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"tests/forkserver.py's server ended (exit {proc.wait()}) before it ran {argv}")
            pid = int(json.loads(line)["pid"])
            served["forked"] += 1
            line = _read_line(proc, time.monotonic() + timeout)
            if line == b"":
                raise RuntimeError(f"tests/forkserver.py's server ended (exit {proc.wait()}) while it ran {argv}")
            if line is None:   # past the timeout: stop the command, as subprocess.run does
                os.kill(pid, signal.SIGKILL)
                proc.stdout.readline()
                raise subprocess.TimeoutExpired(request["argv"], timeout, _as_text(out.read_bytes()),
                                                _as_text(err.read_bytes()))
            returncode = int(json.loads(line)["returncode"])
            return subprocess.CompletedProcess(request["argv"], returncode, _as_text(out.read_bytes()),
                                               _as_text(err.read_bytes()))
    finally:
        _busy.release()


def _serve() -> dict | None:
    """The server's loop; returns the request in a forked child (which then becomes the command), None at
    the end of the requests."""
    # the modules every command's start spends its seconds on (imported here, they cost the child nothing)
    import torch  # noqa: F401
    import torchmetrics  # noqa: F401
    import torchvision  # noqa: F401
    import genaug_cli.main  # noqa: F401
    requests = sys.stdin.buffer
    # the objects of those imports live as long as the server: kept out of the collector's scans, no child
    # copies the memory pages they lie on by touching their reference counts (Python's advice for a fork)
    import gc
    gc.freeze()
    os.write(1, b"ready\n")
    while True:
        line = requests.readline()
        if not line:
            return None
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            return request
        os.write(1, (json.dumps({"pid": pid}) + "\n").encode())
        _, status = os.waitpid(pid, 0)
        os.write(1, (json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n").encode())


def _become(request: dict) -> None:
    """This forked child takes the command's streams (first: what goes wrong after is the command's to
    report), working directory, environment and arguments."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = request["argv"]


def _exit_status(code) -> int:
    """What the interpreter makes of ``SystemExit(code)``: None is 0, a number itself, anything else is
    printed to stderr and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    del sys.path[0]   # this tests/ folder: the console script's command has no such entry
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    request = _serve()
    if request is None:
        sys.exit(0)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _become(request)
    from genaug_cli.main import run
    try:
        run()
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException:   # as the interpreter does with what reaches it: the traceback, status 1
        sys.excepthook(*sys.exc_info())
        status = 1
    # The interpreter's exit without its last step, tearing down every module torch brought (1.44 s a
    # command here, 0.47 s after gc.freeze, against 0.06 s so: `bench/startup.py --forked`, medians of 5):
    # what a command registered to run at exit runs, the streams are flushed. Left undone: the __del__ of
    # objects still alive (a file left open is not flushed by it).
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(status)
