"""Spirals: reproduce the blog's Figure 1 and measure what it claims.

ERM vs input mixup vs manifold mixup on two interlocked spirals with few labelled points. Claims checked:
the decision boundary lies farther from the data, the model is uncertain away from the data, and the
training points' hidden states concentrate.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from mixsuite import dist
from mixsuite.analysis import (class_spread, classification_metrics, plot_spectra, singular_values,
                               spectrum_summary)
from mixsuite.config import RunConfig, at_least, drawing_field, non_negative, one_of, positive
from mixsuite.mixing import MIXERS, MixingConfig, mixer_from_config
from mixsuite.task import Task

from .beside import train_beside
from .data import make_spirals
from .maps import hidden_space_map, input_space_map, plot_figure1
from .model import SpiralNet


@dataclass
class SpiralsConfig(MixingConfig, RunConfig):
    dataset: Annotated[str, one_of("spirals")] = "spirals"
    method: Annotated[str, one_of(MIXERS)] = "manifold"   # erm | input | manifold (any registered mixing backend)
    alpha: float = 2.0
    mix_layers: list[str] = field(default_factory=lambda: ["hidden1", "hidden2", "bottleneck"])
    per_sample_lambda: bool = False          # a plain field here (in the hash): spirals had it from the start
    epochs: int = 100
    n_train_per_class: Annotated[int, positive] = 50    # few labelled points, as in the blog
    n_test_per_class: Annotated[int, positive] = 500
    noise: Annotated[float, non_negative] = 0.02
    turns: Annotated[float, positive] = 1.5
    data_seed: int = 0                       # the same spirals for every seed; `seed` varies the training
    repeats: Annotated[int, at_least(1)] = 25   # passes over the training set per epoch
    batch_size: Annotated[int, positive] = 50
    width: Annotated[int, positive] = 128
    lr: Annotated[float, positive] = 3e-3
    weight_decay: Annotated[float, non_negative] = 0.0
    grid: Annotated[int, at_least(2)] = 200  # resolution of the decision maps
    plots: bool = True
    # Figure 1 draws this method's maps beside the run's (trained for the figure alone; null: the run's only).
    beside: Annotated[str | None, one_of(MIXERS)] = drawing_field("erm")
    log_every: int = 10                      # a line every 10 epochs (a progress bar in between on a terminal)
    # `--seeds ...` trained S at a time as one stacked model (mixsuite.stacked): each seed's numbers as its own run's
    seeds_batch: Annotated[int, at_least(1)] = 1

    def check(self) -> list[str]:
        found = super().check()
        if self.seeds_batch > 1:
            from .stacked import POINTS

            off = [layer for layer in self.mixing_layers() if layer not in POINTS]
            if off and self.mixes():
                found.append(f"seeds_batch: stacked seeds mix at {', '.join(POINTS)}, not at {', '.join(off)}")
            if self.per_sample_lambda or self.pairing != "permutation":
                found.append("seeds_batch: stacked seeds mix with one lambda a batch and a permutation "
                             "(per_sample_lambda=false, pairing=permutation)")
        return found


class SpiralsTask(Task):
    name = "spirals"
    Config = SpiralsConfig
    primary_metric = "test_acc"
    baseline_method = "erm"
    state_attrs = ("net", "optimizer")
    beside_net = None   # the figure's contrast model when trained already (with the other seeds: seeds_batch)

    @staticmethod
    def stacked_trainer(tasks):
        from .stacked import StackedSpirals

        return StackedSpirals(tasks)

    def setup(self):
        cfg, eng = self.cfg, self.engine
        self.train_x, self.train_y = make_spirals(cfg.n_train_per_class, turns=cfg.turns, noise=cfg.noise,
                                                  seed=cfg.data_seed)
        self.test_x, self.test_y = make_spirals(cfg.n_test_per_class, turns=cfg.turns, noise=cfg.noise,
                                                seed=cfg.data_seed + 1)
        n = len(self.train_x)
        idx = torch.arange(n).repeat(cfg.repeats)
        self.train_loader = eng.loader(TensorDataset(self.train_x[idx], self.train_y[idx]), cfg.batch_size)
        self.net = SpiralNet(cfg.width)
        self.model = eng.prepare(self.net)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.mixer = mixer_from_config(cfg, self.net, eng)

    def training_step(self, batch):
        x, y = batch
        with self.mixer.step(len(x), device=x.device) as plan, self.engine.autocast():
            out = self.model(x)
        return {"loss": plan.mix_loss(lambda o, t: F.cross_entropy(o, t, reduction="none"), out, y)}

    def extension_problem(self, old_epochs: int) -> str | None:
        return None   # Adam at a constant lr, evaluated every epoch: a longer run passes through the shorter one

    @torch.no_grad()
    def evaluate(self, epoch):
        self.net.eval()
        logits = self.net(self.test_x.to(self.engine.device)).cpu()
        return classification_metrics(logits, self.test_y, prefix="test_")

    @torch.no_grad()
    def finish(self):
        cfg, net = self.cfg, self.net.cpu().eval()
        codes = net.encode(self.train_x)
        in_map = input_space_map(net, self.train_x, cfg.grid)
        hid_map = hidden_space_map(net.head, codes, cfg.grid)
        spectra = singular_values(net.encode(self.test_x), self.test_y)
        metrics = {"boundary_distance": in_map["boundary_distance"], "uncertain_share": in_map["uncertain_share"],
                   # spread of each class's training encodings relative to the spread of all of them
                   "hidden_class_spread": class_spread(codes, self.train_y),
                   **spectrum_summary(spectra, prefix="bottleneck_sv_")}
        if self.draws_figure():
            title = cfg.method_label() + (f" (alpha={cfg.alpha})" if cfg.method != "erm" else "") + f", seed {cfg.seed}"
            rows = [{"label": cfg.method_label(), "in_map": in_map, "hid_map": hid_map, "train_x": self.train_x,
                     "codes": codes}]
            if self.draws_beside():   # the contrast, the other method first
                other = self.beside_net
                if other is None:
                    other = train_beside(cfg, self.train_x, self.train_y)
                other_codes = other.encode(self.train_x)
                rows.insert(0, {"label": cfg.beside, "in_map": input_space_map(other, self.train_x, cfg.grid),
                                "hid_map": hidden_space_map(other.head, other_codes, cfg.grid),
                                "train_x": self.train_x, "codes": other_codes})
                title = f"{cfg.beside} beside {title}"
            plot_figure1(rows, self.train_y, self.engine.run_dir / "figure1.png", title)
            plot_spectra({cfg.method: spectra}, self.engine.run_dir / "bottleneck_spectra.png", title)
        net.to(self.engine.device)
        return metrics

    def draws_figure(self) -> bool:
        return self.cfg.plots and self.engine.run_dir is not None and dist.is_main()   # one copy under torchrun

    def draws_beside(self) -> bool:
        return self.draws_figure() and self.cfg.beside is not None and self.cfg.beside != self.cfg.method

