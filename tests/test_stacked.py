"""Seeds as a batch dimension (mixsuite.stacked, `seeds_batch=S`): spirals seeds trained as one stacked model give
each seed's per-seed record, digit for digit, and a seed's numbers do not depend on the others in its batch."""
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mixsuite.config import ConfigError, build_config
from mixsuite.mixing import MixPlan
from mixsuite.mixing.interpolation import inverse_permutation, mix_rows
from mixsuite.runner import run
from mixsuite.stacked import SeedOptimizer, StackedPlans, joint_optimizer, run_stacked, stack_parameters
from mixsuite.task import resolve

ROOT = Path(__file__).resolve().parents[1]
CLI_SMALL = ["epochs=2", "repeats=3", "n_test_per_class=100", "grid=20", "plots=false"]
SMALL = ["epochs=2", "repeats=3", "n_test_per_class=100", "grid=20", "device=cpu", "progress=false"]


@pytest.fixture(scope="module")
def spirals():
    return resolve(str(ROOT / "tasks" / "spirals")).load()


def config(task_cls, *overrides):
    return build_config(task_cls.Config, [], SMALL + list(overrides))


def per_seed(task_cls, cfg, seeds, out: Path) -> list[dict]:
    return [run(task_cls, replace(cfg, seed=s), results_dir=out / "results", runs_dir=out / "runs", log=lambda _: None)
            for s in seeds]


def stacked(task_cls, cfg, seeds, out: Path) -> list[dict]:
    cfgs = [replace(cfg, seed=s, seeds_batch=len(seeds)) for s in seeds]
    return run_stacked(task_cls, cfgs, results_dir=out / "results", runs_dir=out / "runs", log=lambda _: None)


