"""Run records (one JSON file per finished run) and `mixsuite compare` tables (mean ± std over seeds)."""
from __future__ import annotations

import functools
import json
import math
import os
import random
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from .checkpoint import atomic_write_json

REQUIRED = ("task", "dataset", "method", "seed", "metrics", "primary_metric", "config", "config_hash", "status")


def results_dir(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("MIXSUITE_RESULTS", "") or "results")


@functools.lru_cache(maxsize=None)
def git_info(cwd: str | Path | None = None) -> tuple[str, bool]:
    """(sha, dirty) of the checkout mixsuite runs from, or ("unknown", False) outside one: an installed mixsuite
    (whose site-packages may well lie inside some other git repository, a venv in a checkout) names no commit.

    Read once per process: a long multi-seed command keeps running the code it loaded, even if the checkout
    moves on meanwhile, so later records must not name the newer commit.
    """
    cwd = Path(cwd or Path(sys.modules[__package__.partition(".")[0]].__file__).parents[1]).resolve()
    try:
        sha = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10)
        if sha.returncode or Path(sha.stdout.splitlines()[0]).resolve() != cwd:
            return "unknown", False
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.splitlines()[1].strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def record_path(root: Path, task: str, run_id: str) -> Path:
    return root / "runs" / task / f"{run_id}.json"


def write_record(root: Path, record: dict) -> Path:
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"run record lacks {missing}")
    path = record_path(root, record["task"], record["run_id"])
    atomic_write_json(path, record)
    return path


def load_records(root: str | Path, tasks=None, status: str = "finished", methods=None, seeds=None) -> list[dict]:
    """The run records under `root`, keeping only the given tasks, methods and seeds when those are given."""
    root = Path(root)
    base = root / "runs" if (root / "runs").is_dir() else root
    out = []
    for path in sorted(base.rglob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(rec, dict) or any(k not in rec for k in REQUIRED):
            continue
        if status and rec.get("status") != status:
            continue
        if (tasks and rec["task"] not in tasks) or (methods and rec["method"] not in methods) \
                or (seeds and rec["seed"] not in seeds):
            continue
        out.append(rec)
    return out


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def group_key(record: dict) -> tuple:
    """Runs that differ only in seed (and device, paths) share (task, dataset, method, config_hash)."""
    return record["task"], record["dataset"], record["method"], record["config_hash"]


def mean_std(vals: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0


def summarize(records: list[dict], metrics=None) -> list[dict]:
    """One row per (task, dataset, method, config_hash): n, seeds, and mean/std of every numeric metric."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[group_key(r)].append(r)
    rows = []
    for (task, dataset, method, chash), recs in sorted(groups.items()):
        names = metrics or sorted({k for r in recs for k, v in r["metrics"].items() if is_number(v)})
        stats, values = {}, {}
        for name in names:
            vals = [r["metrics"][name] for r in recs if is_number(r["metrics"].get(name))]
            if vals:
                stats[name], values[name] = (*mean_std(vals), len(vals)), vals
        rows.append({"task": task, "dataset": dataset, "method": method, "config_hash": chash, "n": len(recs),
                     "seeds": sorted(r["seed"] for r in recs), "primary_metric": recs[0]["primary_metric"],
                     "stats": stats, "values": values})
    return rows


def _cell(stat, digits: int) -> str:
    if stat is None:
        return ""
    mean, std, n = stat
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_table(rows: list[dict], fmt: str = "md", metrics=None, digits: int = 4, legends=None) -> str:
    """A markdown or CSV table; markdown gets one table per task, each followed by `legends[task]` (lines)."""
    if fmt not in ("md", "csv"):
        raise ValueError(f"format must be md or csv, got {fmt!r}")
    if fmt == "csv":
        names = metrics or sorted({m for r in rows for m in r["stats"]})
        lines = [",".join(["task", "dataset", "method", "config_hash", "n"]
                          + [f"{m}_{s}" for m in names for s in ("mean", "std")])]
        for r in rows:
            vals = []
            for m in names:
                st = r["stats"].get(m)
                vals += [f"{st[0]:.6g}", f"{st[1]:.6g}"] if st else ["", ""]
            lines.append(",".join([r["task"], r["dataset"], r["method"], r["config_hash"], str(r["n"])] + vals))
        return "\n".join(lines) + "\n"
    out = []
    for task in sorted({r["task"] for r in rows}):
        trows = [r for r in rows if r["task"] == task]
        names = metrics or _default_metrics(trows)
        out.append(f"### {task}\n")
        out.append("| dataset | method | config | n | " + " | ".join(names) + " |")
        out.append("|---|---|---|---|" + "---|" * len(names))
        for r in trows:
            cells = [_cell(r["stats"].get(m), digits) for m in names]
            out.append(f"| {r['dataset']} | {r['method']} | {r['config_hash']} | {r['n']} | " + " | ".join(cells) + " |")
        out.append("")
        out += (legends or {}).get(task, [])
    return "\n".join(out)


def _default_metrics(rows: list[dict]) -> list[str]:
    """The primary metric first, then the rest, leaving out bookkeeping numbers."""
    names = sorted({m for r in rows for m in r["stats"]})
    skip = ("epoch", "time", "wall")
    names = [m for m in names if not any(s in m for s in skip)]
    primary = [r["primary_metric"] for r in rows if r["primary_metric"] in names][:1]
    return primary + [m for m in names if m not in primary]


def row_labels(rows: list[dict]) -> list[str]:
    """dataset / method, plus the config hash where one dataset and method has several configs."""
    configs = defaultdict(set)
    for r in rows:
        configs[group_key(r)[:3]].add(r["config_hash"])
    return [f"{r['dataset']}\n{r['method']}" + (f"\n{r['config_hash']}" if len(configs[group_key(r)[:3]]) > 1 else "")
            for r in rows]


def plot_rows(rows: list[dict], metric: str, path: str | Path, references=()) -> Path:
    """Every seed's value of one metric as a dot, with the mean ± std, one column per row of the table.

    `references` (from `mixsuite.reference.load_reference`) for the same metric add a red dash per column at
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
    from .analysis import save_figure

    return save_figure(fig, path)
