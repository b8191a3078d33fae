"""The seed's measurements for any classifier: accuracy, test NLL, calibration (ECE), and the singular-value
spectra of hidden representations ("flattening", Figure 6 of the blog), with plots; and Roth et al.'s (2020)
spectral decay rho of embeddings."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .figures import pyplot


@torch.no_grad()
def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, n_bins: int = 15, prefix: str = "",
                           ece: bool = True) -> dict:
    """accuracy, error (%), NLL (mean negative log-likelihood) and ECE (15 equal-width confidence bins; ece=False
    leaves it out: it costs more than the rest together, for a task that evaluates thousands of times)."""
    logits, labels = logits.float(), labels.long()
    acc = (logits.argmax(-1) == labels).float().mean().item()
    nll = F.cross_entropy(logits, labels).item()
    out = {f"{prefix}acc": acc, f"{prefix}err": 100.0 * (1 - acc), f"{prefix}nll": nll}
    if ece:
        out[f"{prefix}ece"] = expected_calibration_error(logits.softmax(-1), labels, n_bins)
    return out


@torch.no_grad()
def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """sum over bins of |bin| / N * |accuracy(bin) - confidence(bin)|, bins (i/n, (i+1)/n]."""
    conf, pred = probs.max(-1)
    correct = (pred == labels).float()
    bins = torch.clamp((conf * n_bins).ceil().long() - 1, 0, n_bins - 1)
    ece = torch.zeros((), dtype=torch.float64)
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.float().mean().double() * (correct[m].mean() - conf[m].mean()).abs().double()
    return ece.item()


@torch.no_grad()
def singular_values(features: torch.Tensor, labels: torch.Tensor | None = None, overall: bool = True) -> dict:
    """Singular values of centred representations: 'overall' (all points) and per class (when labels given).

    Returns {"overall": Tensor[k], "per_class": {c: Tensor[k]}} sorted descending; overall=False leaves 'overall'
    None (for wide hidden states, where the SVD of all points together costs more than every class's).
    """
    h = features.flatten(1).double()
    out = {"overall": torch.linalg.svdvals(h - h.mean(0)) if overall else None, "per_class": {}}
    if labels is not None:
        for c in labels.unique().tolist():
            hc = h[labels == c]
            if len(hc) > 1:
                out["per_class"][int(c)] = torch.linalg.svdvals(hc - hc.mean(0))
    return out


@torch.no_grad()
def class_spread(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Concentration of class representations, scale-free: the mean over classes of the within-class standard
    deviation (the norm of the per-dimension stds) / the same over all points; 0 when each class is a point."""
    h = features.flatten(1)
    within = torch.stack([h[labels == c].std(0).norm() for c in labels.unique()]).mean()
    return (within / h.std(0).norm().clamp_min(1e-12)).item()


def spectrum_summary(spectra: dict, prefix: str = "sv_") -> dict:
    """Numbers for a record: the top singular value, its share of the sum, the effective rank (exp of the entropy
    of the normalised spectrum) and the share of variance in the top 1, 2 and 5 directions (s_i^2 / sum s^2),
    overall and averaged over classes."""

    def stats(s: torch.Tensor) -> dict:
        s = s.double()
        total = s.sum().clamp_min(1e-12)
        variance = (s * s).cumsum(0) / (s * s).sum().clamp_min(1e-24)
        shares = {f"var_top{k}": variance[min(k, len(s)) - 1].item() for k in (1, 2, 5)}
        return {"top1": s[0].item(), "top1_share": (s[0] / total).item(), "erank": effective_rank(s), **shares}

    overall = spectra["overall"]
    out = {} if overall is None else {f"{prefix}overall_{k}": v for k, v in stats(overall).items()}
    per = [stats(s) for s in spectra["per_class"].values()]
    if per:
        for k in per[0]:
            out[f"{prefix}class_mean_{k}"] = sum(d[k] for d in per) / len(per)
    return out


def save_spectra(spectra: dict, run_dir: str | Path) -> None:
    """Write `singular_values(...)` as run_dir/spectra.json, which `mixsuite compare --spectra` draws: once (the
    main process under torchrun), and only where the run has a folder."""
    import json

    from . import dist
    from .checkpoint import atomic_write_text

    if not Path(run_dir).is_dir() or not dist.is_main():
        return

    per_class = {str(c): v.tolist() for c, v in spectra["per_class"].items()}
    atomic_write_text(Path(run_dir) / "spectra.json",
                      json.dumps({"overall": spectra["overall"].tolist(), "per_class": per_class}))


def effective_rank(s: torch.Tensor) -> float:
    """exp of the entropy of the normalised spectrum s / sum(s): from 1 (one direction) to len(s) (all equal)."""
    p = s.double() / s.double().sum().clamp_min(1e-12)
    return torch.exp(-(p * p.clamp_min(1e-12).log()).sum()).item()


@torch.no_grad()
def rho_spectrum(features: torch.Tensor, drop_largest: int = 1) -> float:
    """Roth et al. (2020)'s spectral decay rho = KL(U || s / sum(s)), s the singular values of the L2-normalised,
    uncentred features with the `drop_largest` largest left out, U uniform over the rest (their
    `metrics/rho_spectrum.py` with mode = drop_largest + 1; the paper drops one). 0 when the variance is spread
    evenly over every direction, large when a few directions hold it. A zero singular value counts as 1e-12 of
    the total, so a rank-deficient set gets a large finite rho instead of infinity."""
    h = F.normalize(features.flatten(1).double(), dim=1)
    s = torch.linalg.svdvals(h)[drop_largest:]
    if len(s) < 2:
        raise ValueError(f"rho needs at least 2 singular values after dropping {drop_largest}; features are "
                         f"{tuple(features.shape)}")
    p = (s / s.sum()).clamp_min(1e-12)
    return (torch.log(torch.tensor(1.0 / len(s), dtype=p.dtype)) - p.log()).mean().item()


def plot_spectra(spectra_by_name: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """Overall and mean per-class singular values, one line per method/run (the blog's Figure 6)."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, sp in spectra_by_name.items():
        axes[0].plot(sp["overall"].numpy(), marker=".", label=name)
        per = list(sp["per_class"].values())
        if per:
            k = min(len(s) for s in per)
            axes[1].plot(torch.stack([s[:k] for s in per]).mean(0).numpy(), marker=".", label=name)
    for ax, t in zip(axes, ["all points", "mean over classes"]):
        ax.set_title(t)
        ax.set_xlabel("index")
        ax.set_ylabel("singular value")
        ax.legend()
    fig.suptitle(title or "singular values of hidden representations")
    return save_figure(fig, path)


def plot_class_spectra(spectra_by_name: dict[str, dict], path: str | Path, classes=None, title: str = "",
                       class_names=None) -> Path:
    """One panel per class: that class's singular values, normalised to sum 1, on a log scale, one line per
    method (the blog's Figure 6: flatter representations put their variance in fewer directions)."""
    first = next(iter(spectra_by_name.values()))["per_class"]
    classes = list(classes if classes is not None else sorted(first))
    fig, axes = panel_grid(len(classes), max_cols=3, panel_size=(3.4, 2.8))
    for ax, c in zip(axes, classes):
        for name, sp in spectra_by_name.items():
            s = torch.as_tensor(sp["per_class"][c]).double()
            ax.semilogy((s / s.sum()).numpy(), label=name)
        ax.set_title(class_names[c] if class_names else f"class {c}")
        ax.set_xlabel("direction")
        ax.set_ylabel("normalised singular value")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.suptitle(title or "class-conditional singular values of the last hidden layer")
    fig.tight_layout(rect=(0, 0.06 + 0.03 * ((len(labels) - 1) // 3), 1, 1))   # room below for the legend
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8)
    return save_figure(fig, path, tight=False)


def panel_grid(n: int, max_cols: int, panel_size: tuple[float, float]):
    """A figure of n panels in rows of at most max_cols (the unused cells blanked); returns (fig, the n axes)."""
    plt = pyplot()

    cols = min(max_cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size[0] * cols, panel_size[1] * rows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def save_figure(fig, path: str | Path, dpi: int = 110, tight: bool = True) -> Path:
    """Lay out, write (creating the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
