"""Spirals seeds as a batch dimension (`seeds_batch=S`, see mixsuite.stacked): SpiralNet's layers as batched
matmuls over a leading seed axis, each seed drawing its batches from its own sampler and its plans from its own
mixer, and mixing at its own layer. The figure's contrast models (beside.py) train stacked the same way."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mixsuite.mixing import INPUT
from mixsuite.stacked import StackedPlans, joint_optimizer, joint_step, stack_parameters

from .beside import beside_parts

POINTS = (INPUT, "hidden1", "hidden2", "bottleneck")   # SpiralNet's mixing points, in forward order


def _linear(h: torch.Tensor, params: dict, name: str) -> torch.Tensor:
    return torch.baddbmm(params[f"{name}.bias"].unsqueeze(1), h, params[f"{name}.weight"].transpose(1, 2))


def forward(params: dict, x: torch.Tensor, plans: StackedPlans) -> torch.Tensor:
    """SpiralNet.forward on x (S, B, 2) with stacked parameters (SpiralNet's names), mixed as `plans` say."""
    h = plans.mix(INPUT, x)
    h = plans.mix("hidden1", torch.relu(_linear(h, params, "hidden1.0")))
    h = plans.mix("hidden2", torch.relu(_linear(h, params, "hidden2.0")))
    h = plans.mix("bottleneck", _linear(h, params, "bottleneck"))
    out = _linear(torch.relu(_linear(h, params, "head.0")), params, "head.2")
    plans.check_reached()
    return out


def _loss(params, x, y, mixers, device=None) -> torch.Tensor:
    """The seeds' mixed losses (S,) of one step, each seed's plan drawn by its own mixer."""
    plans = StackedPlans([m.draw(x.shape[1], device=device) for m in mixers])
    out = forward(params, x, plans)
    return plans.mix_loss(lambda o, t: F.cross_entropy(o, t, reduction="none"), out, y)


class StackedSpirals:
    """The joint training of SpiralsTask seeds (mixsuite.stacked's trainer)."""

    def __init__(self, tasks: list):
        self.tasks = tasks
        self.modules = [t.net for t in tasks]
        self.parameters = stack_parameters(self.modules)
        device = tasks[0].engine.device   # where the per-seed run moves its batches
        self.xs, self.ys = (t.to(device) for t in tasks[0].train_loader.dataset.tensors)   # one config but the seed

    def steps(self, epoch: int):
        """({"loss": (S,)}, batch size) a step: each seed's batches in its own sampler's order this epoch."""
        size = self.tasks[0].train_loader.batch_size
        orders = [torch.tensor(list(t.train_loader.sampler)).split(size) for t in self.tasks]
        mixers = [t.mixer for t in self.tasks]
        for idx in zip(*orders):
            idx = torch.stack(idx).to(self.xs.device)
            yield {"loss": _loss(self.parameters, self.xs[idx], self.ys[idx], mixers, self.xs.device)}, idx.shape[1]

    def before_finish(self, live: list[int]) -> None:
        """The figure's contrast models of the seeds that draw one, trained stacked (what their finish() uses)."""
        todo = [self.tasks[s] for s in live if self.tasks[s].draws_beside()]
        if todo:
            for task, net in zip(todo, train_beside_stacked([t.cfg for t in todo], todo[0].train_x, todo[0].train_y)):
                task.beside_net = net


def train_beside_stacked(cfgs: list, train_x: torch.Tensor, train_y: torch.Tensor) -> list:
    """beside.train_beside for each config (one a seed), trained as one stacked model."""
    parts = [beside_parts(cfg) for cfg in cfgs]
    nets = [p[0] for p in parts]
    params = stack_parameters(nets)
    joint = joint_optimizer([p[2] for p in parts], nets, params)
    cfg = cfgs[0]
    xs, ys = train_x.repeat(cfg.repeats, 1), train_y.repeat(cfg.repeats)
    with torch.enable_grad():   # called from the run's finish(), under no_grad
        for _ in range(cfg.epochs):
            orders = [torch.randperm(len(xs), generator=g).split(cfg.batch_size) for _, _, _, g in parts]
            for idx in zip(*orders):
                idx = torch.stack(idx)
                joint_step(_loss(params, xs[idx], ys[idx], [p[1] for p in parts]), joint)
    return [net.eval() for net in nets]
