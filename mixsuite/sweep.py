"""Grids of runs: `mixsuite sweep TASK alpha=0.5,1,2 'mix_layers=[input],[layer1]' --seeds 1 2 3`.

Every point of a grid (the Cartesian product of the comma-separated values, times the seeds) is an ordinary run:
the run id, run folder and record that `mixsuite run` makes, so `compare` reads sweeps and runs alike, and a point
whose finished record exists is skipped (a killed sweep, run again, does only what is missing). Settings that go
together (a method and its own epoch budget) are one `--point 'method=s2m2 epochs=30'` each: the points given so
are one more axis of the grid. The points run seed by seed. Every point's config is built before the first one
starts, so a bad key or value anywhere in the grid exits 2 and nothing runs.

Three executors: the points one after another in this process; `--jobs N` worker processes (`mixsuite run
--seeds ... --jobs N` is this sweep over the seeds); `--ray [ADDRESS]`, each point a Ray task that Ray schedules
over a cluster's nodes (which must see the same data root, results and runs folders). A point's output goes to
`<runs>/<task>/<run_id>/sweep.log`; the console gets one progress line and a summary. A point another process
trains (its lock held: a second sweep of the same grid, another machine on the same folders) is skipped, not failed,
so sweeps started side by side share a grid. `--extend patience=5` starts every point from the run of its config
with that patience (or fewer epochs), as `mixsuite run --extend` does; the dry run names each point's shorter run.
"""
from __future__ import annotations

import itertools
import json
import os
import shlex
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, wait
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path

from .config import build_config, split_values
from .console import duration
from .errors import ConfigError, UserError
from .guard import RunInProgress
from .paths import run_id, run_paths

RAY_MISSING = ("--ray needs Ray, an optional extra of mixsuite: pip install -e \".[ray]\" in a checkout "
               "(or pip install \"mixsuite[ray]\")")
# What a Ray worker on another node needs to find the code, the data and the caches as this process does.
WORKER_ENV = ("PYTHONPATH", "MIXSUITE_DATA", "MIXSUITE_CACHE", "MIXSUITE_TASK_PATHS", "OMP_NUM_THREADS")


def parse_grid(items: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """key=value items -> (the fixed overrides, the axes [(key, [value, ...])] in the order given)."""
    fixed, axes = [], []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{item!r} is not of the form key=value or key=value1,value2,...")
        values = split_values(raw, key)
        if len(values) == 1:
            fixed.append(item)
        elif key in (k for k, _ in axes):
            raise ConfigError(f"{key} is given twice in the grid; list all its values once: {key}=a,b,c")
        else:
            axes.append((key, values))
    return fixed, axes


def parse_bundles(bundles: list[str] | None, fixed: list[str], axes: list[tuple[str, list[str]]]) -> list[list[str]]:
    """--point 'k=v k2=v2' items -> [["k=v", "k2=v2"], ...] (one value of one more axis each); [[]] when none.
    A key a --point sets may not also be an axis or a fixed override: which value wins would be a guess."""
    out = []
    for bundle in bundles or ():
        items = shlex.split(bundle)
        if not items:
            raise ConfigError("--point '': give the settings of one point, e.g. --point 'method=s2m2 epochs=30'")
        for item in items:
            key, sep, raw = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"--point {bundle!r}: {item!r} is not of the form key=value")
            if len(split_values(raw, key)) > 1:
                raise ConfigError(f"--point {bundle!r}: {key} has several values; a --point sets one value a key "
                                  f"(sweep values as {key}=a,b on the grid, or give one --point each)")
            if key in (k for k, _ in axes) or key in (f.partition("=")[0] for f in fixed):
                raise ConfigError(f"--point {bundle!r} sets {key}, which the grid also sets; set it in one place "
                                  f"(in every --point if the points differ in it)")
        out.append(items)
    return out or [[]]


@dataclass
class Point:
    grid: list[str]          # this point's key=value on the grid's axes
    overrides: list[str]     # every override that makes its config (fixed ones, then the grid's)
    seed: int
    run_id: str
    record: Path
    done: bool
    epochs: int = 0          # the config's epochs: how far along a running point is, from its metrics.jsonl

    @property
    def label(self) -> str:
        return " ".join(self.grid + [f"seed={self.seed}"])


