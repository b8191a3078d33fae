"""One run from a resolved task and config: checks, engine, record, result file. Used by the CLI and the tests."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from pathlib import Path

import torch

from . import __version__, dist
from .config import config_hash, method_label, to_dict, validate
from .console import log_line
from .engine import Engine, NonFiniteLoss, select_device
from .errors import EmptySplit, RunRefused
from .mixing import mixing_used
from .guard import RunInProgress, RunLock, check_writable, finished_record, set_aside
from .paths import RunPaths, dataset_name, run_paths
from .report.records import git_info, keep_run_files, results_dir as default_results_dir, write_record


def run(task_cls, cfg, *, results_dir: str | Path | None = None, runs_dir: str | Path = "runs",
        resume: str = "auto", reevaluate: bool = False, wait_lock: bool = False, extend: dict | None = None, log=None) -> dict:
    """Train one config (one seed); on rank 0 write `<results_dir>/runs/<task>/<run_id>.json`. Returns the record.

    Before any work: the results and runs folders must be writable, and the run must not be held by another
    process (`wait_lock`: wait for it). A run whose finished record exists is not run again; its record is
    returned. `reevaluate`: run it anyway (from its checkpoint: evaluation only) and keep the old record aside.
    `extend`: {"epochs": N, "patience": P}, the settings of a run of this config (same seed and runs folder) with
    fewer epochs or less patience to train on from when the run has no checkpoint of its own (mixsuite.extend says
    when that gives the numbers of a run from scratch).
    """
    validate(cfg)   # a config built in code is checked as one built from the command line, before any work
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.time()
    sha, dirty = git_info()   # the code the run starts from
    log = log or log_line
    results_dir = default_results_dir(results_dir) if results_dir is None else Path(results_dir)
    refuse_torchrun_if_single_process(task_cls)
    if getattr(cfg, "seeds_batch", 1) > 1:   # a batch of one: through the stacked loop, as its record will say
        from .stacked import run_stacked

        return run_stacked(task_cls, [cfg], results_dir=results_dir, runs_dir=runs_dir, resume=resume,
                           reevaluate=reevaluate, wait_lock=wait_lock, extend=extend, log=log)[0]
    paths, lock, done = claim(task_cls, cfg, runs_dir, results_dir, reevaluate, wait_lock, log)
    if done is not None:
        return done
    path = paths.record
    try:
        engine = Engine(task_cls, cfg, runs_dir=runs_dir, resume=resume, extend=extend, log=log)
        status, error, metrics = "finished", None, {}
        try:
            metrics = engine.run()
        except NonFiniteLoss as e:
            status, error = "diverged", f"{e}; the last good checkpoint is kept in {engine.run_dir}"
        if status == "finished":
            check_trained(engine)
        record = run_record(task_cls, cfg, engine, status, error, metrics, started, (sha, dirty), t0)
        if dist.is_main():
            keep_record(results_dir, path, engine, record, log)
    finally:
        lock.release()
    if status != "finished":
        raise NonFiniteLoss(error)
    return record


def claim(task_cls, cfg, runs_dir, results_dir: Path, reevaluate: bool, wait_lock: bool, log):
    """(paths, lock, None) with the run's lock held on rank 0, or (paths, None, record) for a finished run (not
    run again). Raises RunRefused / RunInProgress for a run that cannot start."""
    paths = run_paths(cfg, task_cls.name, runs_dir, results_dir)
    lock = RunLock(paths.lock, log=log)
    dist.init(select_device(cfg.device))   # the verdict below is broadcast to every process
    # rank 0 checks and locks; every rank follows its verdict (a refusal on rank 0 alone would hang the others)
    verdict = _preflight(paths, lock, reevaluate, wait_lock) if dist.is_main() else None
    kind, detail = dist.broadcast_object(verdict)
    if kind == "refused":
        raise RunRefused(detail)
    if kind == "in progress":
        raise RunInProgress(detail)
    if kind == "finished":
        log(f"{paths.run_id} is finished; its record: {paths.record} (run folder {paths.run_dir}). To run it again "
            "pass --reevaluate (from its checkpoint: evaluation only; with --resume never: trained from scratch), the "
            "old record kept aside; or --results-dir elsewhere")
        return paths, None, detail
    return paths, lock, None


def check_trained(engine) -> None:
    """A finished run must have taken an optimizer step: evaluated weights never trained are not a result."""
    if not engine.step_count:
        raise EmptySplit(f"{engine.run_id} took 0 optimizer steps through the engine in {engine.epoch} epochs, so no "
                         "record is written: a run that trained nothing is not a result. Either its training data "
                         "gave no batch (check the training split's size against batch_size), or a train_epoch of "
                         "the task's own steps its optimizer itself (step through self.engine.step(loss, "
                         "optimizer), or train through training_step)")


def run_record(task_cls, cfg, engine, status: str, error: str | None, metrics: dict, started: str, git: tuple,
               t0: float) -> dict:
    """The run record of a trained engine (`git`: the sha and dirty flag of the code the run started from)."""
    record = {
        "task": task_cls.name, "dataset": dataset_name(cfg, task_cls.name), "method": method_label(cfg),
        "seed": cfg.seed,
        "run_id": engine.run_id, "status": status, "error": error,
        "primary_metric": task_cls.primary_metric, "metrics": _flat_numbers(metrics),
        "mixing": mixing_used(cfg),
        "config": to_dict(cfg), "config_hash": config_hash(cfg), "git_sha": git[0], "git_dirty": git[1],
        "mixsuite_version": __version__, "torch_version": torch.__version__, "python": platform.python_version(),
        "device": str(engine.device), "world_size": dist.world_size(), "started_at": started,
        "torch_threads": torch.get_num_threads(),   # CPU sums (matmuls) are ordered by it: a rerun needs the same
        "cpu": cpu_description(),   # and by the kernels the CPU's instruction set selects (convolutions)
        "wall_time_s": round(getattr(engine, "wall_time_s", time.time() - t0), 3),
        "run_dir": str(engine.run_dir),
    }
    if engine.extended:
        record["extended_from"] = engine.extended
    return record


def keep_record(results_dir: Path, path: Path, engine, record: dict, log) -> None:
    """Write the record (a finished one already there is set aside) after the run's files it names."""
    if finished_record(path) is not None:
        log(f"the previous record is kept as {set_aside(path)}")
    keep_run_files(path, engine.run_dir)   # before the record, which marks the run done
    write_record(results_dir, record)
    log(f"record: {path}")
    figures = sorted(engine.run_dir.glob("*.png"))
    if figures:
        log(f"figures: {', '.join(map(str, figures))}")


