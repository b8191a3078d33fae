"""Augmentation on whole uint8 batches on the device (much faster on CPU than PIL image by image):
random crop with zero padding, horizontal flip, cutout, and normalisation."""
from __future__ import annotations

import torch


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of (B, C, H, W) padded by `padding` zeros on every side, then cropped back to H x W at a
    uniformly random offset (torchvision's RandomCrop(size, padding))."""
    if padding <= 0:
        return x
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=generator.device).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=generator.device).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]         # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]         # (B, 1, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    flip = (torch.rand(len(x), generator=generator, device=generator.device) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One size x size hole per image, zeroed, centred uniformly in the image and clipped at its borders
    (DeVries & Taylor, 2017). Apply after normalisation so the hole is the mean colour."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=generator, device=generator.device).to(x.device)
    cx = torch.randint(0, w, (b,), generator=generator, device=generator.device).to(x.device)
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_y = (ys[None] >= cy[:, None] - size // 2) & (ys[None] < cy[:, None] - size // 2 + size)
    in_x = (xs[None] >= cx[:, None] - size // 2) & (xs[None] < cx[:, None] - size // 2 + size)
    hole = in_y[:, :, None] & in_x[:, None, :]                                         # (B, H, W)
    return x.masked_fill(hole[:, None], 0.0)


