"""timm's Mixup/CutMix recipe with mixsuite's Mixup: the one-line swap, in a timm training loop.

    python examples/timm_mixup_swap.py --model resnet18 --epochs 10    # $MIXSUITE_DATA/cifar10_jpeg, or random data
    python examples/timm_mixup_swap.py --smoke

`mixsuite.mixing.Mixup` takes timm's arguments and gives timm's mixed inputs and soft targets for the same draws;
only the import changes (and the draws come from a torch.Generator, not numpy's global state).
"""
import argparse

import timm
import torch

# from timm.data import Mixup                    # before
from mixsuite.mixing import Mixup, soft_cross_entropy   # after: the same arguments, the same outputs

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="resnet18")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--steps", type=int, default=50, help="steps per epoch on random images")
parser.add_argument("--smoke", action="store_true", help="a tiny model, 3 steps")
args = parser.parse_args()
if args.smoke:
    args.model, args.epochs, args.steps = "resnet10t", 1, 3
torch.manual_seed(0)

model = timm.create_model(args.model, num_classes=10)       # random weights: nothing is downloaded
mixup_fn = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, label_smoothing=0.1, num_classes=10,
                 generator=torch.Generator().manual_seed(0))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

for epoch in range(1, args.epochs + 1):
    model.train()
    for step in range(args.steps):
        x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))   # put your loader here
        x, y = mixup_fn(x, y)                                             # y: (16, 10) soft targets
        loss = soft_cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"Epoch: {epoch:03d}, Loss: {loss.item():.4f}")
