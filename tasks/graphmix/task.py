"""GraphMix node classification on Planetoid (Verma et al., AAAI 2021), after the paper's code.

Each epoch flips a coin between
  (a) the FCN mixup step: targets for unlabelled nodes are the mean of K dropout GNN predictions, sharpened;
      manifold mixup in the FCN's hidden layer among the labelled nodes (supervised loss) and among as many
      sampled unlabelled nodes (unsupervised loss, weighted by a ramp); both with BCE on softmax;
  (b) the plain GNN step on the labelled nodes.
The FCN shares the GNN's weights. Reported: test accuracy at the epoch of best validation accuracy.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, ClassVar

import torch
import torch.nn.functional as F

from mixsuite.analysis import expected_calibration_error
from mixsuite.config import (RunConfig, added_field, at_least, between, each, non_negative, one_of, positive,
                             probability)
from mixsuite.mixing import Method, MixingConfig, bce_on_softmax, mixer_from_config, one_hot
from mixsuite.task import Task

from .data import NAMES, load_planetoid
from .model import build_model
from .official import in_place_mix_plan, rescale_as_aliased_ema
from .sparse import DRAWS, Propagation, SparseFeatures
from .targets import consistency_weight, predicted_targets

METHODS = {"gcn": Method("erm", model="gcn"), "graphmix": Method("manifold", model="gcn"),
           "gat": Method("erm", model="gat"), "graphmix-gat": Method("manifold", model="gat")}
DEFAULT_GAMMA = {"cora": 10.0, "citeseer": 10.0, "pubmed": 1.0}
GCN_HIDDEN = 16


def _draws_before(cfg) -> str:
    """The draws the code made before dropout_draws existed: float64 for the GCN methods; the GAT methods' are
    their layers' own, whatever the field says."""
    return "float64" if METHODS[cfg.method].model == "gcn" else cfg.dropout_draws


@dataclass
class GraphMixConfig(MixingConfig, RunConfig):
    dataset: Annotated[str, one_of(NAMES, ignore_case=True)] = "cora"   # cora | citeseer | pubmed
    method: Annotated[str, one_of(METHODS)] = "graphmix"                # gcn | graphmix | gat | graphmix-gat
    epochs: int = 2000
    alpha: float = 1.0                    # lambda ~ Beta(alpha, alpha), one per mixup call
    mix_layers: Annotated[list[str], each(one_of("hidden"))] = added_field(["hidden"])   # the FCN's hidden layer
    lr: Annotated[float, positive] = 0.01
    weight_decay: Annotated[float, non_negative] = 5e-4
    hidden: Annotated[int, positive] = GCN_HIDDEN
    input_dropout: Annotated[float, probability] = 0.5
    dropout: Annotated[float, probability] = 0.0   # hidden dropout (the paper's run scripts use 0)
    attention_dropout: Annotated[float, between(0, 1, allow=(-1.0,))] = -1.0
    #                                     GAT only: dropout on the attention coefficients; -1: the same as dropout
    k_passes: Annotated[int, at_least(1)] = 10   # dropout predictions averaged for the unlabelled targets
    temperature: Annotated[float, positive] = 0.1   # sharpening
    gamma: float = -1.0                   # weight of the unsupervised mixup loss; < 0: 10 (Cora, CiteSeer), 1 (PubMed)
    target_dropout: bool = True           # dropout on in the k target passes (false: the official code's eval mode)
    gnn_step_dropout: bool = True         # input dropout in the plain GNN step (false: the official code's eval mode)
    aliased_ema: bool = False             # rescale the weights each epoch as the official code's aliased EMA does
    per_draw_targets: bool = added_field(False)  # an unlabelled node drawn twice: one hidden state (its last draw's
                                          # partner) but each draw's target with its own, as the official in-place mix
    dropout_draws: Annotated[str, one_of(DRAWS)] = added_field("bits", before=_draws_before)
    #                                     GCN methods' input dropout masks: bits (7 random bits a non-zero; the
    #                                     default once its 100-seed check passed, results/graphmix.md) | float64
    #                                     (the draws of F.dropout: the stream of the records made before it and of
    #                                     the official code); the GAT methods' layers draw their own
    batch_target_passes: bool = added_field(False)   # GAT methods: the k target passes as one pass over k copies of
    #                                     the graph, on the same draws (on CPU the same numbers, but slower)
    binary_features: bool = added_field(False)  # every non-zero feature set to 1 before row normalisation, as
                                          # the official loader; changes PubMed only (Cora, CiteSeer are binary)
    ramp_start: Annotated[int, non_negative] = 500
    ramp_length: Annotated[int, non_negative] = 500
    download: bool = False                # let torch_geometric fetch missing raw files
    checkpoint_every: int = 200
    log_every: int = 100

    method_table: ClassVar[dict[str, Method]] = METHODS

    def check(self) -> list[str]:
        found = super().check()
        if METHODS[self.method].model == "gcn" and self.attention_dropout >= 0:
            found.append(f"attention_dropout={self.attention_dropout} is for the GAT methods (gat, graphmix-gat); "
                         f"{self.method} has no attention: leave it out or use dropout / input_dropout")
        if METHODS[self.method].model == "gat" and self.dropout_draws != "bits":
            found.append(f"dropout_draws={self.dropout_draws} is for the GCN methods (gcn, graphmix); the GAT "
                         "layers draw their own dropout: leave it out")
        if METHODS[self.method].model == "gcn" and self.batch_target_passes:
            found.append("batch_target_passes=true is for the GAT methods (gat, graphmix-gat): the GCN methods' k "
                         "passes are one product already; leave it out")
        if self.per_sample_lambda and self.per_draw_targets:
            found.append("per_sample_lambda: the official in-place mix (per_draw_targets) draws one lambda per "
                         "mixup call; use one of the two")
        return found


