"""GraphMix(GAT)'s k stochastic target passes as one pass over k disjoint copies of the graph, on the random stream
of k separate passes.

A pass draws four dropout noises, in this order: the input features' non-zeros, the first layer's attention
coefficients, the hidden layer, the second layer's attention coefficients. Here each pass's four are drawn first,
pass after pass, as `F.dropout` draws them on CPU (`empty_like(x).bernoulli_(1 - p).div_(1 - p)`, then
`x * noise`), and applied to its copy: the copies' outputs are the separate passes' (up to the order of float
sums inside a product over a taller matrix) and the generator ends where k passes leave it. (On CUDA `F.dropout`
draws through a fused kernel: there the batched passes have the same law, not the same draws.)

GATConv adds the self loops after removing any there are, so over k copies its edges are every copy's non-loop
edges, then every node's loop: each pass's attention noise is split along that layout.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F


def dropout_noise(like: torch.Tensor, p: float, shape=None) -> torch.Tensor | None:
    """The noise `F.dropout(x, p, True)` multiplies an `x` like `like` (of `shape`) by, from the same draws; None
    for p = 0 (no draw, x unchanged)."""
    shape = like.shape if shape is None else shape
    if p == 0:
        return None
    if p == 1:
        return like.new_zeros(())
    return like.new_empty(shape).bernoulli_(1 - p).div_(1 - p)


def apply(x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    return x if noise is None else x * noise


@contextmanager
def attention_noise(conv, noise: torch.Tensor | None):
    """Within the block `conv` (a GATConv) drops its attention coefficients with `noise`, drawn before, instead of
    drawing its own (its dropout off, the noise applied to the coefficients its messages read)."""
    if noise is None:
        yield
        return

    def drop(module, inputs):
        (kwargs,) = inputs
        return ({**kwargs, "alpha": kwargs["alpha"] * noise},)

    p, conv.dropout = conv.dropout, 0.0
    handle = conv.register_message_forward_pre_hook(drop)
    try:
        yield
    finally:
        conv.dropout = p
        handle.remove()


def copies(edge_index: torch.Tensor, num_nodes: int, k: int) -> torch.Tensor:
    """The edges of k disjoint copies of the graph: copy p's nodes are p * num_nodes + i."""
    shift = torch.arange(k, device=edge_index.device).repeat_interleave(edge_index.shape[1]) * num_nodes
    return edge_index.repeat(1, k) + shift


def split_by_layout(noises: list[torch.Tensor | None], edges: int) -> torch.Tensor | None:
    """The passes' attention noises (each `edges` non-loop rows, then one per node) laid out as GATConv orders the
    edges of their copies: every copy's edges, then every copy's loops."""
    if noises[0] is None or noises[0].dim() == 0:
        return noises[0]
    return torch.cat([n[:edges] for n in noises] + [n[edges:] for n in noises])


def batched_passes(model, x: torch.Tensor, edge_index: torch.Tensor, k: int) -> torch.Tensor:
    """`torch.cat([model(x, edge_index) for _ in range(k)])` of a SharedGAT in train mode, in one pass over k
    copies; x is the sparse COO features (or dense ones)."""
    n = x.shape[0]
    edges = int((edge_index[0] != edge_index[1]).sum())
    loops = edges + n
    conv1, conv2 = model.conv1, model.conv2
    values = x.coalesce().values() if x.is_sparse else x
    drawn = [(dropout_noise(values, model.input_dropout),
              dropout_noise(values, conv1.dropout, (loops, conv1.heads)),
              dropout_noise(values, model.dropout, (n, conv1.heads * conv1.out_channels)),
              dropout_noise(values, conv2.dropout, (loops, conv2.heads))) for _ in range(k)]
    inputs, att1, hidden, att2 = zip(*drawn)
    if x.is_sparse:
        x = x.coalesce()
        rows, cols = x.indices()
        shift = torch.arange(k, device=x.device).repeat_interleave(values.numel()) * n
        kept = torch.cat([apply(values, noise) for noise in inputs])
        xk = torch.sparse_coo_tensor(torch.stack([rows.repeat(k) + shift, cols.repeat(k)]), kept, (k * n, x.shape[1]),
                                     is_coalesced=True)
    else:
        xk = torch.cat([apply(x, noise) for noise in inputs])
    ek = copies(edge_index, n, k)
    with attention_noise(conv1, split_by_layout(list(att1), edges)):
        h = F.elu(conv1(xk, ek))
    h = apply(h, None if hidden[0] is None else torch.cat(hidden) if hidden[0].dim() else hidden[0])
    with attention_noise(conv2, split_by_layout(list(att2), edges)):
        return conv2(h, ek)
