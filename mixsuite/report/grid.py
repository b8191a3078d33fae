"""`mixsuite compare --grid ROW_KEY COL_KEY [--plot FILE.png]`: one metric's mean ± std over seeds in a table whose
rows and columns are the values of two config keys (dotted for nested ones), one table per task, dataset and
method, the best cell marked in the metric's direction; with --plot the same as a heatmap, numbers in the cells."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..errors import UsageError, UserError
from .config_diff import flatten
from .records import group_key, is_number, mean_std
from .task_traits import metric_mode, mixing_of
from ..figures import pyplot

RESOLVED = {"alpha": "alpha", "mix_layers": "layers"}   # config keys whose null means "the method's own value"


def label(value) -> str:
    """A config value as a grid label: 0.5, [input, layer1], true."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(label(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def config_value(record: dict, config: dict, key: str):
    """config[key], except that a null alpha or mix_layers shows the value the run mixed with (a grid whose
    alpha = 2 column comes from records that left alpha to the method's default of 2 shows them there)."""
    value = config[key]
    if value is None and key in RESOLVED:
        mixing = mixing_of(record) or {}
        return mixing.get(RESOLVED[key], value)
    return value


def _order(values: dict) -> list[str]:
    """Labels in the order of their values: numbers by size, lists by length then label, the rest by label."""
    def key(item):
        text, raw = item
        if is_number(raw):
            return 0, float(raw), text
        return (1, len(raw), text) if isinstance(raw, (list, tuple)) else (2, 0, text)
    return [text for text, _ in sorted(values.items(), key=key)]


def grid_tables(records: list[dict], row_key: str, col_key: str, metric: str) -> list[dict]:
    """One grid per (task, dataset, method) whose records have both keys in their config and the metric."""
    by_what = defaultdict(list)
    for r in records:
        by_what[group_key(r)[:3]].append(r)
    grids = []
    for (task, dataset, method), recs in sorted(by_what.items()):
        cells, seeds, hashes, rows, cols = defaultdict(list), defaultdict(set), defaultdict(set), {}, {}
        for r in recs:
            config, value = flatten(r.get("config") or {}), r["metrics"].get(metric)
            if row_key not in config or col_key not in config or not is_number(value):
                continue
            row_value, col_value = config_value(r, config, row_key), config_value(r, config, col_key)
            row, col = label(row_value), label(col_value)
            rows[row], cols[col] = row_value, col_value
            if r["seed"] in seeds[row, col]:
                raise UserError(f"seed {r['seed']} of {task}/{dataset}/{method} {row_key}={row} {col_key}={col} is "
                                "there twice (the same run in two results folders?): read one of them")
            seeds[row, col].add(r["seed"])
            cells[row, col].append(value)
            hashes[row, col].add(r["config_hash"])
        if not cells:
            continue
        for (row, col), found in hashes.items():
            if len(found) > 1:
                raise UsageError(f"--grid: the cell {row_key}={row}, {col_key}={col} of {task}/{dataset}/{method} "
                                 f"holds {len(found)} configs ({', '.join(sorted(found))}) that differ in another "
                                 "setting (see the legend of `mixsuite compare`): narrow the records with --method, "
                                 "--seeds or a results folder of their own")
        stats = {cell: (*mean_std(values), len(values)) for cell, values in cells.items()}
        mode, source = metric_mode(task, metric)
        best = (max if mode == "max" else min)(stats, key=lambda cell: stats[cell][0])
        grids.append({"task": task, "dataset": dataset, "method": method, "metric": metric, "row_key": row_key,
                      "col_key": col_key, "rows": _order(rows), "cols": _order(cols), "stats": stats,
                      "values": dict(cells), "best": best, "mode": mode, "mode_source": source})
    if not grids:
        keys = sorted({k for r in records for k in flatten(r.get("config") or {})})
        raise UsageError(f"--grid {row_key} {col_key}: no record read has both keys in its config and the metric "
                         f"{metric!r}; config keys there: {', '.join(keys) or '(none)'}")
    return grids


def format_grid(grid: dict, digits: int = 4) -> str:
    better = "highest" if grid["mode"] == "max" else "lowest"
    out = [f"### {grid['task']} / {grid['dataset']} / {grid['method']}: {grid['metric']}, mean ± std (n) over seeds\n",
           f"Best cell in bold: the {better} mean ({grid['mode']}, {grid['mode_source']}).\n",
           f"| {grid['row_key']} \\ {grid['col_key']} | " + " | ".join(grid["cols"]) + " |",
           "|---|" + "---|" * len(grid["cols"])]
    for row in grid["rows"]:
        cells = []
        for col in grid["cols"]:
            stat = grid["stats"].get((row, col))
            text = f"{stat[0]:.{digits}f} ± {stat[1]:.{digits}f} ({stat[2]})" if stat else ""
            cells.append(f"**{text}**" if (row, col) == grid["best"] else text)
        out.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def draw_grid(ax, grid: dict, digits: int = 3):
    """The grid as a heatmap on `ax`: the means as colours (brighter is better), mean ± std written in each cell,
    the best cell outlined. Returns the image."""
    import matplotlib.patches as patches
    import numpy as np

    means = np.array([[grid["stats"][r, c][0] if (r, c) in grid["stats"] else np.nan for c in grid["cols"]]
                      for r in grid["rows"]])
    image = ax.imshow(np.ma.masked_invalid(means), cmap="viridis" if grid["mode"] == "max" else "viridis_r",
                      aspect="auto")
    finite = means[np.isfinite(means)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i, row in enumerate(grid["rows"]):
        for j, col in enumerate(grid["cols"]):
            stat = grid["stats"].get((row, col))
            if stat is None:
                continue
            bright = (stat[0] > middle) == (grid["mode"] == "max")   # viridis is bright at the better end
            ax.text(j, i, f"{stat[0]:.{digits}f}\n± {stat[1]:.{digits}f}", ha="center", va="center", fontsize=8,
                    color="black" if bright else "white")
    i, j = grid["rows"].index(grid["best"][0]), grid["cols"].index(grid["best"][1])
    ax.add_patch(patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
    ax.set_xticks(range(len(grid["cols"])), grid["cols"], fontsize=8, rotation=20, ha="right")
    ax.set_yticks(range(len(grid["rows"])), grid["rows"], fontsize=8)
    ax.set_xlabel(grid["col_key"])
    ax.set_ylabel(grid["row_key"])
    n = sorted({s[2] for s in grid["stats"].values()})
    ax.set_title(f"{grid['dataset']} {grid['method']}: {grid['metric']} (n = {', '.join(map(str, n))}; "
                 f"red: best, {grid['mode']})", fontsize=9)
    return image


def plot_grids(grids: list[dict], path: str | Path) -> Path:
    """Every grid as a heatmap, side by side in one figure."""
    plt = pyplot()

    from ..analysis import save_figure

    width = max(4.5, 1.3 * max(len(g["cols"]) for g in grids) + 2)
    height = max(3.2, 0.55 * max(len(g["rows"]) for g in grids) + 1.8)
    fig, axes = plt.subplots(1, len(grids), figsize=(width * len(grids), height), squeeze=False)
    for ax, grid in zip(axes[0], grids):
        fig.colorbar(draw_grid(ax, grid), ax=ax, fraction=0.046, pad=0.04)
    return save_figure(fig, path)

