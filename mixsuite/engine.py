"""What every task's loop shares: device, seeds, AMP, DDP, data loaders, checkpoint/resume, progress,
the eval cadence, best-epoch tracking, the NaN guard, metrics.jsonl and the run record."""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import zlib
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler

from . import checkpoint, dist
from .extend import copy_history, shorter_config, shorter_run
from .schedules import end_epoch
from .console import log_line, short_number, summary_line, time_left
from .errors import NonFiniteLoss, UserError  # noqa: F401  (NonFiniteLoss re-exported: mixsuite.engine.NonFiniteLoss)
from .config import config_hash, to_yaml
from .paths import run_id, run_paths


def select_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist.local_rank())
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {spec!r} was asked for but CUDA is not available; use device=cpu or device=auto")
    return device


def amp_dtype(spec: str, device: torch.device) -> torch.dtype | None:
    """auto: bf16 (or fp16 where bf16 is unsupported) on CUDA, off on CPU; bf16 may be forced on CPU too."""
    if spec not in ("auto", "off", "bf16", "fp16"):
        raise UserError(f"amp must be auto, off, bf16 or fp16, got {spec!r}")
    if spec == "off" or (device.type != "cuda" and spec != "bf16"):
        return None
    if spec == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[spec]


class Engine:
    """Drives a Task through its epochs. Tasks ask it for devices, loaders, generators and backward steps."""

    CHECKPOINT = "checkpoint.pt"

    def __init__(self, task_cls, cfg, *, runs_dir: str | Path = "runs", resume: str = "auto",
                 extend: dict | None = None, log=None):
        self.task_cls = task_cls
        self.cfg = cfg
        self.task_name = task_cls.name
        self.device = select_device(cfg.device)
        dist.init(self.device)
        self.amp = amp_dtype(cfg.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        paths = run_paths(cfg, self.task_name, runs_dir)
        self.run_id, self.run_dir = paths.run_id, paths.run_dir
        self.resume = resume
        # extend={"epochs": 40}: without a checkpoint of its own, start from the run of this config with those settings
        self.shorter = shorter_config(cfg, extend or {})
        self.extend_from = self.run_dir.with_name(run_id(self.shorter, self.task_name)) if self.shorter else None
        self.extended = None   # that run's folder, once this run started from it
        self._log = log or log_line
        self._generators: dict[str, torch.Generator] = {}
        self._samplers: list[DistributedSampler] = []
        self.epoch = 0
        self.step_count = 0
        self._bar = None      # the epochs' progress bar, while one is shown
        self._scalars = None   # TensorBoard (cfg.tensorboard), opened at the first epoch written

    # ---- services for tasks -------------------------------------------------------------------------------
    @property
    def data_root(self) -> Path:
        return Path(self.cfg.data_root or os.environ.get("MIXSUITE_DATA", "") or "data")

    def log(self, msg: str) -> None:
        if not dist.is_main():
            return
        if self._bar is None:
            self._log(msg)
            return
        with self._bar.external_write_mode():   # the line above the bar, the bar redrawn below it
            self._log(msg)

    def generator(self, name: str, device: str | torch.device = "cpu") -> torch.Generator:
        """A named generator seeded from (seed, name, rank); saved in checkpoints, so resumes replay exactly."""
        if name not in self._generators:
            seed = (self.cfg.seed * 1_000_003 + zlib.crc32(name.encode()) + 7919 * dist.rank()) % 2**63
            self._generators[name] = torch.Generator(device=device).manual_seed(seed)
        return self._generators[name]

    @property
    def channels_last(self) -> bool:
        """4-D models and float inputs in channels_last (NHWC) layout."""
        return self.cfg.channels_last and (self.device.type == "cuda" or self.cfg.cpu_channels_last)

    def autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def prepare(self, model: torch.nn.Module, ddp: bool = True, **ddp_options) -> torch.nn.Module:
        """Move to the device (channels_last when asked: `channels_last` on CUDA, `cpu_channels_last` on CPU) and
        wrap in DDP when distributed (`ddp_options` go to DistributedDataParallel, e.g. find_unused_parameters=True)."""
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return dist.wrap_ddp(model, self.device, **ddp_options) if ddp else model

    def to_device(self, x):
        if isinstance(x, torch.Tensor):
            nb = self.device.type == "cuda"
            if self.channels_last and x.dim() == 4 and x.is_floating_point():
                return x.to(self.device, non_blocking=nb, memory_format=torch.channels_last)
            return x.to(self.device, non_blocking=nb)
        if isinstance(x, (list, tuple)):
            return type(x)(self.to_device(v) for v in x)
        if isinstance(x, dict):
            return {k: self.to_device(v) for k, v in x.items()}
        return x

    def loader(self, dataset, batch_size: int, *, shuffle: bool = True, drop_last: bool = False, **kwargs):
        """A DataLoader over this rank's shard; `batch_size` is global (split over ranks).

        A DistributedSampler is used in one process too, so 1 and N processes see the same global batches.
        """
        world = dist.world_size()
        if batch_size % world:
            raise UserError(f"the global batch size {batch_size} must be divisible by the {world} processes")
        sampler = DistributedSampler(dataset, num_replicas=world, rank=dist.rank(), shuffle=shuffle,
                                     seed=self.cfg.seed, drop_last=drop_last)
        if shuffle:
            self._samplers.append(sampler)
        workers = kwargs.pop("num_workers", self.cfg.num_workers)
        return DataLoader(dataset, batch_size=batch_size // world, sampler=sampler, drop_last=drop_last,
                          num_workers=workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=workers > 0, **kwargs)

    def progress(self, iterable, desc: str = "", total: int | None = None, leave: bool = False):
        if self._shows_progress():
            from tqdm.auto import tqdm

            return tqdm(iterable, desc=desc, total=total, leave=leave, dynamic_ncols=True)
        return iterable

    def _shows_progress(self) -> bool:
        return bool(self.cfg.progress) and dist.is_main() and sys.stderr.isatty()

    def check_finite(self, loss: torch.Tensor | float, where: str = "") -> None:
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        if not math.isfinite(value):
            raise NonFiniteLoss(f"the loss became {value} at epoch {self.epoch}{where}")

    def backward(self, loss: torch.Tensor, check: bool = True) -> None:
        """loss.backward() with fp16 loss scaling and the NaN guard (`check`: a host sync each step; the default
        train_epoch checks the epoch's summed loss once instead)."""
        if check:
            self.check_finite(loss, f", step {self.step_count}")
        self.scaler.scale(loss).backward()

    def optimizer_step(self, optimizer, clip_grad_norm: float | None = None) -> None:
        if clip_grad_norm:
            self.scaler.unscale_(optimizer)
            params = [p for g in optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
        self.scaler.step(optimizer)
        self.scaler.update()
        optimizer.zero_grad(set_to_none=True)
        self.step_count += 1

    def step(self, loss: torch.Tensor, optimizer, clip_grad_norm: float | None = None, check: bool = True) -> None:
        """backward + optimizer step + zero_grad."""
        self.backward(loss, check)
        self.optimizer_step(optimizer, clip_grad_norm)

    def train_epoch(self, task, epoch: int) -> dict:
        """The default epoch (Task.train_epoch): task.training_step on every batch of task.train_loader (moved to
        the device), then backward and the optimizer step (loss scaling, clipping, the task's per-step scheduler).
        The logged values are summed on the device, each weighted by its batch's size, and read once at the end:
        their means over the epoch's samples, then the epoch scheduler's lr and the task's on_train_epoch_end.
        A non-finite loss is caught at the end, from the sum (Engine.run checks the epoch's loss)."""
        task.on_train_epoch_start(epoch)
        sums: dict[str, torch.Tensor] = {}
        samples, t0 = 0, time.time()
        for batch in self.progress(task.train_loader, f"epoch {epoch}"):
            batch = self.to_device(batch)
            logs = task.training_step(batch)
            self.step(logs["loss"], task.optimizer, task.clip_grad_norm, check=False)
            if task.step_scheduler is not None:
                task.step_scheduler.step()
            n = task.batch_size(batch)
            for key, value in logs.items():   # float64 sums: the numbers Python floats summed per step gave
                value = torch.as_tensor(value).detach().to(self.device, torch.float64) * n
                sums[key] = sums[key] + value if key in sums else value
            samples += n
        seconds = time.time() - t0
        names = list(sums)
        values = (torch.stack([sums[k] for k in names]) / max(samples, 1)).tolist() if names else []
        out = dict(zip(names, values))
        if task.scheduler is not None:
            out["lr"] = end_epoch(task.scheduler)
        return task.on_train_epoch_end(epoch, out, samples, seconds)

    # ---- the loop -------------------------------------------------------------------------------------------
    def _checkpoint_state(self, task, best: dict, wall: float) -> dict:
        return {"epoch": self.epoch, "step": self.step_count, "task": task.state_dict(),
                "generators": {k: g.get_state() for k, g in self._generators.items()},
                "rng": checkpoint.rng_state(), "scaler": self.scaler.state_dict(), "best": best,
                "wall_time_s": wall, "config_hash": config_hash(self.cfg), "extended_from": self.extended}

    def _resume_path(self) -> Path | None:
        if self.resume in ("never", "no", None, ""):
            return None
        if self.resume == "auto":
            path = self.run_dir / self.CHECKPOINT
            return path if path.is_file() else None
        path = Path(self.resume)
        if path.is_dir():
            path = path / self.CHECKPOINT
        if not path.is_file():
            raise UserError(f"--resume {self.resume}: no checkpoint at {path}")
        return path

    def _restore(self, task, path: Path) -> tuple[dict, float]:
        state = checkpoint.load(path, how=f"Start the run over with --resume never (it is then replaced), or move "
                                          f"it aside (mv {path} {path}.damaged) and run again")
        if state.get("config_hash") != config_hash(self.cfg):
            raise UserError(f"checkpoint {path} was made with another config (hash {state.get('config_hash')}); "
                             "resume with the same config, or pass --resume never to start over")
        return self._load_state(task, state, path)

    def _load_state(self, task, state: dict, path: Path) -> tuple[dict, float]:
        """Task, generators, RNG, scaler and counters from a checkpoint's `state`; its best epoch and wall time."""
        task.load_state_dict(state["task"])
        for name, gstate in state["generators"].items():
            self.generator(name).set_state(gstate)
        checkpoint.set_rng_state(state["rng"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step_count = state["epoch"], state["step"]
        self.extended = state.get("extended_from")   # a killed extended run, resumed, still names where it began
        self.log(f"resumed from {path} at epoch {self.epoch}")
        return state["best"], state["wall_time_s"]

    METRICS_FLUSH_S = 1.0   # metrics.jsonl appended at most this often (and before a checkpoint, at the end, on errors)

    def _write_metrics(self, metrics: dict) -> None:
        if not dist.is_main():
            return
        self._metrics_lines.append(json.dumps(metrics) + "\n")
        if time.monotonic() - self._metrics_written >= self.METRICS_FLUSH_S:
            self._flush_metrics()
        if getattr(self.cfg, "tensorboard", False):
            from .tensorboard_log import ScalarLog

            self._scalars = self._scalars or ScalarLog(self.run_dir, first_epoch=metrics["epoch"])
            self._scalars.add(metrics)

    def _flush_metrics(self) -> None:
        self._metrics_written = time.monotonic()
        if self._metrics_lines and dist.is_main():
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write("".join(self._metrics_lines))
        self._metrics_lines = []

    def _truncate_metrics(self) -> None:
        path = self.run_dir / "metrics.jsonl"
        if dist.is_main() and path.is_file():
            lines = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["epoch"] <= self.epoch]
            checkpoint.atomic_write_text(path, "".join(ln + "\n" for ln in lines))

    def _patience_exhausted(self, best: dict) -> bool:
        """Early stopping: at an evaluated epoch, `patience` epochs have passed since the best one on the select
        metric. Read from the checkpointed best epoch, so an early-stopped run, run again, trains no further."""
        patience = getattr(self.cfg, "patience", 0)
        evaluated = self.epoch % self.cfg.eval_every == 0
        return bool(patience and best and evaluated and self.epoch - best["epoch"] >= patience)

    def _time_left(self, first_epoch: int, since: float) -> str:
        """The log line's ETA when no progress bar shows one (a log file, a sweep's point)."""
        if self._bar is not None:
            return ""
        return time_left(self.epoch - first_epoch, time.time() - since, self.cfg.epochs - self.epoch,
                         bool(getattr(self.cfg, "patience", 0)))

    def _checkpoint_due(self, stopping: bool) -> bool:
        """Every checkpoint_every epochs, but no sooner than checkpoint_seconds after the last save (in one process
        only: ranks could read their clocks differently); always at the last epoch and at an early stop. A resume
        replays from whichever epoch was saved to the same numbers (the generators and RNG states are saved)."""
        cfg = self.cfg
        if self.epoch == cfg.epochs or stopping:
            return True
        if self.epoch % cfg.checkpoint_every:
            return False
        return dist.world_size() > 1 or time.monotonic() - self._saved_at >= cfg.checkpoint_seconds

    def run(self) -> dict:
        """Train and evaluate; returns the final metrics (with best-epoch values as best_*)."""
        task = self.start()
        try:
            while self.epoch < self.cfg.epochs and not self._patience_exhausted(self.best):
                self.run_epoch(task)
        finally:   # a run stopped by an error keeps the lines of the epochs it trained
            self._flush_metrics()
        return self.finish(task)

    def start(self):
        """Seed, build and set up the task, then create the run folder (a setup that fails, e.g. on missing data,
        leaves none), remove temporary checkpoint files a killed save left, and resume (or extend) where asked."""
        cfg = self.cfg
        checkpoint.seed_everything(cfg.seed)
        task = self.task_cls(cfg, self)
        task.setup()
        self.select = task.select_metric or task.primary_metric
        self.best, wall, state = {}, 0.0, None
        path = self._resume_path()
        if path is not None:
            self.best, wall = self._restore(task, path)
        elif self.extend_from:   # checked before the run folder is made: a missing shorter run leaves none
            path = self.extend_from / self.CHECKPOINT
            state = shorter_run(self.shorter, task, path)
        if dist.is_main():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            checkpoint.atomic_write_text(self.run_dir / "config.yaml", to_yaml(cfg))
            for stale in sorted(self.run_dir.glob(f".{self.CHECKPOINT}.*.tmp")):   # a save killed mid-write
                stale.unlink(missing_ok=True)
                self.log(f"removed {stale}, a checkpoint a killed run left half-written")
        if state is not None:
            if dist.is_main():
                copy_history(self.extend_from, self.run_dir, state["epoch"])
            self.best, wall = self._load_state(task, state, path)
            self.extended = str(self.extend_from)
            if dist.is_main():   # its own checkpoint from the start: a run that trains no further can be extended too
                checkpoint.save(self.run_dir / self.CHECKPOINT, self._checkpoint_state(task, self.best, wall))
            self.log(f"extending {self.extend_from} from its epoch {self.epoch} (epochs={self.shorter.epochs}, patience="
                     f"{self.shorter.patience}) to epochs={cfg.epochs}, patience={cfg.patience}")
        self._truncate_metrics()
        self._metrics_lines, self._metrics_written = [], time.monotonic()
        self._saved_at = time.monotonic()
        self.last_eval: dict = {}
        self._started = time.time() - wall
        self._first, self._session = self.epoch, time.time()   # this process's epochs and their time: the time left
        if self._shows_progress() and self.epoch < cfg.epochs:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=cfg.epochs, initial=self.epoch, desc=self.run_id, unit="epoch", dynamic_ncols=True)
        return task

    def run_epoch(self, task) -> dict:
        """One epoch: train, evaluate on the cadence (tracking the best epoch), log, checkpoint when due."""
        t0 = self.begin_epoch()
        return self.end_epoch(task, task.train_epoch(self.epoch), t0)

    def begin_epoch(self) -> float:
        """The next epoch's number and its samplers' shuffle; its start time."""
        self.epoch += 1
        for s in self._samplers:
            s.set_epoch(self.epoch)
        return time.time()

    def end_epoch(self, task, train: dict | None, t0: float) -> dict:
        """The epoch after its training (`train`: its logs): evaluation, the best epoch, logs, checkpoint."""
        cfg, select = self.cfg, self.select
        train = dist.all_reduce_mean(train or {})
        if "loss" in train:
            self.check_finite(train["loss"])
        metrics = {"epoch": self.epoch, **train}
        if self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs:
            self.last_eval = task.evaluate(self.epoch) or {}
            metrics.update(self.last_eval)
            score = self.last_eval.get(select)
            sign = 1.0 if task.select_mode == "max" else -1.0
            # ties go to the later epoch, as the papers' selection does
            if score is not None and (not self.best or sign * score >= sign * self.best[select]):
                self.best = {**self.last_eval, "epoch": self.epoch}
                task.on_best(self.epoch)
        metrics["epoch_time_s"] = round(time.time() - t0, 4)
        self._write_metrics(metrics)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(" ".join(f"{k}={short_number(metrics[k])}" for k in ("loss", select) if k in metrics))
        if self.epoch % cfg.log_every == 0 or self.epoch == cfg.epochs:
            line = " ".join(f"{k}={short_number(v)}" for k, v in metrics.items())
            self.log(line + self._time_left(self._first, self._session))
        stopping = self._patience_exhausted(self.best)
        if stopping:
            self.log(f"early stop: no better {select} for {cfg.patience} epochs since epoch {self.best['epoch']}")
        if self._checkpoint_due(stopping):
            self._flush_metrics()
            if dist.is_main():
                state = self._checkpoint_state(task, self.best, time.time() - self._started)
                checkpoint.save(self.run_dir / self.CHECKPOINT, state)
            self._saved_at = time.monotonic()
            dist.barrier()
        return metrics

    def finish(self, task) -> dict:
        """The final metrics: the last evaluation, the best epoch's as best_*, and the task's finish()."""
        self._flush_metrics()
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        last_eval = self.last_eval or task.evaluate(self.epoch) or {}
        best = self.best
        final = {**last_eval, **{f"best_{k}": v for k, v in best.items() if k != "epoch"}}
        if best:
            final["best_epoch"] = best["epoch"]
        if getattr(self.cfg, "patience", 0):
            final["last_epoch"] = self.epoch
        final.update(task.finish() or {})
        if self._scalars is not None:
            self._scalars.close()
        self.wall_time_s = time.time() - self._started
        self.task = task
        self.log(summary_line(self.run_id, self.epoch, self.wall_time_s, task.primary_metric, final))
        return final
