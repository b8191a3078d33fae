"""N-way K-shot episodes: a seeded sampler, and classifiers fitted on every episode's support set at once.

All episodes are one batched tensor program (episodes x way x dim), fitted in chunks: a Python loop per
episode would make 10,000-episode evaluation impractical. `fit_predict_loop` is the same classifier one
episode at a time, kept as the reference the batched version is tested and benchmarked against.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CLASSIFIERS = ("logistic", "cosine", "prototype")


def sample_episodes(labels: torch.Tensor, n_episodes: int, n_way: int, n_shot: int, n_query: int, seed: int):
    """Indices into `labels`: support (E, way, shot) and query (E, way, query), disjoint within each class.

    n_query = -1 takes every remaining image of the class (the smallest class decides how many).
    """
    g = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    classes = labels.unique()
    counts = torch.stack([(labels == c).sum() for c in classes])
    order = torch.argsort(labels, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    if n_query < 0:
        n_query = int(counts.min()) - n_shot
    need = n_shot + n_query
    if int(counts.min()) < need:
        raise ValueError(f"a class has {int(counts.min())} images; {n_shot} shots + {n_query} queries need {need}")
    if len(classes) < n_way:
        raise ValueError(f"{n_way}-way episodes need {n_way} classes, the split has {len(classes)}")
    support, query = [], []
    for chunk in range(0, n_episodes, 1000):
        e = min(1000, n_episodes - chunk)
        way = torch.rand(e, len(classes), generator=g).argsort(dim=1)[:, :n_way]          # (e, way) class positions
        keys = torch.rand(e, n_way, int(counts.max()), generator=g)
        keys[torch.arange(int(counts.max())) >= counts[way][..., None]] = 2.0               # padding sorts last
        pick = keys.argsort(dim=2)[..., :need]                                               # (e, way, need) in-class
        idx = order[starts[way][..., None] + pick]
        support.append(idx[..., :n_shot])
        query.append(idx[..., n_shot:])
    return torch.cat(support), torch.cat(query)


def _fit_predict(support: torch.Tensor, query: torch.Tensor, classifier: str, steps: int, lr: float,
                 weight_decay: float, scale: float) -> torch.Tensor:
    """support (E, way, shot, D), query (E, Q, D) -> predicted class (E, Q). Deterministic, per-episode independent.

    The class vectors live in the span of the (normalised) support features, w = alpha @ S (the representer
    theorem: the loss sees w only through S w, and the L2 penalty only shrinks the orthogonal part to zero), so
    each episode is fitted through its (way*shot)^2 Gram matrix instead of D-dimensional vectors.
    """
    e, way, shot, _ = support.shape
    if classifier == "prototype":    # the nearest class mean by cosine (normalised features), nothing fitted
        prototypes = F.normalize(F.normalize(support, dim=-1).mean(dim=2), dim=-1)
        return (F.normalize(query, dim=-1) @ prototypes.transpose(1, 2)).argmax(dim=-1)
    n = way * shot
    s = F.normalize(support, dim=-1).reshape(e, n, -1)
    q = F.normalize(query, dim=-1)
    gram, cross = s @ s.transpose(1, 2), q @ s.transpose(1, 2)            # (E, n, n), (E, Q, n)
    y = torch.arange(way, device=support.device).repeat_interleave(shot).expand(e, -1)
    if classifier == "cosine":       # cosine classifier (S2M2's distLinear), started from the class prototypes
        alpha0 = F.one_hot(y, way).transpose(1, 2).to(s.dtype) / shot
    elif classifier == "logistic":   # multinomial logistic regression on normalised features
        alpha0 = torch.zeros(e, way, n, device=support.device)
    else:
        raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {classifier!r}")
    alpha = alpha0.clone().requires_grad_()
    bias = torch.zeros(e, 1, way, device=support.device, requires_grad=classifier == "logistic")

    def logits(k):                   # k: features @ S^T, so features @ w^T = k @ alpha^T
        scores = k @ alpha.transpose(1, 2)
        if classifier == "cosine":
            norms = (alpha @ gram * alpha).sum(-1).clamp_min(1e-12).sqrt()  # ||w_c||
            return scale * scores / norms.unsqueeze(1)
        return scale * scores + bias

    params = [alpha] + ([bias] if classifier == "logistic" else [])
    with torch.enable_grad():
        opt = torch.optim.Adam(params, lr=lr)
        for _ in range(steps):
            loss = F.cross_entropy(logits(gram).reshape(-1, way), y.reshape(-1), reduction="none").view(e, -1).mean(1)
            penalty = (alpha @ gram * alpha).sum()                     # sum of ||w_c||^2
            loss = loss.sum() + weight_decay * penalty                  # a sum of independent per-episode objectives
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return logits(cross).argmax(dim=-1)


def episode_accuracies(features: torch.Tensor, support_idx: torch.Tensor, query_idx: torch.Tensor,
                       classifier: str = "logistic", steps: int = 300, lr: float = 0.1, weight_decay: float = 1e-3,
                       scale: float = 10.0, chunk: int = 1000) -> torch.Tensor:
    """Accuracy of each episode (E,), all episodes fitted together in chunks of `chunk`."""
    accs = []
    for i in range(0, len(support_idx), chunk):
        s_idx, q_idx = support_idx[i:i + chunk], query_idx[i:i + chunk]
        e, way, n_q = q_idx.shape
        pred = _fit_predict(features[s_idx], features[q_idx].reshape(e, way * n_q, -1), classifier, steps, lr,
                            weight_decay, scale)
        truth = torch.arange(way, device=pred.device).repeat_interleave(n_q)
        accs.append((pred == truth).float().mean(dim=1))
    return torch.cat(accs)


def episode_accuracies_loop(features, support_idx, query_idx, **kw) -> torch.Tensor:
    """The same classifier fitted one episode at a time (the reference for tests and the benchmark)."""
    return torch.cat([episode_accuracies(features, support_idx[i:i + 1], query_idx[i:i + 1], chunk=1, **kw)
                      for i in range(len(support_idx))])


def mean_ci95(accs: torch.Tensor) -> tuple[float, float]:
    """Mean accuracy and the 95% confidence half-width 1.96 * std / sqrt(E) (std over episodes, ddof 0)."""
    a = accs.double()
    return a.mean().item(), 1.96 * a.std(unbiased=False).item() / math.sqrt(len(a))