def plan(task_cls, config_files: list, items: list[str], seeds: list[int] | None, results_dir: Path,
         bundles: list[str] | None = None, grid: bool = True, out=None) -> list[Point]:
    """Every point, its config built and checked (a ConfigError names the point), and whether it is done. Seed by
    seed: every grid point of the first seed, then of the next, so a sweep stopped part-way leaves whole seeds,
    whose runs pair by seed (`compare --paired`). `grid=False`: the items are plain overrides (`run --seeds`).
    Points that are one run (a seed given twice; 1 and 1.0) run once, and a line on `out` says so."""
    from .report.records import read_record

    fixed, axes = parse_grid(items) if grid else (list(items), [])
    configs = []
    for bundle, *rest in itertools.product(parse_bundles(bundles, fixed, axes),
                                           *[[f"{key}={v}" for v in values] for key, values in axes]):
        combo = bundle + rest
        try:
            configs.append((combo, build_config(task_cls.Config, config_files, fixed + combo)))
        except ConfigError as e:
            where = f" (grid point {' '.join(combo)})" if combo else ""
            raise ConfigError(f"{e}{where}") from None
    points, seen = [], {}
    for seed, combo, cfg in [(s, combo, cfg) for s in seeds or [None] for combo, cfg in configs]:
        seed = cfg.seed if seed is None else seed
        paths = run_paths(replace(cfg, seed=seed), task_cls.name, results_dir=results_dir)
        point = Point(list(combo), fixed + combo, seed, paths.run_id, paths.record, done=False, epochs=cfg.epochs)
        if paths.run_id in seen:
            print(f"{point.label} is the run of {seen[paths.run_id].label} ({paths.run_id}): it runs once",
                  file=out or sys.stdout)
            continue
        seen[paths.run_id] = point
        record, why = read_record(paths.record) if paths.record.is_file() else (None, "missing")
        point.done = not why and record.get("status") == "finished"
        points.append(point)
    return points


def _shorter_runs(task_cls, config_files: list, todo: list[Point], extend: dict, runs_dir: Path) -> dict[str, str]:
    """For each point to run, the run it extends and whether its checkpoint is there (a bad --extend fails here,
    before anything runs)."""
    from .engine import Engine
    from .extend import shorter_config

    notes = {}
    for p in todo:
        short = shorter_config(replace(build_config(task_cls.Config, config_files, p.overrides), seed=p.seed), extend)
        folder = runs_dir / task_cls.name / run_id(short, task_cls.name)
        if (runs_dir / task_cls.name / p.run_id / Engine.CHECKPOINT).is_file():
            notes[p.run_id] = "  (resumes its own checkpoint)"
        elif (folder / Engine.CHECKPOINT).is_file():
            notes[p.run_id] = f"  (extends {folder.name})"
        else:
            notes[p.run_id] = f"  (no {folder / Engine.CHECKPOINT} to extend: fails)"
    return notes


def run_point(job: dict) -> dict:
    """Train one point (in this process, a worker process or a Ray worker); never raises for a failed run."""
    import torch

    from . import runner, task as task_mod

    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    if os.getcwd() != job["cwd"]:  # a Ray worker: relative folders (and the records' run_dir) as the sweep sees them
        os.chdir(job["cwd"])
    log_path = Path(job["runs_dir"]) / job["task_name"] / job["run_id"] / "sweep.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = {"run_id": job["run_id"], "log": str(log_path), "status": "finished", "error": ""}
    started = time.time()
    with open(log_path, "a") as log, redirect_stdout(log), redirect_stderr(log):
        try:
            task_cls = task_mod.resolve(job["task"]).load()
            cfg = build_config(task_cls.Config, job["config_files"], job["overrides"])
            where = {"results_dir": job["results_dir"], "runs_dir": job["runs_dir"], "extend": job.get("extend"),
                     **job.get("run_options", {})}
            if "seeds" in job:   # a batch of seeds_batch seeds of one point, as one stacked model
                from .stacked import run_stacked

                run_stacked(task_cls, [replace(cfg, seed=s, progress=False) for s in job["seeds"]], **where)
            else:
                runner.run(task_cls, replace(cfg, seed=job["seed"], progress=False), **where)
        except RunInProgress as e:  # another sweep (or machine sharing the folders) trains it: not a failure
            print(e)
            out.update(status="elsewhere", error=str(e))
        except Exception as e:  # reported with its log; the other points go on
            traceback.print_exc()
            out.update(status="failed", error=traceback.format_exception_only(e)[-1].strip())
    out["seconds"] = time.time() - started
    return out


