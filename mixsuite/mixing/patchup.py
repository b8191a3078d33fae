"""PatchUp (Faramarzi et al., AAAI 2022): swap contiguous blocks of a hidden feature map with the partner's.

At a layer k ~ U(S), a DropBlock-style mask picks blocks of the (C, H, W) map: Bernoulli seeds at rate
gamma * H*W / (block^2 * (H - block + 1) * (W - block + 1)), each grown into a block x block square by a
stride-1 max-pool. Inside the blocks, hard PatchUp puts the partner's features, soft PatchUp
lam * h + (1 - lam) * h[perm]; outside, h is kept. The targets mix by the share of features the mask changed:

    hard: y_mix = (1 - changed) * y + changed * y[perm]
    soft: y_mix = (1 - changed) * y + changed * (lam * y + (1 - lam) * y[perm])

At the input the paper does CutMix instead (lambda ~ Beta(1, 1), one box per batch); with probability
1 - prob a step is plain.
The official code's mask is one (C, H, W) pattern for the whole batch; per_sample=True draws one per sample
(and one lambda per sample), so each sample's target has its own weight. The official loss adds the BCE of
each target weighted by the unchanged share to the BCE of y_mix; for a loss linear in the target (CE, BCE)
that is twice the loss of y_mix, so mixing the targets is the same objective up to that factor.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .backends import MIXERS, Mixer, cutmix_box
from .hooks import INPUT
from .plan import identity_plan
from .sampling import sample_lambda
from .shaped import MixingShapeError, ShapedPlan, draw_seed, eager_only, feature_map, refuse_rows, rowwise

MODES = ("soft", "hard")
PAPER = {"soft": {"gamma": 0.75, "prob": 1.0}, "hard": {"gamma": 0.5, "prob": 0.7}}    # its CIFAR README


@dataclass
class PatchUpPlan(ShapedPlan):
    mode: str = "soft"
    block_size: int = 7
    gamma: float = 0.75
    per_sample_mask: bool = False
    input_cutmix: bool = False

    def block_mask(self, shape, generator: torch.Generator, device) -> torch.Tensor:
        """1 on the features PatchUp changes: (1 or B, C, H, W), float."""
        b, (batch, c, h, w) = self.block_size, shape
        if b > min(h, w):
            raise MixingShapeError(f"patchup block_size {b} does not fit mixing layer {self.layer!r}, whose output has "
                             f"shape {tuple(shape)}; use a smaller block_size or an earlier layer")
        rate = min(1.0, self.gamma * h * w / (b * b * (h - b + 1) * (w - b + 1)))
        n = batch if self.per_sample_mask else 1
        seeds = torch.bernoulli(torch.full((n, c, h, w), rate, device=device), generator=generator)
        return F.max_pool2d(seeds, b, stride=1, padding=b // 2)

    def mix(self, h: torch.Tensor) -> torch.Tensor:
        shape = feature_map(h, self, "patchup")
        partner = h.index_select(0, self.perm.to(h.device))
        holes = patchup_holes(self, shape, h.device)
        if self.input_cutmix:   # the paper's k = 0: CutMix of the images
            changed, lam = holes.mean(), torch.zeros((), device=h.device)
        else:
            changed = holes.flatten(1).mean(1)
            changed = changed[0] if len(changed) == 1 else changed
            lam = self.lam.to(h.device) if self.mode == "soft" else torch.zeros((), device=h.device)
        self.target_lam = 1 - changed * (1 - lam)
        own = 1 - holes * (1 - rowwise(lam, holes))     # each feature's share of the example's own
        self.pixel_mask = own.mean(1, keepdim=True).expand(shape[0], 1, *shape[2:])
        return h + holes.to(h.dtype) * (1 - rowwise(lam, h)) * (partner - h)


@eager_only
def patchup_holes(plan: PatchUpPlan, shape, device) -> torch.Tensor:
    """1 on the features the plan changes, drawn from its seed: the input's CutMix box (1, 1, H, W), or the
    block mask (1 or B, C, H, W)."""
    g = plan.rng(device)
    if not plan.input_cutmix:
        return plan.block_mask(shape, g, device)
    y0, y1, x0, x1 = cutmix_box(shape[2], shape[3], float(plan.lam), g)
    holes = torch.zeros(1, 1, *shape[2:], device=device)
    holes[..., y0:y1, x0:x1] = 1
    return holes


@MIXERS.register()
class PatchUp(Mixer):
    """PatchUp: blocks of a hidden (B, C, H, W) map swapped (hard) or interpolated (soft) with the partner's."""

    name = "patchup"

    def __init__(self, model=None, *, mode: str = "soft", block_size: int = 7, gamma: float | None = None,
                 prob: float | None = None, input_alpha: float = 1.0, input_cutmix: bool = True, **kw):
        if not kw.get("layers"):
            raise ValueError("patchup needs the set S of layers, e.g. layers=['input', 'conv1', 'layer1']")
        if mode not in MODES:
            raise ValueError(f"patchup mode must be one of {list(MODES)}, got {mode!r}")
        if block_size < 1 or block_size % 2 == 0:
            raise ValueError(f"patchup block_size must be a positive odd number, got {block_size}")
        kw.setdefault("alpha", 2.0)
        super().__init__(model, **kw)
        self.mode, self.block_size = mode, int(block_size)
        self.gamma = PAPER[mode]["gamma"] if gamma is None else float(gamma)
        self.prob = PAPER[mode]["prob"] if prob is None else float(prob)
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"patchup gamma and prob must lie in [0, 1], got gamma={self.gamma}, prob={self.prob}")
        self.input_alpha, self.input_cutmix = float(input_alpha), input_cutmix

    def draw(self, batch_size, rows=None, device=None, labels=None, perm=None):
        refuse_rows(rows, self.name)
        g = self.generator
        if self.prob < 1 and float(torch.rand(1, generator=g, device=g.device)) >= self.prob:
            return identity_plan(batch_size, device)
        layer = self._choose_layer()
        cutmix = layer == INPUT and self.input_cutmix
        n = batch_size if self.per_sample and not cutmix else 1
        lam = sample_lambda(self.input_alpha if cutmix else self.alpha, n, generator=self.generator_on(device),
                            device=device)
        perm = self.pair(batch_size, None, device, labels, perm)
        return PatchUpPlan(layer, lam if n > 1 else lam[0], perm, seed=draw_seed(g), mode=self.mode,
                           block_size=self.block_size, gamma=self.gamma, per_sample_mask=self.per_sample,
                           input_cutmix=cutmix)
