"""GraphMix (Verma et al., 2021) on Cora with PyTorch Geometric: a GCN and a fully-connected network that shares
its weights, the FCN trained with manifold mixup on a row subset (the labelled nodes, and the unlabelled nodes
with the GCN's sharpened predictions as targets). The mixing core without mixsuite's engine; needs the graph extra.

    python examples/graphmix_cora.py                 # $MIXSUITE_DATA/planetoid/Cora/raw/ind.cora.*
    python examples/graphmix_cora.py --smoke         # 5 epochs: seconds on a CPU
"""
import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch_geometric.datasets import Planetoid
from torch_geometric.nn import GCNConv
from torch_geometric.transforms import NormalizeFeatures

from mixsuite.mixing import ManifoldMixup

parser = argparse.ArgumentParser()
parser.add_argument("--data", type=Path, default=Path(os.environ.get("MIXSUITE_DATA", "data")))
parser.add_argument("--epochs", type=int, default=300)
parser.add_argument("--alpha", type=float, default=1.0)
parser.add_argument("--gamma", type=float, default=1.0, help="weight of the FCN's mixup losses")
parser.add_argument("--ramp", type=int, default=100, help="epochs over which the unlabelled nodes' weight rises to gamma")
parser.add_argument("--smoke", action="store_true")
args = parser.parse_args()
if args.smoke:
    args.epochs = 5
torch.manual_seed(0)

raw = args.data / "planetoid" / "Cora" / "raw"
if not raw.is_dir():
    sys.exit(f"{raw} not found: set MIXSUITE_DATA (or --data) to the folder holding planetoid/Cora/raw/")
work = Path(tempfile.mkdtemp())            # Planetoid writes its processed files beside the raw ones
shutil.copytree(raw, work / "Cora" / "raw")
data = Planetoid(str(work), "Cora", transform=NormalizeFeatures())[0]
labelled, unlabelled = data.train_mask.nonzero().view(-1), (~data.train_mask).nonzero().view(-1)


class GraphMix(nn.Module):
    """Two GCN layers; `fcn` runs the same weights without the graph (hidden layer: `hidden`)."""

    def __init__(self, d_in, d_hidden, n_classes):
        super().__init__()
        self.conv1, self.conv2 = GCNConv(d_in, d_hidden), GCNConv(d_hidden, n_classes)
        self.hidden = nn.Identity()   # the FCN's mixing point

    def forward(self, x, edge_index):
        h = F.dropout(F.relu(self.conv1(F.dropout(x, 0.5, self.training), edge_index)), 0.5, self.training)
        return self.conv2(h, edge_index)

    def fcn(self, x):
        h = self.hidden(F.relu(self.conv1.lin(F.dropout(x, 0.5, self.training)) + self.conv1.bias))
        return self.conv2.lin(F.dropout(h, 0.5, self.training)) + self.conv2.bias


model = GraphMix(data.num_features, 16, int(data.y.max()) + 1)
mixer = ManifoldMixup(model, layers=["hidden"], alpha=args.alpha, generator=torch.Generator().manual_seed(0))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)


def mixed_fcn_loss(rows, targets, consistency=False):
    """Manifold mixup of the FCN's hidden states among `rows` only (the other rows pass through): soft
    cross-entropy on the mixed targets, or, for predicted targets, the squared error of the probabilities."""
    with mixer.step(data.num_nodes, rows=rows) as plan:
        out = model.fcn(data.x)[rows]
    mixed = plan.mix_targets(targets)[rows]   # lam * t + (1 - lam) * t[perm] on the same rows
    if consistency:
        return F.mse_loss(out.softmax(-1), mixed)
    return -(mixed * out.log_softmax(-1)).sum(-1).mean()


def train(epoch):
    model.train()
    with torch.no_grad():   # targets of the unlabelled nodes: the GCN's mean prediction, sharpened (T = 0.1)
        p = torch.stack([model(data.x, data.edge_index).softmax(-1) for _ in range(2)]).mean(0) ** 10
        targets = p / p.sum(-1, keepdim=True)
        targets[labelled] = F.one_hot(data.y[labelled], targets.size(1)).float()
    gcn = F.cross_entropy(model(data.x, data.edge_index)[labelled], data.y[labelled])
    ramp = min(1.0, epoch / args.ramp)   # the GCN's predictions are worth little as targets at first
    loss = gcn + args.gamma * (mixed_fcn_loss(labelled, targets) + ramp * mixed_fcn_loss(unlabelled, targets, True))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@torch.no_grad()
def test():
    model.eval()
    pred = model(data.x, data.edge_index).argmax(-1)
    return [float((pred[m] == data.y[m]).float().mean()) for m in (data.train_mask, data.val_mask, data.test_mask)]


for epoch in range(1, args.epochs + 1):
    loss = train(epoch)
    train_acc, val_acc, test_acc = test()
    if epoch % 10 == 0 or epoch == args.epochs or args.smoke:
        print(f"Epoch: {epoch:03d}, Loss: {loss:.4f}, Train: {train_acc:.4f}, Val: {val_acc:.4f}, Test: {test_acc:.4f}")
shutil.rmtree(work)