def mixed_rows(plan, targets: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """`plan.mix_targets(targets)[rows]` without writing the mix into every row: a row listed twice is mixed
    with the same partner and lambda either way, so each listing reads the same value."""
    lam = plan.lam_like(targets, rows)
    return lam * targets[rows] + (1 - lam) * targets[plan.perm[rows]]


class GraphMixTask(Task):
    name = "graphmix"
    Config = GraphMixConfig
    primary_metric = "best_test_acc"      # test accuracy at the best validation epoch
    baseline_method = "gcn"
    select_metric = "val_acc"
    state_attrs = ("model", "optimizer")
    distributed = False                   # one full-graph step per epoch: nothing to split over processes

    def setup(self):
        cfg, eng = self.cfg, self.engine
        self.backbone, self.mixing = METHODS[cfg.method].model, METHODS[cfg.method].backend != "erm"
        if self.backbone == "gat" and (cfg.hidden, cfg.dropout) == (GCN_HIDDEN, 0.0):
            eng.log(f"note: {cfg.method} with the GCN's hidden={GCN_HIDDEN}, dropout=0; GAT's own settings are "
                    "in configs/graphmix/gat.yaml (-c configs/graphmix/gat.yaml)")
        graph = load_planetoid(eng.data_root, cfg.dataset, cfg.download, binary=cfg.binary_features)
        self.g = graph.to(eng.device)
        if self.backbone == "gcn":  # the fixed sparsity patterns, for fast products (sparse.py)
            self.features = SparseFeatures(self.g.x, draws=cfg.dropout_draws)
            self.graph_input = Propagation(self.g.adj)
        else:
            self.features, self.graph_input = self.g.x, self.g.adj.to_sparse_coo().indices()
        self.test_logits = self.best_test_logits = None
        n = self.g.num_nodes
        labelled = torch.zeros(n, dtype=torch.bool, device=eng.device)
        labelled[self.g.train_idx] = True
        self.unlabelled = (~labelled).nonzero().squeeze(1)
        self.train_targets = one_hot(self.g.y[self.g.train_idx], self.g.num_classes)
        self.train_y, self.val_y, self.test_y = (self.g.y[i] for i in (self.g.train_idx, self.g.val_idx, self.g.test_idx))
        attention_dropout = cfg.attention_dropout if cfg.attention_dropout >= 0 else None
        self.model = build_model(self.backbone, self.g.x.shape[1], cfg.hidden, self.g.num_classes, cfg.input_dropout,
                                 cfg.dropout, attention_dropout, cfg.batch_target_passes).to(eng.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.mixer = mixer_from_config(cfg, None, eng)
        self.coin = eng.generator("coin")
        self.gamma = cfg.gamma if cfg.gamma >= 0 else DEFAULT_GAMMA[cfg.dataset.lower()]
        self.train_loader = (self.g,)   # one full-graph step an epoch

    def on_train_epoch_start(self, epoch):
        if self.cfg.aliased_ema and epoch > 1:  # the official update after the previous epoch (0-based epoch - 2)
            rescale_as_aliased_ema(self.model, epoch - 2)
        if not self.model.training:   # (a mode switch walks every submodule; the GCN evaluates without one)
            self.model.train()
        self.epoch_now = epoch   # the consistency weight's ramp

    def train_epoch(self, epoch):
        """One full-graph step: the engine's default epoch without its sums over batches (a dozen tensor
        operations an epoch here); the same numbers (the loss read as a float64, as those sums read it)."""
        t0 = time.time()
        self.on_train_epoch_start(epoch)
        logs = self.training_step(self.g)
        self.engine.step(logs["loss"], self.optimizer, check=False)   # the engine checks the epoch's loss
        out = {"loss": float(logs["loss"].detach()), "fcn_step": logs["fcn_step"]}
        return self.on_train_epoch_end(epoch, out, 1, time.time() - t0)

    def training_step(self, graph):
        fcn_step = self.mixing and int(torch.randint(2, (1,), generator=self.coin)) == 0
        loss = self.fcn_mixup_loss(self.epoch_now) if fcn_step else self.gnn_loss()
        return {"loss": loss, "fcn_step": float(fcn_step)}

    def gnn_loss(self):
        if not self.cfg.gnn_step_dropout:
            self.model.eval()
        logits = self.model(self.features, self.graph_input)
        if not self.cfg.gnn_step_dropout:
            self.model.train()
        return F.cross_entropy(logits[self.g.train_idx], self.train_y)

    def fcn_mixup_loss(self, epoch):
        cfg, g = self.cfg, self.g
        targets = predicted_targets(self.model, self.features, self.graph_input, cfg.k_passes, cfg.temperature,
                                    cfg.target_dropout)
        targets[g.train_idx] = self.train_targets
        pick = torch.randint(len(self.unlabelled), (len(g.train_idx),), generator=self.mixer.generator)
        unlabelled = self.unlabelled[pick.to(g.x.device)]
        losses = []
        for rows in (g.train_idx, unlabelled):
            if cfg.per_draw_targets:  # the same random draws, paired per draw instead of per node
                draws = self.mixer.draw(len(rows), device=g.x.device)
                plan, mixed_targets = in_place_mix_plan(draws, rows, g.num_nodes), draws.mix_targets(targets[rows])
            else:
                plan = self.mixer.draw(g.num_nodes, rows=rows, device=g.x.device)
                mixed_targets = mixed_rows(plan, targets, rows)
            logits = self.model.fcn(self.features, plan, rows=rows)
            losses.append(bce_on_softmax(logits, mixed_targets))
        weight = consistency_weight(epoch, self.gamma, cfg.ramp_start, cfg.ramp_length)
        return losses[0] + weight * losses[1]

    @torch.no_grad()
    def evaluate(self, epoch):
        """Every epoch: validation accuracy, test accuracy and NLL (classification_metrics' numbers, read in one
        conversion); the test ECE (15 bins, the costly one) only at the last epoch, and the best epoch's from its
        logits in finish()."""
        if self.backbone == "gcn":
            logits = self.model.predict(self.features, self.graph_input)   # eval mode's, without switching
        else:
            self.model.eval()
            logits = self.model(self.features, self.graph_input)
        g = self.g
        self.test_logits = logits.index_select(0, g.test_idx)
        val_acc, test_acc, test_nll = torch.stack([
            (logits.index_select(0, g.val_idx).argmax(-1) == self.val_y).float().mean(),
            (self.test_logits.argmax(-1) == self.test_y).float().mean(),
            F.cross_entropy(self.test_logits, self.test_y)]).tolist()
        out = {"val_acc": val_acc, "test_acc": test_acc, "test_err": 100.0 * (1 - test_acc), "test_nll": test_nll}
        if epoch == self.cfg.epochs:
            out["test_ece"] = expected_calibration_error(self.test_logits.softmax(-1), self.test_y)
        return out

    def on_best(self, epoch):
        self.best_test_logits = self.test_logits

    def finish(self):
        if self.best_test_logits is None:
            return {}
        probs = self.best_test_logits.float().softmax(-1)
        return {"best_test_ece": expected_calibration_error(probs, self.g.y[self.g.test_idx])}

    def state_dict(self):
        return {**super().state_dict(), "best_test_logits": self.best_test_logits}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.best_test_logits = state.get("best_test_logits")
