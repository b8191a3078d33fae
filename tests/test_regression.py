"""The regression task: C-Mixup's splits and scaling, the mixed batch of each method, the smoke run, a seed's record."""
import json

import numpy as np
import pytest
import torch

from conftest import ROOT, smoke_record
from mixsuite import runner
from mixsuite.config import build_config
from mixsuite.errors import UserError
from mixsuite.mixing.sampling import sample_lambda
from mixsuite.plugins.regression import data as regdata
from mixsuite.plugins.regression.models import LSTNet
from mixsuite.plugins.regression.task import RegressionConfig, RegressionTask


def test_airfoil_split_and_scaling_are_c_mixups(shared_data):
    folder = shared_data / "regression"
    splits = regdata.load_airfoil(shared_data, seed=3)
    assert splits.sizes() == (1003, 300, 200)
    table = np.loadtxt(folder / "airfoil_self_noise.dat")
    perm = np.load(folder / "airfoil_cmixup_perms.npz")["perm"][3]
    lo, hi = table[:, :5].min(0), table[:, :5].max(0)
    expected_x = (table[perm, :5] - lo) / (hi - lo)                    # min-max over all 1503 rows
    got_x = torch.cat([splits.train[0], splits.val[0], splits.test[0]]).double().numpy()
    got_y = torch.cat([splits.train[1], splits.val[1], splits.test[1]]).double().numpy()
    assert np.allclose(got_x, expected_x, atol=1e-6) and np.allclose(got_y[:, 0], table[perm, 5], atol=1e-4)
    assert got_x.min() == 0.0 and got_x.max() == 1.0 and 103 < got_y.min() < got_y.max() < 141   # dB, unscaled
    with pytest.raises(UserError, match="seeds 0-9"):
        regdata.load_airfoil(shared_data, seed=10)


def test_exchange_rate_windows_and_split(shared_data):
    splits = regdata.load_exchange_rate(shared_data, window=168, horizon=12)
    assert splits.sizes() == (4373, 1518, 1518)
    raw = np.loadtxt(shared_data / "regression" / "exchange_rate.txt.gz", delimiter=",")
    data = raw / np.abs(raw).max(0)
    x, y = splits.train
    assert np.allclose(x[0].numpy(), data[0:168], atol=1e-6) and np.allclose(y[0].numpy(), data[179], atol=1e-6)
    xt, yt = splits.test      # the last target, step 7587, from the steps 7408 .. 7575
    assert np.allclose(xt[-1].numpy(), data[7408:7576], atol=1e-6) and np.allclose(yt[-1].numpy(), data[7587], atol=1e-6)


def test_no2_split_is_seeded_and_disjoint(shared_data):
    a, b, c = regdata.load_no2(shared_data, 0), regdata.load_no2(shared_data, 0), regdata.load_no2(shared_data, 1)
    assert a.sizes() == (300, 100, 100)
    assert torch.equal(a.test[1], b.test[1]) and not torch.equal(a.test[1], c.test[1])
    every = torch.cat([a.train[1], a.val[1], a.test[1]]).flatten().sort().values
    table = np.loadtxt(shared_data / "regression" / "no2.csv", delimiter=",", skiprows=1)
    assert np.allclose(every.double().numpy(), np.sort(table[:, 7]), atol=1e-5)   # each row once


def test_a_truncated_file_exits_2_naming_the_split_and_file(tmp_path, shared_data, cli):
    folder = tmp_path / "regression"
    folder.mkdir()
    lines = (shared_data / "regression" / "airfoil_self_noise.dat").read_text().splitlines()
    (folder / "airfoil_self_noise.dat").write_text("\n".join(lines[:1100]) + "\n")
    (folder / "airfoil_cmixup_perms.npz").write_bytes((shared_data / "regression" / "airfoil_cmixup_perms.npz").read_bytes())
    with pytest.raises(regdata.SplitTooSmall, match="the test split of .*airfoil_self_noise.dat has 0 rows"):
        regdata.load(tmp_path, "airfoil", 0, 16)
    out = cli("run", "tasks/regression", "-c", "configs/regression/smoke.yaml", f"data_root={tmp_path}",
              "--results-dir", tmp_path / "r", "--runs-dir", tmp_path / "runs")
    assert out.returncode == 2 and "test split" in out.stderr and "airfoil_self_noise.dat" in out.stderr


def _task(tmp_path, *overrides):
    cfg = build_config(RegressionConfig, [ROOT / "configs/regression/smoke.yaml"], ["device=cpu", *overrides])
    from mixsuite.engine import Engine
    engine = Engine(RegressionTask, cfg, runs_dir=tmp_path, log=lambda *a: None)
    task = RegressionTask(cfg, engine)
    task.setup()
    return task