def epochs_of(record: dict) -> list[dict]:
    lines = [json.loads(line) for line in (Path(record["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "epoch_time_s"} for line in lines]


@pytest.mark.parametrize("method", ["erm", "input", "manifold"])
def test_stacked_seeds_give_the_per_seed_records_exactly(spirals, method, tmp_path):
    cfg = config(spirals, f"method={method}", "plots=false", "alpha=1.0",
                 "mix_layers=[input,hidden1,hidden2,bottleneck]")
    alone, together = per_seed(spirals, cfg, [0, 1], tmp_path / "alone"), stacked(spirals, cfg, [0, 1], tmp_path / "st")
    for a, t in zip(alone, together):
        assert t["metrics"] == a["metrics"]                        # every number, exactly
        assert epochs_of(t) == epochs_of(a)                        # each epoch's loss and test metrics
        assert set(t) == set(a) | {"stacked_with"} and t["stacked_with"] == [0, 1]
        assert (t["run_id"], t["config_hash"]) == (a["run_id"], a["config_hash"])   # the same run: seeds_batch unhashed
        assert {**t["config"], "seeds_batch": 1} == a["config"] and t["config"]["seeds_batch"] == 2
        assert sorted(p.name for p in Path(t["run_dir"]).iterdir()) == sorted(p.name for p in Path(a["run_dir"]).iterdir())
    assert together[0]["metrics"] != together[1]["metrics"]        # two seeds, two different runs


def test_a_seed_does_not_depend_on_the_others_in_its_batch(spirals, tmp_path):
    cfg = config(spirals, "plots=false")
    with_1 = stacked(spirals, cfg, [0, 1], tmp_path / "a")[0]
    with_2 = stacked(spirals, cfg, [0, 2], tmp_path / "b")[0]
    alone = run(spirals, replace(cfg, seeds_batch=4), results_dir=tmp_path / "c", runs_dir=tmp_path / "c-runs",
                log=lambda _: None)   # one seed with seeds_batch > 1: a stacked batch of one
    assert with_1["metrics"] == with_2["metrics"] == alone["metrics"]
    assert epochs_of(with_1) == epochs_of(with_2)
    assert alone["stacked_with"] == [0]


def test_the_checkpoint_of_a_stacked_seed_is_the_per_seed_runs(spirals, tmp_path):
    cfg = config(spirals, "plots=false")
    a = per_seed(spirals, cfg, [1], tmp_path / "alone")[0]
    t = stacked(spirals, cfg, [0, 1], tmp_path / "st")[1]
    ca, ct = (torch.load(Path(r["run_dir"]) / "checkpoint.pt", weights_only=False)["task"] for r in (a, t))
    assert ca["net"].keys() == ct["net"].keys()
    assert all(torch.equal(ca["net"][k], ct["net"][k]) for k in ca["net"])
    assert ca["optimizer"]["param_groups"] == ct["optimizer"]["param_groups"]
    for i, state in ca["optimizer"]["state"].items():
        assert state.keys() == ct["optimizer"]["state"][i].keys()
        assert all(torch.equal(v, ct["optimizer"]["state"][i][k]) for k, v in state.items())


def test_the_figures_contrast_models_train_stacked_as_alone(spirals):
    from mixsuite.plugins.spirals.beside import train_beside
    from mixsuite.plugins.spirals.data import make_spirals
    from mixsuite.plugins.spirals.stacked import train_beside_stacked

    x, y = make_spirals(50)
    cfgs = [replace(config(spirals, "beside=input"), seed=s) for s in (3, 4)]
    for cfg, net in zip(cfgs, train_beside_stacked(cfgs, x, y)):
        own = train_beside(cfg, x, y).state_dict()
        assert all(torch.equal(v, net.state_dict()[k]) for k, v in own.items())


def test_stacked_plans_mix_each_seed_at_its_own_layer_as_the_fused_mix_does():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 6, 4, generator=g, requires_grad=True)
    perms = [torch.randperm(6, generator=g) for _ in range(3)]
    lams = [torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.8, dtype=torch.float64), torch.tensor(1.0)]
    plans = StackedPlans([MixPlan("hidden1", lams[0], perms[0]), MixPlan("hidden2", lams[1], perms[1]),
                          MixPlan(None, lams[2], torch.arange(6))])
    out = plans.mix("hidden1", h)
    grad = torch.randn(3, 6, 4, generator=g)
    out.backward(grad)
    lam = lams[0].float()
    assert torch.allclose(out[0], lam * h[0] + (1 - lam) * h[0][perms[0]], atol=1e-6)     # the formula
    h0 = h[0].detach().clone().requires_grad_()
    fused = mix_rows(h0, perms[0], lam, inverse_permutation(perms[0]))
    fused.backward(grad[0])
    assert torch.equal(out[0], fused) and torch.equal(h.grad[0], h0.grad)                  # the per-seed path's bits
    assert torch.equal(out[1:], h[1:]) and torch.equal(h.grad[1:], grad[1:])               # not this seed's layer
    with pytest.raises(RuntimeError, match="hidden2"):
        plans.check_reached()
    loss = plans.mix_loss(lambda o, t: (o - t.float().unsqueeze(-1)).pow(2).sum(-1), h.detach(),
                          torch.arange(6).repeat(3, 1))
    la = (h.detach() - torch.arange(6.).view(1, 6, 1)).pow(2).sum(-1)
    lb0 = (h.detach()[0] - perms[0].float().view(6, 1)).pow(2).sum(-1)
    assert torch.allclose(loss[0], (lam * la[0] + (1 - lam) * lb0).mean()) and torch.equal(loss[2], la[2].mean())


def test_joint_optimizer_takes_each_seeds_own_steps_and_refuses_others():
    nets = [torch.nn.Linear(3, 2) for _ in range(2)]
    opts = [torch.optim.SGD(n.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01) for n in nets]
    copies = [torch.nn.Linear(3, 2) for _ in range(2)]
    for c, n in zip(copies, nets):
        c.load_state_dict(n.state_dict())
    params = stack_parameters(nets)
    joint = joint_optimizer(opts, nets, params)
    own = [torch.optim.SGD(c.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01) for c in copies]
    x = torch.randn(2, 5, 3)
    for _ in range(3):
        (torch.baddbmm(params["bias"].unsqueeze(1), x, params["weight"].transpose(1, 2)) ** 2).sum().backward()
        joint.step()
        joint.zero_grad()
        for c, o, xs in zip(copies, own, x):
            (c(xs) ** 2).sum().backward()
            o.step()
            o.zero_grad()
    assert all(torch.equal(n.weight, c.weight) and torch.equal(n.bias, c.bias) for n, c in zip(nets, copies))
    saved = SeedOptimizer(joint, 1).state_dict()
    assert all(torch.equal(saved["state"][i]["momentum_buffer"], v["momentum_buffer"])
               for i, v in own[1].state_dict()["state"].items())
    rprop = [torch.optim.Rprop(n.parameters()) for n in nets]
    with pytest.raises(Exception, match="seeds_batch: Rprop"):
        joint_optimizer(rprop, nets, stack_parameters(nets))


def test_what_cannot_stack_is_refused_naming_seeds_batch(spirals, cli, tmp_path):
    with pytest.raises(ConfigError, match="seeds_batch"):
        config(spirals, "seeds_batch=2", "per_sample_lambda=true")
    with pytest.raises(ConfigError, match="seeds_batch: stacked seeds mix at input"):
        config(spirals, "seeds_batch=2", "mix_layers=[head]")
    with pytest.raises(ConfigError, match="seeds_batch"):
        config(spirals, "seeds_batch=0")
    cfg = config(spirals)
    with pytest.raises(ConfigError, match="differ in the seed alone"):
        run_stacked(spirals, [replace(cfg, seed=0), replace(cfg, seed=1, alpha=1.0)], results_dir=tmp_path)
    out = cli("run", "tasks/spirals", *CLI_SMALL, "--seeds", "0", "1", "seeds_batch=2", "--jobs", "2",
              "--results-dir", tmp_path / "r", "--runs-dir", tmp_path / "runs")
    assert out.returncode == 2 and "seeds_batch" in out.stderr


def test_run_seeds_in_batches_of_seeds_batch_skipping_finished_ones(cli, tmp_path):
    args = ["run", "tasks/spirals", *CLI_SMALL, "--results-dir", tmp_path / "r",
            "--runs-dir", tmp_path / "runs"]
    assert cli(*args, "--seeds", "1").returncode == 0                            # seed 1 one a run, first
    out = cli(*args, "--seeds", "0", "1", "2", "3", "seeds_batch=2")
    assert out.returncode == 0, out.stderr[-2000:]
    records = {r["seed"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / "r").rglob("*.json"))}
    assert sorted(records) == [0, 1, 2, 3]
    assert "stacked_with" not in records[1]                                      # finished: not trained again
    assert [records[s]["stacked_with"] for s in (0, 2, 3)] == [[0], [2, 3], [2, 3]]


def test_a_seed_that_diverges_is_recorded_so_and_the_others_train_on(spirals, monkeypatch, tmp_path):
    from mixsuite.errors import NonFiniteLoss
    from mixsuite.plugins.spirals.stacked import StackedSpirals

    steps = StackedSpirals.steps

    def seed_1_goes_bad(self, epoch):
        if epoch == 2:
            for p in self.parameters.values():
                p.data[1] = float("nan")
        return steps(self, epoch)

    cfg = config(spirals, "plots=false", "epochs=3")
    alone = per_seed(spirals, cfg, [0], tmp_path / "alone")[0]
    monkeypatch.setattr(StackedSpirals, "steps", seed_1_goes_bad)
    with pytest.raises(NonFiniteLoss, match="epoch 2"):
        stacked(spirals, cfg, [0, 1], tmp_path / "st")
    records = {r["seed"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / "st" / "results").rglob("*.json"))}
    assert records[1]["status"] == "diverged" and records[1]["metrics"] == {}
    assert records[0]["status"] == "finished" and records[0]["metrics"] == alone["metrics"]


def test_a_sweep_trains_each_points_seeds_stacked(cli, tmp_path):
    out = cli("sweep", "tasks/spirals", *CLI_SMALL, "alpha=0.5,1", "--seeds", "0", "1", "2",
              "seeds_batch=2", "--results-dir", tmp_path / "r", "--runs-dir", tmp_path / "runs")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "sweep: 6 ran" in out.stdout
    records = [json.loads(p.read_text()) for p in (tmp_path / "r").rglob("*.json")]
    batches = sorted((r["config"]["alpha"], r["seed"], r["stacked_with"]) for r in records)
    assert batches == [(0.5, 0, [0, 1]), (0.5, 1, [0, 1]), (0.5, 2, [2]), (1.0, 0, [0, 1]), (1.0, 1, [0, 1]),
                       (1.0, 2, [2])]
