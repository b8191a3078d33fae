"""Several seeds side by side: `mixsuite run TASK --seeds 1 2 3 4 --jobs 2`.

Small models use a CPU's cores poorly: GraphMix on Cora trains faster on one thread than on two, so two one-thread
runs side by side finish a list of seeds sooner than two-thread runs one after another. Each worker process
resolves the task itself (a spawned process inherits no imported plugin), uses cores // jobs threads unless told
otherwise, and trains its seeds exactly as `mixsuite run` does: the same records, and the same numbers at the same
thread count (another thread count changes the order of float sums, which a long run can amplify; set
OMP_NUM_THREADS=1 for both to compare). Log lines carry the seed; progress bars are off in the workers.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import torch

from .errors import UserError


def threads_per_job(jobs: int) -> int:
    """$OMP_NUM_THREADS when set, else the cores shared out among the jobs (at least one each)."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, (os.cpu_count() or 1) // jobs)


def check_can_fork_seeds(jobs: int) -> None:
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    if jobs > 1 and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise UserError("--jobs runs seeds in worker processes of one machine; under torchrun every process already "
                        "trains one run together: leave --jobs out")


def _exit_with_parent() -> None:
    """End this worker when the process that started it dies (killed, or its terminal closed): an orphaned
    worker would go on training, holding its run's lock and a core, after `mixsuite run/sweep` is gone. SIGTERM,
    as a kill would send: the run stops as killed runs do, and a rerun resumes it from its checkpoint."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch():
        multiprocessing.connection.wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    _exit_with_parent()


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """`jobs` spawned worker processes with cores // jobs threads each (what `--jobs` means everywhere)."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads_per_job(jobs),))


def _run_seed(task_ref: str, config_files: list, overrides: list, seed: int, results_dir: str, runs_dir: str,
              resume: str, run_options: dict) -> dict:
    from . import runner, task as task_mod
    from .config import build_config

    task_cls = task_mod.resolve(task_ref).load()
    cfg = replace(build_config(task_cls.Config, config_files, overrides), seed=seed, progress=False)
    return runner.run(task_cls, cfg, results_dir=results_dir, runs_dir=runs_dir, resume=resume, **run_options,
                      log=lambda line: print(f"[seed {seed}] {line}", flush=True))


def run_seeds(task_ref: str, config_files: list, overrides: list, seeds: list[int], jobs: int, *,
              results_dir: str | Path, runs_dir: str | Path, resume: str, log=print, **run_options) -> list[dict]:
    """Train every seed in `jobs` worker processes; the records in the order the seeds finish.
    `run_options` (reevaluate, wait_lock) go to runner.run."""
    check_can_fork_seeds(jobs)
    jobs = min(jobs, len(seeds))
    threads = threads_per_job(jobs)
    log(f"{len(seeds)} seeds in {jobs} worker processes, {threads} thread{'s' * (threads > 1)} each")
    records, failed = [], []
    with worker_pool(jobs) as pool:
        futures = {pool.submit(_run_seed, task_ref, list(config_files), list(overrides), seed, str(results_dir),
                               str(runs_dir), resume, run_options): seed for seed in seeds}
        for future in as_completed(futures):
            seed = futures[future]
            try:
                records.append(future.result())
            except Exception as e:  # one seed failing leaves the others running; all are reported at the end
                failed.append(seed)
                log(f"[seed {seed}] failed: {type(e).__name__}: {e}")
    if failed:
        raise UserError(f"seeds {' '.join(map(str, sorted(failed)))} failed (see the lines above); the other "
                        f"{len(records)} wrote their records")
    return records
