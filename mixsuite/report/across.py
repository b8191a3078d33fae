"""`mixsuite compare --across-tasks`: one table for every task found, and the results' front page.

Columns are task / dataset, rows are methods (a method's configs on one dataset told apart by their config hash,
with the legend under the table). A cell holds the task's primary metric, mean ± std (n), and the paired difference
against the task's baseline method (`Task.baseline_method`) with its 95 % CI on the seeds both ran, marked ▲ (better)
or ▼ (worse) in the metric's direction (`Task.primary_mode`) by stats.mark (n ≥ 3, the CI excludes zero). Records carry neither the
baseline nor the direction, so each task's class is imported by the record's task name (task_traits.py); old
records need nothing new, and a task whose declaration changes re-reads every record the new way.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from .config_diff import config_differences, format_differences, group_configs
from .paired import by_seed, nearest_baseline, paired_difference
from .records import mean_std
from .stats import fmt_ci, fmt_p, mark
from .task_traits import baseline_method, metric_mode


def across_tasks(records: list[dict]) -> dict:
    """{"columns": [...], "rows": [...], "cells": {(row, column): {...}}, "notes": [...]}."""
    by_column = defaultdict(list)
    for r in records:
        by_column[r["task"], r["dataset"]].append(r)
    several = {k[:3] for k in config_differences(records)}   # (task, dataset, method) with several configs
    columns, cells, rows, notes = [], {}, set(), []
    for (task, dataset), recs in sorted(by_column.items()):
        metric = Counter(r["primary_metric"] for r in recs).most_common(1)[0][0]
        mode, source = metric_mode(task, metric)
        baseline = baseline_method(task)
        column = {"task": task, "dataset": dataset, "metric": metric, "mode": mode, "mode_source": source,
                  "baseline": baseline}
        columns.append(column)
        groups = by_seed(recs, metric)
        base_keys = [k for k in groups if k[2] == baseline]
        if baseline is None:
            notes.append(f"{task}: no baseline method declared (Task.baseline_method), or the task is not installed")
        elif not base_keys:
            notes.append(f"{task}/{dataset}: no runs of its baseline {baseline}")
        elif len(base_keys) > 1:
            notes.append(f"{task}/{dataset}: its baseline {baseline} has {len(base_keys)} configs; each row is "
                         "paired with the one it shares the most seeds with, then the one whose settings differ "
                         "least (its hash in the cell)")
        configs = group_configs(recs)
        for key, values in groups.items():
            row = key[2] + (f" [{key[3]}]" if key[:3] in several else "")
            rows.add(row)
            mean, std = mean_std(list(values.values()))
            cell = {"mean": mean, "std": std, "n": len(values), "is_baseline": key in base_keys}
            if base_keys and key not in base_keys:
                base = nearest_baseline(key, values, base_keys, groups, configs)
                cell["paired"] = paired_difference(values, groups[base])
                cell["against"] = base[3] if len(base_keys) > 1 else ""
            cells[row, (task, dataset)] = cell
    return {"columns": columns, "rows": sorted(rows), "cells": cells, "notes": notes,
            "differences": config_differences(records)}


def _mark(paired: dict, mode: str) -> str:
    symbol = mark(paired, mode)
    return f" {symbol}" if symbol else ""


def _cell(cell: dict | None, mode: str, digits: int) -> str:
    if cell is None:
        return ""
    text = f"{cell['mean']:.{digits}f} ± {cell['std']:.{digits}f} ({cell['n']})"
    if cell["is_baseline"]:
        return text + "; baseline"
    paired = cell.get("paired")
    if paired:
        ci = fmt_ci(paired, digits)
        against = f" vs {cell['against']}" if cell.get("against") else ""
        text += (f"; Δ {paired['mean']:+.{digits}f} {ci}, p {fmt_p(paired['p'])} ({paired['n']}{against})"
                 f"{_mark(paired, mode)}")
    return text


def format_across(table: dict, digits: int = 4, pages: dict | None = None) -> str:
    """The table as markdown; `pages` {task: link} makes the task names links to their pages."""
    pages = pages or {}
    head = []
    for c in table["columns"]:
        name = f"[{c['task']}]({pages[c['task']]})" if c["task"] in pages else c["task"]
        arrow = "↑" if c["mode"] == "max" else "↓"
        head.append(f"{name} / {c['dataset']}<br>{c['metric']} {arrow}")
    out = ["| method | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for row in table["rows"]:
        cells = [_cell(table["cells"].get((row, (c["task"], c["dataset"]))), c["mode"], digits)
                 for c in table["columns"]]
        out.append(f"| {row} | " + " | ".join(cells) + " |")
    out += ["", "Each cell: the task's primary metric, mean ± std (n seeds); Δ: the paired difference against the "
            "task's baseline (marked `baseline`) with its 95 % CI (Student's t, n − 1 df) and p on the (n) seeds both "
            "ran; ▲ / ▼: better / worse in the metric's direction (↑ higher is better, ↓ lower) where n ≥ 3 and the CI "
            "excludes zero.", ""]
    baselines = ", ".join(f"{c['task']} {c['baseline']}" for c in _one_per_task(table["columns"]) if c["baseline"])
    sources = sorted({f"{c['task']} {c['metric']} ({c['mode_source']})" for c in table["columns"]})
    out += [f"Baselines: {baselines or 'none declared'}. Directions: {'; '.join(sources)}.", ""]
    out += [f"- {note}" for note in table["notes"]] + ([""] if table["notes"] else [])
    for task in sorted({c["task"] for c in table["columns"]}):
        legend = format_differences(table["differences"], task)
        out += [f"**{task}**: " + legend[0]] + legend[1:] if legend else []
    return "\n".join(out).rstrip() + "\n"


def _one_per_task(columns: list[dict]) -> list[dict]:
    seen, out = set(), []
    for c in columns:
        if c["task"] not in seen:
            seen.add(c["task"])
            out.append(c)
    return out


def front_page(records: list[dict], roots: list[Path], digits: int = 4) -> str:
    """results/README.md: the command that made it, a link to every page in the results folder, the table."""
    root = roots[0]
    command = f"mixsuite compare {' '.join(map(str, roots))} --across-tasks > {root / 'README.md'}"
    page_files = sorted(p for p in root.glob("*.md") if p.name != "README.md")
    out = ["# Results", "", f"Generated by `{command}` from the run records in "
           f"{', '.join(str(r / 'runs') for r in roots)}; do not edit by hand.", "", "## Pages", ""]
    for page in page_files:
        title = next((ln.lstrip("# ").strip() for ln in page.read_text().splitlines() if ln.startswith("#")), "")
        out.append(f"- [{page.stem}]({page.name}): {title}")
    out += ["", "## Every task: each method against the task's baseline", ""]
    pages = {p.stem: p.name for p in page_files}
    return "\n".join(out) + "\n" + format_across(across_tasks(records), digits, pages)
