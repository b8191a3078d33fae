"""Regression with mixup: C-Mixup's in-distribution protocol (Yao et al., NeurIPS 2022) on Airfoil, NO2 and
Exchange-Rate.

Adam on the MSE for 100 epochs; after each epoch the validation MSE is measured and the epoch with the lowest one
(ties: the later) is the one whose test RMSE and MAPE are reported (`best_test_rmse`, `best_test_mape`).

Methods: erm; input and manifold mixup; cmixup, whose partners are drawn by label distance
(mixsuite.mixing.pairing) and mixed at the input or at the hidden layer, as C-Mixup does per dataset. With
`partners: train` (C-Mixup's code) a row's partner is drawn from the whole training set (uniformly for input and
manifold mixup, by the label kernel for cmixup) and travels in the same forward pass as the batch; with
`partners: batch` the mixer pairs rows within the batch (its `pairing`: a permutation, or the kernel).
Lambda ~ Beta(alpha, alpha), one per batch; the target is mixed with the same lambda and the loss is the MSE to it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from mixsuite.config import RunConfig, non_negative, one_of, positive
from mixsuite.mixing import Method, MixingConfig, mixer_from_config
from mixsuite.mixing.pairing import KernelPairing, draw_rows, kernel_weights
from mixsuite.task import Task

from .data import load
from .models import LSTNet, MLP

METHODS = ("erm", "input", "manifold", "cmixup")
# C-Mixup's settings per dataset (its config.py and main.sh): batch, lr, alpha, bandwidth, where cmixup mixes
PROTOCOL = {
    "airfoil": dict(batch_size=16, lr=1e-2, alpha=2.0, bandwidth=1.75, cmixup_mixing="manifold"),
    "no2": dict(batch_size=32, lr=1e-2, alpha=2.0, bandwidth=1.2, cmixup_mixing="input"),
    "exchange_rate": dict(batch_size=128, lr=1e-3, alpha=1.5, bandwidth=0.05, cmixup_mixing="manifold"),
}
HIDDEN_LAYER = {"mlp": ["block_1"], "lstnet": ["encoder"]}   # C-Mixup's manifold mixing point of each model


@dataclass
class RegressionConfig(MixingConfig, RunConfig):
    dataset: Annotated[str, one_of(*PROTOCOL)] = "airfoil"
    method: Annotated[str, one_of(*METHODS)] = "cmixup"
    epochs: int = 100
    # None: the dataset's C-Mixup setting (PROTOCOL)
    batch_size: Annotated[int | None, positive] = None
    lr: Annotated[float | None, positive] = None
    alpha: Annotated[float | None, non_negative] = None
    cmixup_bandwidth: Annotated[float | None, positive] = None
    cmixup_mixing: Annotated[str | None, one_of("input", "manifold")] = None
    mix_layers: list[str] = field(default_factory=list)    # []: the model's hidden mixing point (HIDDEN_LAYER)
    partners: Annotated[str, one_of("train", "batch")] = "train"
    weight_decay: Annotated[float, non_negative] = 0.0
    width: Annotated[int, positive] = 128                   # the MLP's two hidden layers
    window: Annotated[int, positive] = 168                  # Exchange-Rate: input steps, and
    horizon: Annotated[int, positive] = 12                  # how far ahead the target step lies
    log_every: int = 10

    def protocol(self, key: str):
        value = getattr(self, "cmixup_bandwidth" if key == "bandwidth" else key)
        return PROTOCOL[self.dataset][key] if value is None else value

    def model_kind(self) -> str:
        return "lstnet" if self.dataset == "exchange_rate" else "mlp"

    def method_entry(self) -> Method:
        """The method's row, per dataset (a task whose table depends on the config): cmixup mixes where C-Mixup
        does on this dataset, every method at its alpha and, while mix_layers is [], at the model's hidden point."""
        backend = self.protocol("cmixup_mixing") if self.method == "cmixup" else self.method
        return Method(backend, alpha=PROTOCOL[self.dataset]["alpha"], layers=HIDDEN_LAYER[self.model_kind()])

    def mixing_pairing(self):
        if self.method == "cmixup":
            return KernelPairing(self.protocol("bandwidth"))
        return super().mixing_pairing() if self.pairing != "cmixup" else KernelPairing(self.protocol("bandwidth"))


