"""GraphMix's fast paths (tasks/graphmix/sparse.py, batched target passes, the FCN over the mixed rows, the ECE
only at the best and last epochs) compute what the one-pass-at-a-time code computed, with the same random draws."""
import json

import pytest
import torch
import torch.nn.functional as F

from mixsuite.config import ConfigError, build_config, config_hash
from mixsuite.engine import Engine
from mixsuite.mixing import MixPlan

from conftest import ROOT, killed_then_resumed

from mixsuite.plugins.graphmix.model import SharedGCN
from mixsuite.plugins.graphmix.sparse import Propagation, SparseFeatures, keep_masks
from mixsuite.plugins.graphmix.targets import predicted_targets
from mixsuite.plugins.graphmix.task import GraphMixConfig, GraphMixTask


def random_graph(n=30, f=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, f, generator=g) * (torch.rand(n, f, generator=g) < 0.3)
    x = (x / x.sum(1, keepdim=True).clamp_min(1e-6)).to_sparse().coalesce()
    a = (torch.rand(n, n, generator=g) < 0.15).float()
    a = ((a + a.t() + torch.eye(n)) > 0).float()
    d = a.sum(1).rsqrt()
    return x, (d[:, None] * a * d[None, :]).to_sparse_csr()


@pytest.mark.parametrize("p", [0.5, 0.6])
def test_dropped_values_are_the_masks_f_dropout_draws(p):
    x, _ = random_graph()
    torch.manual_seed(7)
    expected = torch.stack([F.dropout(x.values(), p, True) for _ in range(3)])
    torch.manual_seed(7)
    assert torch.equal(SparseFeatures(x).dropped_values(p, passes=3), expected)


@pytest.mark.parametrize("keep, draws", [(0.5, "bits"), (0.75, "bits"), (0.4, "bits"), (0.5, "float64")])
def test_keep_masks_keep_each_element_with_probability_keep_independently(keep, draws):
    torch.manual_seed(0)
    masks = keep_masks((4, 100_000), keep, draws).float()
    se = (keep * (1 - keep) / masks.numel()) ** 0.5
    assert masks.shape == (4, 100_000) and abs(masks.mean().item() - keep) < 5 * se
    centred = masks - masks.mean()
    for a, b in ((centred[:, :-1], centred[:, 1:]), (centred[0], centred[1]), (centred[:, :-31], centred[:, 31:])):
        corr = (a * b).mean() / centred.var()
        assert abs(corr.item()) < 0.02   # neighbours, passes, the same bit of the next word: uncorrelated


def test_bit_draws_are_the_gcn_default_with_its_own_hash_and_float64_keeps_the_records_hash():
    assert build_config(GraphMixConfig, [], []).dropout_draws == "bits"
    assert config_hash(GraphMixConfig()) != "084d9e7748"          # the default's hash before bits became it
    assert config_hash(build_config(GraphMixConfig, [], ["dropout_draws=float64"])) == "084d9e7748"
    assert config_hash(build_config(GraphMixConfig, [], ["method=gcn", "dropout_draws=float64"])) == "258a48eccf"
    assert config_hash(build_config(GraphMixConfig, [], ["method=gat"])) == "3e526f9f93"   # GAT: as before
    with pytest.raises(ConfigError, match="dropout_draws"):
        build_config(GraphMixConfig, [], ["method=gat", "dropout_draws=float64"])
    x, _ = random_graph()
    torch.manual_seed(2)
    dropped = SparseFeatures(x, draws="bits").dropped_values(0.5, passes=3)
    assert set(torch.unique(dropped / x.values()).tolist()) <= {0.0, 2.0}
    assert not torch.equal(dropped[0], dropped[1])


def test_sparse_linear_and_its_weight_gradient_equal_the_dense_product():
    x, _ = random_graph()
    feats, weight = SparseFeatures(x), torch.randn(4, x.shape[1], requires_grad=True)
    torch.manual_seed(1)
    out = feats.linear(weight, p=0.5, passes=2)
    torch.manual_seed(1)
    dense = torch.cat([F.linear(torch.sparse_coo_tensor(x.indices(), F.dropout(x.values(), 0.5, True), x.shape)
                                .to_dense(), weight) for _ in range(2)])
    assert out.shape == (2 * x.shape[0], 4) and torch.allclose(out, dense, atol=1e-6)
    probe = torch.randn_like(out)
    (grad,) = torch.autograd.grad((out * probe).sum(), weight)
    (expected,) = torch.autograd.grad((dense * probe).sum(), weight)
    assert torch.allclose(grad, expected, atol=1e-5)
    rows = torch.tensor([5, 2, 5, 29])
    some = feats.linear(weight, rows=rows)
    (grad,) = torch.autograd.grad((some * probe[:4]).sum(), weight)
    every = F.linear(x.to_dense(), weight)[rows]
    (expected,) = torch.autograd.grad((every * probe[:4]).sum(), weight)
    assert torch.allclose(some, every, atol=1e-6) and torch.allclose(grad, expected, atol=1e-5)


