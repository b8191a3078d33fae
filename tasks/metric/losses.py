"""The metric-learning losses, from pytorch-metric-learning (none written here), each a callable
`criterion(embeddings, labels) -> scalar` that mines its own tuples in the batch:

- `margin`: margin loss (Wu et al. 2017; beta 1.2, margin 0.2) on distance-weighted triplets (cut-off 0.5)
- `triplet`: triplet margin loss (margin 0.2) on the batch's semihard triplets
- `multisimilarity`: multi-similarity loss (alpha 2, beta 50, base 0.5) on its own miner's pairs (epsilon 0.1)
- `normsoftmax`: normalised softmax over learned class vectors (temperature 0.05), classification-based
- `proxyanchor`: Proxy-Anchor (margin 0.1, alpha 32), classification-based

rho-regularisation (Roth et al. 2020, `p_switch`), for the triplet-based ranking losses (margin, triplet):
each mined triplet (a, p, n) becomes, with probability p_switch, (a, a, j) for a random j != a of a's class.
The loss then pushes a same-class sample away from the anchor, spreading each class over more directions.
Roth et al. switch one triplet per anchor (their miner gives one); here every mined triplet is switched
independently, so with semihard mining a share p_switch of all triplets is switched. p_switch = 0 returns the
miner's triplets unchanged.

Randomness: the miners draw from torch's global generator; `criterion` runs them under a fork of it seeded
from the task's own generator, so a run and its resume mine the same tuples.
"""
from __future__ import annotations

import torch
from torch import nn

RANKING = ("margin", "triplet", "multisimilarity")
CLASSIFICATION = ("normsoftmax", "proxyanchor")
LOSSES = RANKING + CLASSIFICATION
SWITCHABLE = ("margin", "triplet")


def require_pml():
    try:
        import pytorch_metric_learning  # noqa: F401
    except ModuleNotFoundError:
        from mixsuite.errors import UserError

        raise UserError("the metric task needs pytorch-metric-learning: pip install 'mixsuite[metric]' "
                        "(or pip install pytorch-metric-learning==2.9.0)") from None


class RhoSwitch:
    """Wraps a triplet miner: each triplet (a, p, n) becomes (a, a, j), j a random other sample of a's class,
    with probability p_switch (anchors with no other sample of their class are never switched)."""

    def __init__(self, miner, p_switch: float, generator: torch.Generator):
        self.miner, self.p_switch, self.generator = miner, p_switch, generator

    def __call__(self, embeddings, labels):
        a, p, n = self.miner(embeddings, labels)
        if self.p_switch <= 0 or len(a) == 0:
            return a, p, n
        same = labels[:, None] == labels[None, :]
        same.fill_diagonal_(False)
        cpu = torch.device("cpu")
        coin = torch.rand(len(a), generator=self.generator, device=cpu).to(a.device) < self.p_switch
        coin &= same[a].any(1)
        # a random other member of a's class: argmax of uniform noise over the class mask
        noise = torch.rand(len(a), len(labels), generator=self.generator, device=cpu).to(embeddings.device)
        j = torch.where(same[a], noise, torch.full_like(noise, -1.0)).argmax(1)
        return a, torch.where(coin, a, p), torch.where(coin, j, n)


class MetricCriterion(nn.Module):
    """A pytorch-metric-learning loss with its miner; `forward(embeddings, labels)` mines, then scores.

    Holds the loss's own parameters (class vectors, proxies) so the optimizer and checkpoints see them."""

    def __init__(self, loss: nn.Module, miner=None, generator: torch.Generator | None = None):
        super().__init__()
        self.loss, self.miner, self.generator = loss, miner, generator

    def forward(self, embeddings, labels):
        if self.miner is None:
            return self.loss(embeddings, labels)
        seed = int(torch.randint(2**62, (1,), generator=self.generator)) if self.generator is not None else None
        with torch.random.fork_rng(devices=[embeddings.device] if embeddings.is_cuda else []):
            if seed is not None:
                torch.manual_seed(seed)
            tuples = self.miner(embeddings, labels)
        return self.loss(embeddings, labels, tuples)


def build_criterion(name: str, n_classes: int, embed_dim: int, *, p_switch: float = 0.0,
                    generator: torch.Generator | None = None) -> MetricCriterion:
    require_pml()
    from pytorch_metric_learning import losses, miners

    if p_switch and name not in SWITCHABLE:
        raise ValueError(f"p_switch (rho-regularisation) needs a triplet-based loss {SWITCHABLE}, not {name!r}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    if name == "margin":
        loss, miner = losses.MarginLoss(margin=0.2, beta=1.2), miners.DistanceWeightedMiner(cutoff=0.5)
    elif name == "triplet":
        loss, miner = losses.TripletMarginLoss(margin=0.2), miners.TripletMarginMiner(0.2, type_of_triplets="semihard")
    elif name == "multisimilarity":
        loss, miner = losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5), miners.MultiSimilarityMiner(0.1)
    elif name == "normsoftmax":
        loss, miner = losses.NormalizedSoftmaxLoss(n_classes, embed_dim, temperature=0.05), None
    elif name == "proxyanchor":
        loss, miner = losses.ProxyAnchorLoss(n_classes, embed_dim, margin=0.1, alpha=32), None
    else:
        raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")
    if p_switch:
        miner = RhoSwitch(miner, p_switch, g)
    return MetricCriterion(loss, miner, g)
