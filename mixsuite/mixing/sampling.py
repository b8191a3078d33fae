"""Random draws of the mixing core: lambda ~ Beta(alpha, alpha), other Beta draws, and the pairing permutation.

Everything is drawn from an explicit `torch.Generator`, so a seed fixes the plan. Beta is sampled as
G1 / (G1 + G2) with Gamma(alpha) draws (Marsaglia-Tsang), because torch.distributions takes no generator.
At the extremes the same draws are read in a form that does not overflow or cancel (large shapes: the acceptance
test as a series, G1 / (G1 + G2) from the logs where the sum overflows or both draws underflow), so every finite
alpha > 0 gives its Beta law to float64 precision; ordinary alphas keep the plain arithmetic and their stream.
"""
from __future__ import annotations

import math

import torch


DEVICE_GAMMA_MIN = 0.01   # below this shape two Gamma draws may both underflow in float64: the loop's log form
LARGE_SHAPE = 1e4   # from here the acceptance test is read as a series: d - d*v + d*log(v) cancels to d * ulp(1)
#                     (an error of O(1) at alpha ~ 1e16 that can reject every draw), and 9*d overflows near 2e307


def _marsaglia_tsang(shape: float) -> tuple[bool, float, float]:
    """(boost, d, c): Gamma(shape) for shape < 1 is drawn as Gamma(shape + 1) * U^(1/shape)."""
    boost = shape < 1.0
    d = (shape + 1.0 if boost else shape) - 1.0 / 3.0
    if d >= LARGE_SHAPE:
        return boost, d, 1.0 / (3.0 * math.sqrt(d))
    return boost, d, 1.0 / (9.0 * d) ** 0.5


def _log_ratio_large(d: float, y):
    """The log acceptance ratio 0.5x^2 + d - d*v + d*log(v) of Marsaglia-Tsang, v = (1 + y)^3, y = c*x, c^2 = 1/(9d),
    without cancellation: it equals 3d * (log1p(y) - y + y^2/2 - y^3/3), a series from y^4 on for small y."""
    if isinstance(y, torch.Tensor):
        series = sum((-1) ** (k + 1) * y ** k / k for k in range(4, 13))
        direct = torch.log1p(y) - y + y * y / 2 - y ** 3 / 3
        return d * (3.0 * torch.where(y.abs() < 0.01, series, direct))   # 3.0 * d overflows near 6e307
    if abs(y) < 0.01:
        return d * (3.0 * sum((-1) ** (k + 1) * y ** k / k for k in range(4, 13)))
    return d * (3.0 * (math.log1p(y) - y + y * y / 2 - y ** 3 / 3))


def _standard_gamma_tensor(shape: float, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    device = generator.device
    boost, d, c = _marsaglia_tsang(shape)
    out = torch.empty(n, dtype=torch.float64, device=device)
    todo = torch.arange(n, device=device)
    while todo.numel():
        m = todo.numel()
        x = torch.randn(m, generator=generator, dtype=torch.float64, device=device)
        u = torch.rand(m, generator=generator, dtype=torch.float64, device=device)
        v = (1.0 + c * x) ** 3
        log_u = torch.log(u.clamp_min(1e-300))
        if d >= LARGE_SHAPE:
            ok = (c * x > -1) & (log_u < _log_ratio_large(d, c * x))
        else:
            ok = (v > 0) & (log_u < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-300)))
        out[todo[ok]] = (d * v)[ok]
        todo = todo[~ok]
    log_out = torch.log(out)
    if boost:  # Gamma(a) = Gamma(a + 1) * U^(1/a)
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=device)
        log_out = log_out + torch.log(u.clamp_min(1e-300)) / shape
        out = out * u.clamp_min(1e-300) ** (1.0 / shape)
    return out, log_out


def _one_standard_gamma(shape: float, generator: torch.Generator) -> tuple[float, float]:
    """One draw of `_standard_gamma_tensor` (and its log) in Python floats: the same generator draws and the same
    float64 operations (torch's `** 3` is `y * y * y`) with a tenth of the tensor ops. One lambda a step is the
    common case, and a task with thousands of tiny steps (GraphMix) paid a millisecond a step for it."""
    boost, d, c = _marsaglia_tsang(shape)
    while True:
        x = torch.randn(1, generator=generator, dtype=torch.float64).item()
        u = torch.rand(1, generator=generator, dtype=torch.float64).item()
        y = 1.0 + c * x
        v = y * y * y
        if d >= LARGE_SHAPE:
            if c * x > -1 and math.log(max(u, 1e-300)) < _log_ratio_large(d, c * x):
                break
        elif v > 0 and math.log(max(u, 1e-300)) < 0.5 * x * x + d - d * v + d * math.log(max(v, 1e-300)):
            break
    if boost:
        u = max(torch.rand(1, generator=generator, dtype=torch.float64).item(), 1e-300)
        e = 1.0 / shape
        value = d * v * (u * u if e == 2.0 else u * u * u if e == 3.0 else u ** e)   # torch's pow special cases
        return value, math.log(d * v) + math.log(u) / shape
    return d * v, math.log(d * v)


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
    if not math.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number, got {alpha!r}")
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
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"Beta(a, b) needs finite a > 0 and b > 0, got a={a}, b={b}")
    return _beta(a, b, n, generator).to(device=device or generator.device, dtype=dtype)


def _beta(a: float, b: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """float64 draws of Beta(a, b) from two standard-gamma draws. Where G1 + G2 overflows (a huge shape) or both
    underflow to 0 (a tiny one), the ratio is read from their logs instead: 1 / (1 + exp(log G2 - log G1))."""
    for shape in (a, b):
        if not (math.isfinite(shape) and shape > 0 and math.isfinite(1.0 / shape)):
            raise ValueError(f"a Beta shape must be finite and > 0 (and 1/shape finite), got {shape!r}")
    if n == 1 and generator.device.type == "cpu":   # Python floats: the same float64 arithmetic, fewer tensor ops
        (g1, log_g1), (g2, log_g2) = _one_standard_gamma(a, generator), _one_standard_gamma(b, generator)
        total = g1 + g2
        if math.isfinite(total) and total > 0:
            return torch.tensor([g1 / total], dtype=torch.float64)
        t = log_g1 - log_g2
        return torch.tensor([1.0 / (1.0 + math.exp(-t)) if t >= 0 else math.exp(t) / (1.0 + math.exp(t))],
                            dtype=torch.float64)
    if generator.device.type == "cuda" and min(a, b) >= DEVICE_GAMMA_MIN:
        return beta_by_standard_gamma(a, b, n, generator)
    (g1, log_g1), (g2, log_g2) = _standard_gamma_tensor(a, n, generator), _standard_gamma_tensor(b, n, generator)
    total = g1 + g2
    plain = torch.isfinite(total) & (total > 0)
    return torch.where(plain, g1 / total, torch.sigmoid(log_g1 - log_g2))


def beta_by_standard_gamma(a: float, b: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """float64 draws of Beta(a, b) by torch's own Gamma sampler on the generator's device: one kernel, no loop that
    reads back which draws were accepted (the host waits on nothing, a CUDA graph can capture it). Used for draws
    on a CUDA generator; a CPU generator keeps the Marsaglia-Tsang stream above (the records' numbers)."""
    shapes = torch.tensor([a, b], dtype=torch.float64, device=generator.device).expand(n, 2).contiguous()
    g = torch._standard_gamma(shapes, generator=generator)
    return g[:, 0] / g.sum(1)


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
