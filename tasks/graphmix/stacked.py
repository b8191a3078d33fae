"""GraphMix(GCN) seeds as a batch dimension: S seeds trained as one stacked model (`train_stacked`).

Each seed keeps what its own run has: its initialisation (the global generator seeded as the engine seeds it, the
model built as `setup` builds it), its dropout masks (that generator's state after the build, a generator of its
own), its coin and mixer generators (the engine's, from its seed), its best epoch. The weights are stacked along a
leading seed axis, (S, out, in), under one Adam (elementwise: each seed's update is its own run's). `vmap` has no
rule for sparse products, so the seeds are stacked by hand: the features' product as one block-diagonal CSR over the
seeds' dropped copies, the propagation as adj @ h with the seeds side by side, (N, S * channels).

Each epoch every seed flips its own coin; the seeds on the FCN step and those on the GNN step are computed as two
stacks, their losses summed (a seed's gradient is its own loss's). The FCN's first layer runs over every row (the
task runs it over the rows the mix reads: the same values there, and zero gradient elsewhere), and the mix is
written into the hidden rows and read back as the task's is (a row drawn twice then gets its gradient as there).

S = 1 gives the per-seed run's numbers (tests/test_graphmix_stacked.py); for S > 1 a seed's numbers can differ in the
last bits where a batched product sums in another order. Covered: methods gcn and graphmix with the default
switches (hidden dropout 0, dropout in the target passes and the GNN step, no aliased EMA, one lambda a call).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mixsuite.analysis import expected_calibration_error
from mixsuite.checkpoint import seed_everything
from mixsuite.engine import Engine
from mixsuite.mixing import bce_on_softmax, mixer_from_config, one_hot

from .data import load_planetoid
from .model import build_model
from .sparse import Pattern, Propagation, SparseFeatures, _PatternLinear, _Propagate
from .targets import class_softmax, consistency_weight, sharpen


def unsupported(cfg) -> list[str]:
    """Why `cfg` cannot be trained stacked (empty: it can)."""
    found = []
    if cfg.method not in ("gcn", "graphmix"):
        found.append(f"method={cfg.method} (stacked seeds cover gcn and graphmix)")
    for key, value in (("dropout", 0.0), ("target_dropout", True), ("gnn_step_dropout", True), ("aliased_ema", False),
                       ("per_draw_targets", False), ("per_sample_lambda", False), ("mix_prob", 1.0)):
        if getattr(cfg, key) != value:
            found.append(f"{key}={getattr(cfg, key)} (stacked seeds need {value})")
    return found


class Blocks:
    """A CSR pattern's block-diagonal of `most` copies, whose first k copies are read off as a prefix: the seeds on
    a step vary in number by epoch, and a pattern for each number would not fit in memory at S = 100."""

    def __init__(self, pattern: Pattern, most: int, transpose: bool = True):
        self.full, self.one = pattern.block_diagonal(most), pattern
        self.t = self.full.transpose if transpose else None

    def first(self, k: int) -> Pattern:
        (rows, cols), nnz = self.one.shape, self.one.nnz
        crow, col = self.full._indices   # int32 already: the prefixes are views
        p = Pattern(crow[:k * rows + 1], col[:k * nnz], (k * rows, k * cols))
        if self.t is not None:   # the transpose of a block-diagonal's prefix is the prefix of its transpose
            (t, order), (t_crow, t_col) = self.t, self.t[0]._indices
            p.__dict__["transpose"] = (Pattern(t_crow[:k * cols + 1], t_col[:k * nnz], (k * cols, k * rows)),
                                       order[:k * nnz])
        return p


class StackedGCN:
    """S seeds' SharedGCN weights stacked, with each seed's generators."""

    def __init__(self, task_cls, cfgs: list, runs_dir):
        from pathlib import Path

        cfg = cfgs[0]
        self.engines = [Engine(task_cls, c, runs_dir=Path(runs_dir)) for c in cfgs]
        self.device = self.engines[0].device
        g = load_planetoid(self.engines[0].data_root, cfg.dataset, cfg.download, binary=cfg.binary_features)
        self.g = g.to(self.device)
        self.features, self.prop = SparseFeatures(self.g.x, draws=cfg.dropout_draws), Propagation(self.g.adj)
        n, classes = self.g.num_nodes, self.g.num_classes
        w1, w2, self.masks = [], [], []
        for c in cfgs:   # each seed's build on its own global stream, then that stream as its masks' generator
            seed_everything(c.seed)
            model = build_model("gcn", self.g.x.shape[1], c.hidden, classes, c.input_dropout, c.dropout).to(self.device)
            w1.append(model.conv1.lin.weight.detach())
            w2.append(model.conv2.lin.weight.detach())
            self.masks.append(torch.Generator().manual_seed(0))
            self.masks[-1].set_state(torch.get_rng_state())
        self.w1 = torch.stack(w1).requires_grad_()   # (S, hidden, features)
        self.w2 = torch.stack(w2).requires_grad_()   # (S, classes, hidden)
        self.optimizer = torch.optim.Adam([self.w1, self.w2], lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.coins = [e.generator("coin") for e in self.engines]
        self.mixers = [mixer_from_config(c, None, e) for c, e in zip(cfgs, self.engines)]
        labelled = torch.zeros(n, dtype=torch.bool, device=self.device)
        labelled[self.g.train_idx] = True
        self.unlabelled = (~labelled).nonzero().squeeze(1)
        self.train_targets = one_hot(self.g.y[self.g.train_idx], classes)
        self.train_y, self.val_y, self.test_y = (self.g.y[i] for i in (self.g.train_idx, self.g.val_idx, self.g.test_idx))
        self.p = cfg.input_dropout
        self.blocks = {1: Blocks(self.features.pattern, len(cfgs))}
        if cfg.k_passes > 1:   # the target passes: no gradient, no transpose
            self.blocks[cfg.k_passes] = Blocks(self.features.pattern.stacked(cfg.k_passes), len(cfgs), transpose=False)

    def first_layer(self, values: torch.Tensor, seeds: torch.Tensor, passes: int = 1) -> torch.Tensor:
        """relu-less x @ W1_s.T for the seeds `seeds`, `values` (len(seeds), passes, nnz) their dropped copies:
        (len(seeds) * passes * N, hidden), seed-major, one block-diagonal product."""
        k = len(seeds)
        pattern = self.blocks[passes].first(k)
        weight = self.w1[seeds].permute(1, 0, 2).reshape(self.w1.shape[1], -1)   # (hidden, k * features)
        return _PatternLinear.apply(values.reshape(-1), weight, pattern)

    def propagate(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """adj @ h_s for k stacked (k * N, c) blocks, as one product over (N, k * c)."""
        n = self.g.num_nodes
        side = h.view(k, n, -1).permute(1, 0, 2).reshape(n, -1)
        out = _Propagate.apply(side, self.prop.adj, self.prop.adj_t) if side.requires_grad else self.prop(side)
        return out.view(n, k, -1).permute(1, 0, 2).reshape(k * n, -1)

    def second_layer(self, h: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        """h_s @ W2_s.T for (k, rows, hidden) -> (k, rows, classes)."""
        if len(seeds) == 1:   # the per-seed run's F.linear
            return F.linear(h[0], self.w2[seeds[0]]).unsqueeze(0)
        return torch.bmm(h, self.w2[seeds].transpose(1, 2))

    def gcn(self, values: torch.Tensor, seeds: torch.Tensor, passes: int = 1) -> torch.Tensor:
        """(len(seeds) * passes, N, classes) logits of the GCN on the dropped copies `values`."""
        k, n = len(seeds) * passes, self.g.num_nodes
        h = F.relu(self.propagate(self.first_layer(values, seeds, passes), k))
        if passes == 1:
            logits = self.second_layer(h.view(len(seeds), n, -1), seeds)
        else:
            logits = self.second_layer(h.view(len(seeds), passes * n, -1), seeds)
        return self.propagate(logits.reshape(k * n, -1), k).view(k, n, -1)

    def dropped(self, seeds: list[int], passes: int) -> torch.Tensor:
        return torch.stack([self.features.dropped_values(self.p, passes, self.masks[s]) for s in seeds])

    def targets(self, seeds: list[int], cfg) -> torch.Tensor:
        """(k, N, classes): each seed's mean of K dropout predictions, sharpened, the labelled rows one-hot."""
        k, passes = len(seeds), cfg.k_passes
        with torch.no_grad():
            logits = self.gcn(self.dropped(seeds, passes), torch.tensor(seeds), passes)
            probs = class_softmax(logits.reshape(k * passes * self.g.num_nodes, -1)).view(k, passes, self.g.num_nodes, -1)
            p = probs[:, 0]
            for i in range(1, passes):   # in pass order, as the task sums them
                p = p + probs[:, i]
            targets = sharpen(p / passes, cfg.temperature)
        targets[:, self.g.train_idx] = self.train_targets
        return targets

    def fcn_losses(self, seeds: list[int], cfg, epoch: int, gamma: float) -> torch.Tensor:
        g, n, k = self.g, self.g.num_nodes, len(seeds)
        targets = self.targets(seeds, cfg)
        plans = []
        for s in seeds:   # each seed's draws, in its run's order
            mixer = self.mixers[s]
            pick = torch.randint(len(self.unlabelled), (len(g.train_idx),), generator=mixer.generator)
            unlabelled = self.unlabelled[pick.to(self.device)]
            plans.append([(rows, mixer.draw(n, rows=rows, device=self.device)) for rows in (g.train_idx, unlabelled)])
        values = [torch.stack([self.features.dropped_values(self.p, 1, self.masks[s]) for s in seeds])
                  for _ in range(2)]   # the labelled pass's masks, then the unlabelled one's (each seed's in order)
        offsets = torch.arange(k, device=self.device) * n
        losses = []
        for which in range(2):
            rows = torch.stack([p[which][0] for p in plans])                       # (k, R)
            partners = torch.stack([p[which][1].perm[p[which][0]] for p in plans])
            flat = F.relu(self.first_layer(values[which], torch.tensor(seeds)))   # (k * N, hidden), a pass apart
            lam = torch.stack([p[which][1].lam for p in plans]).view(k, 1, 1).to(flat.dtype)
            at, partner_at = (rows + offsets[:, None]).view(-1), (partners + offsets[:, None]).view(-1)
            mixed = lam * flat[at].view(k, -1, flat.shape[1]) + (1 - lam) * flat[partner_at].view(k, -1, flat.shape[1])
            read = flat.index_copy(0, at, mixed.reshape(-1, flat.shape[1]))[at].view(k, -1, flat.shape[1])
            logits = self.second_layer(read, torch.tensor(seeds))
            t = targets.reshape(k * n, -1)
            mixed_t = lam * t[at].view(k, -1, t.shape[1]) + (1 - lam) * t[partner_at].view(k, -1, t.shape[1])
            losses.append(torch.stack([bce_on_softmax(logits[i], mixed_t[i]) for i in range(k)]))
        return losses[0] + consistency_weight(epoch, gamma, cfg.ramp_start, cfg.ramp_length) * losses[1]

    def gnn_losses(self, seeds: list[int]) -> torch.Tensor:
        logits = self.gcn(self.dropped(seeds, 1), torch.tensor(seeds))
        return torch.stack([F.cross_entropy(logits[i, self.g.train_idx], self.train_y) for i in range(len(seeds))])

    @torch.no_grad()
    def evaluate(self) -> tuple[list[list[float]], torch.Tensor]:
        """Per seed [val_acc, test_acc, test_nll], and the test logits (S, test, classes)."""
        s = self.w1.shape[0]
        logits = self.gcn(self.features.values.expand(s, 1, -1), torch.arange(s))
        test = logits[:, self.g.test_idx]
        out = [torch.stack([(logits[i, self.g.val_idx].argmax(-1) == self.val_y).float().mean(),
                            (test[i].argmax(-1) == self.test_y).float().mean(),
                            F.cross_entropy(test[i], self.test_y)]).tolist() for i in range(s)]
        return out, test


