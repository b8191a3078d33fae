"""GraphMix: shared parameters, sharpening, row-restricted mixing, the ramp, the Planetoid loaders, smoke run."""
import importlib.util
import math

import pytest
import torch
import torch.nn.functional as F

from mixsuite.config import ConfigError, build_config, load_yaml
from mixsuite.engine import Engine
from mixsuite.errors import DataNotFound
from mixsuite.mixing import MixPlan

from conftest import ROOT, smoke_record

from mixsuite.plugins.graphmix.data import find_raw, load_planetoid
from mixsuite.plugins.graphmix.official import (aliased_ema_factor, in_place_mix_plan,
                                                rescale_as_aliased_ema)
from mixsuite.plugins.graphmix.model import SharedGAT, SharedGCN, sparse_dropout
from mixsuite.plugins.graphmix.task import GraphMixConfig, GraphMixTask
from mixsuite.plugins.graphmix.targets import consistency_weight, predicted_targets, sharpen


def tiny_graph(n=6, f=5):
    torch.manual_seed(0)
    x = torch.rand(n, f)
    x = (x / x.sum(1, keepdim=True)).to_sparse().coalesce()
    a = torch.eye(n) + torch.diag(torch.ones(n - 1), 1) + torch.diag(torch.ones(n - 1), -1)
    d = a.sum(1).rsqrt()
    adj_dense = d[:, None] * a * d[None, :]
    return x, adj_dense


def test_gcn_and_fcn_share_the_same_weights():
    x, adj_dense = tiny_graph()
    model = SharedGCN(5, 4, 3, input_dropout=0.0).eval()
    w1, w2 = model.conv1.lin.weight, model.conv2.lin.weight
    xd = x.to_dense()
    gcn = model(x, adj_dense.to_sparse_csr())
    assert torch.allclose(gcn, adj_dense @ (F.relu(adj_dense @ (xd @ w1.T)) @ w2.T), atol=1e-6)
    assert torch.allclose(model.fcn(x), F.relu(xd @ w1.T) @ w2.T, atol=1e-6)
    assert {id(p) for p in model.parameters()} == {id(w1), id(w2)}  # nothing else to learn: the FCN adds no weights
    model.fcn(x).sum().backward()
    assert w1.grad.abs().sum() > 0 and w2.grad.abs().sum() > 0


def test_gat_fcn_uses_the_gat_linear_maps():
    x, _ = tiny_graph()
    model = SharedGAT(5, 2, 3, input_dropout=0.0, dropout=0.0, heads=2).eval()
    h = F.elu(x.to_dense() @ model.conv1.lin.weight.T + model.conv1.bias)
    assert torch.allclose(model.fcn(x), h @ model.conv2.lin.weight.T + model.conv2.bias, atol=1e-6)


def test_gat_takes_the_sparse_features_as_they_are():
    x, adj_dense = tiny_graph()
    edges = adj_dense.to_sparse_coo().indices()
    model = SharedGAT(5, 2, 3, input_dropout=0.0, dropout=0.0, heads=2).eval()
    torch.testing.assert_close(model(x, edges), model(x.to_dense(), edges))


def test_gat_attention_dropout_is_separate_from_the_hidden_dropout():
    x, adj_dense = tiny_graph()
    edges = adj_dense.to_sparse_coo().indices()
    same = SharedGAT(5, 2, 3, input_dropout=0.0, dropout=0.4, heads=2)
    assert (same.conv1.dropout, same.conv2.dropout, same.dropout) == (0.4, 0.4, 0.4)   # GAT's paper: one value
    torch.manual_seed(0)
    model = SharedGAT(5, 2, 3, input_dropout=0.0, dropout=0.0, heads=2, attention_dropout=0.5).train()
    assert not torch.equal(model(x, edges), model(x, edges))         # the attention is dropped ...
    torch.testing.assert_close(model.fcn(x), model.fcn(x))           # ... the FCN, which has none, is not
    model.conv1.dropout = model.conv2.dropout = 0.0
    torch.testing.assert_close(model(x, edges), model(x, edges))


def test_attention_dropout_on_a_gcn_is_refused_with_the_config():
    with pytest.raises(ConfigError, match="attention_dropout=0.5 is for the GAT methods"):
        build_config(GraphMixConfig, [], ["method=graphmix", "attention_dropout=0.5"])
    assert build_config(GraphMixConfig, [], ["method=gat", "attention_dropout=0.5"]).attention_dropout == 0.5


