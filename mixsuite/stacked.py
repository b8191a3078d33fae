"""Seeds as a batch dimension (`seeds_batch=S`): S seeds of a small model trained in one process as one model.

Each seed keeps all that a run of its own has: its Engine (run folder, seeded generators, metrics.jsonl, the eval
cadence and its best epoch, checkpoints, its record) and its Task, set up under its seed, so its initialisation, data
order and mixing draws are those of the per-seed run. Only the training steps are joint: the task's
`stacked_trainer(tasks)` stacks the seeds' parameters along a leading seed axis (`stack_parameters`: each seed's
module keeps views into the stack, so its own evaluate() and finish() read the trained weights) and yields per-seed
losses (S,) from batched products; one optimizer of the per-seed optimizer's class steps the stack with the gradient
of their sum, so seed s's slice gets exactly seed s's gradient. SGD, Adam and AdamW update every element from its own
gradient and state alone, so the stack takes each seed's own steps; `joint_optimizer` refuses any other.

Refused before any work: configs that differ in more than the seed, a task without `stacked_trainer`, gradient
clipping (a norm per seed), LR schedulers, early stopping (seeds would stop at different epochs), AMP loss scaling,
--extend, torchrun, and a resume from checkpoints at different epochs.
"""
from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from .config import validate
from .console import log_line
from .errors import ConfigError, NonFiniteLoss, UserError
from .mixing.interpolation import inverse_permutation
from .mixing.plan import MixPlan

EXACT_OPTIMIZERS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


def stack_parameters(modules: list[nn.Module]) -> dict[str, nn.Parameter]:
    """The modules' parameters stacked along a new leading seed axis, by name. Each module's own parameters become
    views of its slice: what the stack's optimizer does in place, each module sees."""
    named = [dict(m.named_parameters()) for m in modules]
    stacked = {}
    for name in named[0]:
        p = nn.Parameter(torch.stack([params[name].detach() for params in named]))
        for s, params in enumerate(named):
            params[name].data = p.data[s]
        stacked[name] = p
    return stacked


def joint_optimizer(optimizers: list, modules: list[nn.Module], stacked: dict[str, nn.Parameter]):
    """One optimizer over the stacked parameters, of the seeds' optimizers' class and settings, with their state
    stacked (a resumed batch goes on from each seed's checkpoint)."""
    first = optimizers[0]
    if type(first) not in EXACT_OPTIMIZERS:
        raise ConfigError(f"seeds_batch: {type(first).__name__} is not known to update each element from its own "
                        f"gradient alone (exact per seed: {', '.join(c.__name__ for c in EXACT_OPTIMIZERS)}); "
                        "train one seed a run (seeds_batch=1)")
    settings = [[{k: v for k, v in g.items() if k != "params"} for g in o.param_groups] for o in optimizers]
    if len(settings[0]) != 1 or any(s != settings[0] for s in settings):
        raise ConfigError("seeds_batch: the seeds' optimizers need one parameter group with the same settings")
    for o, m in zip(optimizers, modules):
        if [id(p) for p in o.param_groups[0]["params"]] != [id(p) for p in m.parameters()]:
            raise ConfigError("seeds_batch: each seed's optimizer must hold its model's parameters, in order")
    joint = type(first)(list(stacked.values()), **settings[0][0])
    if any(o.state for o in optimizers):
        states = [o.state_dict()["state"] for o in optimizers]
        joint.load_state_dict({"param_groups": joint.state_dict()["param_groups"], "state": {
            i: {k: torch.stack([st[i][k] for st in states]) if v.dim() else v for k, v in state.items()}
            for i, state in states[0].items()}})
    return joint


class SeedOptimizer:
    """Seed s's share of the joint optimizer, saved as its own optimizer would save it: the checkpoint of a stacked
    seed resumes as one of a per-seed run."""

    def __init__(self, joint, index: int):
        self.joint, self.index = joint, index
        self.param_groups = joint.param_groups

    def state_dict(self) -> dict:
        full = self.joint.state_dict()
        return {"param_groups": full["param_groups"], "state": {
            i: {k: v[self.index].clone() if v.dim() else v.clone() for k, v in state.items()}
            for i, state in full["state"].items()}}


def joint_step(losses: torch.Tensor, optimizer) -> None:
    """Backward of the seeds' summed losses (S,), the step, and the gradients dropped (as Engine.optimizer_step)."""
    losses.sum().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