class Progress:
    """One line for the whole sweep: done / running / failed / to go, how far the running points are, and the time
    to go. Each point that has started (its `metrics.jsonl` in `watched`) has (epochs left) x (its mean epoch time)
    to go; each point not started, the finished points' mean duration (before any finishes: the started points'
    epochs x epoch time). The sum is shared among the `capacity` that run at once (points that start together also
    finish together, so the sweep's elapsed time per finished point would overestimate it). The executors redraw
    the line between finishes: every `refresh` seconds on a terminal, every `log_refresh` seconds in a log."""

    refresh, log_refresh = 10.0, 300.0

    def __init__(self, total: int, capacity: int, stream=None, watched: dict[str, tuple[Path, int]] | None = None):
        self.total, self.capacity, self.stream = total, max(1, capacity), stream or sys.stderr
        self.done = self.failed = self.elsewhere = 0
        self.durations: list[float] = []
        self.tty = self.stream.isatty()
        self.watched = dict(watched or {})     # {run_id: (its metrics.jsonl, its epochs)} of the points not finished
        self.interval = self.refresh if self.tty else self.log_refresh

    def line(self) -> str:
        finished = self.done + self.failed + self.elsewhere
        left = self.total - finished
        started = [s for s in map(_epochs_so_far, self.watched.values()) if s is not None]
        if self.durations:
            per_point = sum(self.durations) / len(self.durations)
        else:
            per_point = sum(epochs * mean for _, epochs, mean, _ in started) / len(started) if started else None
        eta = "?"
        if per_point is not None:
            to_go = sum((epochs - done) * mean for done, epochs, mean, _ in started)
            eta = duration((to_go + max(0, left - len(started)) * per_point) / self.capacity)
        latest = sorted(started, key=lambda s: -s[3])[:self.capacity]
        where = f" (epochs {', '.join(f'{d}/{e}' for d, e, _, _ in latest)})" if latest else ""
        return (f"sweep: {self.done} done, {min(self.capacity, left)} running{where}, {self.failed} failed, "
                f"{left} to go, ETA {eta}")

    def show(self) -> None:
        print(("\r\033[K" if self.tty else "") + self.line(), end="" if self.tty else "\n", file=self.stream,
              flush=True)

    def note(self, text: str) -> None:
        """A line above the progress line (a failure)."""
        print(("\r\033[K" if self.tty else "") + text, file=self.stream, flush=True)
        self.show()

    def finish(self, result: dict, label: str) -> None:
        self.watched.pop(result.get("run_id"), None)
        if "seconds" in result and result["status"] != "elsewhere":   # a skipped point's instant says nothing
            self.durations.append(result["seconds"])
        if result["status"] == "finished":
            self.done += 1
            self.show()
        elif result["status"] == "elsewhere":
            self.elsewhere += 1
            self.note(f"skipped: {label} ({result['run_id']}) is being trained by another process")
        else:
            self.failed += 1
            self.note(f"failed: {label} ({result['run_id']}): {result['error']}\n  log: {result['log']}")

    def close(self) -> None:
        if self.tty:
            print(file=self.stream)


def _epochs_so_far(watched: tuple[Path, int]) -> tuple[int, int, float, float] | None:
    """(epochs done, epochs, mean seconds an epoch, file time) from a run's metrics.jsonl; None before its first
    epoch (or if the file cannot be read: a progress line never fails a sweep)."""
    path, epochs = watched
    try:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        times = [r["epoch_time_s"] for r in lines if isinstance(r.get("epoch_time_s"), (int, float))]
        if not lines or not times:
            return None
        return int(lines[-1]["epoch"]), max(epochs, int(lines[-1]["epoch"])), sum(times) / len(times), \
            path.stat().st_mtime
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _in_process(jobs: list[dict], report) -> None:
    for job in jobs:
        report(job, run_point(job))


def _worker_processes(jobs: list[dict], n: int, report, progress: Progress, out) -> None:
    from .parallel import threads_per_job, worker_pool

    threads = threads_per_job(n)
    print(f"{len(jobs)} runs in {n} worker processes, {threads} thread{'s' * (threads > 1)} each", file=out)
    with worker_pool(n) as pool:
        futures = {pool.submit(run_point, job): job for job in jobs}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=progress.interval, return_when=FIRST_COMPLETED)
            if not finished:
                progress.show()
            for future in finished:
                _report_future(future, futures[future], report)


def _report_future(future, job: dict, report) -> None:
    try:
        result = future.result()
    except Exception as e:  # the worker process itself died
        result = {"run_id": job["run_id"], "status": "failed", "log": "(worker process died)",
                  "error": f"{type(e).__name__}: {e}"}
    report(job, result)


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(RAY_MISSING) from None
    return ray