@pytest.mark.parametrize("use_gat_yaml", [False, True])
def test_gat_with_the_gcn_settings_points_to_gat_yaml(shared_data, tmp_path, monkeypatch, use_gat_yaml):
    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))
    settings = load_yaml(ROOT / "configs" / "graphmix" / "gat.yaml") if use_gat_yaml else {}
    cfg = GraphMixConfig(data_root=str(shared_data), method="graphmix-gat", device="cpu", **settings)
    logged = []
    task = GraphMixTask(cfg, Engine(GraphMixTask, cfg, runs_dir=tmp_path, log=logged.append))
    task.setup()
    assert any("configs/graphmix/gat.yaml" in line for line in logged) == (not use_gat_yaml)
    assert task.model.conv1.out_channels == (8 if use_gat_yaml else 16) and task.model.conv1.heads == 8


def test_sharpen():
    p = torch.tensor([[0.6, 0.4], [0.5, 0.5]])
    assert torch.allclose(sharpen(p, 0.5), torch.tensor([[0.36 / 0.52, 0.16 / 0.52], [0.5, 0.5]]))
    assert torch.allclose(sharpen(p, 1.0), p)
    assert sharpen(p, 0.1)[0, 0] > 0.98


def test_predicted_targets_are_distributions_and_keep_mode():
    x, adj_dense = tiny_graph()
    model = SharedGCN(5, 4, 3).eval()
    t = predicted_targets(model, x, adj_dense.to_sparse_csr(), k=4, temperature=0.1)
    assert torch.allclose(t.sum(1), torch.ones(6)) and not model.training


def test_eval_mode_targets_are_one_deterministic_prediction():
    x, adj_dense = tiny_graph()
    adj = adj_dense.to_sparse_csr()
    model = SharedGCN(5, 4, 3, input_dropout=0.5).train()
    t1 = predicted_targets(model, x, adj, k=10, temperature=0.1, dropout=False)
    t2 = predicted_targets(model, x, adj, k=10, temperature=0.1, dropout=False)
    with torch.no_grad():
        expected = sharpen(torch.softmax(model.eval()(x, adj), -1), 0.1)
    model.train()
    assert torch.equal(t1, t2) and torch.allclose(t1, expected, atol=1e-6)
    noisy = predicted_targets(model, x, adj, k=10, temperature=0.1)
    assert not torch.allclose(noisy, t1, atol=1e-4) and model.training


@pytest.mark.parametrize("dropout", [True, False])
def test_gnn_step_dropout_switch(shared_data, tmp_path, monkeypatch, dropout):
    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))
    cfg = GraphMixConfig(data_root=str(shared_data), gnn_step_dropout=dropout, device="cpu")
    task = GraphMixTask(cfg, Engine(GraphMixTask, cfg, runs_dir=tmp_path))
    task.setup()
    task.model.train()
    losses = [task.gnn_loss().item() for _ in range(2)]
    assert task.model.training
    with torch.no_grad():
        logits = task.model.eval()(task.features, task.graph_input)
    eval_loss = F.cross_entropy(logits[task.g.train_idx], task.g.y[task.g.train_idx]).item()
    if dropout:  # input dropout: two draws differ, and neither is the eval-mode loss
        assert losses[0] != losses[1] and eval_loss not in losses
    else:        # the official code's GNN step: eval mode, so no dropout
        assert losses[0] == losses[1] == pytest.approx(eval_loss, abs=1e-6)


def test_aliased_ema_rescale_equals_the_official_side_effect():
    x, adj = tiny_graph()
    torch.manual_seed(1)
    model, ours = SharedGCN(5, 4, 3), SharedGCN(5, 4, 3)
    ours.load_state_dict(model.state_dict())
    ema = SharedGCN(5, 4, 3)
    for e, p in zip(ema.parameters(), model.parameters()):  # the official code's aliasing, literally
        e.data = p.data
    for epoch0 in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1)  # stands for a training step; the same on both
            for p in ours.parameters():
                p.add_(0.1)
            a = min(1 - 1 / (epoch0 + 1), 0.999)
            for e, p in zip(ema.parameters(), model.parameters()):
                e.data.mul_(a).add_(p.data, alpha=1 - a)
        rescale_as_aliased_ema(ours, epoch0)
        for p, q in zip(model.parameters(), ours.parameters()):
            torch.testing.assert_close(p, q)
    assert aliased_ema_factor(0) == 0.0 and aliased_ema_factor(1) == 0.75
    assert math.isclose(aliased_ema_factor(5000), 1 - 1e-6)
    assert math.isclose(math.prod(aliased_ema_factor(e) for e in range(1, 999)), 1000 / 1998)  # about one half


