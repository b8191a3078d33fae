"""A drop-in for `timm.data.Mixup`: the same arguments, the same mixed inputs and targets for the same draws.

    from mixsuite.mixing import Mixup          # was: from timm.data import Mixup
    mixup_fn = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=1000)
    x, y = mixup_fn(x, y)                      # y: soft targets, for a soft-target cross-entropy

As timm: row i is paired with row B-1-i (batch reversal), so the batch size must be even; `mode` 'batch' draws
one lambda (and one box) per batch, 'pair' one per pair (i, B-1-i), 'elem' one per row; `prob` is the chance
that a batch (or row) is mixed at all, `switch_prob` the chance of CutMix rather than mixup when both alphas are
set; `cutmix_minmax` draws the box sides as fractions of the image sides instead of from lambda; `correct_lam`
sets lambda to the kept area of a box clipped by the image border; label smoothing comes before the mixing.

What differs: the draws come from a `torch.Generator` (`generator=`, by default torch's global one, which
`torch.manual_seed` seeds) instead of numpy's global random state, and the inputs are not changed in place (the
mixed batch is returned). The box is timm's (`cy - h//2` to `cy + (h+1)//2`); mixsuite's own `cutmix` backend
keeps the CutMix authors' (`cy ± h//2`). The arithmetic is timm's, in the same precision, so equal draws give
bit-equal results (tests/test_timm_mixup.py replays timm's numpy draws into this class).

Beyond timm (timm#2362): several heads, `num_classes={"species": 200, "attrs": 312}` with the targets as a dict
by head, each mixed with the same draw; `label_smoothing` and `multi_label` may be dicts by head too.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .backends import CutMixPlan
from .hooks import INPUT
from .losses import one_hot
from .targets import per_head
from .sampling import sample_beta

MODES = ("batch", "pair", "elem")


class TorchDraws:
    """The three kinds of draw timm's Mixup takes from numpy, from a torch.Generator: scalars when `n` is None."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def _out(self, values: torch.Tensor, n):
        values = values.cpu()
        return values.item() if n is None else values

    def beta(self, alpha: float, n: int | None = None):
        return self._out(sample_beta(alpha, alpha, n or 1, generator=self.generator, dtype=torch.float64), n)

    def rand(self, n: int | None = None):
        return self._out(torch.rand(n or 1, dtype=torch.float64, generator=self.generator,
                                    device=self.generator.device), n)

    def randint(self, low: int, high: int, n: int | None = None):
        return self._out(torch.randint(low, high, (n or 1,), generator=self.generator, device=self.generator.device), n)


@dataclass
class MixupDraw:
    """One batch's draw. lam: a float ('batch' mode) or float32 (B,); cutmix: per row; boxes: (y0, y1, x0, x1) per row
    that gets a box ('batch': one box for all rows, or None)."""

    lam: float | torch.Tensor
    cutmix: torch.Tensor | bool
    boxes: list | tuple | None


