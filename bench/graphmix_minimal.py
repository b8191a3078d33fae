"""A minimal GraphMix(GCN) in one file of plain torch: the yardstick for `mixsuite run tasks/graphmix`'s speed.

No engine, no records, no checkpoints: the raw Planetoid files read with pickle (Kipf's loader), then the protocol
of `mixsuite run tasks/graphmix dataset=cora method=graphmix`: a two-layer GCN without bias (uniform +-1/sqrt(out)
init), Adam (lr 0.01, weight decay 5e-4), input dropout 0.5 on the non-zero features, 2000 epochs, each a fair coin
between the FCN mixup step (targets of the unlabelled nodes the mean of K = 10 dropout GCN predictions, sharpened
at T = 0.1; manifold mixup of the FCN's hidden layer among the labelled nodes and among as many unlabelled ones
drawn with replacement; BCE on softmax; the unsupervised loss weighted gamma * exp(-5 (1 - t)^2), t ramping from
epoch 500 to 1000) and the plain GCN step; validation and test accuracy every epoch, the test accuracy at the best
validation epoch (ties to the later one) reported. Its random stream is its own, so a seed gives other numbers than
mixsuite's; over seeds the accuracy agrees.

    MIXSUITE_DATA=... python bench/graphmix_minimal.py --seed 1 [--epochs 2000] [--dataset cora]

Prints one JSON line: {"best_test_acc", "best_epoch", "seconds", ...} (`seconds`: data on the device to the result).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

NAMES = {"cora": "Cora", "citeseer": "CiteSeer"}


def load(root: Path, dataset: str):
    """(features CSR row-normalised, D^-1/2 (A+I) D^-1/2 CSR, labels, train, val, test) of the public split."""
    import scipy.sparse as sp

    raw = root / "planetoid" / NAMES[dataset] / "raw"
    if not raw.is_dir():
        raw = root / NAMES[dataset] / "raw"
    parts = {}
    for s in ("x", "y", "tx", "ty", "allx", "ally", "graph"):
        with open(raw / f"ind.{dataset}.{s}", "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parts[s] = pickle.load(f, encoding="latin1")
    test_idx = np.array([int(v) for v in (raw / f"ind.{dataset}.test.index").read_text().split()])
    order, lo, hi = np.sort(test_idx), test_idx.min(), test_idx.max()
    tx, ty = parts["tx"], parts["ty"]
    if dataset == "citeseer":   # isolated test nodes: zero rows for the missing indices
        tx_full = sp.lil_matrix((hi - lo + 1, tx.shape[1]))
        tx_full[order - lo, :] = tx
        ty_full = np.zeros((hi - lo + 1, ty.shape[1]))
        ty_full[order - lo, :] = ty
        tx, ty = tx_full, ty_full
    x = sp.vstack((parts["allx"], tx)).tolil()
    y = np.vstack((parts["ally"], ty))
    x[test_idx, :], y[test_idx, :] = x[order, :], y[order, :]
    x = sp.csr_matrix(x, dtype=np.float32)
    x = sp.diags(1.0 / np.maximum(np.asarray(x.sum(1)).ravel(), 1e-30)) @ x
    n = x.shape[0]
    edges = [(i, j) for i, js in parts["graph"].items() for j in js if i != j and j < n]
    a = sp.coo_matrix((np.ones(len(edges)), np.array(edges).T), shape=(n, n))
    a = ((a + a.T) > 0).astype(np.float64) + sp.eye(n)
    d = 1.0 / np.sqrt(np.asarray(a.sum(1)).ravel())
    adj = (sp.diags(d) @ a @ sp.diags(d)).astype(np.float32).tocsr()
    labels = torch.from_numpy(y.argmax(1))
    n_train = parts["y"].shape[0]
    return (csr(x), csr(adj), labels, torch.arange(n_train), torch.arange(n_train, n_train + 500),
            torch.from_numpy(order))


def csr(m) -> torch.Tensor:
    m = m.tocsr()
    m.sort_indices()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr).int(), torch.from_numpy(m.indices).int(),
                                       torch.from_numpy(m.data.astype(np.float32)), m.shape)


def node_major_copies(m: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(crow, col, index) of a (rows * k, cols) CSR whose row i * k + p is row i of m (values m.values()[index]):
    k dropout masks in one product, whose (rows * k, out) result reads as (rows, k * out) without a copy."""
    crow, col = m.crow_indices().long(), m.col_indices()
    lengths = crow.diff().repeat_interleave(k)
    starts = crow[:-1].repeat_interleave(k)
    new_crow = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
    index = torch.repeat_interleave(starts - new_crow[:-1], lengths) + torch.arange(int(new_crow[-1]))
    return new_crow.int(), col[index], index


