"""A mixing plan: what one training step mixes (layer k, lambda, pairing) and how the targets follow."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import torch

from .interpolation import inverse_permutation, mix_rows
from .losses import combine, mixed_loss
from .targets import as_float_targets, is_class_map, is_dense, mask_like, mix_dense, per_head


@dataclass
class MixPlan:
    """One step's draw. `layer` is a module name, "input", or None (no mixing).

    lam: a 0-d tensor (one lambda per batch) or shape (B,) (one per sample).
    perm: row i is mixed with row perm[i].
    rows: optional subset of rows that are mixed; the others pass through untouched.
    pixel_mask: left by a shaped backend's forward (CutMix, FMix, ResizeMix, PatchUp): (B, 1, H, W) at the mixing
        layer's resolution, 1 where a pixel is the example's own, 0 where it is its partner's, soft where it blends.
    """

    layer: str | None
    lam: torch.Tensor
    perm: torch.Tensor
    rows: torch.Tensor | None = None
    pixel_mask: torch.Tensor | None = None

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

    def prepare(self) -> None:
        """Compute, before the forward, what `mix` needs besides h (the inverse pairing), so the forward itself
        runs no data-dependent check (torch.compile then traces it without a graph break)."""
        self._inverse

    @cached_property
    def _inverse(self) -> torch.Tensor | None:
        """The inverse pairing (None if perm is not a permutation), computed once per plan."""
        return inverse_permutation(self.perm)

    def mix_targets(self, y, num_classes=None, smoothing=0.0):
        """The targets mixed as the inputs were: (soft / one-hot / multi-label) vectors (B, ...) by lambda; class
        ids (B,) or (B, H, W) as (smoothed) one-hot when `num_classes` is given; dense maps pixel by pixel with
        `pixel_mask` where the backend left one (mixsuite.mixing.targets); a dict of heads each with the same
        pairing and lambda (num_classes, smoothing: one value or a dict by head)."""
        if isinstance(y, dict):
            return {head: self.mix_targets(t, per_head(num_classes, head), per_head(smoothing, head) or 0.0)
                    for head, t in y.items()}
        if self.pixel_mask is not None and is_dense(y):
            return mix_dense(y, self.pixel_mask, self.perm, num_classes, smoothing)
        if is_class_map(y) and num_classes is None:
            raise ValueError("a (B, H, W) class map mixes by lambda once it is one-hot: give num_classes, "
                             "or use plan.mix_loss with a per-pixel criterion")
        return self.mix_by_weight(as_float_targets(y, num_classes, smoothing))

    def mix_by_weight(self, y: torch.Tensor) -> torch.Tensor:
        """Targets (B, ...) mixed with the targets' weight (lambda here; a shaped backend's kept share)."""
        return self.mix(y)

    def targets_b(self, y):
        """The partner targets y[perm] (works for tensors and lists, e.g. transcripts)."""
        if isinstance(y, torch.Tensor):
            return y[self.perm.to(y.device)]
        return [y[i] for i in self.perm.tolist()]

    def loss_weight(self) -> torch.Tensor:
        """The weight of each sample's own target in the mixed loss (0-d or (B,))."""
        return self.lam

    def mix_loss(self, criterion: Callable, out, y, reduction: str = "mean", weights: dict | None = None):
        """lam * L(out, y) + (1 - lam) * L(out, y[perm]); `criterion(out, y)` must return per-sample losses
        when lambda is per sample (e.g. `partial(F.cross_entropy, reduction="none")`). A per-pixel criterion
        ((B, H, W) or (B, C, H, W) losses) is weighted pixel by pixel with `pixel_mask` where there is one.
        Several heads: `out` and `y` dicts by head, `criterion` one callable or a dict by head; the sum of the
        heads' mixed losses (times `weights[head]`, default 1)."""
        if isinstance(y, dict):
            return sum((1.0 if weights is None else weights.get(head, 1.0))
                       * self.mix_loss(per_head(criterion, head) if isinstance(criterion, dict) else criterion,
                                       out[head], t, reduction) for head, t in y.items())
        if not self.active:
            loss = criterion(out, y)
            return loss.mean() if reduction == "mean" and loss.dim() > 0 else loss
        if self.pixel_mask is None:
            return mixed_loss(criterion, out, y, self.targets_b(y), self.loss_weight(), reduction=reduction)
        la, lb = criterion(out, y), criterion(out, self.targets_b(y))
        weight = mask_like(self.pixel_mask, la) if la.dim() >= 3 else self.loss_weight()
        return combine(la, lb, weight, reduction)


def identity_plan(batch_size: int, device=None) -> MixPlan:
    """The ERM plan: lambda = 1, every row paired with itself, nothing hooked."""
    return MixPlan(None, torch.ones((), device=device), torch.arange(batch_size, device=device))
