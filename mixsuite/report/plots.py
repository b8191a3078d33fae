"""Figures of a table's rows: every seed's value with the mean ± std per row; paired differences per config."""
from __future__ import annotations

import math
import random
from pathlib import Path

from .tables import row_labels
from ..figures import pyplot


def plot_rows(rows: list[dict], metric: str, path: str | Path, references=()) -> Path:
    """Every seed's value of one metric as a dot, with the mean ± std, one column per row of the table.

    `references` (from `mixsuite.report.reference.load_reference`) for the same metric add a red dash per column at
    each published mean for that dataset and method, and a grey dotted line across, labelled, for each published
    method that no column has (people, a paper's own method).
    """
    plt = pyplot()

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
    from .reference import compare_to_reference, unmatched_entries

    for ref in (ref for ref in references if ref["metric"] == metric):
        for line in compare_to_reference(rows, ref):  # the same dataset/method matching as the table's
            i = next(i for i, r in enumerate(rows) if r is line["row"])
            ax.hlines(line["entry"]["mean"] / ref["scale"], i - 0.25, i + 0.4, colors="tab:red", linestyles="--",
                      label="published mean")
        for entry in unmatched_entries(rows, ref):
            y = entry["mean"] / ref["scale"]
            ax.axhline(y, color="grey", linestyle=":", linewidth=1)
            ax.annotate(f"{entry['method']} {entry['mean']:g}", (1.0, y), xycoords=("axes fraction", "data"),
                        xytext=(3, 0), textcoords="offset points", va="center", fontsize=7, color="dimgrey")
    ax.set_xticks(range(len(rows)), row_labels(rows), fontsize=8)
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles[:1], labels[:1], fontsize=8, loc="best")
    ax.set_title(f"{metric}\nevery seed (dots), mean ± std (black); n = {', '.join(str(r['n']) for r in rows)}",
                 fontsize=9)
    from ..analysis import save_figure

    return save_figure(fig, path)


def plot_paired(tables: list[tuple[str, list[dict]]], baseline: str, path: str | Path) -> Path:
    """The paired differences of `compare --paired`, one panel a metric: each config's per-seed differences against
    its baseline (dots) and their mean with its 95 % CI (black; Student's t, stats.py), a line at zero; `tables` is [(metric, paired lines)]."""
    plt = pyplot()
    tables = [(metric, lines) for metric, lines in tables if lines]
    if not tables:
        raise ValueError(f"no config shares a seed with {baseline!r}: nothing to draw")
    height = max(2.2, 0.45 * max(len(lines) for _, lines in tables) + 1.2)
    fig, axes = plt.subplots(1, len(tables), figsize=(4.6 * len(tables), height), squeeze=False)
    for ax, (metric, lines) in zip(axes[0], tables):
        for i, x in enumerate(lines):
            ax.scatter(x["diffs"], [i + 0.15] * len(x["diffs"]), s=10, alpha=0.5, color="tab:blue")
            err = x["ci_high"] - x["mean"] if math.isfinite(x["ci_high"]) else 0.0   # no CI from one seed
            ax.errorbar(x["mean"], i - 0.1, xerr=err, fmt="o", color="black", capsize=3, markersize=4)
        ax.axvline(0.0, color="tab:red", linewidth=0.8)
        task, dataset, *_ = lines[0]["key"]
        labels = [f"{x['key'][2]} {x['key'][3]}\n(n {len(x['seeds'])}, vs {x['baseline'][3]})" for x in lines]
        ax.set_yticks(range(len(lines)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"Δ {metric} (config − {baseline})", fontsize=8)
        ax.set_title(f"{task} / {dataset}: per seed (dots), mean and 95 % CI", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    from ..analysis import save_figure

    return save_figure(fig, path)
