"""Figure 1's contrast: the main job draws another method's decision maps beside this run's (ERM beside manifold
mixup, as the blog's figure does). That model trains here, on the same spirals with the same seed and settings;
only its maps are kept. The run's record holds this run's numbers alone: the other method's own are its own run's
(`method=erm`), which the figure's half equals up to the order of the batches."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from mixsuite.mixing import mixer_from_config

from .model import SpiralNet


def beside_parts(cfg) -> tuple:
    """What the contrast model trains with: (net, mixer, optimizer, generator), built as train_beside builds them."""
    other = replace(cfg, method=cfg.beside)
    g = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):   # the run's own global stream stays as it was
        torch.manual_seed(cfg.seed)
        net = SpiralNet(cfg.width)
    clock = SimpleNamespace(generator=lambda name, device="cpu": g, epoch=1, step_count=0)   # an engine's part a mixer reads
    mixer = mixer_from_config(other, net, clock)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return net, mixer, optimizer, g


def train_beside(cfg, train_x: torch.Tensor, train_y: torch.Tensor) -> SpiralNet:
    """A SpiralNet trained with `cfg.beside` (a mixing backend) instead of `cfg.method`, on the CPU."""
    net, mixer, optimizer, g = beside_parts(cfg)
    xs, ys = train_x.repeat(cfg.repeats, 1), train_y.repeat(cfg.repeats)
    net.train()
    with torch.enable_grad():   # called from the run's finish(), under no_grad
        _fit(net, mixer, optimizer, xs, ys, cfg, g)
    return net.eval()


def _fit(net, mixer, optimizer, xs, ys, cfg, g) -> None:
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(xs), generator=g).split(cfg.batch_size):
            with mixer.step(len(idx)) as plan:
                out = net(xs[idx])
            loss = plan.mix_loss(lambda o, t: F.cross_entropy(o, t, reduction="none"), out, ys[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
