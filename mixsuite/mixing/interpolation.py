"""The row interpolation h <- lam * h + (1 - lam) * h[perm], fused for speed.

Written out with autograd it makes ~10 passes over h and as many new tensors of h's size (a gather, two
scalings, a sum; in backward two scalings, a scatter-add for the gather, the sum of both paths); on CPU each
large new tensor also costs its page faults. When `perm` is a permutation, the gradient of the gather is a
gather by the inverse permutation, so each direction is one gather into a new tensor and one in-place lerp.
"""
from __future__ import annotations

import torch


def _rows(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """t.index_select(0, index) in t's memory layout (index_select alone returns NCHW for a channels_last t)."""
    return torch.index_select(t, 0, index, out=torch.empty_like(t))


class _MixRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, perm, inverse, lam):
        ctx.save_for_backward(inverse, lam)
        return _rows(h, perm).lerp_(h, lam)              # h[perm] + lam * (h - h[perm]), one new tensor

    @staticmethod
    def backward(ctx, grad):
        inverse, lam = ctx.saved_tensors
        if lam.dim() == 0:  # lam * g + (1 - lam) * g[inverse]
            return _rows(grad, inverse).lerp_(grad, lam), None, None, None
        return _rows((1 - lam) * grad, inverse).addcmul_(lam, grad), None, None, None


def inverse_permutation(perm: torch.Tensor) -> torch.Tensor | None:
    """inv with inv[perm[i]] = i, or None when `perm` is not a permutation of 0..n-1."""
    n = perm.numel()
    if perm.dim() != 1 or not torch.equal(torch.sort(perm).values, torch.arange(n, device=perm.device)):
        return None
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(n, device=perm.device)
    return inverse


def mix_rows(h: torch.Tensor, perm: torch.Tensor, lam: torch.Tensor, inverse: torch.Tensor | None = None):
    """lam * h + (1 - lam) * h[perm] along dim 0; lam is 0-d or broadcastable per row, in h's dtype.

    Give `inverse` (see `inverse_permutation`) to take the fused path; without it (a pairing that is not a
    permutation) autograd differentiates the plain formula.
    """
    if inverse is None:
        return lam * h + (1 - lam) * h[perm]
    return _MixRows.apply(h, perm, inverse, lam)
