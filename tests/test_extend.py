"""`mixsuite run --extend epochs=N --extend patience=P`: a run with fewer epochs or less patience, trained on, gives
the numbers of the longer config trained from scratch, where the task says nothing in training depends on the
number of epochs (more patience alone: any task); elsewhere it is refused with the reason."""
import json

import pytest

from mixsuite import runner
from mixsuite.config import build_config
from mixsuite.errors import UserError
from mixsuite.task import Task, resolve

from conftest import ROOT

SPIRALS = resolve(str(ROOT / "tasks" / "spirals")).load()
SHORT = ["repeats=4", "n_test_per_class=100", "plots=false", "progress=false", "method=manifold"]


def spirals(tmp_path, folder, *over, extend=None, log=None):
    cfg = build_config(SPIRALS.Config, [], [*SHORT, *over])
    return runner.run(SPIRALS, cfg, results_dir=tmp_path / folder / "r", runs_dir=tmp_path / folder / "runs",
                      extend=extend, log=log or (lambda *a: None))


def epochs_logged(tmp_path, folder, rec):
    path = tmp_path / folder / "runs" / "spirals" / rec["run_id"] / "metrics.jsonl"
    return [json.loads(ln)["epoch"] for ln in path.read_text().splitlines()]


def test_an_extended_run_equals_the_longer_run_from_scratch(tmp_path):
    straight = spirals(tmp_path, "a", "epochs=5")
    short = spirals(tmp_path, "b", "epochs=3")
    logs = []
    extended = spirals(tmp_path, "b", "epochs=5", extend={"epochs": 3}, log=logs.append)
    for key in ("test_nll", "test_acc", "best_test_acc", "best_epoch", "boundary_distance", "uncertain_share"):
        assert extended["metrics"][key] == straight["metrics"][key], key
    assert extended["run_id"] == straight["run_id"] and "extended_from" not in straight
    assert extended["extended_from"] == str(tmp_path / "b" / "runs" / "spirals" / short["run_id"])
    assert any("extending" in line and "epoch 3" in line for line in logs)
    assert epochs_logged(tmp_path, "b", extended) == [1, 2, 3, 4, 5]


def test_an_extended_run_killed_and_resumed_still_names_the_run_it_began_from(tmp_path, monkeypatch):
    straight = spirals(tmp_path, "a", "epochs=5")
    short = spirals(tmp_path, "b", "epochs=3")
    original = SPIRALS.train_epoch

    def crash(self, epoch):
        if epoch == 4:
            raise KeyboardInterrupt("killed")
        return original(self, epoch)

    monkeypatch.setattr(SPIRALS, "train_epoch", crash)
    with pytest.raises(KeyboardInterrupt):
        spirals(tmp_path, "b", "epochs=5", extend={"epochs": 3})
    monkeypatch.setattr(SPIRALS, "train_epoch", original)
    logs = []
    resumed = spirals(tmp_path, "b", "epochs=5", log=logs.append)   # its own checkpoint now; --extend not needed
    assert any("resumed from" in line and "epoch 3" in line for line in logs)
    assert resumed["extended_from"] == str(tmp_path / "b" / "runs" / "spirals" / short["run_id"])
    assert resumed["metrics"]["test_nll"] == straight["metrics"]["test_nll"]


