"""Run records: one JSON file per finished run, written atomically, read back for every report."""
from __future__ import annotations

import functools
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

from ..paths import record_path

REQUIRED = ("task", "dataset", "method", "seed", "metrics", "primary_metric", "config", "config_hash", "status")


def results_dir(explicit: str | None = None) -> Path:
    """`explicit`, else $MIXSUITE_RESULTS, else `results/` inside the runs folder ($MIXSUITE_RUNS or runs/):
    never the curated `results/` of the repository, which is written only when asked (--results-dir results)."""
    return Path(explicit or os.environ.get("MIXSUITE_RESULTS", "")
                or Path(os.environ.get("MIXSUITE_RUNS", "") or "runs") / "results")


@functools.lru_cache(maxsize=None)
def git_info(cwd: str | Path | None = None) -> tuple[str, bool]:
    """(sha, dirty) of the checkout mixsuite runs from, or ("unknown", False) outside one: an installed mixsuite
    (whose site-packages may well lie inside some other git repository, a venv in a checkout) names no commit.

    Read once per process: a long multi-seed command keeps running the code it loaded, even if the checkout
    moves on meanwhile, so later records must not name the newer commit.
    """
    cwd = Path(cwd or Path(sys.modules[__package__.partition(".")[0]].__file__).parents[1]).resolve()
    try:
        sha = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10)
        if sha.returncode or Path(sha.stdout.splitlines()[0]).resolve() != cwd:
            return "unknown", False
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.splitlines()[1].strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


KEPT_FILES = ("metrics.jsonl", "spectra.json")   # what curves and spectra are drawn from
MAX_KEPT_EPOCHS = 100


KEPT_SUFFIX = ".files"


def kept_files_dir(record_file: str | Path) -> Path:
    """`<run_id>.files/` beside the record `<run_id>.json`."""
    record_file = Path(record_file)
    return record_file.with_name(record_file.stem + KEPT_SUFFIX)


def record_files(root: str | Path) -> list[Path]:
    """The record files under a results folder (its runs/ when it has one), not the run files kept beside each."""
    root = Path(root)
    base = root / "runs" if (root / "runs").is_dir() else root
    return sorted(p for p in base.rglob("*.json") if not p.parent.name.endswith(KEPT_SUFFIX))


def keep_run_files(record_file: Path, run_dir: Path) -> list[Path]:
    """Copies of the run folder's small files beside its record, so its curves and spectra can be drawn from a
    results folder alone once the run folder (checkpoints: megabytes to gigabytes) is gone. metrics.jsonl keeps
    at most MAX_KEPT_EPOCHS lines: every k-th and the last (a 2000-epoch GraphMix run keeps every 20th)."""
    from ..checkpoint import atomic_write_text

    kept = []
    for name in KEPT_FILES:
        source = Path(run_dir) / name
        if not source.is_file():
            continue
        text = source.read_text()
        if name == "metrics.jsonl":
            lines = [ln for ln in text.splitlines() if ln.strip()]
            step = math.ceil(len(lines) / MAX_KEPT_EPOCHS) if lines else 1
            kept_lines = lines[::step] + ([lines[-1]] if lines and (len(lines) - 1) % step else [])
            text = "".join(ln + "\n" for ln in kept_lines)
        target = kept_files_dir(record_file) / name
        atomic_write_text(target, text)
        kept.append(target)
    return kept


def run_file(record: dict, name: str) -> Path | None:
    """A file of the record's run: in its run folder if that is still there, else the copy kept beside the
    record (`keep_run_files`); None when neither exists."""
    candidates = [Path(record["run_dir"]) / name] if record.get("run_dir") else []
    if record.get("record_path"):
        candidates.append(kept_files_dir(record["record_path"]) / name)
    return next((p for p in candidates if p.is_file()), None)


def write_record(root: Path, record: dict) -> Path:
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"run record lacks {missing}")
    from ..checkpoint import atomic_write_json   # here, not at the top: reading records (compare) needs no torch

    path = record_path(root, record["task"], record["run_id"])
    atomic_write_json(path, record)
    return path


def load_records(root: str | Path, tasks=None, status: str = "finished", methods=None, seeds=None,
                 skipped: list | None = None) -> list[dict]:
    """The run records under `root`, keeping only the given tasks, methods and seeds when those are given.

    A file that is not a readable record (truncated JSON, a missing key, metrics that are not a mapping) is left
    out; when `skipped` is a list, (path, why) is appended to it so the caller can say so.
    """
    out = []
    for path in record_files(root):
        rec, why = read_record(path)
        if why:
            if skipped is not None:
                skipped.append((path, why))
            continue
        if status and rec.get("status") != status:
            continue
        if (tasks and rec["task"] not in tasks) or (methods and rec["method"] not in methods) \
                or (seeds and rec["seed"] not in seeds):
            continue
        rec["record_path"] = str(path)   # where its kept run files are (not written back)
        out.append(rec)
    return out


def read_record(path: Path) -> tuple[dict | None, str]:
    """(record, "") or (None, why it is not a usable record)."""
    try:
        rec = json.loads(path.read_text())
    except OSError as e:
        return None, f"cannot be read ({e.strerror or e})"
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, f"is not valid JSON (truncated?): {e}"
    if not isinstance(rec, dict):
        return None, "is not a run record (not a JSON object)"
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        return None, f"is not a run record (lacks {', '.join(missing)})"
    if not isinstance(rec["metrics"], dict):
        return None, f"has no metrics (\"metrics\": {json.dumps(rec['metrics'])})"
    return rec, ""


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def group_key(record: dict) -> tuple:
    """Runs that differ only in seed (and device, paths) share (task, dataset, method, config_hash)."""
    return record["task"], record["dataset"], record["method"], record["config_hash"]


def group_label(key: tuple, n: int) -> str:
    """A group of runs in a figure's legend: dataset, method, the config hash's start and the number of seeds."""
    task, dataset, method, config = key
    return f"{dataset} {method} [{config[:6]}] n={n}"


def mean_std(vals: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0
