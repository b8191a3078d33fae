"""ResizeMix (Qin et al., 2020): paste the whole partner, shrunk, into the sample.

A rate tau ~ U(0.1, 0.8) per step (per sample with per_sample=True); the partner resized to
(int(H * tau), int(W * tau)) by nearest-neighbour interpolation is pasted at a uniform position that keeps it
inside the map. The targets mix by area: the sample's own target weighs 1 - (h_s * w_s) / (H * W).
Lambda does not come from a Beta draw, so `alpha` is not used. Works on images and any (B, C, H, W) map.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .backends import MIXERS, Mixer
from .hooks import INPUT
from .shaped import MixingShapeError, ShapedPlan, box_inside, draw_seed, eager_only, feature_map, refuse_rows
from .targets import as_float_targets, class_map_one_hot

SCALE = (0.1, 0.8)


@dataclass
class ResizeMixPlan(ShapedPlan):
    tau: torch.Tensor | None = None      # 0-d or (B,)
    mode: str = "nearest"

    def boxes(self, height: int, width: int, device) -> list[tuple[int, int, int, int]]:
        """One (y0, y1, x0, x1) per group of rows (one group, or one per sample)."""
        g = self.rng(device)
        out = []
        for tau in self.tau.reshape(-1).tolist():
            hs, ws = int(height * tau), int(width * tau)
            y0 = int(torch.randint(height - hs + 1, (1,), generator=g, device=g.device))
            x0 = int(torch.randint(width - ws + 1, (1,), generator=g, device=g.device))
            out.append((y0, y0 + hs, x0, x0 + ws))
        return out

    def mix(self, h: torch.Tensor) -> torch.Tensor:
        b, c, height, width = feature_map(h, self, "resizemix")
        partner = h.index_select(0, self.perm.to(h.device))
        if self.mode != "nearest":
            return self.mix_by_slices(h, partner)
        source, outside, area = nearest_paste(self, height, width, h.dtype, h.device)
        pasted = partner.flatten(2).gather(2, source.unsqueeze(1).expand(b, c, -1)).view(b, c, height, width)
        self.pixel_mask = outside.to(torch.get_default_dtype()).expand(b, 1, height, width)
        self.target_lam = 1 - (area[0] if self.tau.dim() == 0 else area)
        return torch.where(outside, h, pasted)          # h first: the result keeps h's memory format

    def mix_by_slices(self, h: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        """The paste by F.interpolate into each box's slice (any interpolation mode; compiled code guards on the
        boxes' sizes, so it recompiles on new ones)."""
        b, _, height, width = h.shape
        boxes = self.boxes(height, width, h.device)
        out = h.clone()
        mask = torch.ones(b, 1, height, width, device=h.device)
        groups = [slice(None)] if len(boxes) == 1 else [slice(i, i + 1) for i in range(b)]
        for rows, (y0, y1, x0, x1) in zip(groups, boxes):
            if y1 > y0 and x1 > x0:
                out[rows, :, y0:y1, x0:x1] = F.interpolate(partner[rows], size=(y1 - y0, x1 - x0), mode=self.mode)
                mask[rows, :, y0:y1, x0:x1] = 0
        self.pixel_mask = mask
        self.target_lam = 1 - box_areas(boxes, height, width, h.device)[0 if self.tau.dim() == 0 else slice(None)]
        return out

    def mix_targets(self, y, num_classes=None, smoothing=0.0):
        """As MixPlan's, except that a dense target gets the same paste as the image: the partner's map shrunk
        (nearest neighbour) into the box, since the box shows the whole partner shrunk, not its pixels there."""
        if isinstance(y, dict) or not isinstance(y, torch.Tensor) or y.dim() < 3:
            return super().mix_targets(y, num_classes, smoothing)
        if self.pixel_mask is None:
            raise RuntimeError("the paste is known once the forward has passed mixing layer "
                               f"{self.layer!r}: call mix_targets after the model's forward")
        class_map = y.dim() == 3 and not y.is_floating_point()
        maps = y.unsqueeze(1).float() if y.dim() == 3 else as_float_targets(y, num_classes, smoothing).float()
        if class_map and (num_classes is not None or smoothing):
            maps = class_map_one_hot(y, num_classes, smoothing)
            class_map = False
        plan = ResizeMixPlan(self.layer, self.lam, self.perm, seed=self.seed, tau=self.tau, mode="nearest")
        out = plan.mix(maps)
        if tuple(maps.shape[-2:]) != tuple(self.pixel_mask.shape[-2:]):
            raise MixingShapeError(f"resizemix pasted at {tuple(self.pixel_mask.shape[-2:])}; a dense target of "
                                   f"spatial size {tuple(maps.shape[-2:])} cannot take the same paste")
        if class_map:
            return out[:, 0].round().to(y.dtype)
        return out[:, 0] if y.dim() == 3 else out


