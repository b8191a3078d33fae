"""AlignMixup (Venkataramanan et al., CVPR 2022): align the partner's feature map to the sample's by entropic
optimal transport before interpolating.

A (C, H, W) map is a set of N = H*W spatial C-vectors. Between the sample's vectors a_i and the partner's b_j
the cost is |a_i - b_j|^2; the Sinkhorn plan P (uniform marginals 1/N, entropy weight eps, log domain,
detached) scaled by N is a soft assignment R = N * P. Then, a coin per step (per sample with per_sample=True):

    direction 0: out = lam * A + (1 - lam) * B R^T     (the partner moved onto the sample's grid)
    direction 1: out = lam * A R + (1 - lam) * B       (the sample moved onto the partner's grid)

with A, B the (C, N) maps. The targets mix by lambda. At the input the paper does plain input mixup (half
of its steps: S = [input, the last block]). The paper: eps 0.1, at most 100 iterations, lambda ~ Beta(2, 2).
The official loop stops when the potentials move less than 0.1; this one stops when every row of P sums to
1/N within `tol` (L1 over the rows), which is what a transport plan's marginals are checked against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .backends import MIXERS, ManifoldMixup
from .hooks import INPUT
from .plan import MixPlan
from .shaped import eager_only, feature_map, refuse_rows, rowwise


def sinkhorn(cost: torch.Tensor, eps: float = 0.1, max_iter: int = 100, tol: float = 1e-3) -> torch.Tensor:
    """The entropic transport plan (B, N, M) between uniform marginals 1/N and 1/M, for a cost (B, N, M).

    Log-domain iterations on the potentials f, g: P = exp((f_i + g_j - C_ij) / eps). The columns are exact
    after each g update; the loop ends when the rows' L1 error is below `tol` or after `max_iter` rounds.
    """
    cost = cost.float()
    n, m = cost.shape[-2:]
    log_mu, log_nu = -math.log(n), -math.log(m)
    f = torch.zeros(cost.shape[:-1], device=cost.device)
    g = torch.zeros(cost.shape[:-2] + (m,), device=cost.device)
    for _ in range(max_iter):
        f = eps * (log_mu - torch.logsumexp((g.unsqueeze(-2) - cost) / eps, dim=-1))
        g = eps * (log_nu - torch.logsumexp((f.unsqueeze(-1) - cost) / eps, dim=-2))
        plan = torch.exp((f.unsqueeze(-1) + g.unsqueeze(-2) - cost) / eps)
        if float((plan.sum(-1) - 1.0 / n).abs().sum(-1).max()) < tol:
            break
    return plan


@eager_only
@torch.no_grad()
def alignment(a: torch.Tensor, partner: torch.Tensor, eps: float, max_iter: int, tol: float) -> torch.Tensor:
    """The soft assignment R = N * P (B, N, N) of the partner's N spatial vectors to the sample's, for (B, C, N)
    maps, detached. Eager under torch.compile: Sinkhorn's stopping test reads a Python float each round."""
    cost = torch.cdist(a.transpose(1, 2).float(), partner.transpose(1, 2).float()) ** 2
    return (sinkhorn(cost, eps, max_iter, tol) * a.shape[-1]).to(a.dtype)


@dataclass
class AlignMixPlan(MixPlan):
    direction: torch.Tensor | None = None     # 0-d or (B,): 0 partner onto the sample's grid, 1 the reverse
    eps: float = 0.1
    max_iter: int = 100
    tol: float = 1e-3

    def mix(self, h: torch.Tensor) -> torch.Tensor:
        b, c, height, width = feature_map(h, self, "alignmix")
        a = h.flatten(2)                                            # (B, C, N)
        partner = a.index_select(0, self.perm.to(h.device))
        assign = alignment(a, partner, self.eps, self.max_iter, self.tol)
        lam, direction = rowwise(self.lam, a), self.direction.to(h.device)
        onto_sample = lam * a + (1 - lam) * (partner @ assign.transpose(1, 2))
        if direction.dim() == 0 and not direction:
            return onto_sample.view_as(h)
        onto_partner = lam * (a @ assign) + (1 - lam) * partner
        if direction.dim() == 0:
            return onto_partner.view_as(h)
        return torch.where(direction.view(-1, 1, 1).bool(), onto_partner, onto_sample).view_as(h)

    def mix_by_weight(self, y: torch.Tensor) -> torch.Tensor:
        return MixPlan.mix(self, y)


@MIXERS.register()
class AlignMixup(ManifoldMixup):
    """AlignMixup: the partner's (B, C, H, W) map aligned by Sinkhorn transport, then interpolated."""

    name = "alignmix"

    def __init__(self, model=None, *, eps: float = 0.1, max_iter: int = 100, tol: float = 1e-3, **kw):
        if eps <= 0 or max_iter < 1:
            raise ValueError(f"alignmix needs eps > 0 and max_iter >= 1, got eps={eps}, max_iter={max_iter}")
        kw.setdefault("alpha", 2.0)
        super().__init__(model, **kw)
        self.eps, self.max_iter, self.tol = float(eps), int(max_iter), float(tol)

    def draw(self, batch_size, rows=None, device=None, labels=None, perm=None):
        refuse_rows(rows, self.name)
        plan = super().draw(batch_size, None, device, labels, perm)
        g = self.generator_on(device)
        direction = torch.randint(2, (batch_size if self.per_sample else 1,), generator=g, device=g.device)
        if plan.layer == INPUT:          # the paper's other half of the steps: plain input mixup
            return MixPlan(plan.layer, plan.lam, plan.perm)
        return AlignMixPlan(plan.layer, plan.lam, plan.perm, eps=self.eps,
                            max_iter=self.max_iter, tol=self.tol,
                            direction=(direction if self.per_sample else direction[0]).to(device or g.device))
