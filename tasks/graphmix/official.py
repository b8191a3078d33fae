"""Side effects of the official GraphMix code that change what it trains, reproduced on request.

1. The aliased EMA. Its train.py builds an EMA copy of the model with `ema_param.data = param.data`, so the copy
shares storage with the live weights, and the EMA update after every epoch e (0-based),
`ema.mul_(a).add_(1 - a, param)` with a = min(1 - 1/(e+1), decay), rescales the live weights in place by
a * (2 - a): to zero after the first epoch (the next Adam step, with zero gradients, restarts them from its
momentum), then by 1 - 1/(e+1)^2, which compounds to one half over the first epochs, and by 1 - (1 - decay)^2
once a reaches the decay.

2. The in-place mix of draws with replacement. Its `mixup_gnn_hidden` mixes the hidden rows in place,
`x[idx] = lam * x[idx] + (1 - lam) * x[idx[sigma]]`, and returns the targets of each draw, `t[idx]` and
`t[idx[sigma]]`. The unlabelled nodes are drawn with replacement, so a node drawn twice gets one hidden state,
mixed with the partner of its last draw, while each of its draws keeps a target mixed with its own partner.
"""
from __future__ import annotations

import torch

from mixsuite.mixing import MixPlan, pair_within


def aliased_ema_factor(epoch0: int, decay: float = 0.999) -> float:
    """The factor the official EMA update multiplies the live weights by after 0-based epoch `epoch0`."""
    a = min(1.0 - 1.0 / (epoch0 + 1), decay)
    return a * (2.0 - a)


@torch.no_grad()
def rescale_as_aliased_ema(model: torch.nn.Module, epoch0: int, decay: float = 0.999) -> None:
    factor = aliased_ema_factor(epoch0, decay)
    for p in model.parameters():
        p.mul_(factor)


def in_place_mix_plan(draws: MixPlan, rows: torch.Tensor, num_nodes: int) -> MixPlan:
    """The official in-place mix of the nodes `rows` (which may repeat), from a plan `draws` over the draws.

    Mixing the hidden states with the returned plan gives each node the partner of its last draw; the targets of
    the draws, as the official code has them, are `draws.mix_targets(targets[rows])`.
    """
    return MixPlan(draws.layer, draws.lam, pair_within(num_nodes, rows, draws.perm), rows)
