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
    """The mean of k stochastic (dropout on) GNN predictions, sharpened. `model(x, graph_input, passes=k)` gives
    the k passes' logits stacked (one batched pass where the model can).

    dropout=False gives what the official code computes after its first epoch: the model is still in eval mode
    from the last evaluation, so the k passes are one deterministic prediction.
    """
    was_training = model.training
    if was_training != dropout:  # (a mode switch walks every submodule: only when it changes)
        model.train(dropout)
    passes = k if dropout else 1
    probs = class_softmax(model(x, graph_input, passes=passes)).unflatten(0, (passes, -1))
    if was_training != dropout:
        model.train(was_training)
    p = probs[0]
    for q in probs[1:]:  # summed in pass order, as a loop over the passes would
        p = p + q
    return sharpen(p / passes, temperature)


def class_softmax(logits: torch.Tensor) -> torch.Tensor:
    """softmax over the last dim, computed along the leading one: torch's CPU softmax over a short last dim
    (Cora's 7 classes) is ~7x slower; the result can differ from softmax(dim=-1) by an ulp."""
    return torch.softmax(logits.t().contiguous(), dim=0).t()


def consistency_weight(epoch: int, gamma: float, start: int = 500, length: int = 500) -> float:
    """gamma * exp(-5 (1 - clip((epoch - start) / length, 0, 1))^2): gamma * e^-5 until `start`, gamma at start+length."""
    t = min(max((epoch - start) / length, 0.0), 1.0) if length > 0 else 1.0
    return gamma * math.exp(-5.0 * (1.0 - t) ** 2)
