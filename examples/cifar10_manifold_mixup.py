"""Manifold Mixup on CIFAR-10 in a plain PyTorch loop: the mixing core without mixsuite's engine.

    python examples/cifar10_manifold_mixup.py --epochs 30             # $MIXSUITE_DATA/cifar10_jpeg/cifar10_jpeg.npz
    python examples/cifar10_manifold_mixup.py --smoke                 # 1,000 images, one epoch: seconds on a CPU
"""
import argparse
import io
import os
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from mixsuite.mixing import ManifoldMixup

parser = argparse.ArgumentParser()
parser.add_argument("--data", type=Path, default=Path(os.environ.get("MIXSUITE_DATA", "data")))
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--alpha", type=float, default=2.0)
parser.add_argument("--layers", default="input,layer1,layer2", help="the set S, comma-separated module names")
parser.add_argument("--width", type=int, default=64)
parser.add_argument("--smoke", action="store_true", help="1,000 training and 500 test images, one epoch")
args = parser.parse_args()
if args.smoke:
    args.epochs, args.width = 1, 16
torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load(split, limit=None):
    """The JPEG copy: each image's bytes, back to back, and where each one starts."""
    path = args.data / "cifar10_jpeg" / "cifar10_jpeg.npz"
    if not path.is_file():
        sys.exit(f"{path} not found: set MIXSUITE_DATA (or --data) to the folder holding cifar10_jpeg/")
    with np.load(path) as npz:
        jpeg, offsets, labels = npz[f"{split}_jpeg"], npz[f"{split}_offsets"], npz[f"{split}_labels"]
    keep = np.random.default_rng(0).permutation(len(labels))[:limit] if limit else np.arange(len(labels))
    images = [np.asarray(Image.open(io.BytesIO(jpeg[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB")) for i in keep]
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    return (x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True), torch.from_numpy(labels[keep]).long()


def block(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.MaxPool2d(2))


w = args.width
model = nn.Sequential(OrderedDict(layer1=block(3, w), layer2=block(w, 2 * w), layer3=block(2 * w, 4 * w),
                                  head=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, 10))))
model = model.to(device)
train_x, train_y = load("train", 1000 if args.smoke else None)
test_x, test_y = load("test", 500 if args.smoke else None)
mixer = ManifoldMixup(model, layers=args.layers.split(","), alpha=args.alpha,
                      generator=torch.Generator().manual_seed(0))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)


def train():
    model.train()
    total = 0.0
    for idx in torch.randperm(len(train_x)).split(128):
        x, y = train_x[idx].to(device), train_y[idx].to(device)
        x = torch.where(torch.rand(len(x), 1, 1, 1, device=device) < 0.5, x, x.flip(3))   # random flips
        with mixer.step(len(x), device=device) as plan:   # a layer of S, lambda ~ Beta(alpha, alpha), a pairing
            out = model(x)
        loss = plan.mix_loss(F.cross_entropy, out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x)
    scheduler.step()
    return total / len(train_x)


@torch.no_grad()
def test():
    model.eval()
    correct = sum((model(x.to(device)).argmax(1).cpu() == y).sum().item()
                  for x, y in zip(test_x.split(500), test_y.split(500)))
    return correct / len(test_y)


for epoch in range(1, args.epochs + 1):
    loss = train()
    print(f"Epoch: {epoch:03d}, Loss: {loss:.4f}, Test: {test():.4f}")
