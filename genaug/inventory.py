"""What each run under a run root is now: at work, finished, or stopped and resumable.

Read from what the runs wrote (manifests, configs, histories, cell files) and from their locks
(genaug.locks), without torch, so that ``genaug runs`` answers at once.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from genaug.errors import DataError
from genaug.locks import holders_since, in_use_by

RESUMABLE = ("gan", "encode", "benchmark")


@dataclass
class RunState:
    run: str            # the run directory
    command: str        # gan, encode, benchmark, pool, ...
    state: str          # at work | finished | stopped | unreadable (its manifest.json cannot be read)
    progress: str       # "7 of 16 epochs", "24 of 27 cells" (at work: ", about 25m left"), or ""
    last_log: float | None   # seconds since its log was last written (None: no log)
    holder: str         # the process at work on it, when one is
    resume: str         # the command that continues a stopped run ("" when none does)
    archived: bool = False   # made by genaug archive (or a copy of one): results without weights
    why: str = ""       # a stopped run's last log line, where it says why ("stopped by SIGTERM")


def duration(seconds: float) -> str:
    """2d03h, 1h05m, 12m30s, 45s."""
    s = int(round(seconds))
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def seconds_text(seconds: float) -> str:
    """Seconds to one decimal, or to two significant digits below 1 s, so a tiny run's 0.034 s/epoch is not 0.0."""
    return f"{seconds:.1f}" if seconds >= 0.95 else f"{seconds:#.2g}"   # '#': 0.20, not 0.2 beside 0.064


# a log.txt line: "2026-12-03 18:59:41,123 INFO text" (logging's asctime, in local time)
_STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ "
_LOG_STAMP = re.compile(_STAMP, re.M)
_LOG_LINE = re.compile(_STAMP + r"INFO (.*)$", re.M)


def _log_tail(log: Path, size: int) -> str:
    """The last ``size`` bytes of a log, as text."""
    with open(log, "rb") as fh:
        fh.seek(max(fh.seek(0, 2) - size, 0))
        return fh.read().decode("utf-8", "replace")


def _stamp_time(stamp: str) -> float | None:
    try:
        return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))   # the log writes local time
    except ValueError:
        return None


def last_log_time(log: Path) -> float | None:
    """When the last line of a run's log.txt was written, from its own time stamp; None where no line
    carries one."""
    times = [t for stamp in _LOG_STAMP.findall(_log_tail(log, 4096)) if (t := _stamp_time(stamp)) is not None]
    return times[-1] if times else None


def stop_reason_in_log(d: Path) -> str:
    """Why a run stopped, where its log's last line says it ("stopped: interrupted (Ctrl-C)", written by
    genaug.runs.running); '' where the last line is another (a SIGKILL, a power cut: nothing was said)."""
    try:
        lines = _log_tail(d / "log.txt", 4096).rstrip("\n").splitlines()
    except OSError:
        return ""
    last = re.match(_STAMP + r"ERROR (stopped.*)$", lines[-1]) if lines else None
    return last.group(2) if last else ""


def log_age(d: Path, archived: bool) -> float | None:
    """Seconds since the run last wrote its log. An archive's files were copied (and checked out of git)
    later, so their times say when that was: there, the log's last time stamp says it."""
    log = d / "log.txt"
    if not log.is_file():
        return None
    written = last_log_time(log) if archived else None
    return time.time() - (written if written is not None else log.stat().st_mtime)


def _recent_seconds(histories: list[list]) -> list[float]:
    """The seconds of the last three epochs of each history."""
    return [e["seconds"] for h in histories for e in h[-3:]
            if isinstance(e, dict) and isinstance(e.get("seconds"), (int, float))]


def training_left(history: list, planned: int, what: str = "training") -> str:
    """', about 12m of training left' for a GAN or autoencoder with ``history`` (one dict per epoch done, with
    its seconds) of ``planned`` epochs, at the pace of its last three epochs; '' when none is left."""
    recent = _recent_seconds([history])
    left = planned - len(history)
    if left <= 0 or not recent:
        return ""
    seconds = left * sum(recent) / len(recent)
    return f", {f'about {duration(seconds)}' if seconds >= 1 else 'under a second'} of {what} left"


