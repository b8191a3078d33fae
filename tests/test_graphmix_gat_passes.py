"""GraphMix(GAT)'s k target passes over k copies of the graph (tasks/graphmix/gat_passes.py) are the k separate
passes: the same logits from the same draws, the generator left where the passes leave it."""
import pytest
import torch
import torch.nn.functional as F

from mixsuite.config import ConfigError, build_config

from mixsuite.plugins.graphmix.gat_passes import copies, dropout_noise, split_by_layout
from mixsuite.plugins.graphmix.model import SharedGAT
from mixsuite.plugins.graphmix.task import GraphMixConfig


def random_graph(n=40, f=30, seed=0, loops=True):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, f, generator=g) * (torch.rand(n, f, generator=g) < 0.2)).to_sparse().coalesce()
    a = torch.rand(n, n, generator=g) < 0.1
    a = a | a.t() | (torch.eye(n, dtype=torch.bool) if loops else torch.zeros(n, n, dtype=torch.bool))
    return x, a.nonzero().t()


@pytest.mark.parametrize("p, attention, loops", [(0.6, None, True), (0.5, 0.3, False), (0.0, 0.6, True)])
def test_batched_passes_are_the_separate_passes_on_the_same_draws(p, attention, loops):
    x, edges = random_graph(loops=loops)
    torch.manual_seed(0)
    model = SharedGAT(x.shape[1], 4, 5, input_dropout=p, dropout=p, heads=3, attention_dropout=attention).train()
    torch.manual_seed(11)
    looped = torch.cat([model(x, edges) for _ in range(4)])
    after_loop = torch.get_rng_state()
    model.batch_passes = True
    torch.manual_seed(11)
    batched = model(x, edges, passes=4)
    assert torch.get_rng_state().equal(after_loop)
    assert torch.allclose(batched, looped, atol=1e-6, rtol=1e-5)
    assert (batched - looped).abs().max() < 1e-5 and not torch.equal(batched[:40], batched[40:80])


def test_dropout_noise_is_f_dropouts():
    x = torch.rand(50, 3)
    for p in (0.0, 0.4, 1.0):
        torch.manual_seed(2)
        expected = F.dropout(x, p, True)
        torch.manual_seed(2)
        noise = dropout_noise(x, p)
        assert torch.equal(x if noise is None else x * noise, expected)


def test_the_attention_noise_follows_gatconvs_edge_layout():
    edges = torch.tensor([[0, 1, 2], [1, 2, 0]])
    assert copies(edges, 3, 2).tolist() == [[0, 1, 2, 3, 4, 5], [1, 2, 0, 4, 5, 3]]
    a, b = torch.arange(5.0).view(5, 1), 10 + torch.arange(5.0).view(5, 1)   # 3 edges, then 2 loops each
    assert split_by_layout([a, b], 3).view(-1).tolist() == [0, 1, 2, 10, 11, 12, 3, 4, 13, 14]


def test_batch_target_passes_is_refused_for_the_gcn():
    with pytest.raises(ConfigError, match="batch_target_passes"):
        build_config(GraphMixConfig, [], ["method=graphmix", "batch_target_passes=true"])
    assert build_config(GraphMixConfig, [], ["method=graphmix-gat", "batch_target_passes=true"]).batch_target_passes
