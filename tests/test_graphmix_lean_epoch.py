"""GraphMix's lean epoch (issue 46): its own one-step train_epoch, the evaluation without mode switches, the targets
mixed on the drawn rows only, and metrics.jsonl written in batches give the numbers and lines of the code before."""
import json

import pytest
import torch
import torch.nn.functional as F

from mixsuite import runner
from mixsuite.analysis import classification_metrics
from mixsuite.config import build_config
from mixsuite.engine import Engine
from mixsuite.mixing import MixPlan
from mixsuite.task import resolve

from conftest import ROOT
from mixsuite.plugins.graphmix.task import GraphMixConfig, GraphMixTask, mixed_rows

SPIRALS = resolve(str(ROOT / "tasks" / "spirals")).load()


def graphmix_task(tmp_path, *over):
    cfg = build_config(GraphMixConfig, [], ["epochs=6", "progress=false", "device=cpu", *over])
    task = GraphMixTask(cfg, Engine(GraphMixTask, cfg, runs_dir=tmp_path))
    task.setup()
    return task


def test_the_targets_mixed_on_the_rows_are_every_rows_mix_read_there():
    g = torch.Generator().manual_seed(0)
    targets = torch.rand(20, 7, generator=g).softmax(-1)
    rows = torch.tensor([3, 5, 5, 11, 3, 17])              # drawn with replacement: 3 and 5 twice
    perm = torch.arange(20)
    perm[rows] = rows[torch.tensor([2, 0, 4, 1, 5, 3])]
    for lam in (torch.tensor(0.3), torch.rand(20, generator=g)):
        plan = MixPlan("hidden", lam, perm, rows)
        assert torch.equal(mixed_rows(plan, targets, rows), plan.mix_targets(targets)[rows])


def test_predict_is_the_eval_mode_forward_in_either_mode(shared_data, tmp_path):
    task = graphmix_task(tmp_path)
    model = task.model.train()
    trained = model.predict(task.features, task.graph_input)
    assert model.training
    model.eval()
    assert torch.equal(trained, model(task.features, task.graph_input))


@pytest.mark.parametrize("method", ["graphmix", "graphmix-gat"])
def test_evaluate_gives_classification_metrics_numbers(shared_data, tmp_path, method):
    task = graphmix_task(tmp_path, f"method={method}")
    for epoch in (1, 6):   # 6: the last epoch, with the ECE
        out = task.evaluate(epoch)
        task.model.eval()
        with torch.no_grad():
            logits = task.model(task.features, task.graph_input)
        g = task.g
        expected = {"val_acc": (logits[g.val_idx].argmax(-1) == g.y[g.val_idx]).float().mean().item(),
                    **classification_metrics(logits[g.test_idx], g.y[g.test_idx], prefix="test_", ece=epoch == 6)}
        assert out == expected
        assert torch.equal(task.test_logits, logits[g.test_idx])


def test_the_one_step_epoch_gives_the_engines_default_epoch(shared_data, tmp_path):
    """Two tasks of one seed, one trained through the engine's default train_epoch: the same logs and weights."""
    torch.manual_seed(0)
    lean = graphmix_task(tmp_path / "a")
    torch.manual_seed(0)
    default = graphmix_task(tmp_path / "b")
    for epoch in range(1, 7):
        torch.manual_seed(epoch)
        ours = lean.train_epoch(epoch)
        torch.manual_seed(epoch)
        theirs = default.engine.train_epoch(default, epoch)
        assert ours == theirs and isinstance(ours["loss"], float)
        lean.evaluate(epoch), default.evaluate(epoch)
    for a, b in zip(lean.model.parameters(), default.model.parameters()):
        assert torch.equal(a, b)


def test_metrics_lines_are_written_in_batches_and_none_is_lost(tmp_path, monkeypatch):
    """Spirals for 5 epochs, an error at the start of the 5th: metrics.jsonl holds epochs 1-4 although no flush
    came due (the lines are written when the run stops); a whole run holds every epoch."""
    cfg = build_config(SPIRALS.Config, [], ["epochs=5", "repeats=2", "n_test_per_class=50", "plots=false",
                                             "progress=false", "checkpoint_seconds=3600"])
    opened = []
    monkeypatch.setattr(Engine, "METRICS_FLUSH_S", 3600.0)
    original_flush = Engine._flush_metrics

    def counting_flush(self):
        opened.append(len(self._metrics_lines))
        original_flush(self)

    monkeypatch.setattr(Engine, "_flush_metrics", counting_flush)
    record = runner.run(SPIRALS, cfg, results_dir=tmp_path / "r", runs_dir=tmp_path / "runs", log=lambda *a: None)
    lines = (tmp_path / "runs" / "spirals" / record["run_id"] / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2, 3, 4, 5]
    assert max(opened) == 5   # one write for the five epochs (checkpoint at the last one)

    original = SPIRALS.train_epoch

    def crash(self, epoch):
        if epoch == 5:
            raise RuntimeError("stopped")
        return original(self, epoch)

    monkeypatch.setattr(SPIRALS, "train_epoch", crash)
    with pytest.raises(RuntimeError, match="stopped"):
        runner.run(SPIRALS, cfg, results_dir=tmp_path / "r2", runs_dir=tmp_path / "runs2", log=lambda *a: None)
    (folder,) = [p for p in (tmp_path / "runs2" / "spirals").iterdir() if p.is_dir()]
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2, 3, 4]
