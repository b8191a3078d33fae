"""FMix (Harris et al., 2020): mix with a binary mask cut from low-frequency noise.

A Gaussian complex spectrum on the (H, W) Fourier grid, scaled by 1 / max(|freq|, 1 / max(H, W)) ** decay_power,
is inverted to a smooth grey image; its top ceil(lam*N) or floor(lam*N) pixels (a coin decides; N = H*W) become 1,
the rest 0, so the mask's mean is lambda up to 1/N. `max_soft` > 0 ramps the mask from 1 to 0 over a band of
max_soft*N pixels around the cut (its mean unchanged). Then out = mask * h + (1 - mask) * h[perm], and the
targets mix by the mask's mean (the official code keeps the drawn lambda, at most 1/N away).
One mask per batch as the paper (one per sample with per_sample=True); the same mask on every channel.
Works on images and on any (B, C, H, W) hidden map.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .backends import MIXERS, Mixer
from .hooks import INPUT
from .shaped import ShapedPlan, draw_seed, eager_only, feature_map, refuse_rows


def low_frequency_noise(n: int, h: int, w: int, decay_power: float, generator: torch.Generator) -> torch.Tensor:
    """n smooth grey images (n, H, W): inverse FFT of a Gaussian spectrum damped as 1 / |freq| ** decay_power."""
    device = generator.device
    freq = torch.sqrt(torch.fft.fftfreq(h, device=device)[:, None] ** 2 + torch.fft.rfftfreq(w, device=device) ** 2)
    scale = 1.0 / freq.clamp_min(1.0 / max(h, w)) ** decay_power
    parts = torch.randn((n, 2, *freq.shape), generator=generator, device=device)
    spectrum = torch.complex(parts[:, 0] * scale, parts[:, 1] * scale)
    return torch.fft.irfft2(spectrum, s=(h, w))


def binarise(grey: torch.Tensor, lam: torch.Tensor, max_soft: float, generator: torch.Generator) -> torch.Tensor:
    """Masks (n, H, W) whose top round(lam * N) pixels of each grey image are 1 (ceil or floor by a coin)."""
    n, h, w = grey.shape
    size = h * w
    lam = lam.to(grey.device).double().expand(n)
    up = torch.rand(n, generator=generator, device=grey.device) > 0.5
    count = torch.where(up, torch.ceil(lam * size), torch.floor(lam * size)).long()
    soft = torch.minimum(torch.full_like(lam, max_soft), torch.minimum(lam, 1 - lam))
    soft = (soft * size).long() if max_soft > 0 else torch.zeros_like(count)
    low, high = (count - soft).view(-1, 1), (count + soft).view(-1, 1)
    rank = torch.arange(size, device=grey.device).view(1, -1)
    ramp = 1 - (rank - low).float() / (high - low - 1).clamp_min(1).float()     # linspace(1, 0) over the band
    value = torch.where(rank < low, 1.0, torch.where(rank < high, ramp, 0.0))
    order = grey.flatten(1).argsort(dim=1, descending=True)
    return torch.zeros(n, size, device=grey.device).scatter_(1, order, value).view(n, h, w)


@dataclass
class FMixPlan(ShapedPlan):
    decay_power: float = 3.0
    max_soft: float = 0.0

    def masks(self, h: int, w: int, device) -> torch.Tensor:
        return fmix_masks(self, h, w, device)

    def mix(self, h: torch.Tensor) -> torch.Tensor:
        _, _, height, width = feature_map(h, self, "fmix")
        mask = self.masks(height, width, h.device)
        self.target_lam = mask.flatten(1).mean(1)
        self.target_lam = self.target_lam[0] if self.lam.dim() == 0 else self.target_lam
        partner = h.index_select(0, self.perm.to(h.device))
        self.pixel_mask = mask.unsqueeze(1).expand(len(h), 1, height, width)
        return torch.lerp(partner, h, mask.unsqueeze(1).to(h.dtype))


@eager_only
def fmix_masks(plan: FMixPlan, h: int, w: int, device) -> torch.Tensor:
    """The plan's masks (n, H, W), drawn from its seed."""
    g = plan.rng(device)
    n = plan.lam.numel()
    return binarise(low_frequency_noise(n, h, w, plan.decay_power, g), plan.lam.view(-1), plan.max_soft, g)


@MIXERS.register()
class FMix(Mixer):
    """FMix: a low-frequency binary mask of area lambda; the partner fills the rest."""

    name = "fmix"
    default_layers = (INPUT,)

    def __init__(self, model=None, *, decay_power: float = 3.0, max_soft: float = 0.0, **kw):
        if decay_power <= 0 or not 0 <= max_soft <= 0.5:
            raise ValueError(f"fmix needs decay_power > 0 and 0 <= max_soft <= 0.5, got decay_power={decay_power}, "
                             f"max_soft={max_soft}")
        super().__init__(model, **kw)
        self.decay_power, self.max_soft = float(decay_power), float(max_soft)

    def draw(self, batch_size, rows=None, device=None, labels=None, perm=None):
        refuse_rows(rows, self.name)
        plan = super().draw(batch_size, None, device, labels, perm)
        return FMixPlan(plan.layer, plan.lam, plan.perm, seed=draw_seed(self.generator),
                        decay_power=self.decay_power, max_soft=self.max_soft)
