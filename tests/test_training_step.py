"""The Task.training_step contract and the engine's default epoch: the logs are the means over the epoch's samples
(each batch weighted by its size), read once an epoch; the hooks (epoch scheduler, per-step scheduler, clipping,
epoch start and end) do what the Task docstring says; a non-finite loss stops the run."""
import math

import pytest
import torch

from mixsuite.config import RunConfig
from mixsuite.engine import Engine, NonFiniteLoss
from mixsuite.task import Task


class Line(Task):
    """Least squares of y = 2x on batches of 3, 3 and 2 samples."""

    name = "line"

    def setup(self):
        x = torch.arange(1.0, 9.0)
        self.model = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.zeros_(self.model.weight)
        self.train_loader = [(x[:3, None], 2 * x[:3, None]), (x[3:6, None], 2 * x[3:6, None]),
                             (x[6:, None], 2 * x[6:, None])]
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.0)
        self.seen, self.ended = [], None

    def on_train_epoch_start(self, epoch):
        super().on_train_epoch_start(epoch)
        self.seen.append(("start", epoch, self.model.training))

    def training_step(self, batch):
        x, y = batch
        loss = ((self.model(x) - y) ** 2).mean()
        return {"loss": loss, "first_x": x[0, 0], "count": 1.0}

    def on_train_epoch_end(self, epoch, logs, samples, seconds):
        self.ended = (epoch, samples)
        return {**logs, "samples": samples}

    def evaluate(self, epoch):
        return {}


def engine_and_task(tmp_path, **attrs):
    cfg = RunConfig(device="cpu", progress=False)
    engine = Engine(Line, cfg, runs_dir=tmp_path, log=lambda *a: None)
    task = Line(cfg, engine)
    task.setup()
    for k, v in attrs.items():
        setattr(task, k, v)
    return engine, task


def test_logs_are_sample_weighted_means_of_the_epoch(tmp_path):
    engine, task = engine_and_task(tmp_path)
    task.model.eval()
    logs = task.train_epoch(1)
    x = torch.arange(1.0, 9.0, dtype=torch.float64)
    # w = 0 and lr = 0: each batch's loss is the mean of (2x)^2 over it; the epoch's, their mean weighted by size
    per_batch = [(4 * x[:3] ** 2).mean(), (4 * x[3:6] ** 2).mean(), (4 * x[6:] ** 2).mean()]
    expected = float((3 * per_batch[0] + 3 * per_batch[1] + 2 * per_batch[2]) / 8)
    assert logs["loss"] == pytest.approx(expected, rel=1e-7)
    assert logs["first_x"] == pytest.approx((3 * 1 + 3 * 4 + 2 * 7) / 8)
    assert logs["count"] == 1.0 and logs["samples"] == 8 and task.ended == (1, 8)
    assert task.seen == [("start", 1, True)]          # the default start puts the model in train mode
    assert engine.step_count == 3 and list(logs) == ["loss", "first_x", "count", "samples"]


def test_schedulers_and_clipping(tmp_path):
    engine, task = engine_and_task(tmp_path)
    task.optimizer = torch.optim.SGD(task.model.parameters(), lr=1.0)
    task.scheduler = torch.optim.lr_scheduler.StepLR(task.optimizer, step_size=1, gamma=0.5)   # per epoch
    task.clip_grad_norm = 1e-3
    logs = task.train_epoch(1)
    assert logs["lr"] == 1.0 and task.optimizer.param_groups[0]["lr"] == 0.5   # the lr the epoch trained with
    # three steps of lr 1 on a gradient clipped to norm 1e-3 (all positive towards w = 2): w = 3e-3
    assert task.model.weight.item() == pytest.approx(3e-3, rel=1e-5)
    engine, task = engine_and_task(tmp_path / "b")
    task.optimizer = torch.optim.SGD(task.model.parameters(), lr=0.8)
    task.step_scheduler = torch.optim.lr_scheduler.StepLR(task.optimizer, step_size=1, gamma=0.5)
    task.train_epoch(1)
    assert task.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)   # 0.8 halved after each of the 3 steps


def test_a_non_finite_step_is_in_the_epochs_loss_and_stops_the_run(tmp_path):
    engine, task = engine_and_task(tmp_path)
    task.train_loader[1] = (torch.tensor([[float("nan")]]), torch.tensor([[0.0]]))
    logs = task.train_epoch(1)
    assert math.isnan(logs["loss"])
    with pytest.raises(NonFiniteLoss, match="nan at epoch"):
        engine.check_finite(logs["loss"])   # what Engine.run_epoch does with the epoch's loss


def test_a_task_without_training_step_says_what_to_write(tmp_path):
    class Empty(Task):
        name = "empty"

    with pytest.raises(NotImplementedError, match=r"empty task must implement training_step"):
        Empty(RunConfig(), None).training_step(None)
