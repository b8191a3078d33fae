"""Every built-in task that trains on real data, killed at the start of its third epoch and run again, resumes from
its checkpoint to the numbers of a run that was never killed: the data order, the mixer's draws, the optimiser and
the weights kept from the selected epoch (epoch 2, before the kill: its validation score is made the best) all come
back."""
import math

import pytest

from mixsuite import runner
from mixsuite.config import build_config
from mixsuite.task import resolve

from conftest import ROOT, killed_then_resumed

# The smoke config of each task, with a third epoch, a method that mixes (s2m2: its mixup stage is epochs 2-3) and
# the kept weights tested at the end (no test epoch during training; fewshot's best weights; handwriting's beam).
CASES = {
    "image": ["method=manifold", "epochs=3", "lr_milestones=[2]", "val_per_class=5", "test_every=5"],
    "fewshot": ["method=s2m2", "epochs=3", "test_weights=best"],
    "handwriting": ["method=manifold", "epochs=3", "decoder=beam"],
    "metric": ["method=manifold-rho", "epochs=3", "patience=5", "test_every=5"],
}
UNTIMED = ("time", "_per_s", "seconds")


def _config(task_cls, name, *extra):
    return build_config(task_cls.Config, [ROOT / "configs" / name / "smoke.yaml"], [*CASES[name], "checkpoint_seconds=0", "progress=false", *extra])


def _select_epoch_2(task_cls, monkeypatch):
    """The select metric of epochs 1-2 is made the best and of later epochs the worst (ties go to the later epoch),
    so the run tests the weights it kept at epoch 2."""
    evaluate = task_cls.evaluate

    def scripted(self, epoch):
        out = evaluate(self, epoch)
        key = self.select_metric or self.primary_metric
        if key in out:
            best, worst = (1.0, 0.0) if self.select_mode == "max" else (0.0, 1.0)
            out[key] = best if epoch <= 2 else worst
        return out

    monkeypatch.setattr(task_cls, "evaluate", scripted)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_killed_run_of_each_task_resumes_to_the_same_numbers(name, shared_data, tmp_path, monkeypatch):
    task_cls = resolve(str(ROOT / "tasks" / name)).load()
    _select_epoch_2(task_cls, monkeypatch)
    full = runner.run(task_cls, _config(task_cls, name), results_dir=tmp_path / "r1", runs_dir=tmp_path / "full",
                      log=lambda *a: None)
    logs = []
    resumed = killed_then_resumed(task_cls, _config(task_cls, name), tmp_path / "broken", tmp_path / "r2",
                                  monkeypatch, kill_at=3, log=logs.append)
    assert any("resumed" in line and "epoch 2" in line for line in logs), logs
    compared = {k: v for k, v in full["metrics"].items()
                if isinstance(v, (int, float)) and not any(t in k for t in UNTIMED)}
    assert full["metrics"]["best_epoch"] == 2 and len(compared) >= 5, compared
    for key, value in compared.items():
        again = resumed["metrics"][key]
        assert again == value or (math.isnan(value) and math.isnan(again)), (key, value, again)