def _ray_tasks(jobs: list[dict], address: str | None, cpus: float, gpus: float, report, progress: Progress) -> None:
    ray = import_ray()
    started = not ray.is_initialized()
    if started:  # an already initialised Ray (a test's, a notebook's) is used as it is
        env = {k: os.environ[k] for k in WORKER_ENV if os.environ.get(k)}
        ray.init(address=address, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(run_point)
        pending = {remote.remote(job): job for job in jobs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=progress.interval)
            if not ready:
                progress.show()
                continue
            ready = ready[0]
            job = pending.pop(ready)
            try:
                result = ray.get(ready)
            except Exception as e:  # the Ray worker died (out of memory, a lost node)
                result = {"run_id": job["run_id"], "status": "failed", "log": "(Ray worker died)",
                          "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
            report(job, result)
    finally:
        if started:
            ray.shutdown()


def ray_capacity(cpus: float, gpus: float) -> int:
    ray = import_ray()
    have = ray.cluster_resources() if ray.is_initialized() else {"CPU": os.cpu_count() or 1}
    slots = [have.get("CPU", 0) / cpus] if cpus else []
    slots += [have.get("GPU", 0) / gpus] if gpus else []
    return max(1, int(min(slots))) if slots else 1


def sweep(task: str, items: list[str], *, config_files=(), seeds=None, results_dir: Path, runs_dir: str | Path,
          jobs: int = 1, ray: str | None = None, ray_cpus: float = 1, ray_gpus: float = 0, dry_run: bool = False,
          bundles: list[str] | None = None, extend: dict | None = None, grid: bool = True,
          run_options: dict | None = None, out=None, err=None) -> int:
    """Plan the grid (`bundles`: the --point items), list it (dry run) or run what is not done; the exit code (1 when
    a point failed). `config_files`: paths or the task's named configs (`smoke`). `extend`: the shorter run's
    settings each point starts from ({"patience": 5}). `grid=False`: the items are plain overrides, the points
    the seeds (`mixsuite run --seeds ... --jobs N`). `run_options` go to runner.run (resume, reevaluate,
    wait_lock); with reevaluate a finished point runs again."""
    from . import task as task_mod
    from .parallel import check_jobs
    from .stacked import batch_jobs

    out = out or sys.stdout
    check_jobs(jobs)
    if jobs > 1 and ray is not None:
        raise UserError("--jobs and --ray are two executors: give one of them")
    if ray is not None:
        import_ray()  # before any planning: say at once which extra is missing
    spec = task_mod.resolve(task)
    task_cls = spec.load()
    config_files = [str(Path(spec.config_file(str(f))).resolve()) for f in config_files]
    points = plan(task_cls, config_files, list(items), seeds, Path(results_dir), bundles, grid=grid, out=out)
    run_options = dict(run_options or {})
    todo = [p for p in points if not p.done or run_options.get("reevaluate")]
    shorter = _shorter_runs(task_cls, config_files, todo, extend, Path(runs_dir)) if extend else {}
    print(f"{len(points)} points, {len(points) - len(todo)} done, {len(todo)} to run", file=out)
    if dry_run:
        for p in points:
            print(f"  {'done' if p.done else 'todo'}  {p.run_id}  {p.label}{shorter.get(p.run_id, '')}", file=out)
        return 0
    task_ref = str(spec.folder) if spec.folder is not None else task
    runs_dir, results_dir = str(runs_dir), str(results_dir)   # kept relative: records name run folders as `run` does
    by_id = {p.run_id: p for p in todo}
    work = [{"task": task_ref, "task_name": task_cls.name, "config_files": config_files, "overrides": p.overrides,
             "seed": p.seed, "run_id": p.run_id, "results_dir": results_dir, "runs_dir": runs_dir,
             "cwd": os.getcwd(), "threads": max(1, int(ray_cpus)) if ray is not None else None,
             "extend": extend or None, "run_options": run_options} for p in todo]
    work = batch_jobs(work, [getattr(build_config(task_cls.Config, config_files, p.overrides), "seeds_batch", 1)
                             for p in todo])
    capacity = 1 if jobs == 1 and ray is None else jobs if ray is None else ray_capacity(ray_cpus, ray_gpus)
    watched = {p.run_id: (Path(runs_dir) / task_cls.name / p.run_id / "metrics.jsonl", p.epochs) for p in todo}
    progress = Progress(len(todo), capacity, err, watched)
    failed, elsewhere = [], []

    def report(job, result):
        run_ids = job.get("run_ids", [job["run_id"]])   # a stacked batch: each of its seeds' points
        for run_id in run_ids:
            one = {**result, "run_id": run_id}
            if "seconds" in one:
                one["seconds"] /= len(run_ids)
            progress.finish(one, by_id[run_id].label)
            if one["status"] == "elsewhere":
                elsewhere.append(one)
            elif one["status"] != "finished":
                failed.append(one)

    if todo:
        progress.show()
        try:
            if ray is not None:
                _ray_tasks(work, None if ray == "local" else ray, ray_cpus, ray_gpus, report, progress)
            elif jobs > 1:
                _worker_processes(work, min(jobs, len(work)), report, progress, out)
            else:
                _in_process(work, report)
        finally:
            progress.close()
    by_others = f", {len(elsewhere)} skipped (another process trains them)" if elsewhere else ""
    print(f"sweep: {len(todo) - len(failed) - len(elsewhere)} ran, {len(points) - len(todo)} skipped (already done)"
          f"{by_others}, {len(failed)} failed; records in {Path(results_dir) / 'runs' / task_cls.name}", file=out)
    return 1 if failed else 0