@pytest.mark.parametrize("method,layer", [("input", "input"), ("manifold", "block_1"), ("cmixup", "block_1")])
def test_a_step_mixes_each_row_with_its_drawn_partner(tmp_path, shared_data, method, layer):
    task = _task(tmp_path, f"method={method}")
    x, y = task.train_x[:16], task.train_y[:16]
    rows = torch.arange(16)
    state = task.mixer.generator.get_state()
    loss = task.training_step((x, y, rows))["loss"]
    g = torch.Generator().manual_seed(0)
    g.set_state(state)                      # replay the draws: partners, the layer (one in S), lambda
    if method == "cmixup":
        cdf = torch.softmax(-torch.cdist(task.train_y.double(), task.train_y.double()) ** 2 / (2 * 1.75 ** 2), 1)
        j = torch.searchsorted(cdf.cumsum(1)[:16], torch.rand(16, 1, generator=g, dtype=torch.float64)
                               * cdf.cumsum(1)[:16, -1:], right=True).view(-1)
    else:
        j = torch.randint(len(task.train_y), (16,), generator=g)
    torch.randint(1, (1,), generator=g)
    lam = sample_lambda(2.0, 1, generator=g)[0]
    net = task.net
    with torch.no_grad():
        if layer == "input":
            pred = net(lam * x + (1 - lam) * task.train_x[j])
        else:
            h = lam * net.block_1(x) + (1 - lam) * net.block_1(task.train_x[j])
            pred = net.head(net.block_2(h))
    target = lam * y + (1 - lam) * task.train_y[j]
    assert torch.allclose(loss, ((pred - target) ** 2).mean(), rtol=1e-5)


def test_cmixup_partners_are_near_in_label(tmp_path, shared_data):
    task = _task(tmp_path, "method=cmixup", "cmixup_bandwidth=0.5")
    rows = torch.arange(len(task.train_y)).repeat(3)
    j = task.pool_partners(rows)
    gap_kernel = (task.train_y[rows] - task.train_y[j]).abs().mean()
    uniform = _task(tmp_path / "u", "method=input").pool_partners(rows)
    gap_uniform = (task.train_y[rows] - task.train_y[uniform]).abs().mean()
    assert gap_kernel < 1.0 < 4.0 < gap_uniform      # label std 6.9 dB: uniform pairs lie ~7.7 dB apart


def test_lstnet_encoder_carries_the_conv_map_and_the_highway_window():
    net = LSTNet(series=8, window=168).eval()
    x = torch.randn(3, 168, 8)
    h = net.encoder(x)
    assert h.shape == (3, 50 * 163 + 24 * 8)
    assert torch.equal(h[:, 50 * 163:].view(3, 24, 8), x[:, -24:, :])
    assert net(x).shape == (3, 8)


def test_smoke_run(tmp_path, shared_data):
    record = smoke_record("regression", tmp_path)
    m = record["metrics"]
    assert record["status"] == "finished" and record["method"] == "cmixup"
    assert 0 < m["best_test_rmse"] < 20 and 0 < m["best_test_mape"] < 20 and 1 <= m["best_epoch"] <= 3


def test_a_seed_reproduces_a_record(tmp_path, shared_data):
    cfg = build_config(RegressionConfig, [ROOT / "configs/regression/smoke.yaml"],
                       ["device=cpu", "epochs=2", "seed=4", "method=input"])
    a = runner.run(RegressionTask, cfg, results_dir=tmp_path / "r1", runs_dir=tmp_path / "a", log=lambda *x: None)
    b = runner.run(RegressionTask, cfg, results_dir=tmp_path / "r2", runs_dir=tmp_path / "b", log=lambda *x: None)
    assert a["metrics"]["best_test_rmse"] == b["metrics"]["best_test_rmse"]
    assert a["metrics"]["val_mse"] == b["metrics"]["val_mse"]
    other = runner.run(RegressionTask, build_config(RegressionConfig, [ROOT / "configs/regression/smoke.yaml"],
                       ["device=cpu", "epochs=2", "seed=5", "method=input"]),
                       results_dir=tmp_path / "r3", runs_dir=tmp_path / "c", log=lambda *x: None)
    assert other["metrics"]["val_mse"] != a["metrics"]["val_mse"]


def test_every_regression_config_is_valid():
    for path in sorted((ROOT / "configs" / "regression").glob("*.yaml")):
        build_config(RegressionConfig, [path])
    cfg = build_config(RegressionConfig, [], ["dataset=no2", "method=cmixup"])
    assert cfg.mixing_backend() == "input" and cfg.protocol("bandwidth") == 1.2 and cfg.protocol("batch_size") == 32
    assert json.dumps(cfg.mixing_layers()) == '["block_1"]'


def test_partners_within_the_batch_use_the_core_kernel_pairing(tmp_path, shared_data):
    task = _task(tmp_path, "method=cmixup", "partners=batch")
    x, y, rows = task.train_x[:16], task.train_y[:16], torch.arange(16)
    state = task.mixer.generator.get_state()
    with task.mixer.step(16, labels=y) as plan:
        task.model(x)
    g = torch.Generator().manual_seed(0)
    g.set_state(state)
    torch.randint(1, (1,), generator=g)
    sample_lambda(2.0, 1, generator=g)
    from mixsuite.mixing.pairing import kernel_partners
    assert torch.equal(plan.perm, kernel_partners(y, y, 1.75, generator=g))
    task.mixer.generator.set_state(state)
    assert task.training_step((x, y, rows))["loss"].requires_grad