def refuse_torchrun_if_single_process(task_cls) -> None:
    """A task that trains in one process only (`distributed = False`, e.g. full-batch) refuses torchrun."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not getattr(task_cls, "distributed", True):
        raise RunRefused(f"the {task_cls.name} task trains in one process only (each of the {world} processes "
                         "would train the whole run again); run it without torchrun. To run several seeds side by "
                         "side: --seeds ... --jobs N")


def _preflight(paths: RunPaths, lock: RunLock, reevaluate: bool, wait_lock: bool) -> tuple:
    """("refused" or "in progress", message), ("finished", record) or ("go", None); on "go" rank 0 holds the
    run's lock."""
    try:
        check_writable(paths.record.parent, "results folder")
        check_writable(paths.run_dir.parent, "runs folder")
        done = finished_record(paths.record)
        if done is not None and not reevaluate:
            return "finished", done
        lock.acquire(wait=wait_lock)
    except RunInProgress as e:
        return "in progress", str(e)
    except RunRefused as e:
        return "refused", str(e)
    return "go", None


def cpu_description() -> dict:
    """The processor a CPU run's numbers depend on: its model and the vector instruction set torch's kernels use
    (AVX2, AVX512, ...). A record made on another one reproduces only where the kernels agree (matmul-only tasks
    have; oneDNN convolutions have not)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return {"model": model, "capability": torch.backends.cpu.get_cpu_capability()}


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