@pytest.mark.parametrize("hidden_dropout", [0.0, 0.3])
def test_batched_target_passes_equal_one_pass_at_a_time(hidden_dropout):
    x, adj = random_graph()
    model = SharedGCN(x.shape[1], 8, 3, input_dropout=0.5, dropout=hidden_dropout)
    torch.manual_seed(3)
    one_at_a_time = predicted_targets(model, x, adj, k=5, temperature=0.5)        # tensors: the GCNConv layers
    torch.manual_seed(3)
    batched = predicted_targets(model, SparseFeatures(x), Propagation(adj), k=5, temperature=0.5)
    assert torch.allclose(batched, one_at_a_time, atol=1e-6)
    assert not torch.allclose(batched, predicted_targets(model, x, adj, k=5, temperature=0.5), atol=1e-4)


def test_fcn_over_the_mixed_rows_equals_the_fcn_over_every_node():
    x, _ = random_graph()
    model = SharedGCN(x.shape[1], 8, 3, input_dropout=0.5, dropout=0.2).train()
    rows = torch.tensor([3, 9, 9, 14, 20])
    perm = torch.arange(x.shape[0])
    perm[rows] = torch.tensor([14, 20, 3, 9, 9])
    plan = MixPlan("hidden", torch.tensor(0.3), perm, rows)
    torch.manual_seed(5)
    every = model.fcn(x, plan)[rows]
    next_every = torch.rand(1)
    (g_every,) = torch.autograd.grad(every.square().sum(), model.conv1.lin.weight)
    torch.manual_seed(5)
    some = model.fcn(SparseFeatures(x), plan, rows=rows)
    next_some = torch.rand(1)   # the same draws: the masks cover every node
    (g_some,) = torch.autograd.grad(some.square().sum(), model.conv1.lin.weight)
    assert torch.allclose(some, every, atol=1e-6) and torch.allclose(g_some, g_every, atol=1e-5)
    assert torch.equal(next_some, next_every)


# Measured with the code at 2892867 (one target pass at a time through GCNConv on COO features, the FCN over every
# node, the ECE every epoch): Cora, seed 3, 40 epochs. The fast paths draw the same random numbers; their sums run
# in another order (CSR products, the softmax along the classes), so losses agree to ~1e-7, not bit for bit.
PINNED = {
    "default": ({}, [1.9441628, 0.4357923, 1.923861, 0.4292135, 0.4223921, 0.3901254],
                dict(best_test_acc=0.4970000088214874, best_epoch=37, best_val_acc=0.5120000243186951,
                     best_test_nll=1.8359880447387695, best_test_ece=0.324363280850633, test_ece=0.32118056533858036)),
    "official-code": (dict(target_dropout=False, gnn_step_dropout=False, aliased_ema=True, per_draw_targets=True),
                      [1.9445701, 0.4377504, 1.9452267, 0.4368299, 0.4336559, 0.4145585],
                      dict(best_test_acc=0.33399999141693115, best_epoch=15, best_val_acc=0.33000001311302185,
                           best_test_nll=1.9443739652633667, best_test_ece=0.19066551327705383,
                           test_ece=0.14496921156817305)),
    "hidden-dropout": (dict(dropout=0.3), [1.9445537, 0.4350603, 1.9248878, 0.4297574, 0.420436, 0.3930795],
                       dict(best_test_acc=0.5040000081062317, best_epoch=37, best_val_acc=0.5139999985694885,
                            best_test_nll=1.838974952697754, best_test_ece=0.33307885341336835,
                            test_ece=0.32933355230066325)),
}


@pytest.mark.parametrize("name", list(PINNED))
def test_a_short_cora_run_reproduces_the_code_before_the_fast_paths(name, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))
    overrides, losses, final = PINNED[name]
    cfg = GraphMixConfig(data_root=str(shared_data), epochs=40, seed=3, device="cpu", progress=False,
                         dropout_draws="float64", **overrides)   # the stream of the code before (and its records)
    eng = Engine(GraphMixTask, cfg, runs_dir=tmp_path, log=lambda *a: None)
    got = eng.run()
    rows = [json.loads(line) for line in (eng.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [rows[e - 1]["loss"] for e in (1, 3, 10, 20, 30, 40)] == pytest.approx(losses, abs=1e-6)
    assert got["best_epoch"] == final["best_epoch"] and got["best_test_acc"] == final["best_test_acc"]
    assert {k: got[k] for k in final} == pytest.approx(final, abs=1e-6)
    assert [r["epoch"] for r in rows if "test_ece" in r] == [40]   # the ECE: last epoch (and best, in finish)


def test_a_killed_run_resumes_to_the_same_record(shared_data, tmp_path, monkeypatch):
    """The best epoch's test logits (for its ECE) travel in the checkpoint: selecting the lowest validation
    accuracy puts the best epoch before the checkpoint the run resumes from."""
    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(GraphMixTask, "select_mode", "min")
    cfg = GraphMixConfig(data_root=str(shared_data), epochs=16, ramp_start=0, ramp_length=8, checkpoint_every=5,
                         checkpoint_seconds=0, device="cpu", progress=False)
    from mixsuite import runner
    whole = runner.run(GraphMixTask, cfg, results_dir=tmp_path / "r1", runs_dir=tmp_path / "a", log=lambda *a: None)
    resumed = killed_then_resumed(GraphMixTask, cfg, tmp_path / "b", tmp_path / "r2", monkeypatch, kill_at=13)
    assert resumed["metrics"] == whole["metrics"] and whole["metrics"]["best_epoch"] <= 10
