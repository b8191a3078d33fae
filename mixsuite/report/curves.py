"""Learning curves from run records: each record names its run folder, whose metrics.jsonl has one line per
epoch (or, once that folder is gone, the copy kept beside the record). Runs are grouped as in `mixsuite compare`
and drawn as the mean over seeds with a ± std band."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from .records import group_key, group_label, mean_std, run_file


def read_metrics(record: dict) -> dict[int, dict]:
    """epoch -> logged values, from the run folder's metrics.jsonl or the copy kept beside the record; a resumed
    run may log an epoch twice, the later line wins."""
    path = run_file(record, "metrics.jsonl")
    if path is None:
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {int(r["epoch"]): r for r in rows if "epoch" in r}


def not_logged(metrics: list[str]) -> ValueError:
    """The error for metrics that no run's metrics.jsonl holds."""
    return ValueError(f"no run folder has {', '.join(map(repr, metrics))} in its metrics.jsonl (are the runs' "
                      "folders, or the files kept beside their records, still there?)")


def group_curves(records: list[dict], metric: str, logs: dict[int, dict] | None = None) -> list[dict]:
    """One curve per (task, dataset, method, config hash): epochs, mean, std over the seeds that logged them.
    `logs` (id(record) -> read_metrics(record)) lets several metrics share one read of each run's file."""
    groups: dict[tuple, list[dict[int, float]]] = defaultdict(list)
    for rec in records:
        rows = logs[id(rec)] if logs is not None else read_metrics(rec)
        per_epoch = {e: r[metric] for e, r in rows.items() if metric in r}
        if per_epoch:
            groups[group_key(rec)].append(per_epoch)
    curves = []
    for (task, dataset, method, config), runs in sorted(groups.items()):
        epochs = sorted(set().union(*runs))
        mean, std = zip(*(mean_std([r[e] for r in runs if e in r]) for e in epochs))
        curves.append({"task": task, "dataset": dataset, "method": method, "config_hash": config, "n": len(runs),
                       "label": group_label((task, dataset, method, config), len(runs)),
                       "epochs": epochs, "mean": list(mean), "std": list(std)})
    return curves


def plot_curves(records: list[dict], metrics: str, path: str | Path) -> Path:
    """Draw each of `metrics` (comma-separated, one panel each) against the epoch, one line (mean ± std band) per
    group of runs."""
    from ..analysis import panel_grid, save_figure

    names = [m for m in metrics.split(",") if m]
    logs = {id(rec): read_metrics(rec) for rec in records}
    panels = [(m, group_curves(records, m, logs)) for m in names]
    missing = [m for m, curves in panels if not curves]
    if missing:
        raise not_logged(missing)
    fig, axes = panel_grid(len(panels), max_cols=2, panel_size=(6.4, 4))
    for ax, (metric, curves) in zip(axes, panels):
        for c in curves:
            lo = [m - s for m, s in zip(c["mean"], c["std"])]
            hi = [m + s for m, s in zip(c["mean"], c["std"])]
            line, = ax.plot(c["epochs"], c["mean"], label=c["label"])
            ax.fill_between(c["epochs"], lo, hi, color=line.get_color(), alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)
