"""Manifold Mixup in a Lightning fit with mixsuite's callback (needs the lightning extra).

    python examples/lightning_mixup.py --epochs 20
    python examples/lightning_mixup.py --smoke

The callback draws a plan before each training batch and sets it on the module as `mix_plan`; the forward in
`training_step` is mixed at the plan's layer and the loss is mixed with `mix_plan.mix_loss`. Its generator is saved
in Lightning's checkpoint, so `trainer.fit(..., ckpt_path=...)` continues the same draws.
"""
import argparse

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F

from mixsuite.integrations.lightning import ManifoldMixupCallback

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--smoke", action="store_true")
args = parser.parse_args()
if args.smoke:
    args.epochs = 1
L.seed_everything(0)


class Classifier(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Linear(2, 64), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, 2)

    def forward(self, x):
        return self.head(self.layer2(self.layer1(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.mix_plan.mix_loss(F.cross_entropy, self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):   # not mixed
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def rings(n):   # two noisy concentric rings
    radius = torch.cat([torch.ones(n), 2 * torch.ones(n)]) + 0.2 * torch.randn(2 * n)
    angle = 6.2832 * torch.rand(2 * n)
    x = torch.stack([radius * angle.cos(), radius * angle.sin()], 1)
    return torch.utils.data.TensorDataset(x, torch.cat([torch.zeros(n), torch.ones(n)]).long())


train = torch.utils.data.DataLoader(rings(500), batch_size=50, shuffle=True)
val = torch.utils.data.DataLoader(rings(200), batch_size=200)
trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                    enable_model_summary=False,
                    callbacks=[ManifoldMixupCallback(layers=["input", "layer1", "layer2"], alpha=2.0, seed=0)])
trainer.fit(Classifier(), train, val)
print(f"val_acc: {float(trainer.callback_metrics['val_acc']):.4f}")
