"""The Lightning callback trains as the hand-written loop does (the same losses and plans for the same seed), and a
fit resumed from Lightning's checkpoint draws the plans of the unbroken fit."""
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

L = pytest.importorskip("lightning")
from mixsuite.integrations.lightning import ManifoldMixupCallback  # noqa: E402
from mixsuite.mixing import ManifoldMixup  # noqa: E402

LAYERS = ["input", "net.layer1", "net.layer2"]
STEPS_PER_EPOCH, BATCH = 3, 16


def make_net():
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(layer1=nn.Sequential(nn.Linear(6, 32), nn.ReLU()),
                                     layer2=nn.Sequential(nn.Linear(32, 32), nn.ReLU()), head=nn.Linear(32, 3)))


def data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS_PER_EPOCH * BATCH, 6, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


class Module(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = make_net()
        self.seen = []   # (loss, layer, lambda) of every training step

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.mix_plan.mix_loss(F.cross_entropy, self(x), y)
        self.seen.append((loss.item(), self.mix_plan.layer, float(self.mix_plan.lam)))
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*data()), batch_size=BATCH)


def fit(module, epochs, tmp_path, ckpt_path=None):
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path,
                        callbacks=[ManifoldMixupCallback(LAYERS, alpha=2.0, seed=7)])
    trainer.fit(module, ckpt_path=ckpt_path)
    return trainer


def hand_loop(epochs):
    net = make_net()
    mixer = ManifoldMixup(net, layers=["input", "layer1", "layer2"], alpha=2.0,
                          generator=torch.Generator().manual_seed(7))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = data()
    seen = []
    for _ in range(epochs):
        for xb, yb in zip(x.split(BATCH), y.split(BATCH)):
            with mixer.step(len(xb)) as plan:
                out = net(xb)
            loss = plan.mix_loss(F.cross_entropy, out, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen.append((loss.item(), "net." + plan.layer if plan.layer != "input" else "input", float(plan.lam)))
    return seen


def test_the_callback_trains_as_the_hand_written_loop(tmp_path):
    module = Module()
    fit(module, 2, tmp_path)
    expected = hand_loop(2)
    assert [s[1:] for s in module.seen] == [s[1:] for s in expected]               # the same plans
    assert [s[0] for s in module.seen] == pytest.approx([s[0] for s in expected], rel=1e-5)   # the same losses
    assert len({s[1] for s in expected}) > 1                                        # more than one layer drawn


def test_a_resumed_fit_draws_the_plans_of_the_unbroken_one(tmp_path):
    unbroken = Module()
    fit(unbroken, 3, tmp_path / "a")
    first = Module()
    trainer = fit(first, 1, tmp_path / "b")
    trainer.save_checkpoint(tmp_path / "one-epoch.ckpt")
    resumed = Module()
    fit(resumed, 3, tmp_path / "c", ckpt_path=tmp_path / "one-epoch.ckpt")
    assert [s[1:] for s in first.seen + resumed.seen] == [s[1:] for s in unbroken.seen]
    assert [s[0] for s in resumed.seen] == pytest.approx([s[0] for s in unbroken.seen[STEPS_PER_EPOCH:]], rel=1e-5)
