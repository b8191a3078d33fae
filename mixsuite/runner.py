"""One run from a resolved task and config: engine, record, result file. Used by the CLI and the tests."""
from __future__ import annotations

import datetime as _dt
import platform
import time
from pathlib import Path

import torch

from . import __version__, dist
from .config import config_hash, method_label, to_dict, validate
from .engine import Engine, NonFiniteLoss, log_line
from .report import git_info, write_record


def run(task_cls, cfg, *, results_dir: str | Path = "results", runs_dir: str | Path = "runs",
        resume: str = "auto", log=None) -> dict:
    """Train one config (one seed); on rank 0 write `<results_dir>/runs/<task>/<run_id>.json`. Returns the record."""
    validate(cfg)   # a config built in code is checked as one built from the command line, before any work
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.time()
    sha, dirty = git_info()   # the code the run starts from
    log = log or log_line
    engine = Engine(task_cls, cfg, runs_dir=runs_dir, resume=resume, log=log)
    status, error, metrics = "finished", None, {}
    try:
        metrics = engine.run()
    except NonFiniteLoss as e:
        status, error = "diverged", f"{e}; the last good checkpoint is kept in {engine.run_dir}"
    record = {
        "task": task_cls.name, "dataset": cfg.dataset or task_cls.name, "method": method_label(cfg), "seed": cfg.seed,
        "run_id": engine.run_id, "status": status, "error": error,
        "primary_metric": task_cls.primary_metric, "metrics": _flat_numbers(metrics),
        "config": to_dict(cfg), "config_hash": config_hash(cfg), "git_sha": sha, "git_dirty": dirty,
        "mixsuite_version": __version__, "torch_version": torch.__version__, "python": platform.python_version(),
        "device": str(engine.device), "world_size": dist.world_size(), "started_at": started,
        "wall_time_s": round(getattr(engine, "wall_time_s", time.time() - t0), 3),
        "run_dir": str(engine.run_dir),
    }
    if dist.is_main():
        path = write_record(Path(results_dir), record)
        log(f"record: {path}")
    if status != "finished":
        raise NonFiniteLoss(error)
    return record


def _flat_numbers(metrics: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out.update(_flat_numbers(v, f"{prefix}{k}."))
        elif isinstance(v, torch.Tensor) and v.numel() == 1:
            out[prefix + k] = v.item()
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[prefix + k] = v
    return out
