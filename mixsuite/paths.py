"""Where one run lives, from its config alone: its id, folder, lock and record. Pure (nothing is built, opened
or created), so the runner and a sweep check and lock a run before any Engine exists."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import config_hash, method_label


def dataset_name(cfg, task_name: str) -> str:
    """The config's dataset, else the task's name (a task with one dataset has no `dataset` field)."""
    return getattr(cfg, "dataset", "") or task_name


def run_id(cfg, task_name: str) -> str:
    return f"{dataset_name(cfg, task_name)}-{method_label(cfg)}-{config_hash(cfg)}-s{cfg.seed}".replace("/", "_")


@dataclass(frozen=True)
class RunPaths:
    run_id: str
    run_dir: Path        # checkpoint, metrics.jsonl, plots, config.yaml
    lock: Path           # beside the run folder: held while a process trains the run
    record: Path | None  # <results>/runs/<task>/<run_id>.json (None without a results folder)


def record_path(results_dir: str | Path, task_name: str, run_id: str) -> Path:
    return Path(results_dir) / "runs" / task_name / f"{run_id}.json"


def run_paths(cfg, task_name: str, runs_dir: str | Path = "runs", results_dir: str | Path | None = None) -> RunPaths:
    rid = run_id(cfg, task_name)
    run_dir = Path(runs_dir) / task_name / rid
    record = record_path(results_dir, task_name, rid) if results_dir is not None else None
    return RunPaths(rid, run_dir, run_dir.with_name(rid + ".lock"), record)
