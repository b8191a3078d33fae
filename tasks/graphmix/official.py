"""A side effect of the official GraphMix code that changes what it trains, reproduced on request.

Its train.py builds an EMA copy of the model with `ema_param.data = param.data`, so the copy shares storage with
the live weights, and the EMA update after every epoch e (0-based), `ema.mul_(a).add_(1 - a, param)` with
a = min(1 - 1/(e+1), decay), rescales the live weights in place by a * (2 - a): to zero after the first epoch
(the next Adam step, with zero gradients, restarts them from its momentum), then by 1 - 1/(e+1)^2, which
compounds to one half over the first epochs, and by 1 - (1 - decay)^2 once a reaches the decay.
"""
from __future__ import annotations

import torch


def aliased_ema_factor(epoch0: int, decay: float = 0.999) -> float:
    """The factor the official EMA update multiplies the live weights by after 0-based epoch `epoch0`."""
    a = min(1.0 - 1.0 / (epoch0 + 1), decay)
    return a * (2.0 - a)


@torch.no_grad()
def rescale_as_aliased_ema(model: torch.nn.Module, epoch0: int, decay: float = 0.999) -> None:
    factor = aliased_ema_factor(epoch0, decay)
    for p in model.parameters():
        p.mul_(factor)
