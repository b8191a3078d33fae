"""How targets follow a plan beyond one class vector per row: dense maps, several heads, class ids with their own
class counts and label smoothing.

- A dense target has spatial dimensions: a (B, H, W) integer class map (segmentation), a (B, H, W) or
  (B, C, H, W) real map (depth, soft masks). A shaped backend (CutMix, FMix, ResizeMix, PatchUp) leaves its
  `pixel_mask` (B, 1, h, w) on the plan, 1 where a pixel is the example's own and 0 where it is its partner's;
  a dense target mixes pixel by pixel with it (resized to the target's H x W when the mixing layer is coarser):
  a class map takes each pixel's label from the example or the partner (a soft two-class target where the mask
  is soft: give num_classes), a real map interpolates per pixel. Under input or manifold mixup (no mask) a real
  map interpolates by lambda, and a class map does once it is one-hot (num_classes).
- Several heads: a dict of targets mixes each with the same pairing and lambda; num_classes and smoothing may
  be dicts keyed by head (a head missing from them keeps its targets as they are: soft, multi-label, a map).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .losses import one_hot


def per_head(value, head):
    """`value[head]` for a dict of per-head settings (None when the head has none), else `value` itself."""
    return value.get(head) if isinstance(value, dict) else value


def is_dense(y: torch.Tensor) -> bool:
    return isinstance(y, torch.Tensor) and y.dim() >= 3


def is_class_map(y: torch.Tensor) -> bool:
    return y.dim() == 3 and not (y.is_floating_point() or y.is_complex())


def class_map_one_hot(y: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """(B, H, W) class ids -> (B, C, H, W) float targets (label smoothing as `one_hot`: off = s / C)."""
    off = smoothing / num_classes
    out = torch.full((y.shape[0], num_classes, *y.shape[1:]), off, device=y.device, dtype=torch.float32)
    return out.scatter_(1, y.long().unsqueeze(1), 1.0 - smoothing + off)


def as_float_targets(y: torch.Tensor, num_classes: int | None, smoothing: float = 0.0) -> torch.Tensor:
    """Class ids -> (smoothed) one-hot when `num_classes` is given: (B,) -> (B, C), (B, H, W) -> (B, C, H, W);
    anything else unchanged."""
    if num_classes is None or y.is_floating_point():
        return y
    if y.dim() == 1:
        return one_hot(y, num_classes, smoothing)
    if is_class_map(y):
        return class_map_one_hot(y, num_classes, smoothing)
    raise ValueError(f"num_classes is for class ids of shape (B,) or (B, H, W), got shape {tuple(y.shape)}")


def mask_like(mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The (B, 1, h, w) pixel mask at the target's spatial size, shaped to broadcast against it:
    (B, H, W) for a 3-D target, (B, 1, H, W) for a 4-D one."""
    size = tuple(target.shape[-2:])
    mask = mask.to(target.device, torch.float32)
    if tuple(mask.shape[-2:]) != size:
        soft = bool(((mask > 0) & (mask < 1)).any())
        mask = F.interpolate(mask, size=size, mode="bilinear" if soft else "nearest",
                             **({"align_corners": False} if soft else {}))
    if len(mask) == 1 and len(target) > 1:
        mask = mask.expand(len(target), *mask.shape[1:])
    return mask[:, 0] if target.dim() == 3 else mask


def mix_dense(y: torch.Tensor, mask: torch.Tensor, perm: torch.Tensor, num_classes: int | None = None,
              smoothing: float = 0.0) -> torch.Tensor:
    """A dense target mixed pixel by pixel: m * y + (1 - m) * y[perm] (m: the pixel mask at y's size)."""
    partner = y[perm.to(y.device)]
    m = mask_like(mask, y)
    if is_class_map(y):
        hard = bool(((m == 0) | (m == 1)).all())
        if hard and not smoothing:
            return torch.where(m > 0.5, y, partner)
        if num_classes is None:
            raise ValueError("this plan's pixel mask is soft (the backend blends), so a class map mixes into a soft "
                             "two-class target per pixel: give num_classes, e.g. plan.mix_targets(y, num_classes=21)")
        ya, yb = class_map_one_hot(y, num_classes, smoothing), class_map_one_hot(partner, num_classes, smoothing)
        m = m.unsqueeze(1)
        return m * ya + (1 - m) * yb
    y = as_float_targets(y, num_classes, smoothing)
    return m * y + (1 - m) * partner.to(y.dtype)
