"""Mixing on some training steps only: a share `prob` of the steps, and none from epoch `off_epoch` on.

The coin is drawn from the mixer's own seeded generator (never the global RNG), once per optimizer step, before
that step's plan: the draws a checkpoint saves replay on resume. Every draw within one step (GraphMix draws twice)
follows the same coin.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from .backends import Mixer
from .plan import MixPlan, identity_plan


class GatedMixer:
    """Wraps a Mixer; `clock` gives the engine's `epoch` (1-based) and `step_count` (optimizer steps so far)."""

    def __init__(self, mixer: Mixer, prob: float = 1.0, off_epoch: int | None = None, *, clock):
        self.mixer, self.prob, self.off_epoch, self.clock = mixer, float(prob), off_epoch, clock
        self._coin: tuple[int, bool] | None = None   # (step, mixes) of the step drawn last

    def __getattr__(self, name):   # generator, layers, alpha, state_dict ... are the mixer's
        return getattr(self.mixer, name)

    def mixes_now(self) -> bool:
        if self.off_epoch is not None and self.clock.epoch >= self.off_epoch:
            return False
        if self.prob >= 1:
            return True
        step = self.clock.step_count
        if self._coin is None or self._coin[0] != step:
            g = self.mixer.generator
            self._coin = (step, bool(torch.rand((), generator=g, device=g.device) < self.prob))
        return self._coin[1]

    def draw(self, batch_size: int, rows: torch.Tensor | None = None, device=None, **kw) -> MixPlan:
        if not self.mixes_now():
            return identity_plan(batch_size, device)
        return self.mixer.draw(batch_size, rows, device, **kw)

    @contextmanager
    def step(self, batch_size: int, rows: torch.Tensor | None = None, device=None, **pairing):
        if not self.mixes_now():
            yield identity_plan(batch_size, device)
            return
        with self.mixer.step(batch_size, rows, device, **pairing) as plan:
            yield plan
