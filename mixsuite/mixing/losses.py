"""Mixed-loss combinators: lam * L(y_a) + (1 - lam) * L(y_b), soft targets, the official BCE-on-softmax,
and mixed CTC with each target's own lengths."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def one_hot(y: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """One-hot float targets with optional label smoothing (off = s / C, on = 1 - s + off, as timm)."""
    off = smoothing / num_classes
    out = torch.full((y.shape[0], num_classes), off, device=y.device, dtype=torch.float32)
    return out.scatter_(1, y.long().view(-1, 1), 1.0 - smoothing + off)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy against a distribution over classes (rows of `targets` sum to 1)."""
    loss = -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1)
    return _reduce(loss, reduction)


def bce_on_softmax(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The Manifold Mixup official code's loss: BCELoss(softmax(logits), soft_targets), averaged over B x C."""
    probs = F.softmax(logits.float(), dim=-1).clamp(1e-7, 1 - 1e-7)
    loss = F.binary_cross_entropy(probs, targets.float(), reduction="none").mean(dim=-1)
    return _reduce(loss, reduction)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def mixed_loss(
    criterion: Callable, out, y_a, y_b, lam: torch.Tensor | float, reduction: str = "mean"
) -> torch.Tensor:
    """lam * criterion(out, y_a) + (1 - lam) * criterion(out, y_b).

    With a per-sample lam (shape (B,)) the criterion must return per-sample losses (reduction='none').
    """
    return combine(criterion(out, y_a), criterion(out, y_b), lam, reduction)


def combine(la: torch.Tensor, lb: torch.Tensor, lam, reduction: str = "mean") -> torch.Tensor:
    """lam * la + (1 - lam) * lb, reduced. la, lb: one loss, per-sample (B,) or per-pixel (B, H, W) / (B, C, H, W)
    losses; lam: a scalar, per sample (B,) (broadcast over the pixels), or a weight map shaped like the losses
    (a shaped backend's pixel mask)."""
    lam = torch.as_tensor(lam, device=la.device, dtype=la.dtype)
    if lam.dim() > 0 and la.dim() == 0:
        raise ValueError("lambda is per sample: give a criterion that returns per-sample losses (reduction='none')")
    if lam.dim() == 1 and la.dim() > 1:
        lam = lam.view(-1, *([1] * (la.dim() - 1)))
    loss = lam * la + (1 - lam) * lb
    return _reduce(loss, reduction) if loss.dim() > 0 else loss


def multilabel_bce(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "none") -> torch.Tensor:
    """Binary cross-entropy with logits of (B, C) multi-label targets (0/1, or mixed in [0, 1]), averaged over the
    C labels: per-sample losses by default, for `plan.mix_loss`. Linear in the target, so
    lam * BCE(y_a) + (1 - lam) * BCE(y_b) = BCE(lam * y_a + (1 - lam) * y_b)."""
    loss = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none").mean(dim=-1)
    return _reduce(loss, reduction)


def mixed_ctc_loss(
    log_probs: torch.Tensor,
    targets_a: torch.Tensor,
    target_lengths_a: torch.Tensor,
    targets_b: torch.Tensor,
    target_lengths_b: torch.Tensor,
    input_lengths: torch.Tensor,
    lam: torch.Tensor | float,
    *,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = True,
) -> torch.Tensor:
    """lam * CTC(log_probs, y_a) + (1 - lam) * CTC(log_probs, y_b), each target with its own lengths.

    log_probs: (T, B, C) log-softmax outputs; targets padded (B, S) or concatenated 1-D, as `F.ctc_loss`.
    lam: a scalar or one value per sample. 'mean' divides each sample's loss by its target length before
    averaging, as `F.ctc_loss(reduction='mean')` does, so lam = 1 equals plain CTC exactly.
    """

    def per_sample(targets, lengths):
        loss = F.ctc_loss(log_probs, targets, input_lengths, lengths, blank=blank, reduction="none",
                          zero_infinity=zero_infinity)
        if reduction == "mean":
            loss = loss / lengths.to(loss.device).clamp_min(1).to(loss.dtype)
        return loss

    la, lb = per_sample(targets_a, target_lengths_a), per_sample(targets_b, target_lengths_b)
    lam = torch.as_tensor(lam, device=la.device, dtype=la.dtype)
    loss = lam * la + (1 - lam) * lb
    return loss.mean() if reduction == "mean" else _reduce(loss, reduction)
