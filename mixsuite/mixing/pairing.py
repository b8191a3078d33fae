"""How a mixer pairs rows: a random permutation (the papers' mixup), or C-Mixup's label kernel.

C-Mixup (Yao et al., NeurIPS 2022) draws the partner j of row i with probability

    P(j | i) = exp(-d(y_i, y_j)^2 / (2 sigma^2)) / sum_k exp(-d(y_i, y_k)^2 / (2 sigma^2))

d Euclidean over the label vector, sigma the bandwidth. Its code (`get_mixup_sample_rate`, a Gaussian KDE fitted
on y_i and scored at every y_j) keeps j = i among the candidates, so a row may be paired with itself (that step
leaves it unmixed); `kernel_partners` does the same by default (`exclude_self=True` leaves it out). Rows draw
independently, so two rows may share a partner: the pairing is not a permutation. As sigma grows the kernel
flattens and the draw becomes uniform over the candidates (with replacement).

Every draw comes from the mixer's seeded generator (one uniform per row, inverse-CDF sampling).

    mixer = build_mixer("input", model, alpha=2.0, pairing=KernelPairing(1.75), generator=g)
    with mixer.step(len(x), labels=y) as plan:     # partners drawn by label distance within the batch
        out = model(x)
"""
from __future__ import annotations

import torch

from .sampling import sample_permutation

PAIRINGS = ("permutation", "cmixup")


def _as_rows(y: torch.Tensor) -> torch.Tensor:
    """Labels as (N, D) float64: a (N,) vector is N one-dimensional labels."""
    y = torch.as_tensor(y)
    return (y.reshape(len(y), -1) if y.dim() != 1 else y.view(-1, 1)).double()


def kernel_weights(y_rows: torch.Tensor, y_pool: torch.Tensor, bandwidth: float,
                   exclude_self: bool = False) -> torch.Tensor:
    """(N, M) matrix of P(j | i): row i of `y_rows` against every label of `y_pool`, each row summing to 1.

    Computed as a softmax of -d^2 / (2 sigma^2), so a row whose candidates are all far away still normalises.
    exclude_self=True (only when `y_rows` is `y_pool`) gives j = i probability 0.
    """
    if not bandwidth > 0:
        raise ValueError(f"the C-Mixup bandwidth must be > 0, got {bandwidth}")
    logits = -torch.cdist(_as_rows(y_rows), _as_rows(y_pool)) ** 2 / (2.0 * bandwidth ** 2)
    if exclude_self:
        if logits.shape[0] != logits.shape[1] or logits.shape[0] < 2:
            raise ValueError("exclude_self needs the rows to be the pool itself, with at least two rows")
        logits.fill_diagonal_(float("-inf"))
    return torch.softmax(logits, dim=1)


def kernel_partners(y_rows: torch.Tensor, y_pool: torch.Tensor, bandwidth: float, *, generator: torch.Generator,
                    exclude_self: bool = False) -> torch.Tensor:
    """For each row i of `y_rows` an index j into `y_pool`, drawn with P(j | i) of `kernel_weights`.

    exclude_self=True (only when `y_rows` is `y_pool`) forbids j = i; C-Mixup's code allows it.
    """
    return draw_rows(kernel_weights(y_rows, y_pool, bandwidth, exclude_self).cumsum(1), generator=generator)


def draw_rows(cdf: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """One index per row of `cdf` (N, M), the running sums of each row's probabilities: j with
    cdf[j - 1] <= u * cdf[-1] < cdf[j], u ~ U(0, 1), one uniform draw per row (inverse-CDF sampling).

    A task that draws partners from a fixed pool every step can keep `kernel_weights(pool, pool).cumsum(1)` and
    pass the batch's rows of it: the same law as `kernel_partners` without recomputing the kernel."""
    cdf = cdf.to(generator.device)
    u = torch.rand(len(cdf), 1, generator=generator, device=generator.device, dtype=cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).view(-1).clamp_max(cdf.shape[1] - 1)


class PermutationPairing:
    """Row i mixes with row perm[i] of a uniform random permutation (within `rows` when given)."""

    name = "permutation"
    needs_labels = False

    def __call__(self, batch_size: int, *, generator: torch.Generator, rows=None, device=None, labels=None):
        return sample_permutation(batch_size, generator=generator, rows=rows, device=device)

    def __repr__(self) -> str:
        return "PermutationPairing()"


class KernelPairing:
    """C-Mixup's pairing within the batch: row i mixes with row j drawn by its label distance (module docstring).

    With `rows`, only those rows draw partners, among `rows`; every other row is paired with itself.
    """

    name = "cmixup"
    needs_labels = True

    def __init__(self, bandwidth: float, exclude_self: bool = False):
        if not bandwidth > 0:
            raise ValueError(f"the C-Mixup bandwidth must be > 0, got {bandwidth}")
        self.bandwidth, self.exclude_self = float(bandwidth), exclude_self

    def __call__(self, batch_size: int, *, generator: torch.Generator, rows=None, device=None, labels=None):
        if labels is None:
            raise ValueError("C-Mixup pairing draws partners by label distance: pass the batch's labels, "
                             "mixer.step(batch_size, labels=y)")
        if len(labels) != batch_size:
            raise ValueError(f"C-Mixup pairing got {len(labels)} labels for a batch of {batch_size} rows")
        labels = labels.detach().cpu()
        if rows is None:
            perm = kernel_partners(labels, labels, self.bandwidth, generator=generator, exclude_self=self.exclude_self)
        else:
            rows = rows.to(generator.device).long()
            local = kernel_partners(labels[rows.cpu()], labels[rows.cpu()], self.bandwidth, generator=generator,
                                    exclude_self=self.exclude_self)
            perm = torch.arange(batch_size, device=generator.device)
            perm[rows] = rows[local.to(rows.device)]
        return perm.to(device or generator.device)

    def __repr__(self) -> str:
        return f"KernelPairing(bandwidth={self.bandwidth}, exclude_self={self.exclude_self})"


def build_pairing(name: str, bandwidth: float | None = None):
    """The pairing a config names: 'permutation', or 'cmixup' with its bandwidth."""
    if name == "permutation":
        return PermutationPairing()
    if name == "cmixup":
        if bandwidth is None:
            raise ValueError("pairing 'cmixup' needs cmixup_bandwidth (sigma of the label kernel)")
        return KernelPairing(bandwidth)
    raise ValueError(f"pairing must be one of {list(PAIRINGS)}, got {name!r}")
