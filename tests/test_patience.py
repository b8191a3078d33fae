"""Early stopping (`patience`): the run stops once `patience` epochs pass with no new best select metric, a rerun
trains no further, and a config that leaves it unset keeps its hash."""
import json
from dataclasses import dataclass

import pytest
import torch

from mixsuite import runner
from mixsuite.config import RunConfig, build_config, config_hash
from mixsuite.task import Task

SCORES = {1: 0.5, 2: 0.7, 3: 0.6, 4: 0.65, 5: 0.9, 6: 0.95, 7: 0.4, 8: 0.3}   # val score of each epoch


@dataclass
class ScriptedConfig(RunConfig):
    epochs: int = 8
    eval_every: int = 1


class ScriptedTask(Task):
    """Its validation score follows SCORES, whatever it trains."""

    name = "scripted"
    Config = ScriptedConfig
    primary_metric = "val_score"
    trained: list = []

    def setup(self):
        self.w = torch.nn.Linear(1, 1)
        self.optimizer = torch.optim.SGD(self.w.parameters(), lr=0.0)   # steps that change nothing

    def train_epoch(self, epoch):
        ScriptedTask.trained.append(epoch)
        self.engine.step(self.w(torch.ones(1, 1)).sum(), self.optimizer)   # a run that took no step is no result
        return {"loss": 1.0}

    def evaluate(self, epoch):
        return {"val_score": SCORES[epoch]}

    def state_dict(self):
        return {"w": self.w.state_dict()}

    def load_state_dict(self, state):
        self.w.load_state_dict(state["w"])


def run(tmp_path, *over):
    ScriptedTask.trained = []
    cfg = build_config(ScriptedConfig, [], list(over))
    return runner.run(ScriptedTask, cfg, results_dir=tmp_path / "r", runs_dir=tmp_path / "runs", log=lambda m: None)


def epochs_logged(tmp_path, rec):
    lines = (tmp_path / "runs" / "scripted" / rec["run_id"] / "metrics.jsonl").read_text().splitlines()
    return [json.loads(ln)["epoch"] for ln in lines]


def test_patience_stops_after_that_many_epochs_without_a_new_best(tmp_path):
    rec = run(tmp_path, "patience=2")
    # best 0.7 at epoch 2; epochs 3 and 4 do not beat it: stop after epoch 4 (never sees epoch 5's 0.9)
    assert ScriptedTask.trained == [1, 2, 3, 4]
    assert epochs_logged(tmp_path, rec) == [1, 2, 3, 4]
    m = rec["metrics"]
    assert (m["best_epoch"], m["best_val_score"], m["last_epoch"], m["val_score"]) == (2, 0.7, 4, 0.65)
    again = run(tmp_path, "patience=2")                   # the checkpoint says it stopped: nothing more to train
    assert ScriptedTask.trained == [] and again["metrics"]["best_epoch"] == 2


def test_patience_counts_epochs_with_sparse_evaluation(tmp_path):
    rec = run(tmp_path, "patience=3", "eval_every=2")      # evaluated at 2, 4, 6, 8: best 0.7 at 2, 0.95 at 6
    assert ScriptedTask.trained == [1, 2, 3, 4, 5, 6, 7, 8]
    assert rec["metrics"]["best_epoch"] == 6
    rec = run(tmp_path, "patience=2", "eval_every=2")      # 4 does not beat 2 and is 2 epochs later: stop
    assert ScriptedTask.trained == [1, 2, 3, 4]


def test_no_patience_trains_every_epoch_and_keeps_the_hash(tmp_path):
    rec = run(tmp_path)
    assert ScriptedTask.trained == list(range(1, 9)) and "last_epoch" not in rec["metrics"]
    assert rec["metrics"]["best_epoch"] == 6
    plain, zero, set_ = (build_config(ScriptedConfig, [], o) for o in ([], ["patience=0"], ["patience=2"]))
    assert config_hash(plain) == config_hash(zero) != config_hash(set_)


@pytest.mark.parametrize("value", ["two", "1.5"])
def test_patience_must_be_an_integer(value):
    from mixsuite.config import ConfigError

    with pytest.raises(ConfigError, match="patience"):
        build_config(ScriptedConfig, [], [f"patience={value}"])
