"""Recall@1 against rho over every finished `metric` run, as Roth et al. (2020) plot it (their Figure: the
spectral decay rho of the embedding on the x axis, Recall@1 on the y axis, one point per run).

    python bench/metric_rho_recall.py results --out results/metric-rho-recall.png
    python bench/metric_rho_recall.py results --x train_rho --y test_map_at_r --out other.png
    python bench/metric_rho_recall.py results --where patience=5 --x best_test_rho --y best_test_recall_at_1

Reads `<results dir>/runs/metric/*.json` (the run records; several folders may be given), draws one colour
per method and one marker per loss, and prints per loss the rank correlation (Spearman) between x and y over the
runs with its p-value, then one JSON line last: {"runs": ..., "by_loss": {loss: {"n", "spearman", "p"}}}.
Roth et al.'s relation (lower rho, better transfer) shows as a negative correlation of test_rho and Recall@1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _repo import ROOT  # noqa: E402  (first: the checkout's mixsuite importable)
from mixsuite.figures import pyplot  # noqa: E402

MARKERS = "osD^v<>Px*"


def load_runs(folders: list[Path], dataset: str | None = None) -> list[dict]:
    """Finished metric-task records (newest first per run id, so a re-run replaces its record)."""
    runs = {}
    for folder in folders:
        for path in sorted((folder / "runs" / "metric").glob("*.json")):
            record = json.loads(path.read_text())
            if record.get("status") == "finished" and (dataset is None or record.get("dataset") == dataset):
                runs[record["run_id"]] = record
    return list(runs.values())


def plot_against_rho(runs: list[dict], path: Path, x: str = "test_rho", y: str = "test_recall_at_1") -> Path:
    """One point per run: x (rho) against y (Recall@1); colour = method, marker = loss."""
    plt = pyplot()

    from mixsuite.analysis import save_figure

    methods = sorted({r["method"] for r in runs})
    losses = sorted({r["config"]["loss"] for r in runs})
    colours = {m: plt.get_cmap("tab10")(i) for i, m in enumerate(methods)}
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for loss_i, loss in enumerate(losses):
        for method in methods:
            pts = [(r["metrics"][x], r["metrics"][y]) for r in runs
                   if r["config"]["loss"] == loss and r["method"] == method and x in r["metrics"]]
            if pts:
                xs, ys = zip(*pts)
                ax.scatter(xs, ys, color=colours[method], marker=MARKERS[loss_i % len(MARKERS)],
                           label=f"{loss} / {method}", alpha=0.85)
    ax.set_xlabel(f"{x} (spectral decay; lower = variance over more directions)")
    ax.set_ylabel(y)
    ax.set_title(f"{y} against {x}, one point per run ({len(runs)} runs)")
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def correlations(runs: list[dict], x: str, y: str) -> dict:
    from scipy.stats import spearmanr

    out = {}
    for loss in sorted({r["config"]["loss"] for r in runs}):
        pairs = [(r["metrics"][x], r["metrics"][y]) for r in runs if r["config"]["loss"] == loss and x in r["metrics"]]
        if len(pairs) >= 3:
            rho, p = spearmanr(*zip(*pairs))
            out[loss] = {"n": len(pairs), "spearman": float(rho), "p": float(p)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="results folders holding runs/metric/*.json")
    ap.add_argument("--out", type=Path, default=Path("metric-rho-recall.png"))
    ap.add_argument("--x", default="test_rho")
    ap.add_argument("--y", default="test_recall_at_1")
    ap.add_argument("--dataset", default=None, help="only this dataset's runs")
    ap.add_argument("--where", action="append", metavar="KEY=VALUE",
                    help="only the runs whose config holds this value, as `mixsuite compare --where` (e.g. epochs=40)")
    args = ap.parse_args(argv)
    from mixsuite.report.where import apply_where, parse_where

    runs = apply_where(load_runs(args.results, args.dataset), parse_where(args.where))
    if not runs:
        print(f"no finished metric runs under {', '.join(map(str, args.results))}", file=sys.stderr)
        return 1
    plot_against_rho(runs, args.out, args.x, args.y)
    by_loss = correlations(runs, args.x, args.y)
    for loss, c in by_loss.items():
        print(f"{loss}: Spearman({args.x}, {args.y}) = {c['spearman']:+.3f} (p = {c['p']:.3g}, {c['n']} runs)")
    print(f"figure: {args.out}")
    print(json.dumps({"runs": len(runs), "figure": str(args.out), "by_loss": by_loss}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
