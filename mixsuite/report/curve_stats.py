"""The learning curves as numbers: for each group of runs and each metric logged per epoch, where each seed's
curve was best and at which epoch, where it ended, and (`--reach METRIC=VALUE`) the first epoch each seed reached a
value. The ranges over seeds (min–max) are what a results page says in words ("its validation NLL passes its
minimum at epochs 9–19 and climbs to 2.03–2.26"); this prints them so the page can name the command.

The direction of a metric (is lower better?) comes from its task, as for the tables. Read from the run folder's
metrics.jsonl, or from the copy kept beside the record, which for runs of more than 100 epochs holds every k-th
epoch and the last only (the best epoch is then the best of those kept)."""
from __future__ import annotations

from collections import defaultdict

from ..errors import UsageError
from .curves import not_logged, read_metrics
from .records import group_key, is_number
from .task_traits import metric_mode


def parse_options(curve_stats_arg: str, reach_items) -> tuple[list[str], dict[str, float]]:
    """`--curve-stats` and `--reach` as (metrics, {metric: value}); a --reach metric must be one of the metrics."""
    metrics = [m for m in curve_stats_arg.split(",") if m]
    reach = parse_reach(reach_items)
    unlisted = [m for m in reach if m not in metrics]
    if unlisted:
        raise UsageError(f"--reach {', '.join(unlisted)}: add {'them' if len(unlisted) > 1 else 'it'} to "
                         "--curve-stats too (the column belongs to that metric's line)")
    return metrics, reach


def parse_reach(items) -> dict[str, float]:
    """`METRIC=VALUE` options as {metric: value}; a malformed one names itself and the form wanted."""
    targets = {}
    for item in items or ():
        metric, sep, value = item.partition("=")
        try:
            if not (sep and metric):
                raise ValueError
            targets[metric] = float(value)
        except ValueError:
            raise UsageError(f"--reach {item!r}: give METRIC=VALUE, e.g. --reach train_acc=0.99") from None
    return targets


def seed_curve_stats(per_epoch: dict[int, float], mode: str, target: float | None) -> dict:
    """One seed's curve: its best value and that epoch (the first, on a tie), its last value and epoch, and the
    first epoch at or beyond `target` in the better direction (None if never; absent without a target)."""
    better = min if mode == "min" else max
    best = better(per_epoch.values())
    out = {"best": best, "best_epoch": min(e for e, v in per_epoch.items() if v == best),
           "last_epoch": max(per_epoch), "last": per_epoch[max(per_epoch)]}
    if target is not None:
        reached = [e for e, v in per_epoch.items() if (v <= target if mode == "min" else v >= target)]
        out["reach_epoch"] = min(reached) if reached else None
    return out


def curve_stats(records: list[dict], metrics: list[str], reach: dict[str, float] | None = None) -> list[dict]:
    """One row per (group of runs, metric) that logged it: the seeds' stats (`seed_curve_stats`), keyed by seed."""
    reach = reach or {}
    logs = {id(rec): read_metrics(rec) for rec in records}
    rows = []
    for metric in metrics:
        curves: dict[tuple, dict[int, dict[int, float]]] = defaultdict(dict)
        for rec in records:
            per_epoch = {e: r[metric] for e, r in logs[id(rec)].items() if is_number(r.get(metric))}   # not NaN
            if per_epoch:
                curves[group_key(rec)][rec["seed"]] = per_epoch
        for key, seeds in sorted(curves.items()):
            mode, _ = metric_mode(key[0], metric)
            rows.append({"group": key, "metric": metric, "mode": mode, "target": reach.get(metric),
                         "seeds": {seed: seed_curve_stats(c, mode, reach.get(metric)) for seed, c in seeds.items()}})
    missing = [m for m in metrics if not any(r["metric"] == m for r in rows)]
    if missing:
        raise not_logged(missing)
    return rows


def _span(values, digits: int | None = None) -> str:
    lo, hi = min(values), max(values)
    fmt = (lambda v: str(v)) if digits is None else (lambda v: f"{v:.{digits}f}")
    return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo)}–{fmt(hi)}"


def format_curve_stats(rows: list[dict], digits: int) -> str:
    """A markdown table per task: one line per group and metric, each cell the range over seeds (min–max)."""
    out = []
    for task in sorted({r["group"][0] for r in rows}):
        task_rows = [r for r in rows if r["group"][0] == task]
        targets = any(r["target"] is not None for r in task_rows)
        out.append(f"### {task}: the curves in numbers (range over seeds, min–max)\n")
        head = ["dataset", "method", "config", "metric", "n", "best", "best at epoch", "last", "last epoch"]
        head += ["first epoch reaching"] if targets else []
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in task_rows:
            _, dataset, method, config = r["group"]
            stats = list(r["seeds"].values())
            cells = [dataset, method, config, f"{r['metric']} ({'lower' if r['mode'] == 'min' else 'higher'} is better)",
                     str(len(stats)), _span([s["best"] for s in stats], digits),
                     _span([s["best_epoch"] for s in stats]), _span([s["last"] for s in stats], digits),
                     _span([s["last_epoch"] for s in stats])]
            if targets:
                cells.append(_reach_cell(r, stats))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _reach_cell(row: dict, stats: list[dict]) -> str:
    if row["target"] is None:
        return ""
    sign = "≤" if row["mode"] == "min" else "≥"
    epochs = [s["reach_epoch"] for s in stats if s["reach_epoch"] is not None]
    if not epochs:
        return f"{sign} {row['target']:g}: never (0 of {len(stats)} seeds)"
    some = "" if len(epochs) == len(stats) else f" ({len(epochs)} of {len(stats)} seeds)"
    return f"{sign} {row['target']:g}: {_span(epochs)}{some}"
