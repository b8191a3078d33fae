"""The MNIST flattening task: the measure is its formula, the regularisers are what their names say, a missing file
names its path, the smoke config runs and a seed reproduces its numbers."""
import json
import math

import pytest
import torch

from mixsuite.analysis import singular_values
from mixsuite.config import build_config
from mixsuite.engine import Engine
from mixsuite.errors import DataNotFound
from mixsuite.plugins.flatten.data import load_mnist
from mixsuite.plugins.flatten.flattening import flattening, per_class_head
from mixsuite.plugins.flatten.task import FlattenConfig, FlattenTask
from conftest import record_files, run_cli


def test_flattening_is_the_top_singular_value_and_the_sum_of_the_rest_averaged_over_classes():
    # class 0: +-3 e1, +-1 e2 (centred: singular values 3 sqrt2, 1 sqrt2); class 1: +-4 e2, +-2 e3, shifted by 5
    c0 = torch.tensor([[3.0, 0, 0], [-3, 0, 0], [0, 1, 0], [0, -1, 0]])
    c1 = torch.tensor([[0, 4.0, 0], [0, -4, 0], [0, 0, 2], [0, 0, -2]]) + 5.0
    x, y = torch.cat([c0, c1]), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    got = flattening(singular_values(x, y, overall=False))
    assert got["sv_top"] == pytest.approx(math.sqrt(2) * (3 + 4) / 2)
    assert got["sv_rest"] == pytest.approx(math.sqrt(2) * (1 + 2) / 2)   # the third singular value is 0 in both


def test_per_class_head_takes_the_first_n_of_every_class_in_order():
    y = torch.tensor([1, 0, 1, 1, 0, 2, 2, 0])
    assert per_class_head(y, 2).tolist() == [0, 1, 2, 4, 5, 6]
    with pytest.raises(ValueError, match="class 2 has only 2"):
        per_class_head(y, 3)


def test_missing_mnist_names_the_path(tmp_path):
    with pytest.raises(DataNotFound) as e:
        load_mnist(tmp_path, 10000)
    assert str(tmp_path / "mnist" / "mnist.npz") in str(e.value)
    out = run_cli("run", "tasks/flatten", "-c", "configs/flatten/smoke.yaml", f"data_root={tmp_path}",
                  "--results-dir", tmp_path / "r", "--runs-dir", tmp_path / "runs")
    assert out.returncode != 0 and str(tmp_path / "mnist" / "mnist.npz") in out.stderr


def _task(tmp_path, *overrides):
    cfg = build_config(FlattenConfig, ["configs/flatten/smoke.yaml"], ["device=cpu", *overrides])
    task = FlattenTask(cfg, Engine(FlattenTask, cfg, runs_dir=tmp_path))
    task.setup()
    return task


@pytest.mark.parametrize("method, dropout, decay, backend", [("erm", 0, 0.0, "ERM"), ("dropout", 7, 0.0, "ERM"),
                                                            ("weight_decay", 0, 1e-4, "ERM"),
                                                            ("input", 0, 0.0, "InputMixup"),
                                                            ("manifold", 0, 0.0, "ManifoldMixup")])
def test_each_method_trains_with_its_regulariser_only(method, dropout, decay, backend, shared_data, tmp_path):
    task = _task(tmp_path, f"method={method}")
    assert sum(isinstance(m, torch.nn.Dropout) for m in task.net.modules()) == dropout   # 3 + 4 wide layers
    assert task.optimizer.param_groups[0]["weight_decay"] == decay
    assert type(task.mixer).__name__ == backend
    if method == "manifold":
        assert task.mixer.layers == ["bottleneck"]
    assert len(task.data.val_x) == 10000 and len(task.train_loader.dataset) == 2000   # smoke: train_limit


def test_validation_is_the_last_training_images(shared_data):
    import numpy as np

    d = load_mnist(shared_data, 5000)
    with np.load(shared_data / "mnist" / "mnist.npz") as npz:
        last = npz["x_train"][-5000:].reshape(5000, -1)
    assert len(d.train_x) == 55000 and len(d.test_x) == 10000
    assert torch.equal(d.val_x, torch.from_numpy(last.astype("float32") / 255))


def _smoke(tmp_path, seed):
    out = run_cli("run", "tasks/flatten", "-c", "configs/flatten/smoke.yaml", f"seed={seed}", "width=32",
                  "--results-dir", tmp_path / "r", "--runs-dir", tmp_path / "runs")
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(record_files(tmp_path / "r")[0].read_text())["metrics"]


def test_smoke_runs_and_a_seed_reproduces_its_numbers(shared_data, tmp_path):
    first, again, other = _smoke(tmp_path / "a", 1), _smoke(tmp_path / "b", 1), _smoke(tmp_path / "c", 2)
    for key in ("best_test_acc", "best_test_nll", "best_sv_top", "best_sv_rest", "best_train_sv_rest",
                "best_h1_sv_rest", "sv_rest", "best_epoch"):
        assert key in first
    assert 0.1 < first["best_test_acc"] <= 1 and first["best_sv_rest"] > 0
    assert first == again
    assert first["best_sv_rest"] != other["best_sv_rest"]


def test_page_statistics_are_the_student_t_formulas():
    from mixsuite.plugins.flatten.page import mean_ci, paired

    m, half, n = mean_ci([1.0, 2.0, 3.0])
    assert (m, n) == (2.0, 3) and half == pytest.approx(4.302652729749464 / math.sqrt(3))   # t(0.975, 2 df) s/sqrt n
    r = paired({1: 1.0, 2: 2.0, 3: 3.0, 4: 9.0}, {1: 0.0, 2: 0.0, 3: 0.0})   # seed 4 has no partner: left out
    t = 2.0 / (1.0 / math.sqrt(3))
    assert r["n"] == 3 and r["mean"] == 2.0 and r["below"] == 0
    assert r["p"] == pytest.approx(1 - t / math.sqrt(t * t + 2))   # two-sided p of Student t with 2 df, closed form