def random_bytes(n: int) -> torch.Tensor:
    """n uniform bytes, eight from each 64-bit draw (a float32 uniform per element costs ~4x more on CPU)."""
    return torch.empty(-(-n // 8), dtype=torch.int64).random_().view(torch.uint8)[:n]


def class_softmax(logits: torch.Tensor) -> torch.Tensor:
    """softmax over the last dim (Cora's 7 classes) computed along the leading one: ~8x faster on CPU."""
    return torch.softmax(logits.movedim(-1, 0).contiguous(), dim=0).movedim(0, -1)


class MatmulT(torch.autograd.Function):
    """A @ w.T for a sparse CSR A of data, with w's gradient from A's transpose (kept) instead of a re-transpose."""

    @staticmethod
    def forward(ctx, a, a_t, w):
        ctx.a_t = a_t
        return a @ w.t()

    @staticmethod
    def backward(ctx, grad):
        return None, None, (ctx.a_t @ grad).t()


class Propagate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, adj, h):
        ctx.adj = adj   # symmetric: its own transpose
        return adj @ h

    @staticmethod
    def backward(ctx, grad):
        return None, ctx.adj @ grad


def train(data, seed: int, epochs: int = 2000, k: int = 10) -> dict:
    """One GraphMix(GCN) seed on `data` (from `load`): the test accuracy at the best validation epoch."""
    x, adj, y, train_idx, val, test = data
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    n, f, c, hidden, keep, temperature, gamma = x.shape[0], x.shape[1], int(y.max()) + 1, 16, 0.5, 0.1, 10.0
    crow, col, values = x.crow_indices(), x.col_indices(), x.values()
    rows_of = torch.repeat_interleave(torch.arange(n), crow.diff().long())
    order = torch.argsort(col.long() * n + rows_of, stable=True)   # the transpose's values: values[order]
    t_crow = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(col.long(), minlength=f).cumsum(0)]).int()
    t_col = rows_of[order].int()
    k_crow, k_col, k_index = node_major_copies(x, k)
    k_values = values[k_index]

    def kept(values: torch.Tensor) -> torch.Tensor:
        return values * (random_bytes(values.numel()) < int(256 * keep)).float().div_(keep)

    def dropped_x():
        """dropout(x) and its transpose."""
        v = kept(values)
        return torch.sparse_csr_tensor(crow, col, v, (n, f)), torch.sparse_csr_tensor(t_crow, t_col, v[order], (f, n))

    w1 = torch.empty(hidden, f).uniform_(-hidden ** -0.5, hidden ** -0.5).requires_grad_()
    w2 = torch.empty(c, hidden).uniform_(-c ** -0.5, c ** -0.5).requires_grad_()
    opt = torch.optim.Adam([w1, w2], lr=0.01, weight_decay=5e-4)
    all_x = (x, torch.sparse_csr_tensor(t_crow, t_col, values[order], (f, n)))
    unlabelled = torch.ones(n, dtype=torch.bool)
    unlabelled[train_idx] = False
    unlabelled = unlabelled.nonzero().squeeze(1)
    train_targets = F.one_hot(y[train_idx], c).float()
    coins = rng.integers(2, size=epochs)
    val_acc, test_acc = torch.empty(epochs), torch.empty(epochs)

    def gcn(xs):
        h = F.relu(Propagate.apply(adj, MatmulT.apply(*xs, w1)))
        return Propagate.apply(adj, h @ w2.t())

    def fcn_mixed(rows, targets):
        lam = float(rng.beta(1.0, 1.0))
        partner = rows[torch.from_numpy(rng.permutation(len(rows)))]
        h = F.relu(MatmulT.apply(*dropped_x(), w1))
        mixed = lam * h[rows] + (1 - lam) * h[partner]
        probs = F.softmax(mixed @ w2.t(), dim=-1).clamp(1e-7, 1 - 1e-7)
        return F.binary_cross_entropy(probs, lam * targets[rows] + (1 - lam) * targets[partner])

    for epoch in range(1, epochs + 1):
        if coins[epoch - 1] == 0:   # the FCN mixup step
            with torch.no_grad():   # K dropout passes at once: row i * k + p is node i's pass p
                xk = torch.sparse_csr_tensor(k_crow, k_col, kept(k_values), (n * k, f))
                h = F.relu(adj @ (xk @ w1.t()).view(n, k * hidden))
                logits = (adj @ (h.view(n, k, hidden) @ w2.t()).view(n, k * c)).view(n, k, c)
                sharp = class_softmax(logits).mean(1).pow(1 / temperature)
                targets = sharp / sharp.sum(1, keepdim=True)
                targets[train_idx] = train_targets
            picked = unlabelled[torch.from_numpy(rng.integers(len(unlabelled), size=len(train_idx)))]
            ramp = min(max((epoch - 500) / 500, 0.0), 1.0)
            loss = fcn_mixed(train_idx, targets) + gamma * math.exp(-5 * (1 - ramp) ** 2) * fcn_mixed(picked, targets)
        else:   # the GCN step
            loss = F.cross_entropy(gcn(dropped_x())[train_idx], y[train_idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            pred = gcn(all_x).argmax(1)
            val_acc[epoch - 1] = (pred[val] == y[val]).float().mean()
            test_acc[epoch - 1] = (pred[test] == y[test]).float().mean()
    best = epochs - 1 - int(torch.flip(val_acc, (0,)).argmax())   # ties: the later epoch
    return {"seed": seed, "epochs": epochs, "best_test_acc": round(float(test_acc[best]), 4),
            "best_val_acc": round(float(val_acc[best]), 4), "best_epoch": best + 1,
            "seconds": round(time.perf_counter() - t0, 3), "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="cora", choices=sorted(NAMES))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=2000)
    p.add_argument("--k", type=int, default=10)
    args = p.parse_args()
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*")   # "CSR support is in beta", invariant checks off
    data = load(Path(os.environ.get("MIXSUITE_DATA", "data")), args.dataset)
    print(json.dumps({"dataset": args.dataset, **train(data, args.seed, args.epochs, args.k)}))


if __name__ == "__main__":
    sys.exit(main())
