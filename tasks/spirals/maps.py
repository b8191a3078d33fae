"""Figure 1's two panels and the numbers read off them: decision maps over the input plane and over the
2-D hidden space, the distance from training points to the decision boundary, and the uncertain share."""
from __future__ import annotations

from pathlib import Path

import torch

from mixsuite.analysis import save_figure
from mixsuite.figures import pyplot


def grid(lo: torch.Tensor, hi: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An n x n grid over the box [lo, hi] (each of shape (2,)): (xs, ys, points (n*n, 2))."""
    xs = torch.linspace(float(lo[0]), float(hi[0]), n)
    ys = torch.linspace(float(lo[1]), float(hi[1]), n)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    return xs, ys, torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def boundary_cells(probs: torch.Tensor, n: int) -> torch.Tensor:
    """(n, n) mask of the grid cells where the predicted class differs from a neighbour's."""
    pred = probs.argmax(-1).view(n, n)
    edge = torch.zeros_like(pred, dtype=torch.bool)
    edge[:, 1:] |= pred[:, 1:] != pred[:, :-1]
    edge[1:, :] |= pred[1:, :] != pred[:-1, :]
    return edge


@torch.no_grad()
def input_space_map(fn, train_x: torch.Tensor, n: int = 200, extent: float = 1.3) -> dict:
    """Class probabilities over the input square [-extent, extent]^2 and the numbers read off them."""
    lo, hi = torch.full((2,), -extent), torch.full((2,), extent)
    xs, ys, pts = grid(lo, hi, n)
    probs = fn(pts).softmax(-1)
    edge = boundary_cells(probs, n).reshape(-1)
    if edge.any():
        dist = torch.cdist(train_x.float(), pts[edge]).min(dim=1).values.mean().item()
    else:
        dist = float("nan")
    uncertain = (probs.max(-1).values < 0.9).float().mean().item()
    return {"xs": xs, "ys": ys, "probs": probs.view(n, n, -1), "boundary_distance": dist, "uncertain_share": uncertain}


@torch.no_grad()
def hidden_space_map(head, codes: torch.Tensor, n: int = 200, margin: float = 0.5) -> dict:
    """Class probabilities of the head over a box around the training points' 2-D encodings."""
    lo, hi = codes.min(0).values, codes.max(0).values
    pad = (hi - lo).clamp_min(1e-3) * margin
    xs, ys, pts = grid(lo - pad, hi + pad, n)
    return {"xs": xs, "ys": ys, "probs": head(pts).softmax(-1).view(n, n, -1)}


def plot_figure1(rows: list[dict], train_y, path: str | Path, title: str) -> Path:
    """Figure 1: a row per model (`label`, `in_map`, `hid_map`, the training points `train_x` and their `codes`),
    its decision map over the input plane beside the one over its 2-D hidden space."""
    plt = pyplot()

    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 4.6 * len(rows)), squeeze=False)
    for row, ax_row in zip(rows, axes):
        panels = [(row["in_map"], row["train_x"], "input space"), (row["hid_map"], row["codes"], "2-D hidden space (bottleneck)")]
        for ax, (m, pts, name) in zip(ax_row, panels):
            p1 = m["probs"][..., 1].numpy()
            im = ax.imshow(p1, origin="lower", cmap="RdBu_r", vmin=0, vmax=1, aspect="auto",
                           extent=[m["xs"][0], m["xs"][-1], m["ys"][0], m["ys"][-1]])
            ax.contour(m["xs"].numpy(), m["ys"].numpy(), p1, levels=[0.5], colors="k", linewidths=0.8)
            ax.scatter(pts[:, 0], pts[:, 1], c=train_y.numpy(), cmap="bwr", edgecolors="k", s=18, linewidths=0.5)
            ax.set_title(f"{row['label']}: {name}" if len(rows) > 1 else name)
    fig.colorbar(im, ax=axes, label="p(class 1)")
    fig.suptitle(title)
    return save_figure(fig, path, dpi=100, tight=False)