class Mixup:
    """timm.data.Mixup's arguments and call: `x, soft_targets = Mixup(...)(x, y)`."""

    def __init__(self, mixup_alpha: float = 1.0, cutmix_alpha: float = 0.0, cutmix_minmax=None, prob: float = 1.0,
                 switch_prob: float = 0.5, mode: str = "batch", correct_lam: bool = True,
                 label_smoothing: float | dict = 0.1, num_classes: int | dict = 1000, multi_label: bool | dict = False, *,
                 generator: torch.Generator | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError(f"mixup_alpha and cutmix_alpha must be >= 0, got {mixup_alpha} and {cutmix_alpha}")
        if cutmix_minmax is not None:
            if len(cutmix_minmax) != 2 or not 0 <= cutmix_minmax[0] < cutmix_minmax[1] <= 1:
                raise ValueError(f"cutmix_minmax must be (min, max) with 0 <= min < max <= 1, got {cutmix_minmax}")
            cutmix_alpha = 1.0  # as timm: the box comes from minmax, the alpha only makes CutMix active
        if mixup_alpha == 0 and cutmix_alpha == 0:
            raise ValueError("set mixup_alpha > 0, cutmix_alpha > 0 or cutmix_minmax: nothing would be mixed")
        for name, value in (("prob", prob), ("switch_prob", switch_prob)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        self.mixup_alpha, self.cutmix_alpha, self.cutmix_minmax = mixup_alpha, cutmix_alpha, cutmix_minmax
        self.mix_prob, self.switch_prob, self.mode, self.correct_lam = prob, switch_prob, mode, correct_lam
        self.label_smoothing, self.num_classes, self.multi_label = label_smoothing, num_classes, multi_label
        self.mixup_enabled = True  # a training loop may switch mixing off (timm's attribute)
        self.draws = TorchDraws(generator if generator is not None else torch.default_generator)

    # ---- draws, in timm's order ------------------------------------------------------------------------------
    def _lam_mix(self, n=None):
        """(use_cutmix, lambda) for n rows (or one batch when n is None), before `prob`."""
        d = self.draws
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = d.rand(n) < self.switch_prob
            if n is None:
                return use_cutmix, d.beta(self.cutmix_alpha) if use_cutmix else d.beta(self.mixup_alpha)
            cut, mix = d.beta(self.cutmix_alpha, n), d.beta(self.mixup_alpha, n)
            return use_cutmix, torch.where(use_cutmix, cut, mix)
        if self.mixup_alpha > 0:
            return (False if n is None else torch.zeros(n, dtype=torch.bool)), d.beta(self.mixup_alpha, n)
        return (True if n is None else torch.ones(n, dtype=torch.bool)), d.beta(self.cutmix_alpha, n)

    def box(self, size, lam):
        """timm's `cutmix_bbox_and_lam`: a box (y0, y1, x0, x1) in an image of `size` (H, W), and lambda (the kept
        area with correct_lam or minmax). `lam` is a float (batch mode) or a float32 scalar tensor (per row)."""
        h, w = int(size[-2]), int(size[-1])
        d = self.draws
        if self.cutmix_minmax is not None:
            lo, hi = self.cutmix_minmax
            cut_h, cut_w = d.randint(int(h * lo), int(h * hi)), d.randint(int(w * lo), int(w * hi))
            y0, x0 = d.randint(0, h - cut_h + 1), d.randint(0, w - cut_w + 1)
            y1, x1 = y0 + cut_h, x0 + cut_w
        else:
            dtype = torch.float64 if isinstance(lam, float) else torch.float32  # timm's numpy precision
            ratio = torch.sqrt(1 - torch.as_tensor(lam, dtype=dtype))
            cut_h, cut_w = int(h * ratio), int(w * ratio)
            cy, cx = d.randint(0, h), d.randint(0, w)
            y0, y1 = min(max(cy - cut_h // 2, 0), h), min(max(cy + (cut_h + 1) // 2, 0), h)
            x0, x1 = min(max(cx - cut_w // 2, 0), w), min(max(cx + (cut_w + 1) // 2, 0), w)
        if self.correct_lam or self.cutmix_minmax is not None:
            lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
        return (y0, y1, x0, x1), lam

    def draw(self, batch_size: int, size) -> MixupDraw:
        """lambda, CutMix-or-mixup and boxes for a batch of images of `size` (H, W)."""
        if self.mode == "batch":
            lam, use_cutmix, box = 1.0, False, None
            if self.mixup_enabled and self.draws.rand() < self.mix_prob:
                use_cutmix, lam = self._lam_mix()
                lam = float(lam)
            if lam != 1.0 and use_cutmix:
                box, lam = self.box(size, lam)
            return MixupDraw(lam, use_cutmix, box)
        n = batch_size // 2 if self.mode == "pair" else batch_size
        lam, use_cutmix = torch.ones(n, dtype=torch.float32), torch.zeros(n, dtype=torch.bool)
        if self.mixup_enabled:
            use_cutmix, lam_mix = self._lam_mix(n)
            lam = torch.where(self.draws.rand(n) < self.mix_prob, lam_mix.float(), lam)
        boxes = [None] * n
        for i in range(n):
            if lam[i] != 1 and use_cutmix[i]:
                boxes[i], lam[i] = self.box(size, lam[i])
        if self.mode == "pair":  # row B-1-i shares row i's draw
            lam, use_cutmix, boxes = torch.cat([lam, lam.flip(0)]), torch.cat([use_cutmix, use_cutmix.flip(0)]), \
                boxes + boxes[::-1]
        return MixupDraw(lam, use_cutmix, boxes)

    # ---- mixing --------------------------------------------------------------------------------------------
    def mix_inputs(self, x: torch.Tensor, draw: MixupDraw) -> torch.Tensor:
        flipped = x.flip(0)
        if self.mode == "batch":
            if draw.lam == 1.0:
                return x
            if draw.cutmix:
                return CutMixPlan(INPUT, torch.tensor(draw.lam), torch.arange(len(x) - 1, -1, -1), box=draw.boxes).mix(x)
            return x * draw.lam + flipped * (1.0 - draw.lam)
        out = x.clone()
        mixup = ~draw.cutmix & (draw.lam != 1)
        if mixup.any():
            rows = mixup.nonzero().flatten().to(x.device)
            lam = draw.lam[mixup].to(x.device).view(-1, *[1] * (x.dim() - 1))
            out[rows] = x[rows] * lam + flipped[rows] * (1 - lam)
        for i, box in enumerate(draw.boxes):
            if box is not None:
                y0, y1, x0, x1 = box
                out[i, ..., y0:y1, x0:x1] = flipped[i, ..., y0:y1, x0:x1]
        return out

    def mix_targets(self, target, draw: MixupDraw):
        """timm's `mixup_target`: smoothed one-hot (or dense multi-label) targets, mixed with their reversal. A dict
        of heads mixes each with the same draw; num_classes, label_smoothing and multi_label may be dicts by head."""
        if isinstance(target, dict):
            missing = [h for h in target if isinstance(self.num_classes, dict) and h not in self.num_classes]
            if missing:
                raise ValueError(f"num_classes names no class count for head(s) {missing}; give one per head, "
                                 f"e.g. num_classes={{{missing[0]!r}: 10, ...}}")
            return {head: self._mix_head(t, draw, per_head(self.num_classes, head),
                                         per_head(self.label_smoothing, head) or 0.0,
                                         bool(per_head(self.multi_label, head)))
                    for head, t in target.items()}
        if isinstance(self.num_classes, dict):
            raise ValueError("num_classes is a dict of heads: give the targets as a dict by head too")
        return self._mix_head(target, draw, self.num_classes, self.label_smoothing, self.multi_label)

    def _mix_head(self, target: torch.Tensor, draw: MixupDraw, num_classes: int, s: float, multi_label: bool):
        if multi_label:
            if target.dim() != 2 or target.shape[1] != num_classes:
                raise ValueError(f"multi_label targets must be dense (batch, {num_classes}), "
                                 f"got shape {tuple(target.shape)}")
            y1 = target.float() * (1.0 - s) + 0.5 * s
        else:
            y1 = one_hot(target, num_classes, s)
        lam = draw.lam
        if isinstance(lam, torch.Tensor):
            lam = lam.view(-1, 1)
        return y1 * lam + y1.flip(0) * (1.0 - lam)

    def __call__(self, x: torch.Tensor, target: torch.Tensor):
        if len(x) % 2:
            raise ValueError(f"Mixup pairs row i with row B-1-i: the batch size must be even, got {len(x)} "
                             "(use drop_last=True in the DataLoader)")
        draw = self.draw(len(x), x.shape[-2:])
        mixed = self.mix_inputs(x, draw)
        if isinstance(draw.lam, torch.Tensor):
            draw.lam = draw.lam.to(x.device, x.dtype)  # as timm: the targets' per-row lambda in the input's dtype
        return mixed, self.mix_targets(target, draw)
