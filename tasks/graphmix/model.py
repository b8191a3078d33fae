"""GCN and GAT whose weights also define an FCN: the same linear maps without propagation over the graph.

GraphMix trains the FCN with manifold mixup and the GNN on the labels; because the parameters are shared,
the FCN's mixup regularises the GNN.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import pyg  # noqa: F401  (before torch_geometric: its import-time warning silenced)
from torch_geometric.nn import GATConv, GCNConv  # noqa: E402

from .gat_passes import batched_passes
from .sparse import Propagation, SparseFeatures


def sparse_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout on the non-zeros of a sparse COO matrix (a dense dropout on 2708x1433 costs 50x more)."""
    if not training or p == 0:
        return x
    return torch.sparse_coo_tensor(x.indices(), F.dropout(x.values(), p, True), x.shape, is_coalesced=True,
                                   check_invariants=False)


def input_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    return sparse_dropout(x, p, training) if x.is_sparse else F.dropout(x, p, training)


class SharedGCN(nn.Module):
    """Two GCNConv layers (no bias, as the paper's code). `forward` propagates; `fcn` does not."""

    def __init__(self, in_dim: int, hidden: int, classes: int, input_dropout: float = 0.5, dropout: float = 0.0):
        super().__init__()
        self.conv1 = GCNConv(in_dim, hidden, bias=False, normalize=False)
        self.conv2 = GCNConv(hidden, classes, bias=False, normalize=False)
        self.input_dropout, self.dropout = input_dropout, dropout
        for conv in (self.conv1, self.conv2):  # uniform(+-1/sqrt(out)), as the paper's layers
            bound = 1.0 / conv.out_channels ** 0.5
            nn.init.uniform_(conv.lin.weight, -bound, bound)

    def forward(self, x, adj, passes: int = 1):
        """Logits of `passes` stochastic passes (each its own dropout masks), stacked: (passes * nodes, classes).

        `x` a SparseFeatures and `adj` a Propagation take the fast path (all passes in one product); tensors go
        through the GCNConv layers, one pass at a time."""
        if isinstance(x, SparseFeatures) and not (passes > 1 and self.training and self.dropout > 0):
            adj = adj if isinstance(adj, Propagation) else Propagation(adj)
            h = F.relu(adj(x.linear(self.conv1.lin.weight, self._input_p(), passes), passes))
            return adj(self.conv2.lin(F.dropout(h, self.dropout, self.training)), passes)
        if passes > 1:  # one pass at a time (with hidden dropout: its draws in pass order, as separate calls)
            return torch.cat([self(x, adj) for _ in range(passes)])
        h = F.relu(self.conv1(input_dropout(x, self.input_dropout, self.training), adj))
        return self.conv2(F.dropout(h, self.dropout, self.training), adj)

    @torch.no_grad()
    def predict(self, x, adj):
        """The logits `forward` gives in eval mode (no dropout), in either mode: an evaluation every epoch without
        the two mode switches, each a walk over every submodule."""
        if isinstance(x, SparseFeatures):
            adj = adj if isinstance(adj, Propagation) else Propagation(adj)
            return adj(self.conv2.lin(F.relu(adj(x.linear(self.conv1.lin.weight)))))
        return self.conv2(F.relu(self.conv1(x, adj)), adj)

    def fcn(self, x, plan=None, rows=None):
        """The parameter-shared FCN; `plan` mixes the hidden layer (after ReLU, before dropout). With `rows`,
        the logits of those rows only (for SparseFeatures, the first layer runs over the rows the mix reads)."""
        if isinstance(x, SparseFeatures) and rows is not None:
            needed = torch.unique(rows if plan is None else torch.cat([rows, plan.perm.to(rows.device)[rows]]))
            h_needed = F.relu(x.linear(self.conv1.lin.weight, self._input_p(), rows=needed))
            h = h_needed.new_zeros(x.shape[0], h_needed.shape[1]).index_copy(0, needed, h_needed)
        elif isinstance(x, SparseFeatures):
            h = F.relu(x.linear(self.conv1.lin.weight, self._input_p()))
        else:
            h = F.relu(self.conv1.lin(input_dropout(x, self.input_dropout, self.training)))
        if plan is not None:
            h = plan.mix(h)
        h = F.dropout(h, self.dropout, self.training)  # over every row, so the draws do not depend on `rows`
        return self.conv2.lin(h if rows is None else h[rows])

    def _input_p(self) -> float:
        return self.input_dropout if self.training else 0.0


class SharedGAT(nn.Module):
    """GAT (8 heads x 8 units, then 1 head), as Velickovic et al.; its FCN uses the layers' linear maps + biases.

    `dropout` is the hidden dropout; `attention_dropout` (None: the same value, as GAT's paper) drops attention
    coefficients, so only the GAT passes see it, never the FCN.
    """

    def __init__(self, in_dim: int, hidden: int, classes: int, input_dropout: float = 0.6, dropout: float = 0.6,
                 heads: int = 8, attention_dropout: float | None = None):
        super().__init__()
        attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.conv1 = GATConv(in_dim, hidden, heads=heads, dropout=attention_dropout)
        self.conv2 = GATConv(hidden * heads, classes, heads=1, dropout=attention_dropout)
        self.input_dropout, self.dropout = input_dropout, dropout

    batch_passes = False   # k passes as one over k copies of the graph (gat_passes.py): the same numbers and draws
    #                        on CPU, but ~1.35x slower there (the copies' edge tensors leave the cache)

    def forward(self, x, edge_index, passes: int = 1):
        """Logits of `passes` stochastic passes, stacked: one at a time, or with `batch_passes` (train mode) one
        pass over as many copies of the graph on the random stream of separate passes."""
        if passes > 1 and self.training and self.batch_passes:
            return batched_passes(self, x, edge_index, passes)
        if passes > 1:
            return torch.cat([self(x, edge_index) for _ in range(passes)])
        h = F.elu(self.conv1(input_dropout(x, self.input_dropout, self.training), edge_index))
        return self.conv2(F.dropout(h, self.dropout, self.training), edge_index)

    def fcn(self, x, plan=None, rows=None):
        h = F.elu(self.conv1.lin(input_dropout(x, self.input_dropout, self.training)) + self.conv1.bias)
        if plan is not None:
            h = plan.mix(h)
        h = F.dropout(h, self.dropout, self.training)
        return self.conv2.lin(h if rows is None else h[rows]) + self.conv2.bias


def build_model(backbone: str, in_dim: int, hidden: int, classes: int, input_dropout: float, dropout: float,
                attention_dropout: float | None = None, batch_passes: bool = False):
    if backbone == "gcn":
        return SharedGCN(in_dim, hidden, classes, input_dropout, dropout)
    if backbone == "gat":
        model = SharedGAT(in_dim, hidden, classes, input_dropout, dropout, attention_dropout=attention_dropout)
        model.batch_passes = batch_passes
        return model
    raise ValueError(f"backbone must be gcn or gat, got {backbone!r}")
