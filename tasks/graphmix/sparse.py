"""Sparse node features with a fixed pattern: dropout on the non-zeros and the product with a weight, fast on CPU.

On CPU, `F.linear` on a sparse COO input is ~10x slower than a CSR product, and autograd through a CSR product is
slower still; so the pattern is kept in CSR together with its transpose, and the weight's gradient is the
transpose's product (`_PatternLinear`). The dropout masks come from the global generator, k passes' masks from one
call: `draws="bits"` (the task's default) takes 7 random bits an element; `draws="float64"` compares
`torch.rand(float64) < 1 - p`, the very draws, and so the very masks, of `F.dropout` (whose CPU Bernoulli compares one
float64 uniform per element) in the order k calls would draw them, ~3x faster than it; those draws are a fifth of a
GraphMix epoch, the bits ~5x cheaper.
Long gathers use `index_select`, ~5x faster on CPU than the advanced indexing of `values[index]`.
"""
from __future__ import annotations

from functools import cached_property

import torch


class Pattern:
    """A CSR sparsity pattern (crow, col) of shape (rows, cols), with its transpose and stacked copies."""

    def __init__(self, crow: torch.Tensor, col: torch.Tensor, shape: tuple[int, int]):
        self.crow, self.col, self.shape = crow, col, shape
        self._stacked: dict[int, Pattern] = {}
        fits = max(shape) < 2**31 and col.numel() < 2**31
        self._indices = (crow.int(), col.int()) if fits else (crow, col)   # int32: MKL's, no copy per product

    @property
    def nnz(self) -> int:
        return self.col.numel()

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(*self._indices, values, self.shape, check_invariants=False)

    @cached_property
    def transpose(self) -> tuple[Pattern, torch.Tensor]:
        """(the transpose's pattern, `order`): the transpose's values are `values[order]`."""
        rows = torch.repeat_interleave(torch.arange(self.shape[0], device=self.col.device), self.crow.diff())
        order = torch.argsort(self.col * self.shape[0] + rows, stable=True)
        counts = torch.bincount(self.col, minlength=self.shape[1])
        crow_t = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        return Pattern(crow_t, rows[order], (self.shape[1], self.shape[0])), order

    def stacked(self, k: int) -> Pattern:
        """k copies one under the other, (k * rows, cols): k value vectors concatenated in one product."""
        if k == 1:
            return self
        if k not in self._stacked:
            offsets = torch.arange(k, device=self.crow.device).repeat_interleave(self.shape[0]) * self.nnz
            crow = torch.cat([self.crow[:1], (self.crow[1:].repeat(k) + offsets)])
            self._stacked[k] = Pattern(crow, self.col.repeat(k), (k * self.shape[0], self.shape[1]))
        return self._stacked[k]

    def block_diagonal(self, k: int) -> Pattern:
        """k copies on the diagonal, (k * rows, k * cols): k dense blocks stacked in one product."""
        if k == 1:
            return self
        key = -k
        if key not in self._stacked:
            stacked = self.stacked(k)
            shift = torch.arange(k, device=self.col.device).repeat_interleave(self.nnz) * self.shape[1]
            self._stacked[key] = Pattern(stacked.crow, stacked.col + shift, (k * self.shape[0], k * self.shape[1]))
        return self._stacked[key]

    def select_rows(self, rows: torch.Tensor) -> tuple[Pattern, torch.Tensor]:
        """The rows `rows` (in that order) as a pattern, and the index of their values among this one's."""
        starts, lengths = self.crow[rows], self.crow[rows + 1] - self.crow[rows]
        crow = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
        within = torch.arange(int(crow[-1]), device=rows.device) - torch.repeat_interleave(crow[:-1], lengths)
        index = torch.repeat_interleave(starts, lengths) + within
        return Pattern(crow, self.col.index_select(0, index), (len(rows), self.shape[1])), index