def counted(n: int, what: str) -> str:
    """'1 cell', '3 cells'."""
    return f"{n} {what}{'' if n == 1 else 's'}"


def _images_written(d: Path, manifest: dict, since: float | None) -> str:
    """'1200 images' for a finished `gan sample` run (its manifest counts them); else the images it has written
    so far: a million take the better part of an hour here, and a stopped run's partial images are worth
    knowing of (found in session 55: `genaug runs` showed '-' for a run at work or stopped). Of how many,
    and at work (``since``: when its process took the run) the time left at the pace so far."""
    if isinstance(n := manifest.get("synthetic_images"), int):
        return counted(n, "image")
    try:
        n = sum(f.name.endswith(".png") for c in os.scandir(d / "synthetic") if c.is_dir()
                for f in os.scandir(c.path))
    except OSError:
        n = 0
    if not isinstance(planned := manifest.get("images_planned"), int):   # not yet known, or a run before session 56
        return f"{counted(n, 'image')} written"
    left = "" if since is None or n == 0 else f", about {duration((planned - n) * (time.time() - since) / n)} left"
    return f"{n} of {counted(planned, 'image')} written{left}"


def read_json_or_none(path: Path):
    """A JSON file's content; None where it is missing, unreadable, not UTF-8 or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _config(d: Path) -> dict:
    import yaml
    try:
        cfg = yaml.safe_load((d / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def _epochs(d: Path, section: str, histories: list[Path], at_work: bool) -> tuple[str, bool | None]:
    """'7 of 16 epochs' from a GAN's or autoencoder's per-epoch history, and whether all are done; while
    the run is at work, with the training time left at the pace of its last epochs."""
    settings = _config(d).get(section) or {}
    planned = settings.get("epochs")
    read = [read_json_or_none(p) for p in histories]
    if not histories or not isinstance(planned, int):
        return "", None
    if damaged := [p.name for p, h in zip(histories, read) if not isinstance(h, list)]:
        # counted as no epochs, a damaged history had shown a finished run as "0 of 16 epochs"
        return f"{', '.join(damaged)} unreadable", None
    done = [len(h) for h in read]
    if len(done) == 1:
        text = f"{done[0]} of {counted(planned, 'epoch')}"
    else:
        names = [p.stem.split("-", 1)[-1] for p in histories]   # history-<class>.json of per-class models
        text = ", ".join(f"{n} {e}/{planned}" for n, e in zip(names, done)) + " epochs"
    recent = _recent_seconds(read)
    left = sum(max(planned - n, 0) for n in done)
    # per-class GANs train one class after another: those not begun have no history to count yet
    if at_work and recent and left and not settings.get("per_class"):
        text += f", about {duration(left * sum(recent) / len(recent))} of training left"
    return text, min(done) >= planned


def _cells(d: Path, manifests: list[dict]) -> tuple[str, bool | None, list[str]]:
    """'24 of 27 cells', whether every planned cell is done (None when the plan is unknown: a run
    made before runs recorded it, and not yet resumed), and the planned cells not done."""
    have = {p.stem for p in (d / "cells").glob("*.json")}
    plans = [m["planned_cells"] for m in manifests if isinstance(m.get("planned_cells"), list)]
    if plans:
        planned = max(plans, key=len)   # an extended run records a longer plan
        todo = [k for k in planned if k not in have]
        done = len(planned) - len(todo)
        return f"{done} of {counted(len(planned), 'cell')}", not todo, todo
    with_counts = [m for m in manifests if isinstance(m.get("cells"), int) and isinstance(m.get("missing_cells"), int)]
    if with_counts:   # written when its last process ended
        m = with_counts[-1]
        total = m["cells"] + m["missing_cells"]
        return f"{min(len(have), total)} of {counted(total, 'cell')}", len(have) >= total, []
    return (counted(len(have), "cell") if have else ""), None, []


# a cell's key is model__variant__f<fraction>__seed<n>: the epoch lines of the GAN and autoencoder a
# benchmark trains for itself share its log ("autoencoder epoch 1 of 10: ..."), and are no cells
_CELL_EPOCH = re.compile(r"(\S+__\S+) epoch (\d+) of (\d+): ")
# where a cell's epoch clock starts: the cell begins, or a process resumes it from partial/
_CELL_START = re.compile(r"\[\d+/\d+\] (\S+__\S+): \d+ training images|(\S+__\S+): resuming at epoch \d+ of \d+ ")


def _cells_in_progress(d: Path, done: set[str], at_work: bool) -> tuple[str, dict[str, float], dict[str, float]]:
    """'vgg19__real__f1__seed0 4 of 12 epochs' for each cell not done that the end of the run's log
    reports (benchmark shards share the log); while the run is at work, with the most time the cell
    can take at the pace of its last epochs in the process at work (early stopping may end it sooner),
    which is also returned, in seconds, per cell timed; and, per cell timed, what all its epochs take
    at that pace."""
    try:
        tail = _log_tail(d / "log.txt", 65536)
    except OSError:
        return "", {}, {}
    mark: dict[str, float] = {}                 # when the epoch now under way began, per cell
    took: dict[str, list[float]] = {}           # seconds of each epoch timed
    latest: dict[str, tuple[int, int] | None] = {}
    for line in _LOG_LINE.finditer(tail):
        if (t := _stamp_time(line.group(1))) is None:
            continue
        if e := _CELL_EPOCH.match(line.group(2)):
            key = e.group(1)
            if key in mark:
                took.setdefault(key, []).append(t - mark[key])
            mark[key], latest[key] = t, (int(e.group(2)), int(e.group(3)))
        elif s := _CELL_START.match(line.group(2)):
            key = s.group(1) or s.group(2)
            mark[key] = t
            took.pop(key, None)   # the pace of this process only: a resumed cell may run on another machine
            latest.setdefault(key, None)
    parts, left, whole = [], {}, {}
    for key, epochs in latest.items():
        if key in done:
            continue
        if epochs is None:
            parts.append(f"{key} started {duration(time.time() - mark[key])} ago, no epoch done yet" if at_work
                         else f"{key} stopped before its first epoch")
            continue
        n, of = epochs
        text = f"{key} {n} of {of} epochs"
        if at_work and took.get(key) and n < of:
            pace = sum(took[key][-3:]) / len(took[key][-3:])
            left[key], whole[key] = pace * (of - n), pace * of
            text += f", at most {duration(left[key])} left"
        parts.append(text)
    return "; ".join(parts), left, whole


def _cell_kind(key: str) -> str:
    """'cnn' or 'cnn (latent)' from a cell key such as 'cnn__encoded__f1__seed0'."""
    parts = key.split("__")
    return parts[0] + (" (latent)" if len(parts) > 1 and parts[1] == "encoded" else "")


def _benchmark_time_left(d: Path, todo: list[str], in_progress: dict[str, float], processes: int,
                         whole: dict[str, float] | None = None, since: float | None = None) -> str:
    """', about 25m left' for a benchmark at work: each cell not begun at the mean training time of
    the run's last three finished cells of its kind, its model and whether it reads latents (cells differ
    by model far more than by seed or variant, but the latent CNN takes a fraction of the pixel CNN's
    time), or, before its kind has finished one, at what a cell of it in progress takes for all
    its epochs (``whole``: early stopping may end it sooner); each cell in progress at what its epochs
    left take; shared among the processes at work. '' while a model left has neither to time it by.
    Cells finished before the processes at work began (``since``) count only for a model that has
    neither a cell finished since nor one in progress: a run resumed with other --threads, or on
    another machine, trains at its own pace."""
    took: dict[str, list[float]] = {}
    earlier: dict[str, list[float]] = {}
    for p in sorted((d / "cells").glob("*.json"), key=lambda p: p.stat().st_mtime):
        if isinstance(c := read_json_or_none(p), dict) and isinstance(c.get("train_seconds"), (int, float)):
            now = since is None or p.stat().st_mtime >= since
            (took if now else earlier).setdefault(_cell_kind(p.stem), []).append(float(c["train_seconds"]))
    for key, seconds in (whole or {}).items():   # no cell of the model finished here yet: its pace so far
        took.setdefault(_cell_kind(key), [seconds])
    for model, seconds in earlier.items():
        took.setdefault(model, seconds)
    waiting = [_cell_kind(k) for k in todo if k not in in_progress]
    if not todo or any(not took.get(m) for m in waiting):
        return ""
    seconds = sum(in_progress.values()) + sum(sum(took[m][-3:]) / len(took[m][-3:]) for m in waiting)
    return f", about {duration(seconds / max(processes, 1))} left"


def _inputs_in_progress(d: Path) -> str:
    """'its gan run 3 of 25 epochs' for each GAN or autoencoder run a benchmark trains for itself (under
    its inputs/) and has not finished: the cells wait for it, and their count alone would show no progress."""
    states = [run_state(inner) for inner in sorted((d / "inputs").glob("*/*")) if inner.is_dir()]
    return "; ".join(f"its {s.command} run {s.progress}" for s in states
                     if s is not None and s.state != "finished" and s.progress)


def run_state(directory: str | Path) -> RunState | None:
    """The state of one run directory; None for a folder that is not a genaug run."""
    d = Path(directory)
    if (d / "manifest.json").is_file() and not isinstance(read_json_or_none(d / "manifest.json"), dict):
        return None   # unreadable, which --resume refuses: not listed as its shards' manifests would have it
    manifests = [m for p in sorted(d.glob("manifest*.json")) if isinstance(m := read_json_or_none(p), dict)]
    main = next((m for m in manifests if m.get("command")), None)
    if main is None:
        return None
    command = str(main["command"])
    holder = in_use_by(d)
    if command == "benchmark":
        progress, complete, todo = _cells(d, manifests)
    elif command in ("gan", "encode"):
        histories = sorted(d.glob("history-*.json")) if command == "gan" else [d / "history.json"]
        progress, complete = _epochs(d, command, [p for p in histories if p.is_file()], bool(holder))
    elif command == "gan-sample":
        progress, complete = _images_written(d, main, holders_since(d) if holder else None), None
    else:
        progress, complete = "", None
    flagged = any(m.get("finished") for m in manifests)
    finished = complete if complete is not None and command == "benchmark" else flagged
    if finished and command == "benchmark" and not (d / "report.md").is_file():
        # every cell done, but stopped before its report was written: a --resume writes it
        finished, progress = False, f"{progress}; no report yet"
    state = "at work" if holder else "finished" if finished else "stopped"
    if command == "benchmark" and state != "finished":
        now, in_progress, whole = _cells_in_progress(d, {p.stem for p in (d / "cells").glob("*.json")}, bool(holder))
        if holder and todo:
            progress += _benchmark_time_left(d, todo, in_progress, len(holder.split("; ")), whole,
                                             holders_since(d))
        progress = "; ".join(p for p in (progress, _inputs_in_progress(d), now) if p)
    resume = f"genaug {command} --resume {shlex.quote(str(d))}" if state == "stopped" and command in RESUMABLE else ""
    archived = (d / "archived.json").is_file()
    why = stop_reason_in_log(d) if state == "stopped" else ""
    return RunState(str(d), command, state, progress, log_age(d, archived), holder, resume, archived, why)


def list_runs(out_root: str | Path, command: str | None = None) -> list[RunState]:
    """Every run under ``out_root`` (``<out_root>/<command>/<run>/``), oldest first by name; given one
    command's folder or one run, those runs or that one."""
    root = Path(out_root)
    if root.is_file():
        raise DataError(f"--out {root} is a file, not a folder of runs (give --out the folder your genaug "
                        "commands wrote their runs to; the default is outputs)")
    if not root.is_dir():
        raise DataError(f"run root not found: {root} (give --out the folder your genaug commands wrote their "
                        "runs to; the default is outputs)")
    if command and not (root / command).is_dir():
        # the folders that hold runs: not the decode cache
        held = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "cache")
        near = next((h for h in held if h.startswith(command)), None)
        raise DataError(f"no {command} runs under {root}" + (f"; did you mean {near}?" if near else "")
                        + f" (it holds runs of: {', '.join(held) or 'none'})")
    if (own := run_state(root) or _unreadable(root)) is not None:   # given a run itself (an unreadable one: the error)
        return [own]
    folders = [root / command] if command else sorted(p for p in root.iterdir() if p.is_dir())
    if not command and any((p / "manifest.json").is_file() for p in folders):
        folders = [root]   # given one command's folder, e.g. outputs/benchmark
    found = [r for f in folders for r in sorted(f.iterdir()) if r.is_dir()]
    # a run linked in beside itself (a restored run put back under its old name, found in session 70) is
    # one run: listed twice, its stop and its process were counted twice
    real = {r.resolve() for r in found if not r.is_symlink()}
    states = [_state(r) for r in found if not (r.is_symlink() and r.resolve() in real)]
    return [s for s in states if s is not None]


