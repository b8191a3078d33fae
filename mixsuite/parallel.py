"""N runs in worker processes side by side: `mixsuite sweep ... --jobs N`, and `mixsuite run TASK --seeds 1 2 3 4
--jobs 2`, which is a sweep over the seeds (mixsuite.sweep runs both).

Small models use a CPU's cores poorly: GraphMix on Cora trains faster on one thread than on two, so two one-thread
runs side by side finish a list of seeds sooner than two-thread runs one after another. Each worker process
resolves the task itself (a spawned process inherits no imported plugin), uses cores // jobs threads unless told
otherwise, and trains its runs exactly as `mixsuite run` does: the same records, and the same numbers at the same
thread count (another thread count changes the order of float sums, which a long run can amplify; set
OMP_NUM_THREADS=1 for both to compare). Each run's output goes to its sweep.log; progress bars are off in the workers.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor

import torch

from .errors import UsageError, UserError


def threads_per_job(jobs: int) -> int:
    """$OMP_NUM_THREADS when set, else the cores shared out among the jobs (at least one each)."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, (os.cpu_count() or 1) // jobs)


def check_jobs(jobs: int) -> None:
    """--jobs N: at least 1 (exit 2), and not under torchrun."""
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
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