def test_aliased_ema_restarts_the_weights_from_adam_momentum(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))
    cfg = GraphMixConfig(data_root=str(shared_data), method="gcn", aliased_ema=True, device="cpu")
    task = GraphMixTask(cfg, Engine(GraphMixTask, cfg, runs_dir=tmp_path))
    task.setup()
    task.train_epoch(1)
    task.train_epoch(2)  # zeroed weights, so a zero gradient: Adam's second step is its momentum alone
    for p in task.model.parameters():
        state = task.optimizer.state[p]
        m_hat, v_hat = state["exp_avg"] / (1 - 0.9 ** 2), state["exp_avg_sq"] / (1 - 0.999 ** 2)
        torch.testing.assert_close(p.detach(), -cfg.lr * m_hat / (v_hat.sqrt() + 1e-8))
    w = torch.cat([p.detach().abs().flatten() for p in task.model.parameters()])
    assert w.max() == pytest.approx(cfg.lr * 0.4737 / 0.7069, rel=1e-3)  # lr * m_hat / sqrt(v_hat) for g2 = 0


def test_mixing_touches_only_selected_rows():
    x, _ = tiny_graph()
    model = SharedGCN(5, 4, 3, input_dropout=0.0).eval()
    rows = torch.tensor([1, 3, 4])
    plan = MixPlan("hidden", torch.tensor(0.3), torch.tensor([0, 4, 2, 1, 3, 5]), rows)
    plain, mixed = model.fcn(x), model.fcn(x, plan)
    others = torch.tensor([0, 2, 5])
    assert torch.equal(mixed[others], plain[others])
    h = F.relu(x.to_dense() @ model.conv1.lin.weight.T)
    expect = (0.3 * h[1] + 0.7 * h[4]) @ model.conv2.lin.weight.T
    assert torch.allclose(mixed[1], expect, atol=1e-6)


def test_per_draw_targets_replay_the_official_in_place_mix():
    from mixsuite.mixing import build_mixer

    h, t = torch.randn(8, 4), torch.softmax(torch.randn(8, 3), -1)
    rows = torch.tensor([2, 5, 2, 7])  # node 2 drawn twice, as the unlabelled draws with replacement can
    draws = build_mixer("manifold", None, alpha=1.0, layers=["hidden"], generator=torch.Generator().manual_seed(3)
                        ).draw(len(rows))
    lam, sigma = float(draws.lam), draws.perm
    official = h.clone()  # gnn.py's mixup_gnn_hidden, literally
    official[rows] = lam * official[rows] + (1 - lam) * official[rows[sigma]]
    official_targets = lam * t[rows] + (1 - lam) * t[rows[sigma]]
    plan = in_place_mix_plan(draws, rows, 8)
    torch.testing.assert_close(plan.mix(h), official)
    torch.testing.assert_close(draws.mix_targets(t[rows]), official_targets)
    per_node = plan.mix_targets(t)[rows]  # the default: a node's draws share its one pairing
    assert torch.allclose(per_node[1:], official_targets[1:]) and not torch.allclose(per_node[0], official_targets[0])


def test_per_draw_targets_draw_what_the_default_draws_and_keep_the_default_hash():
    from mixsuite.config import build_config, config_hash
    from mixsuite.mixing import build_mixer

    def mixer():
        return build_mixer("manifold", None, alpha=1.0, layers=["hidden"], generator=torch.Generator().manual_seed(5))

    rows = torch.tensor([4, 0, 9, 6])
    per_node, per_draw = mixer().draw(10, rows=rows), mixer().draw(len(rows))
    assert float(per_node.lam) == float(per_draw.lam) and torch.equal(per_node.perm[rows], rows[per_draw.perm])
    records = build_config(GraphMixConfig, [], ["dropout_draws=float64"])   # the stream of the records
    assert config_hash(records) == "084d9e7748"  # the records' default hash, from before the switch existed
    switched = build_config(GraphMixConfig, [], ["dropout_draws=float64", "per_draw_targets=true"])
    assert config_hash(switched) != "084d9e7748"


