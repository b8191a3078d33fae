"""bench/graphmix_minimal.py, the yardstick of GraphMix's speed: it reads the same graph as the task, its batched
K passes are K separate products, and a seed gives one result."""
import pytest
import torch

import graphmix_minimal as minimal
from mixsuite.plugins.graphmix.data import load_planetoid


@pytest.mark.parametrize("name", ["cora", "citeseer"])
def test_the_minimal_loader_reads_the_tasks_graph(shared_data, name):
    x, adj, y, train, val, test = minimal.load(shared_data, name)
    g = load_planetoid(shared_data, name)
    assert torch.equal(y, g.y) and torch.equal(train, g.train_idx) and torch.equal(val, g.val_idx)
    assert torch.equal(test, g.test_idx)
    assert torch.allclose(x.to_dense(), g.x.to_dense(), atol=1e-7)
    assert torch.allclose(adj.to_dense(), g.adj.to_dense(), atol=1e-7)


def test_node_major_copies_are_k_products_side_by_side():
    g = torch.Generator().manual_seed(0)
    dense = torch.rand(9, 6, generator=g) * (torch.rand(9, 6, generator=g) < 0.4)
    x = dense.to_sparse_csr()
    k, w = 3, torch.randn(4, 6, generator=g)
    masks = torch.rand(k, x.values().numel(), generator=g) < 0.5
    crow, col, index = minimal.node_major_copies(x, k)
    # pass p's values of node i sit at rows i * k + p: the masks laid out node-major
    pass_of = torch.cat([torch.arange(k).repeat_interleave(int(n)) for n in x.crow_indices().diff()])
    values = x.values()[index] * masks[pass_of, index]
    out = (torch.sparse_csr_tensor(crow, col, values, (9 * k, 6)) @ w.t()).view(9, k, 4)
    for p in range(k):
        one = torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), x.values() * masks[p], (9, 6))
        assert torch.allclose(out[:, p], one.to_dense() @ w.t(), atol=1e-6)


def test_a_seed_gives_one_result_and_learns(shared_data):
    data = minimal.load(shared_data, "cora")
    first, again = minimal.train(data, seed=3, epochs=100), minimal.train(data, seed=3, epochs=100)
    assert first["best_test_acc"] == again["best_test_acc"] and first["best_epoch"] == again["best_epoch"]
    assert first["best_test_acc"] > 0.7   # the most frequent class is ~0.32 of the test nodes