class RegressionTask(Task):
    name = "regression"
    Config = RegressionConfig
    primary_metric = "best_test_rmse"
    primary_mode = "min"
    baseline_method = "erm"
    select_metric = "val_mse"
    select_mode = "min"
    state_attrs = ("net", "optimizer")

    def setup(self):
        cfg, eng = self.cfg, self.engine
        batch_size = cfg.protocol("batch_size")
        self.splits = load(eng.data_root, cfg.dataset, cfg.seed, batch_size, cfg.window, cfg.horizon)
        self.train_x, self.train_y = self.splits.train
        self.pool = self.splits.train[0].to(eng.device), self.splits.train[1].to(eng.device)
        # C-Mixup's loop takes len(train) // batch steps an epoch: the last, partial batch is dropped
        rows = torch.arange(len(self.train_x))   # each row's index, to look up its partners' law
        self.train_loader = eng.loader(TensorDataset(*self.splits.train, rows), batch_size, drop_last=True)
        inputs, outputs = self.train_x.shape[-1], self.train_y.shape[-1]
        self.net = (LSTNet(outputs, cfg.window) if cfg.model_kind() == "lstnet"
                    else MLP(inputs, cfg.width, outputs))
        self.model = eng.prepare(self.net)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.protocol("lr"), weight_decay=cfg.weight_decay)
        self.mixer = mixer_from_config(cfg, self.net, eng)
        self.from_pool = cfg.mixes() and cfg.partners == "train"
        if self.from_pool and cfg.method == "cmixup":   # P(j | i) over the training set, as running sums
            self.partner_cdf = kernel_weights(self.pool[1], self.pool[1], cfg.protocol("bandwidth")).cumsum(1)
        eng.log(f"{cfg.dataset}: {'/'.join(map(str, self.splits.sizes()))} train/val/test ({self.splits.note}); "
                f"{cfg.method_label()} mixing {cfg.mixing_backend() if cfg.mixes() else 'nothing'}")

    def pool_partners(self, rows: torch.Tensor) -> torch.Tensor:
        """Indices into the training set for training rows `rows`: by the label kernel for cmixup, uniform
        otherwise (C-Mixup's random mixup, with replacement)."""
        g = self.mixer.generator
        if self.cfg.method == "cmixup":
            return draw_rows(self.partner_cdf[rows.cpu()], generator=g).to(rows.device)
        return torch.randint(len(self.pool[1]), (len(rows),), generator=g, device=g.device).to(rows.device)

    def training_step(self, batch) -> dict:
        x, y, rows = batch
        b = len(x)
        if self.from_pool:    # the partners ride along: rows b..2b-1, mixed into rows 0..b-1 and not trained on
            j = self.pool_partners(rows)
            x, y = torch.cat([x, self.pool[0][j]]), torch.cat([y, self.pool[1][j]])
            own = torch.arange(b, device=x.device)
            with self.mixer.step(2 * b, own, x.device, perm=torch.cat([own + b, own + b])) as plan:
                out = self.model(x)
        else:
            with self.mixer.step(b, device=x.device, labels=y) as plan:
                out = self.model(x)
        target = plan.mix_targets(y) if plan.active else y
        loss = F.mse_loss(out[:b], target[:b])
        return {"loss": loss}

    def extension_problem(self, old_epochs: int) -> str | None:
        return None   # Adam at a constant lr, evaluated every epoch: a longer run passes through the shorter one

    @torch.no_grad()
    def measure(self, split: str) -> dict:
        """MSE, RMSE and MAPE (%, over targets != 0) of `split`, on the targets as the model sees them."""
        self.net.eval()
        x, y = getattr(self.splits, split)
        pred = torch.cat([self.net(c.to(self.engine.device)).cpu() for c in x.split(2048)]).double()
        y = y.double()
        mse = float(((pred - y) ** 2).mean())
        nonzero = y != 0
        mape = float(((pred - y).abs()[nonzero] / y.abs()[nonzero]).mean() * 100)
        return {f"{split}_mse": mse, f"{split}_rmse": mse ** 0.5, f"{split}_mape": mape}

    def evaluate(self, epoch):
        # the test split is measured every epoch so that best_test_* is the test of the best-validation epoch
        return {**self.measure("val"), **self.measure("test")}