def _state(d: Path) -> RunState | None:
    """A run's state, "unreadable" where its manifest or its folder cannot be read: one run folder that may
    not be read (chmod 000) ended the listing of every run beside it (found in session 73)."""
    try:
        return run_state(d) or _unreadable(d)
    except PermissionError as exc:
        return RunState(str(d), d.parent.name, "unreadable", "", None, "", "",
                        why=f"genaug may not read it ({exc.strerror}: {exc.filename}): make it readable, or run "
                            "as its owner")


def _unreadable(d: Path) -> RunState | None:
    """A run whose manifest.json is there but cannot be read (cut short by a full disk, or edited): it
    had been left out of the list without a word, as if it were not a run."""
    if not (d / "manifest.json").is_file():
        return None   # not a genaug run (an empty folder, the decode cache)
    return RunState(str(d), d.parent.name, "unreadable", "", log_age(d, False), "", "",
                    why="its manifest.json cannot be read (corrupt, cut short or without a command): genaug "
                        "report, --resume and archive refuse it; restore the file or move the run away")


def format_runs(states: list[RunState], root: str | Path) -> str:
    """A table, one run per line, and how to go on with the stopped ones. A benchmark's cells in
    progress and the processes of its shards go on lines of their own below its row, so the table
    keeps to the width of a terminal."""
    from genaug.data.decode import padded, safe_name, shown_width   # here: genaug.data imports this module's counted
    if not states:
        return f"no genaug runs under {root}\n"
    rows = [("run", "state", "progress", "log written", "process at work")]
    below: list[tuple[list[str], list[str]]] = []   # per run: more processes, cells in progress
    for s in states:
        state = f"{s.state} (archived)" if s.archived else s.state
        parts = s.progress.split("; ") if s.command == "benchmark" and s.progress else [s.progress]
        count = (parts.pop(0) if re.fullmatch(r"\d+ (of \d+ )?cells?(, about \S+ left)?", parts[0])
                 or s.command != "benchmark" else "")
        holders = s.holder.split("; ") if s.holder else ["-"]
        # the name as the console shows it (a byte not UTF-8 as \xff), so that the padding counts what is shown
        rows.append((safe_name(s.run), state, count or "-", "-" if s.last_log is None else f"{duration(s.last_log)} ago",
                     holders[0]))
        below.append((holders[1:], [c for c in parts if c] + ([s.why] if s.why else [])))
    widths = [max(shown_width(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(padded(c, w) for c, w in zip(rows[0][:4], widths)) + "  " + rows[0][4]]
    for r, (more, cells) in zip(rows[1:], below):
        lines.append("  ".join(padded(c, w) for c, w in zip(r[:4], widths)) + "  " + r[4])
        lines += [" " * (sum(widths) + 8) + h for h in more]
        lines += [f"    {c}" for c in cells]
    stopped = [s for s in states if s.resume]
    if stopped:
        lines += ["", f"{len(stopped)} stopped run{'s' if len(stopped) > 1 else ''} can go on where "
                  f"{'they' if len(stopped) > 1 else 'it'} stopped:"] + [f"  {s.resume}" for s in stopped]
    return "\n".join(lines) + "\n"


def states_as_json(states: list[RunState]) -> str:
    return json.dumps([asdict(s) for s in states], indent=1)