def test_more_patience_trains_an_early_stopped_run_on_to_the_numbers_of_that_patience(tmp_path, monkeypatch):
    """The select metric (test_acc) made best at epoch 2: patience 1 stops at epoch 3, patience 3 at 5;
    patience 3 from the patience-1 run equals it from scratch, for a task whose training may depend on epochs."""
    monkeypatch.setattr(SPIRALS, "extension_problem", Task.extension_problem)
    evaluate = SPIRALS.evaluate
    monkeypatch.setattr(SPIRALS, "evaluate", lambda self, epoch: {**evaluate(self, epoch), "test_acc": 0.9 if epoch == 2 else 0.5})
    straight = spirals(tmp_path, "a", "epochs=8", "patience=3")
    short = spirals(tmp_path, "b", "epochs=8", "patience=1")
    extended = spirals(tmp_path, "b", "epochs=8", "patience=3", extend={"patience": 1})
    assert (short["metrics"]["last_epoch"], straight["metrics"]["last_epoch"]) == (3, 5)
    for key in ("test_nll", "best_test_nll", "best_epoch", "last_epoch", "boundary_distance"):
        assert extended["metrics"][key] == straight["metrics"][key], key
    assert epochs_logged(tmp_path, "b", extended) == [1, 2, 3, 4, 5]
    again = spirals(tmp_path, "b", "epochs=8", "patience=3", extend={"patience": 1})   # finished: not run again
    assert again["metrics"] == extended["metrics"]
    # a run extended with no epoch left to train keeps a checkpoint of its own, so it can be extended in turn
    spirals(tmp_path, "b", "epochs=3", "patience=1")
    stopped = spirals(tmp_path, "b", "epochs=3", "patience=2", extend={"patience": 1})
    assert stopped["metrics"]["last_epoch"] == 3
    monkeypatch.setattr(SPIRALS, "extension_problem", lambda self, old_epochs: None)
    further = spirals(tmp_path, "b", "epochs=8", "patience=2", extend={"epochs": 3})
    assert further["metrics"]["last_epoch"] == 4


def test_extension_is_refused_with_the_reason(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="no run of this config with epochs=3, patience=0"):
        spirals(tmp_path, "none", "epochs=5", extend={"epochs": 3})
    spirals(tmp_path, "c", "epochs=5")
    with pytest.raises(UserError, match="set epochs above it"):
        spirals(tmp_path, "c", "epochs=4", extend={"epochs": 5})
    for bad, why in (({"lr": 0.1}, "only epochs and patience"), ({"epochs": "x"}, "whole number"),
                     ({"patience": 3}, "must stop early .* sooner"), ({"epochs": 5}, "that is this config")):
        with pytest.raises(UserError, match=why):
            spirals(tmp_path, "c", "epochs=5", "patience=2", extend=bad)
    spirals(tmp_path, "d", "epochs=3", "eval_every=2")
    with pytest.raises(UserError, match="evaluated only because it was the last"):
        spirals(tmp_path, "d", "epochs=6", "eval_every=2", extend={"epochs": 3})
    spirals(tmp_path, "e", "epochs=2")
    monkeypatch.setattr(SPIRALS, "extension_problem", Task.extension_problem)
    with pytest.raises(UserError, match="may depend on the number of epochs"):
        spirals(tmp_path, "e", "epochs=4", extend={"epochs": 2})


def test_the_metric_task_extends_to_the_same_numbers_and_keeps_its_selected_weights(shared_data, tmp_path):
    pytest.importorskip("pytorch_metric_learning")
    from mixsuite.plugins.metric.task import MetricConfig, MetricTask

    def metric(folder, *over, extend=None):
        cfg = build_config(MetricConfig, [ROOT / "configs/metric/smoke.yaml"],
                           ["method=manifold", "test_every=2", "patience=3", "progress=false", *over])
        return runner.run(MetricTask, cfg, results_dir=tmp_path / folder / "r", runs_dir=tmp_path / folder / "runs",
                          extend=extend, log=lambda *a: None)["metrics"]

    straight = metric("a", "epochs=4")
    with pytest.raises(UserError, match="tested only because it was the last"):
        metric("b", "epochs=3"), metric("b", "epochs=4", extend={"epochs": 3})
    metric("c", "epochs=2")
    extended = metric("c", "epochs=4", extend={"epochs": 2})
    for key in ("test_recall_at_1", "test_rho", "best_test_recall_at_1", "best_test_nmi", "best_epoch",
                "val_map_at_r", "train_rho"):
        assert extended[key] == straight[key], key
