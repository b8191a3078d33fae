"""A mixing plan: what one training step mixes (layer k, lambda, pairing) and how the targets follow."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import torch

from .interpolation import inverse_permutation, mix_rows
from .losses import mixed_loss


@dataclass
class MixPlan:
    """One step's draw. `layer` is a module name, "input", or None (no mixing).

    lam: a 0-d tensor (one lambda per batch) or shape (B,) (one per sample).
    perm: row i is mixed with row perm[i].
    rows: optional subset of rows that are mixed; the others pass through untouched.
    """

    layer: str | None
    lam: torch.Tensor
    perm: torch.Tensor
    rows: torch.Tensor | None = None

    @property
    def active(self) -> bool:
        return self.layer is not None

    def lam_like(self, h: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """lambda broadcastable against h (B, ...), in h's dtype and device."""
        lam = self.lam.to(device=h.device, dtype=h.dtype)
        if lam.dim() == 0:
            return lam
        if rows is not None:
            lam = lam[rows]
        return lam.view(-1, *([1] * (h.dim() - 1)))

    def mix(self, h: torch.Tensor) -> torch.Tensor:
        """h <- lam * h + (1 - lam) * h[perm] (only on `rows` when given)."""
        perm = self.perm.to(h.device)
        if self.rows is None:
            inverse = self._inverse
            return mix_rows(h, perm, self.lam_like(h), None if inverse is None else inverse.to(h.device))
        rows = self.rows.to(h.device)
        lam = self.lam_like(h, rows)
        mixed = lam * h[rows] + (1 - lam) * h[perm[rows]]
        return h.index_copy(0, rows, mixed)

    @cached_property
    def _inverse(self) -> torch.Tensor | None:
        """The inverse pairing (None if perm is not a permutation), computed once per plan."""
        return inverse_permutation(self.perm)

    def mix_targets(self, y: torch.Tensor) -> torch.Tensor:
        """The same interpolation applied to (soft / one-hot) targets of shape (B, ...)."""
        return self.mix(y)

    def targets_b(self, y):
        """The partner targets y[perm] (works for tensors and lists, e.g. transcripts)."""
        if isinstance(y, torch.Tensor):
            return y[self.perm.to(y.device)]
        return [y[i] for i in self.perm.tolist()]

    def mix_loss(self, criterion: Callable, out, y, reduction: str = "mean") -> torch.Tensor:
        """lam * L(out, y) + (1 - lam) * L(out, y[perm]); `criterion(out, y)` must return per-sample losses
        when lambda is per sample (e.g. `partial(F.cross_entropy, reduction="none")`)."""
        if not self.active:
            loss = criterion(out, y)
            return loss.mean() if reduction == "mean" and loss.dim() > 0 else loss
        return mixed_loss(criterion, out, y, self.targets_b(y), self.lam, reduction=reduction)


def identity_plan(batch_size: int, device=None) -> MixPlan:
    """The ERM plan: lambda = 1, every row paired with itself, nothing hooked."""
    return MixPlan(None, torch.ones((), device=device), torch.arange(batch_size, device=device))
