"""GraphMix's predicted targets and consistency ramp, as in the paper's code."""
from __future__ import annotations

import math

import torch


def sharpen(p: torch.Tensor, temperature: float) -> torch.Tensor:
    """p^(1/T), renormalised over classes (T -> 0 gives one-hot, T = 1 leaves p unchanged)."""
    q = p.pow(1.0 / temperature)
    return q / q.sum(dim=-1, keepdim=True)


@torch.no_grad()
def predicted_targets(model, x, graph_input, k: int, temperature: float, dropout: bool = True) -> torch.Tensor:
    """The mean of k stochastic (dropout on) GNN predictions, sharpened.

    dropout=False gives what the official code computes after its first epoch: the model is still in eval mode
    from the last evaluation, so the k passes are one deterministic prediction.
    """
    was_training = model.training
    model.train(dropout)
    passes = k if dropout else 1
    p = sum(torch.softmax(model(x, graph_input), dim=-1) for _ in range(passes)) / passes
    model.train(was_training)
    return sharpen(p, temperature)


def consistency_weight(epoch: int, gamma: float, start: int = 500, length: int = 500) -> float:
    """gamma * exp(-5 (1 - clip((epoch - start) / length, 0, 1))^2): gamma * e^-5 until `start`, gamma at start+length."""
    t = min(max((epoch - start) / length, 0.0), 1.0) if length > 0 else 1.0
    return gamma * math.exp(-5.0 * (1.0 - t) ** 2)