def spmm(a: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """a @ dense for a CSR `a`: `torch.sparse.mm`'s numbers, without its zero-fill and copy of the result."""
    out = torch.empty(a.shape[0], dense.shape[1], dtype=dense.dtype, device=dense.device)
    return torch.addmm(out, a, dense, beta=0, out=out)


class _PatternLinear(torch.autograd.Function):
    """A(values) @ weight.T with the gradient for `weight` only (the values are data)."""

    @staticmethod
    def forward(ctx, values, weight, pattern):
        ctx.pattern = pattern
        ctx.save_for_backward(values)
        return spmm(pattern.matrix(values), weight.t())

    @staticmethod
    def backward(ctx, grad):
        (values,) = ctx.saved_tensors
        transpose, order = ctx.pattern.transpose
        grad_weight = spmm(transpose.matrix(values.index_select(0, order)), grad).t()
        return None, grad_weight, None


DRAWS = ("float64", "bits")


def keep_masks(shape: tuple[int, int], keep: float, draws: str, device=None, generator=None) -> torch.Tensor:
    """Bernoulli(keep) masks from the global generator (or `generator`, which draws the same from the same state).

    float64: `torch.rand(float64) < keep`, the very draws of `F.dropout` (two 32-bit generator outputs an element).
    bits: when keep is a multiple of 1/128 (0.5, 0.75, ...), the low 7 bits of a random byte an element, 8 bytes
    from each 64-bit draw (10 passes' dropped values ~3x cheaper on CPU than float64's); otherwise
    `torch.rand(float32) < keep` (keep to 2^-24).
    """
    if draws == "float64":
        return torch.rand(shape, dtype=torch.float64, device=device, generator=generator) < keep
    if draws != "bits" or not (keep * 128).is_integer():
        return torch.rand(shape, device=device, generator=generator) < keep
    n = shape[0] * shape[1]
    words = torch.empty(-(-n // 8), dtype=torch.int64, device=device).random_(generator=generator)   # 63 random bits
    return (words.view(torch.uint8)[:n] & 127).view(shape) < int(keep * 128)


class SparseFeatures:
    """A sparse (nodes, features) matrix for `linear(dropout(x), weight)`, one or k passes, all or some rows.
    `draws`: how the dropout masks are drawn (`keep_masks`)."""

    def __init__(self, x: torch.Tensor, draws: str = "float64"):
        if draws not in DRAWS:
            raise ValueError(f"draws must be one of {DRAWS}, got {draws!r}")
        self.draws = draws
        csr = x.coalesce().to_sparse_csr() if x.layout == torch.sparse_coo else x.to_sparse_csr()
        self.pattern = Pattern(csr.crow_indices(), csr.col_indices(), tuple(csr.shape))
        self.values = csr.values()
        self.shape = tuple(csr.shape)
        self._selections: list[tuple[torch.Tensor, tuple[Pattern, torch.Tensor]]] = []

    def _select_rows(self, rows: torch.Tensor) -> tuple[Pattern, torch.Tensor]:
        """`pattern.select_rows(rows)`, remembering the last two row sets: GraphMix's labelled rows recur every
        FCN step, and their pattern keeps its transpose for the backward."""
        for i, (seen, selection) in enumerate(self._selections):
            if seen.shape == rows.shape and torch.equal(seen, rows):
                self._selections.insert(0, self._selections.pop(i))
                return selection
        selection = self.pattern.select_rows(rows)
        self._selections = [(rows.clone(), selection), *self._selections[:1]]
        return selection

    def dropped_values(self, p: float, passes: int = 1, generator=None) -> torch.Tensor:
        """(passes, nnz) values with dropout p on the non-zeros; with draws="float64" the draws and arithmetic of
        `F.dropout`."""
        if p == 0:
            return self.values.expand(passes, -1)
        if p == 1:
            return torch.zeros(passes, self.pattern.nnz, dtype=self.values.dtype, device=self.values.device)
        keep = 1.0 - p
        kept = keep_masks((passes, self.pattern.nnz), keep, self.draws, self.values.device, generator)
        return kept.to(self.values.dtype).mul_(self._scaled(keep))

    def _scaled(self, keep: float) -> torch.Tensor:
        """values * (1 / keep) as F.dropout computes it (its noise: 1 divided by keep in the values' dtype)."""
        if getattr(self, "_scaled_for", None) != keep:
            self._scaled_for = keep
            self._scaled_values = self.values * torch.ones((), dtype=self.values.dtype).div_(keep)
        return self._scaled_values

    def linear(self, weight: torch.Tensor, p: float = 0.0, passes: int = 1,
               rows: torch.Tensor | None = None) -> torch.Tensor:
        """dropout(x, p) @ weight.T for `passes` independent masks, stacked: (passes * nodes, out); with `rows`
        (one pass), only those rows (the masks still drawn over every non-zero, so the draws stay the same)."""
        values = self.dropped_values(p, passes)
        if rows is not None:
            if passes != 1:
                raise ValueError("rows= takes one pass")
            pattern, index = self._select_rows(rows)
            return _PatternLinear.apply(values[0].index_select(0, index), weight, pattern)
        return _PatternLinear.apply(values.reshape(-1), weight, self.pattern.stacked(passes))


class _Propagate(torch.autograd.Function):
    """adj @ h with the gradient adj.T @ grad from a transpose built once (torch transposes the CSR every call)."""

    @staticmethod
    def forward(ctx, h, adj, adj_t):
        ctx.adj_t = adj_t
        return spmm(adj, h)

    @staticmethod
    def backward(ctx, grad):
        return spmm(ctx.adj_t, grad), None, None


class Propagation:
    """The normalised adjacency (CSR), applied to one or k stacked (nodes, channels) blocks."""

    def __init__(self, adj: torch.Tensor):
        self.adj = adj if adj.layout == torch.sparse_csr else adj.to_sparse_csr()
        self.pattern = Pattern(self.adj.crow_indices(), self.adj.col_indices(), tuple(self.adj.shape))
        transpose, order = self.pattern.transpose
        self.adj_t = transpose.matrix(self.adj.values()[order])
        self._blocks: dict[int, torch.Tensor] = {}

    def __call__(self, h: torch.Tensor, passes: int = 1) -> torch.Tensor:
        if passes == 1:
            return _Propagate.apply(h, self.adj, self.adj_t) if h.requires_grad else spmm(self.adj, h)
        if passes not in self._blocks:
            self._blocks[passes] = self.pattern.block_diagonal(passes).matrix(self.adj.values().repeat(passes))
        return spmm(self._blocks[passes], h)
