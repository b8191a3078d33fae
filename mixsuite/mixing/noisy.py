"""Noisy Feature Mixup (Lim et al., ICLR 2022): manifold mixup, then multiplicative and additive noise at the
mixed layer:

    h_mix = lam * h + (1 - lam) * h[perm]
    out   = h_mix * (1 + mult_noise * b1 * u) + add_noise * b2 * n,   u ~ U(-1, 1), n ~ N(0, 1) per element

with noise scales b1, b2 ~ Beta(2, 5), one each per step (one per sample with per_sample=True). The targets mix
by lambda, as in manifold mixup. Works on any tensor shape, at the input too (the paper's k = 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .backends import MIXERS, ManifoldMixup
from .plan import MixPlan
from .sampling import sample_beta
from .shaped import ShapedPlan, draw_seed, eager_only, refuse_rows, rowwise

NOISE_BETA = (2.0, 5.0)          # the scales' Beta(2, 5), fixed in the paper's code


@dataclass
class NoisyPlan(ShapedPlan):
    add_noise: float = 0.4
    mult_noise: float = 0.2
    mult_scale: torch.Tensor | None = None     # b1: 0-d or (B,)
    add_scale: torch.Tensor | None = None      # b2

    def mix(self, h: torch.Tensor) -> torch.Tensor:
        mixed = MixPlan.mix(self, h)
        self.target_lam = self.lam
        u, n = nfm_noise(self, h.shape, h.dtype, h.device)
        if u is not None:
            mixed = mixed * (1 + self.mult_noise * rowwise(self.mult_scale, h) * u)
        if n is not None:
            mixed = mixed + self.add_noise * rowwise(self.add_scale, h) * n
        return mixed


@eager_only
def nfm_noise(plan: NoisyPlan, shape, dtype, device):
    """The plan's multiplicative noise u ~ U(-1, 1) and additive n ~ N(0, 1), drawn from its seed (None: off)."""
    g = plan.rng(device)
    u = n = None
    if plan.mult_noise > 0:
        u = torch.rand(shape, generator=g, device=device, dtype=torch.float32).to(dtype) * 2 - 1
    if plan.add_noise > 0:
        n = torch.randn(shape, generator=g, device=device, dtype=torch.float32).to(dtype)
    return u, n


@MIXERS.register()
class NoisyFeatureMixup(ManifoldMixup):
    """Noisy Feature Mixup: manifold mixup plus additive and multiplicative noise at the mixed layer."""

    name = "nfm"

    def __init__(self, model=None, *, add_noise: float = 0.4, mult_noise: float = 0.2, **kw):
        if add_noise < 0 or mult_noise < 0:
            raise ValueError(f"nfm noise levels must be >= 0, got add_noise={add_noise}, mult_noise={mult_noise}")
        kw.setdefault("alpha", 1.0)
        super().__init__(model, **kw)
        self.add_noise, self.mult_noise = float(add_noise), float(mult_noise)

    def draw(self, batch_size, rows=None, device=None, labels=None, perm=None):
        refuse_rows(rows, self.name)
        plan = super().draw(batch_size, None, device, labels, perm)
        n = batch_size if self.per_sample else 1
        g = self.generator_on(device)
        b1 = sample_beta(*NOISE_BETA, n, generator=g, device=device)
        b2 = sample_beta(*NOISE_BETA, n, generator=g, device=device)
        return NoisyPlan(plan.layer, plan.lam, plan.perm, seed=draw_seed(self.generator), add_noise=self.add_noise,
                         mult_noise=self.mult_noise, mult_scale=b1 if self.per_sample else b1[0],
                         add_scale=b2 if self.per_sample else b2[0])