def test_sparse_dropout_scales_kept_values():
    x, _ = tiny_graph(50, 40)
    torch.manual_seed(1)
    d = sparse_dropout(x, 0.5, True).coalesce()
    kept = d.values() != 0
    assert torch.allclose(d.values()[kept], 2 * x.values()[kept])
    assert 0.35 < kept.float().mean() < 0.65


def test_consistency_ramp():
    assert math.isclose(consistency_weight(0, 10.0), 10.0 * math.exp(-5))
    assert math.isclose(consistency_weight(499, 10.0), 10.0 * math.exp(-5))
    assert math.isclose(consistency_weight(750, 10.0), 10.0 * math.exp(-5 * 0.25))
    assert consistency_weight(1000, 10.0) == consistency_weight(5000, 10.0) == 10.0


@pytest.mark.parametrize("name,nodes,split", [("cora", 2708, (140, 500, 1000)), ("citeseer", 3327, (120, 500, 1000))])
def test_planetoid_from_shared_data(shared_data, name, nodes, split):
    g = load_planetoid(shared_data, name)
    assert g.num_nodes == nodes
    assert (len(g.train_idx), len(g.val_idx), len(g.test_idx)) == split
    row_sums = torch.sparse.sum(g.x, 1).to_dense()
    assert torch.allclose(row_sums[row_sums > 0], torch.ones(int((row_sums > 0).sum())), atol=1e-5)
    dense = g.adj.to_dense()
    assert torch.allclose(dense, dense.T, atol=1e-6) and (dense.diagonal() > 0).all()


def test_binary_features_leave_cora_as_it_is_and_binarise_tf_idf(shared_data, monkeypatch):
    from torch_geometric.data import Data
    from torch_geometric.transforms import NormalizeFeatures

    import mixsuite.plugins.graphmix.data as data
    from mixsuite.plugins.graphmix.data import binarize_features

    calls = []
    monkeypatch.setattr(data, "binarize_features", lambda d: calls.append(d.num_nodes) or binarize_features(d))
    plain, binary = load_planetoid(shared_data, "cora"), load_planetoid(shared_data, "cora", binary=True)
    assert calls == [2708]  # binarised once, before the row normalisation, only when asked
    assert torch.equal(plain.x.to_dense(), binary.x.to_dense())  # Cora's features are 0/1 already
    tf_idf = Data(x=torch.tensor([[0.0, 0.2, 0.6], [0.1, 0.0, 0.0]]))  # as PubMed's: weights, not 0/1
    x = NormalizeFeatures()(binarize_features(tf_idf)).x
    assert torch.allclose(x, torch.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]))


def test_incomplete_pubmed_says_which_file(shared_data, tmp_path, monkeypatch):
    if find_raw(shared_data, "PubMed") is not None:
        pytest.skip("PubMed is complete here")
    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path))
    with pytest.raises(DataNotFound, match=r"ind\.pubmed\.allx.*download=true"):
        load_planetoid(shared_data, "pubmed")


def test_smoke_config(tmp_path, shared_data):
    rec = smoke_record("graphmix", tmp_path)
    m = rec["metrics"]
    assert rec["task"] == "graphmix" and rec["dataset"] == "cora" and rec["method"] == "graphmix"
    assert 0.5 < m["best_test_acc"] <= 1.0 and 1 <= m["best_epoch"] <= 200
    assert m["best_val_acc"] >= m["val_acc"]


def test_diagnose_probes_do_not_change_the_run(shared_data, tmp_path, monkeypatch):
    """bench/graphmix_diagnose.py claims its probes (K dropout passes among them) leave the run's numbers alone."""
    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))
    spec = importlib.util.spec_from_file_location("graphmix_diagnose", ROOT / "bench" / "graphmix_diagnose.py")
    diagnose = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diagnose)
    cfg = GraphMixConfig(data_root=str(shared_data), epochs=30, device="cpu", progress=False, log_every=1000)
    rows = []
    probed = Engine(diagnose.make_probed(GraphMixTask, 10, rows), cfg, runs_dir=tmp_path / "a", resume="never",
                    log=lambda *a: None).run()
    plain = Engine(GraphMixTask, cfg, runs_dir=tmp_path / "b", resume="never", log=lambda *a: None).run()
    assert [r["epoch"] for r in rows] == [10, 20, 30] and rows[-1]["gnn_val"] == plain["val_acc"]
    assert probed == plain
    assert 0 < rows[-1]["dW1 fcn"] and 0 < rows[-1]["dW1 gnn"] and rows[-1]["train"] > 0.5