class StackedPlans:
    """The S seeds' plans of one step (each drawn by its seed's own mixer) on stacked tensors (S, B, ...): each seed
    mixes at its own layer with its own lambda and pairing, the others pass through unchanged."""

    def __init__(self, plans: list[MixPlan]):
        for plan in plans:
            if type(plan) is not MixPlan or plan.rows is not None or plan.lam.dim():
                raise UserError("seeds_batch: stacked seeds mix with one lambda a batch and a permutation of all rows")
        self.layers = [p.layer for p in plans]
        self.lam = torch.stack([p.lam.double() for p in plans])
        self.perm = torch.stack([p.perm for p in plans])
        inverses = [inverse_permutation(p.perm) for p in plans]
        if any(inv is None for inv in inverses):
            raise UserError("seeds_batch: stacked seeds pair rows by a permutation (pairing=permutation)")
        self.inverse = torch.stack(inverses)
        self.active = torch.tensor([layer is not None for layer in self.layers])
        self.reached: set[str] = set()

    def mix(self, point: str, h: torch.Tensor) -> torch.Tensor:
        """h (S, B, ...) with the seeds whose layer is `point` mixed: lam * h + (1 - lam) * h[perm], per seed."""
        self.reached.add(point)
        chosen = [layer == point for layer in self.layers]
        if not any(chosen):
            return h
        lam = self.lam.to(device=h.device, dtype=h.dtype)
        return _MixStacked.apply(h, self.perm.to(h.device), self.inverse.to(h.device), lam,
                                 torch.tensor(chosen, device=h.device))

    def check_reached(self) -> None:
        missed = sorted({layer for layer in self.layers if layer is not None} - self.reached)
        if missed:
            raise RuntimeError(f"the stacked forward never reached mixing layer(s) {missed}")

    def mix_loss(self, criterion, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per seed (S,): mean over rows of lam * L(out, y) + (1 - lam) * L(out, y[perm]) (L alone where a seed's
        plan mixes nothing); `criterion(out (N, ...), y (N,))` gives per-row losses."""
        S, B = y.shape[:2]
        la = criterion(out.flatten(0, 1), y.flatten(0, 1)).view(S, B)
        if not bool(self.active.any()):
            return la.mean(1)
        yb = _rows(y, self.perm.to(y.device))
        lb = criterion(out.flatten(0, 1), yb.flatten(0, 1)).view(S, B)
        lam = self.lam.to(device=la.device, dtype=la.dtype).view(S, 1)
        return torch.where(self.active.to(la.device).view(S, 1), lam * la + (1 - lam) * lb, la).mean(1)


def _rows(h: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """h[s, index[s]] for every seed s: (S, B, ...) gathered along the rows."""
    return torch.gather(h, 1, index.view(*index.shape, *[1] * (h.dim() - 2)).expand_as(h))


def _per_seed(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.view(-1, *[1] * (like.dim() - 1))


class _MixStacked(torch.autograd.Function):
    """mixsuite.mixing.interpolation's fused row mix (a gather and a lerp each way), for chosen seeds of a stack."""

    @staticmethod
    def forward(ctx, h, perm, inverse, lam, chosen):
        ctx.save_for_backward(inverse, lam, chosen)
        return torch.where(_per_seed(chosen, h), _rows(h, perm).lerp_(h, _per_seed(lam, h)), h)

    @staticmethod
    def backward(ctx, grad):
        inverse, lam, chosen = ctx.saved_tensors
        mixed = _rows(grad, inverse).lerp_(grad, _per_seed(lam, grad))
        return torch.where(_per_seed(chosen, grad), mixed, grad), None, None, None, None


def check_stackable(task_cls, cfgs: list) -> None:
    """Refuse, before any work, a batch that cannot train as one stacked model."""
    if not hasattr(task_cls, "stacked_trainer"):
        raise ConfigError(f"seeds_batch: the {task_cls.name} task trains one seed a model; leave seeds_batch at 1")
    if any(replace(c, seed=0) != replace(cfgs[0], seed=0) for c in cfgs):
        raise ConfigError("seeds_batch: the stacked seeds' configs must differ in the seed alone")
    if getattr(cfgs[0], "patience", 0):
        raise ConfigError("seeds_batch: early stopping (patience) would stop seeds at different epochs; train them "
                          "one a run (seeds_batch=1) or without patience")


def batch_jobs(jobs: list[dict], sizes: list[int]) -> list[dict]:
    """A sweep's jobs (one a point) gathered where their seeds_batch (`sizes`) is above 1: the seeds of one grid point,
    that many at a time, as one job (its `seeds` and `run_ids`), in the order of each batch's first point."""
    out, open_batches = [], {}
    for job, size in zip(jobs, sizes):
        if size <= 1:
            out.append(job)
            continue
        batch = open_batches.get(tuple(job["overrides"]))
        if batch is None or len(batch["seeds"]) >= size:
            batch = open_batches[tuple(job["overrides"])] = {**job, "seeds": [], "run_ids": []}
            out.append(batch)
        batch["seeds"].append(job["seed"])
        batch["run_ids"].append(job["run_id"])
    return out


def run_stacked(task_cls, cfgs: list, *, results_dir: Path, runs_dir="runs", resume: str = "auto",
                reevaluate: bool = False, wait_lock: bool = False, extend: dict | None = None, log=None) -> list[dict]:
    """Train the configs (one a seed) as one stacked model; a record for each in the usual format, as
    mixsuite.runner.run writes it, which also names the seeds it was trained with (`stacked_with`). Seeds whose
    finished record exists are not trained again. Returns the records in the order of `cfgs`."""
    from . import runner
    from .report.records import git_info

    log = log or log_line
    for cfg in cfgs:
        validate(cfg)
    check_stackable(task_cls, cfgs)
    if extend:
        raise UserError("--extend starts each run from its own shorter run: not with seeds_batch")
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise UserError("seeds_batch trains its seeds in one process: run it without torchrun")
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t0, git = time.time(), git_info()
    claims, records = [], {}
    try:
        for i, cfg in enumerate(cfgs):
            paths, lock, done = runner.claim(task_cls, cfg, runs_dir, results_dir, reevaluate, wait_lock, log)
            claims.append((i, paths, lock))
            if done is not None:
                records[i] = done
        todo = [(i, paths) for i, paths, lock in claims if lock is not None]
        if todo:
            seeds = [cfgs[i].seed for i, _ in todo]
            trained = _train(task_cls, [cfgs[i] for i, _ in todo], runs_dir, resume, log)
            for (i, paths), (engine, status, error, metrics) in zip(todo, trained):
                if status == "finished":
                    runner.check_trained(engine)
                record = runner.run_record(task_cls, cfgs[i], engine, status, error, metrics, started, git, t0)
                record["stacked_with"] = seeds
                runner.keep_record(results_dir, paths.record, engine, record, log)
                records[i] = record
    finally:
        for _, _, lock in claims:
            if lock is not None:
                lock.release()
    diverged = [r["error"] for r in records.values() if r.get("status") == "diverged"]
    if diverged:
        raise NonFiniteLoss(diverged[0])
    return [records[i] for i in range(len(cfgs))]


def _train(task_cls, cfgs: list, runs_dir, resume: str, log) -> list[tuple]:
    """[(engine, status, error, metrics)] of the seeds trained as one stacked model."""
    from .engine import Engine

    engines = [Engine(task_cls, cfg, runs_dir=runs_dir, resume=resume, log=log) for cfg in cfgs]
    tasks = [engine.start() for engine in engines]
    if len({e.epoch for e in engines}) > 1:
        raise UserError(f"seeds_batch: the seeds resume from different epochs ({[e.epoch for e in engines]}); run them "
                        "with --resume never, or one a run")
    for task, engine in zip(tasks, engines):
        if task.clip_grad_norm or task.scheduler is not None or task.step_scheduler is not None or engine.amp:
            raise ConfigError("seeds_batch: gradient clipping, LR schedulers and AMP are not stacked; train one seed "
                            "a run (seeds_batch=1)")
    trainer = task_cls.stacked_trainer(tasks)
    joint = joint_optimizer([t.optimizer for t in tasks], trainer.modules, trainer.parameters)
    for s, task in enumerate(tasks):
        task.optimizer = SeedOptimizer(joint, s)
    outcome = [["finished", None, {}] for _ in tasks]
    live = list(range(len(tasks)))
    while live and engines[0].epoch < cfgs[0].epochs:
        starts = [engine.begin_epoch() for engine in engines]
        logs = _train_epoch(trainer, joint, tasks, engines, engines[0].epoch)
        for s in list(live):
            try:
                engines[s].end_epoch(tasks[s], logs[s], starts[s])
            except NonFiniteLoss as e:   # its slice alone went bad: the other seeds train on
                outcome[s][:2] = "diverged", f"{e}; the last good checkpoint is kept in {engines[s].run_dir}"
                live.remove(s)
    if hasattr(trainer, "before_finish"):
        trainer.before_finish(live)
    for s in live:
        outcome[s][2] = engines[s].finish(tasks[s])
    return [(engine, *o) for engine, o in zip(engines, outcome)]


def _train_epoch(trainer, joint, tasks, engines, epoch: int) -> list[dict]:
    """Engine.train_epoch for the stack: each seed's logs, their means over the epoch's samples (float64 sums)."""
    for task in tasks:
        task.on_train_epoch_start(epoch)
    sums: dict[str, torch.Tensor] = {}
    samples, t0 = 0, time.time()
    for logs, n in trainer.steps(epoch):
        joint_step(logs["loss"], joint)
        for engine in engines:
            engine.step_count += 1
        for key, value in logs.items():
            value = value.detach().to(torch.float64) * n
            sums[key] = sums[key] + value if key in sums else value
        samples += n
    seconds = time.time() - t0
    means = {k: (v / max(samples, 1)).tolist() for k, v in sums.items()}
    return [task.on_train_epoch_end(epoch, {k: v[s] for k, v in means.items()}, samples, seconds)
            for s, task in enumerate(tasks)]