def box_areas(boxes, height: int, width: int, device) -> torch.Tensor:
    return torch.tensor([(y1 - y0) * (x1 - x0) / (height * width) for y0, y1, x0, x1 in boxes], device=device)


@eager_only
def nearest_paste(plan: ResizeMixPlan, height: int, width: int, dtype, device):
    """The plan's nearest-neighbour paste as tensors: for each group of rows (G = 1 or B) the source pixel of
    every pixel of the shrunk partner, (G, H*W) flat indices; the pixels outside the boxes (G, 1, H, W), and the
    boxes' areas (G,). The sources are those F.interpolate picks: they come from it, on an index grid."""
    boxes = plan.boxes(height, width, device)
    grid = torch.float64 if dtype == torch.float64 else torch.float32   # the dtype F.interpolate's scale takes
    rows = torch.arange(height, device=device).repeat(len(boxes), 1)
    cols = torch.arange(width, device=device).repeat(len(boxes), 1)
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        if y1 > y0 and x1 > x0:
            rows[i, y0:y1] = nearest_sources(height, y1 - y0, grid, device)
            cols[i, x0:x1] = nearest_sources(width, x1 - x0, grid, device)
    source = (rows.unsqueeze(2) * width + cols.unsqueeze(1)).flatten(1)
    corners = torch.tensor(boxes, device=device).view(-1, 4)
    return source, ~box_inside(corners, (height, width)), box_areas(boxes, height, width, device)


def nearest_sources(size: int, out: int, dtype, device) -> torch.Tensor:
    """The source index of each of `out` pixels when F.interpolate shrinks `size` pixels to `out` (nearest)."""
    grid = torch.arange(size, dtype=dtype, device=device).view(1, 1, size, 1)
    return F.interpolate(grid, size=(out, 1), mode="nearest").view(-1).long()


@MIXERS.register()
class ResizeMix(Mixer):
    """ResizeMix: the partner shrunk by tau ~ U(scale) and pasted; lambda from the pasted area."""

    name = "resizemix"
    default_layers = (INPUT,)

    def __init__(self, model=None, *, scale: tuple[float, float] = SCALE, mode: str = "nearest", **kw):
        low, high = scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"resizemix scale must satisfy 0 < low <= high <= 1, got {tuple(scale)}")
        super().__init__(model, **kw)
        self.scale, self.mode = (float(low), float(high)), mode

    def draw(self, batch_size, rows=None, device=None, labels=None, perm=None):
        refuse_rows(rows, self.name)
        g = self.generator
        layer = self._choose_layer()
        low, high = self.scale
        gd = self.generator_on(device)
        tau = low + (high - low) * torch.rand(batch_size if self.per_sample else 1, generator=gd, device=gd.device)
        tau = (tau if self.per_sample else tau[0]).to(device or g.device)
        perm = self.pair(batch_size, None, device, labels, perm)
        return ResizeMixPlan(layer, 1 - tau ** 2, perm, seed=draw_seed(g), tau=tau, mode=self.mode)