def train_stacked(task_cls, cfgs: list, runs_dir) -> list[dict]:
    """Train the configs `cfgs` (one a seed, otherwise equal) as one stacked model; per seed the metrics its run's
    record holds (the last epoch's and the best validation epoch's, best_*)."""
    cfg = cfgs[0]
    problems = unsupported(cfg)
    if problems:
        raise ValueError("seeds_batch: " + "; ".join(problems))
    m = StackedGCN(task_cls, cfgs, runs_dir)
    gamma = cfg.gamma if cfg.gamma >= 0 else {"cora": 10.0, "citeseer": 10.0, "pubmed": 1.0}[cfg.dataset.lower()]
    mixing = cfg.method == "graphmix"
    best: list[dict] = [{} for _ in cfgs]
    best_logits = [None] * len(cfgs)
    for epoch in range(1, cfg.epochs + 1):
        coins = [mixing and int(torch.randint(2, (1,), generator=c)) == 0 for c in m.coins]
        fcn = [i for i, c in enumerate(coins) if c]
        gnn = [i for i, c in enumerate(coins) if not c]
        losses = torch.zeros(len(cfgs), device=m.device)
        if fcn:
            losses = losses.index_put((torch.tensor(fcn),), m.fcn_losses(fcn, cfg, epoch, gamma))
        if gnn:
            losses = losses.index_put((torch.tensor(gnn),), m.gnn_losses(gnn))
        losses.sum().backward()
        m.optimizer.step()
        m.optimizer.zero_grad(set_to_none=True)
        scores, test_logits = m.evaluate()
        for i, (val_acc, test_acc, test_nll) in enumerate(scores):
            if not best[i] or val_acc >= best[i]["val_acc"]:   # ties go to the later epoch
                best[i] = {"val_acc": val_acc, "test_acc": test_acc, "test_err": 100.0 * (1 - test_acc),
                           "test_nll": test_nll, "epoch": epoch}
                best_logits[i] = test_logits[i]
    results = []
    for i, (val_acc, test_acc, test_nll) in enumerate(scores):
        last = {"val_acc": val_acc, "test_acc": test_acc, "test_err": 100.0 * (1 - test_acc), "test_nll": test_nll,
                "test_ece": expected_calibration_error(test_logits[i].softmax(-1), m.test_y)}
        b = best[i]
        results.append({**last, **{f"best_{k}": v for k, v in b.items() if k != "epoch"}, "best_epoch": b["epoch"],
                        "best_test_ece": expected_calibration_error(best_logits[i].float().softmax(-1), m.test_y)})
    return results
