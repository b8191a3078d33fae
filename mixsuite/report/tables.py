"""`mixsuite compare` tables: one row per group of runs (task, dataset, method, config), mean ± std over seeds."""
from __future__ import annotations

from collections import defaultdict

from .records import group_key, is_number, mean_std


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
    return f"{mean:.{digits}f} ± " + (f"{std:.{digits}f}" if n > 1 else "—")   # no spread from one seed


def format_table(rows: list[dict], fmt: str = "md", metrics=None, digits: int = 4, legends=None, headline=None,
                 every_metric: bool = False) -> str:
    """A markdown or CSV table; markdown gets one table per task, each followed by `legends[task]` (lines).
    Without `metrics` a markdown table shows the task's headline metrics (`headline[task]`, else `headline_metrics`),
    or with `every_metric` all of them."""
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
        names = metrics or (_default_metrics(trows, skip=()) if every_metric else
                            [m for m in (headline or {}).get(task, []) if any(m in r["stats"] for r in trows)]
                            or headline_metrics(trows))
        out.append(f"### {task}\n")
        out.append("| dataset | method | config | n | " + " | ".join(names) + " |")
        out.append("|---|---|---|---|" + "---|" * len(names))
        for r in trows:
            cells = [_cell(r["stats"].get(m), digits) for m in names]
            out.append(f"| {r['dataset']} | {r['method']} | {r['config_hash']} | {r['n']} | " + " | ".join(cells) + " |")
        out.append("")
        out += (legends or {}).get(task, [])
    return "\n".join(out)


def _default_metrics(rows: list[dict], skip=("epoch", "time", "wall")) -> list[str]:
    """The primary metric first, then the rest, leaving out bookkeeping numbers (those named in `skip`)."""
    names = sorted({m for r in rows for m in r["stats"]})
    names = [m for m in names if not any(s in m for s in skip)]
    primary = [r["primary_metric"] for r in rows if r["primary_metric"] in names][:1]
    return primary + [m for m in names if m not in primary]


def headline_metrics(rows: list[dict]) -> list[str]:
    """The primary metric, then the test metrics read at the epoch chosen on validation (best_test_*), leaving
    out the spectra (`--metric all` shows every metric)."""
    names = sorted({m for r in rows for m in r["stats"]})
    primary = [r["primary_metric"] for r in rows if r["primary_metric"] in names][:1]
    return primary + [m for m in names if m.startswith("best_test_") and "sv_" not in m and m not in primary]


def row_labels(rows: list[dict]) -> list[str]:
    """dataset / method, plus the config hash where one dataset and method has several configs."""
    configs = defaultdict(set)
    for r in rows:
        configs[group_key(r)[:3]].add(r["config_hash"])
    return [f"{r['dataset']}\n{r['method']}" + (f"\n{r['config_hash']}" if len(configs[group_key(r)[:3]]) > 1 else "")
            for r in rows]
