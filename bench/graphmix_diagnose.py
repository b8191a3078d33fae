"""Where a GraphMix run goes wrong: one seed, with what happens inside printed every N epochs.

    python bench/graphmix_diagnose.py --method graphmix-gat -c configs/graphmix/gat.yaml
    python bench/graphmix_diagnose.py --method graphmix                        # GCN, for contrast
    python bench/graphmix_diagnose.py --method graphmix-gat -c configs/graphmix/gat.yaml dropout=0.0 --seed 2

Trains exactly what `mixsuite run` trains (same seeds, same numbers: the probes save and restore the global
random state, so they do not change the run) and prints, per window of epochs:
  weight      the unsupervised loss weight gamma * ramp(epoch) at the window's end
  gnn_val     validation accuracy of the GNN (the model that is reported)
  fcn_val     validation accuracy of the parameter-shared FCN (no propagation)
  train       GNN accuracy on the labelled nodes
  target_val  accuracy of the predicted targets (K dropout passes, sharpened) on the validation nodes
  |W1|        Frobenius norm of the first layer's weight (shared by the GNN and the FCN)
  att_H       GAT only: mean entropy (nats) of the first layer's attention over each node's neighbours
  dW1 fcn/gnn mean Frobenius norm of one optimiser step's change of W1, in FCN mixup steps / plain GNN steps
Last line: one JSON object with the final window.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile

import torch

from _repo import ROOT  # noqa: E402  (first: the checkout's mixsuite importable)

from mixsuite.config import build_config  # noqa: E402
from mixsuite.engine import Engine  # noqa: E402
from mixsuite.task import resolve  # noqa: E402


def make_probed(task_cls, every: int, rows: list):
    from mixsuite.plugins.graphmix.targets import consistency_weight, predicted_targets  # loaded with the task

    class Probed(task_cls):
        def setup(self):
            super().setup()
            self.steps = []   # (fcn_step, |change of W1|) per epoch since the last probe
            rows.clear()

        def train_epoch(self, epoch):
            w1 = self.model.conv1.lin.weight
            before = w1.detach().clone()
            out = super().train_epoch(epoch)
            self.steps.append((out["fcn_step"], (w1.detach() - before).norm().item()))
            return out

        @torch.no_grad()
        def evaluate(self, epoch):
            out = super().evaluate(epoch)
            if epoch % every == 0:
                rng = torch.get_rng_state()   # the probes must not move the run's random stream
                weight = consistency_weight(epoch, self.gamma, self.cfg.ramp_start, self.cfg.ramp_length)
                rows.append({"epoch": epoch, "weight": weight, "gnn_val": out["val_acc"], **self.probe()})
                torch.set_rng_state(rng)
            return out

        def probe(self) -> dict:
            g, model, cfg = self.g, self.model, self.cfg
            model.eval()
            val, y = g.val_idx, g.y
            acc = lambda logits, idx: (logits[idx].argmax(-1) == y[idx]).float().mean().item()  # noqa: E731
            gnn = model(self.features, self.graph_input)
            targets = predicted_targets(model, self.features, self.graph_input, cfg.k_passes, cfg.temperature,
                                        cfg.target_dropout)   # leaves the model in eval mode, as it found it
            fcn_steps = [d for f, d in self.steps if f == 1.0]
            gnn_steps = [d for f, d in self.steps if f == 0.0]
            self.steps.clear()
            row = {"fcn_val": acc(model.fcn(self.features), val), "train": acc(gnn, g.train_idx),
                   "target_val": acc(targets, val), "|W1|": model.conv1.lin.weight.norm().item(),
                   "dW1 fcn": sum(fcn_steps) / max(len(fcn_steps), 1),
                   "dW1 gnn": sum(gnn_steps) / max(len(gnn_steps), 1)}
            if self.backbone == "gat":
                row["att_H"] = self.attention_entropy()
            return row

        def attention_entropy(self) -> float:
            from torch_geometric.utils import scatter

            _, (edges, alpha) = self.model.conv1(self.features, self.graph_input, return_attention_weights=True)
            h = -(alpha * alpha.clamp_min(1e-12).log())          # [edges, heads]
            per_node = scatter(h, edges[1], dim=0, dim_size=self.g.num_nodes, reduce="sum")
            return per_node.mean().item()

    return Probed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="key=value config overrides, as for mixsuite run")
    p.add_argument("-c", "--config", action="append", default=[], help="a YAML config file (repeatable)")
    p.add_argument("--method", default="graphmix-gat")
    p.add_argument("--dataset", default="cora")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1600)
    p.add_argument("--every", type=int, default=100)
    args = p.parse_args()
    os.environ.setdefault("MIXSUITE_DATA", str(ROOT.parent / "shared" / "data"))
    task = resolve(str(ROOT / "tasks" / "graphmix")).load()
    cfg = build_config(task.Config, args.config, [f"dataset={args.dataset}", f"method={args.method}",
                                                  f"seed={args.seed}", f"epochs={args.epochs}", "progress=false",
                                                  "log_every=100000", *args.overrides])
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(make_probed(task, args.every, rows), cfg, runs_dir=tmp, resume="never", log=lambda *a: None)
        engine.run()
    print(f"{args.method} on {args.dataset}, seed {args.seed}, gamma {engine.task.gamma}")
    cols = list(rows[0])
    print(" ".join(f"{c:>10}" for c in cols))
    for r in rows:
        print(" ".join(f"{r[c]:>10.4g}" if isinstance(r[c], float) else f"{r[c]:>10}" for c in cols))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}))


if __name__ == "__main__":
    main()
