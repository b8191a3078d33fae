"""Figures of a table's rows: every seed's value with the mean ± std per row."""
from __future__ import annotations

import random
from pathlib import Path

from .tables import row_labels


def plot_rows(rows: list[dict], metric: str, path: str | Path, references=()) -> Path:
    """Every seed's value of one metric as a dot, with the mean ± std, one column per row of the table.

    `references` (from `mixsuite.report.reference.load_reference`) for the same metric add a red dash per column at
    each published mean for that dataset and method.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if metric in r["stats"]]
    if not rows:
        raise ValueError(f"no run has the metric {metric!r}")
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rows)), 3.8))
    jitter = random.Random(0)
    for i, r in enumerate(rows):
        vals = r["values"][metric]
        ax.scatter([i + jitter.uniform(-0.18, 0.18) for _ in vals], vals, s=8, alpha=0.45, color="tab:blue")
        mean, std, _ = r["stats"][metric]
        ax.errorbar(i + 0.3, mean, yerr=std, fmt="o", color="black", capsize=4, markersize=4)
    from .reference import compare_to_reference

    for ref in (ref for ref in references if ref["metric"] == metric):
        for line in compare_to_reference(rows, ref):  # the same dataset/method matching as the table's
            i = next(i for i, r in enumerate(rows) if r is line["row"])
            ax.hlines(line["entry"]["mean"] / ref["scale"], i - 0.25, i + 0.4, colors="tab:red", linestyles="--",
                      label="published mean")
    ax.set_xticks(range(len(rows)), row_labels(rows), fontsize=8)
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles[:1], labels[:1], fontsize=8, loc="best")
    ax.set_title(f"{metric}: every seed (dots), mean ± std (black); n = {', '.join(str(r['n']) for r in rows)}",
                 fontsize=9)
    from ..analysis import save_figure

    return save_figure(fig, path)
