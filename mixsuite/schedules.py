"""Learning-rate schedules stepped once an epoch, by name: what a task's `schedule` field chooses.

    constant  the optimizer's lr throughout
    step      lr * gamma at each epoch in `milestones` (the Manifold Mixup paper's image schedule)
    cosine    from lr down to 0 over `epochs` (CosineAnnealingLR, T_max = epochs)

The scheduler is a torch one, so a checkpoint carries it through `state_dict()`.
"""
from __future__ import annotations

from typing import Sequence

import torch

SCHEDULES = ("constant", "step", "cosine")


def _keep(_epoch: int) -> float:
    return 1.0


def epoch_scheduler(optimizer: torch.optim.Optimizer, schedule: str, epochs: int,
                    milestones: Sequence[int] = (), gamma: float = 0.1) -> torch.optim.lr_scheduler.LRScheduler:
    """The scheduler for `schedule` (one of SCHEDULES); call its step() after each epoch."""
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, _keep)
    if schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    raise ValueError(f"schedule={schedule!r}: use one of {', '.join(SCHEDULES)}")


def end_epoch(scheduler: torch.optim.lr_scheduler.LRScheduler) -> float:
    """Step `scheduler` at the end of an epoch; returns the lr the epoch trained with (what a task logs)."""
    lr = scheduler.optimizer.param_groups[0]["lr"]
    scheduler.step()
    return lr
