"""Flattening on MNIST: does manifold mixup leave the class-specific bottleneck representations with fewer
directions of variance (a smaller sum of the non-top singular values) than ERM, weight decay, dropout and input
mixup? The paper's setting (Verma et al. 2019, section 3.2 and appendix G): three fully connected LeakyReLU layers
of 1024 units, a 12-unit bottleneck, four more 1024-unit layers; manifold mixup mixes at the bottleneck only,
alpha 2.0.

Methods: erm | weight_decay | dropout | input | manifold. `weight_decay` and `dropout` are the strengths that the
methods of those names train with (the other methods train without either), so a record's method says what
regularised it. The last `val_size` training images are the validation split: the epoch with the best
validation accuracy is selected (`best_*`: its test accuracy, NLL and flattening measure); nothing is chosen on
test. Every evaluation measures `sv_top` and `sv_rest` (see flattening.py) of the bottleneck codes of the first
`sv_per_class` test images of each class; at the end the selected weights are measured again on training images
(`best_train_sv_*`) and at the first hidden layer (`best_h1_sv_*`, the layer section 3.2 names).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from mixsuite import dist
from mixsuite.analysis import classification_metrics, save_spectra, singular_values
from mixsuite.config import RunConfig, at_least, non_negative, one_of, positive, probability
from mixsuite.mixing import Method, MixingConfig, mixer_from_config
from mixsuite.task import KeepsBestWeights, Task

from .data import load_mnist
from .flattening import flattening, per_class_head
from .model import BottleneckMLP

# weight decay and dropout train unmixed (their regulariser is set in setup); input and manifold mixup at alpha
METHODS = {"erm": Method("erm"), "weight_decay": Method("erm"), "dropout": Method("erm"), "input": Method("input"),
           "manifold": Method("manifold")}


@dataclass
class FlattenConfig(MixingConfig, RunConfig):
    dataset: Annotated[str, one_of("mnist")] = "mnist"
    method: Annotated[str, one_of(METHODS)] = "manifold"
    alpha: Annotated[float, non_negative] = 2.0
    mix_layers: list[str] = field(default_factory=lambda: ["bottleneck"])   # appendix G: the bottleneck only
    epochs: Annotated[int, at_least(1)] = 30
    width: Annotated[int, positive] = 1024
    depth: Annotated[int, at_least(1)] = 3
    bottleneck: Annotated[int, positive] = 12
    head_depth: Annotated[int, non_negative] = 4   # wide layers after the bottleneck
    batch_size: Annotated[int, positive] = 100
    lr: Annotated[float, positive] = 1e-3          # Adam
    weight_decay: Annotated[float, non_negative] = 1e-4   # method=weight_decay only (Adam's L2 term)
    dropout: Annotated[float, probability] = 0.5          # method=dropout only (after each wide layer)
    val_size: Annotated[int, positive] = 10000     # the last val_size training images validate
    train_limit: Annotated[int, non_negative] = 0  # train on the first N training images only (0: all; smoke)
    sv_per_class: Annotated[int, positive] = 800   # test images per class in the flattening measure
    plots: bool = True

    method_table: ClassVar[dict[str, Method]] = METHODS


class FlattenTask(KeepsBestWeights, Task):
    name = "flatten"
    Config = FlattenConfig
    primary_metric = "sv_rest"
    primary_mode = "min"
    baseline_method = "erm"
    select_metric = "val_acc"
    select_mode = "max"
    state_attrs = ("net", "optimizer")

    def setup(self):
        cfg, eng = self.cfg, self.engine
        self.data = d = load_mnist(eng.data_root, cfg.val_size)
        n = cfg.train_limit or len(d.train_x)
        self.train_loader = eng.loader(TensorDataset(d.train_x[:n], d.train_y[:n]), cfg.batch_size)
        self.sv_idx = per_class_head(d.test_y, cfg.sv_per_class)
        self.net = BottleneckMLP(d.train_x.shape[1], cfg.width, cfg.depth, cfg.bottleneck, cfg.head_depth, 10,
                                 cfg.dropout if cfg.method == "dropout" else 0.0)
        self.model = eng.prepare(self.net)
        decay = cfg.weight_decay if cfg.method == "weight_decay" else 0.0
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, weight_decay=decay)
        self.mixer = mixer_from_config(cfg, self.net, eng)

    def training_step(self, batch) -> dict:
        x, y = batch
        with self.mixer.step(len(x), device=x.device) as plan, self.engine.autocast():
            out = self.model(x)
        loss = plan.mix_loss(lambda o, t: F.cross_entropy(o, t, reduction="none"), out, y)
        return {"loss": loss}

    def extension_problem(self, old_epochs: int) -> str | None:
        return None   # Adam at a constant lr, evaluated every epoch: a longer run passes through the shorter one

    @torch.no_grad()
    def predict(self, x: torch.Tensor, first_layer: bool = False):
        """(logits, bottleneck codes[, first hidden layer]) of x in eval mode, in chunks."""
        self.net.eval()
        logits, codes, firsts = [], [], []
        for chunk in x.split(5000):
            first, code = self.net.encode(self.engine.to_device(chunk))
            codes.append(code.float().cpu())
            logits.append(self.net.head(code).float().cpu())
            if first_layer:
                firsts.append(first.float().cpu())
        out = (torch.cat(logits), torch.cat(codes))
        return out + (torch.cat(firsts),) if first_layer else out

    def evaluate(self, epoch):
        d = self.data
        metrics = classification_metrics(self.predict(d.val_x)[0], d.val_y, prefix="val_", ece=False)
        logits, codes = self.predict(d.test_x)
        metrics.update(classification_metrics(logits, d.test_y, prefix="test_"))
        metrics.update(flattening(singular_values(codes[self.sv_idx], d.test_y[self.sv_idx], overall=False)))
        return metrics

    def finish(self):
        """The selected epoch's spectra: bottleneck on test images (spectra.json, kept beside the record), on
        training images, and the first hidden layer on test images."""
        cfg, d = self.cfg, self.data
        train_idx = per_class_head(d.train_y, cfg.sv_per_class)
        with self.selected_weights():
            _, codes, first = self.predict(d.test_x[self.sv_idx], first_layer=True)
            _, train_codes = self.predict(d.train_x[train_idx])
        labels = d.test_y[self.sv_idx]
        spectra = singular_values(codes, labels)
        save_spectra(spectra, self.engine.run_dir)
        out = {f"best_train_{k}": v for k, v in flattening(singular_values(train_codes, d.train_y[train_idx],
                                                                            overall=False)).items()}
        out.update({f"best_h1_{k}": v for k, v in flattening(singular_values(first, labels, overall=False)).items()})
        if cfg.plots and dist.is_main():
            from mixsuite.analysis import plot_spectra

            plot_spectra({cfg.method: spectra}, self.engine.run_dir / "bottleneck_spectra.png",
                         f"MNIST bottleneck {cfg.bottleneck}, {cfg.method}, seed {cfg.seed}")
        return out
