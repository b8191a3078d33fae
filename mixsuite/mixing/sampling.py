"""Random draws of the mixing core: lambda ~ Beta(alpha, alpha), other Beta draws, and the pairing permutation.

Everything is drawn from an explicit `torch.Generator`, so a seed fixes the plan. Beta is sampled as
G1 / (G1 + G2) with Gamma(alpha) draws (Marsaglia-Tsang), because torch.distributions takes no generator.
"""
from __future__ import annotations

import math

import torch


def _standard_gamma(shape: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """n draws of Gamma(shape, 1) in float64 on the generator's device (Marsaglia & Tsang, 2000)."""
    if n == 1 and generator.device.type == "cpu":
        return torch.tensor([_one_standard_gamma(shape, generator)], dtype=torch.float64)
    return _standard_gamma_tensor(shape, n, generator)


def _marsaglia_tsang(shape: float) -> tuple[bool, float, float]:
    """(boost, d, c): Gamma(shape) for shape < 1 is drawn as Gamma(shape + 1) * U^(1/shape)."""
    boost = shape < 1.0
    d = (shape + 1.0 if boost else shape) - 1.0 / 3.0
    return boost, d, 1.0 / (9.0 * d) ** 0.5


def _standard_gamma_tensor(shape: float, n: int, generator: torch.Generator) -> torch.Tensor:
    device = generator.device
    boost, d, c = _marsaglia_tsang(shape)
    out = torch.empty(n, dtype=torch.float64, device=device)
    todo = torch.arange(n, device=device)
    while todo.numel():
        m = todo.numel()
        x = torch.randn(m, generator=generator, dtype=torch.float64, device=device)
        u = torch.rand(m, generator=generator, dtype=torch.float64, device=device)
        v = (1.0 + c * x) ** 3
        ok = (v > 0) & (torch.log(u.clamp_min(1e-300)) < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-300)))
        out[todo[ok]] = (d * v)[ok]
        todo = todo[~ok]
    if boost:  # Gamma(a) = Gamma(a + 1) * U^(1/a)
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=device)
        out = out * u.clamp_min(1e-300) ** (1.0 / shape)
    return out


def _one_standard_gamma(shape: float, generator: torch.Generator) -> float:
    """One draw of `_standard_gamma_tensor` in Python floats: the same generator draws and the same float64
    operations (torch's `** 3` is `y * y * y`) with a tenth of the tensor ops. One lambda a step is the common
    case, and a task with thousands of tiny steps (GraphMix) paid a millisecond a step for it."""
    boost, d, c = _marsaglia_tsang(shape)
    while True:
        x = torch.randn(1, generator=generator, dtype=torch.float64).item()
        u = torch.rand(1, generator=generator, dtype=torch.float64).item()
        y = 1.0 + c * x
        v = y * y * y
        if v > 0 and math.log(max(u, 1e-300)) < 0.5 * x * x + d - d * v + d * math.log(max(v, 1e-300)):
            break
    if boost:
        u = max(torch.rand(1, generator=generator, dtype=torch.float64).item(), 1e-300)
        e = 1.0 / shape
        return d * v * (u * u if e == 2.0 else u * u * u if e == 3.0 else u ** e)   # torch's pow special cases
    return d * v


def sample_lambda(
    alpha: float,
    n: int = 1,
    *,
    generator: torch.Generator,
    fold: bool = False,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """`n` draws of lambda ~ Beta(alpha, alpha) as float32 on `device`; alpha <= 0 gives lambda = 1 (no mixing).

    fold=True returns max(lam, 1 - lam), so the first example of each pair always dominates.
    """
    if alpha <= 0:
        lam = torch.ones(n, dtype=torch.float64)
    else:
        lam = _beta(alpha, alpha, n, generator)
        if fold:
            lam = torch.maximum(lam, 1.0 - lam)
    return lam.to(device=device or generator.device, dtype=torch.float32)


def sample_beta(a: float, b: float, n: int = 1, *, generator: torch.Generator,
                device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`n` draws of Beta(a, b) (a, b > 0) on `device` (default: the generator's), e.g. Noisy Feature Mixup's
    Beta(2, 5) levels; dtype=torch.float64 keeps the draws' full precision (timm's numpy arithmetic)."""
    if a <= 0 or b <= 0:
        raise ValueError(f"Beta(a, b) needs a > 0 and b > 0, got a={a}, b={b}")
    return _beta(a, b, n, generator).to(device=device or generator.device, dtype=dtype)


def _beta(a: float, b: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """float64 draws of Beta(a, b) from two standard-gamma draws."""
    g1 = _standard_gamma(a, n, generator)
    g2 = _standard_gamma(b, n, generator)
    return g1 / (g1 + g2)


def sample_permutation(
    batch_size: int,
    *,
    generator: torch.Generator,
    rows: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A pairing: index `perm` so that row i is mixed with row perm[i].

    With `rows` (a 1-D index tensor), only those rows are shuffled among themselves; every other row is
    paired with itself (GraphMix mixes only the selected nodes).
    """
    if rows is None:
        perm = torch.randperm(batch_size, generator=generator, device=generator.device)
    else:
        rows = rows.to(generator.device).long()
        perm = pair_within(batch_size, rows, torch.randperm(rows.numel(), generator=generator, device=generator.device))
    return perm.to(device or generator.device)


def pair_within(batch_size: int, rows: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """The pairing in which row rows[i] is mixed with row rows[order[i]] and every other row with itself.

    A row listed twice keeps the partner of its last listing, as an in-place `h[rows] = ...` write would.
    """
    perm = torch.arange(batch_size, device=rows.device)
    perm[rows] = rows[order.to(rows.device)]
    return perm
