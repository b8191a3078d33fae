"""The tables of results/regression.md, from the run records: per dataset and method the mean test RMSE and MAPE
(at the best-validation epoch) with a 95 % Student-t CI, and each method against erm paired by seed.

    python tasks/regression/report.py results            # rewrites the block between the markers of the page

A difference is called better / worse only with n >= 3 and a CI that excludes zero; otherwise inconclusive.
"""
from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from scipy import stats

METRICS = (("best_test_rmse", "RMSE"), ("best_test_mape", "MAPE %"))
METHODS = ("erm", "input", "manifold", "cmixup")
DATASETS = ("airfoil", "no2", "exchange_rate")
PROTOCOL_BANDWIDTH = {"airfoil": 1.75, "no2": 1.2, "exchange_rate": 0.05}   # C-Mixup's (task.PROTOCOL)
BEGIN, END = "<!-- tables: begin (tasks/regression/report.py) -->", "<!-- tables: end -->"


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % CI (Student t, n - 1 df; nan for n < 2)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)


def paired(a: dict[int, float], b: dict[int, float]) -> dict:
    """a - b over the seeds both have: mean, CI half-width, two-sided p (paired t), n, and the verdict
    (lower is better for both metrics)."""
    seeds = sorted(set(a) & set(b))
    diffs = [a[s] - b[s] for s in seeds]
    mean, half = mean_ci(diffs) if diffs else (math.nan, math.nan)
    p = stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue if len(seeds) >= 2 else math.nan
    verdict = "inconclusive"
    if len(seeds) >= 3 and not math.isnan(half) and abs(mean) > half:
        verdict = "better" if mean < 0 else "worse"
    return {"mean": mean, "half": half, "p": p, "n": len(seeds), "verdict": verdict}


def load(results: Path) -> tuple[dict, dict]:
    """{(dataset, method): {metric: {seed: value}}} of the finished regression records, and per dataset where
    cmixup mixed ('input' or 'manifold': the method whose partners are uniform but mixed at the same point)."""
    found: dict = defaultdict(lambda: defaultdict(dict))
    twin: dict = {}
    for path in sorted((results / "runs" / "regression").glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("status") != "finished":
            continue
        method = record["method"]
        bandwidth = record["config"].get("cmixup_bandwidth")
        if method == "cmixup" and bandwidth not in (None, PROTOCOL_BANDWIDTH.get(record["dataset"])):
            method = f"cmixup σ={bandwidth:g}"     # a bandwidth other than C-Mixup's: its own row
        for metric, _ in METRICS:
            found[record["dataset"], method][metric][record["seed"]] = record["metrics"][metric]
        if record["method"] == "cmixup" and record["config"].get("cmixup_mixing"):
            twin[record["dataset"]] = record["config"]["cmixup_mixing"]
    return found, twin


def fmt(x: float, digits: int) -> str:
    return "–" if math.isnan(x) else f"{x:.{digits}f}"


def difference(d: dict, digits: int) -> str:
    return (f"{d['mean']:+.{digits}f} ({d['mean'] - d['half']:+.{digits}f}, {d['mean'] + d['half']:+.{digits}f}), "
            f"p {d['p']:.2g}, n {d['n']}: {d['verdict']}")


def tables(found: dict, twin: dict) -> str:
    lines = []
    for dataset in DATASETS:
        methods = [m for m in METHODS if (dataset, m) in found]
        methods += sorted(m for d, m in found if d == dataset and m not in METHODS)
        if not methods:
            continue
        digits = 4 if dataset == "exchange_rate" else 3
        lines += [f"### {dataset}", "", "| method | n | test RMSE | test MAPE % | RMSE − erm (95 % CI), p | "
                  "MAPE − erm (95 % CI), p |", "|---|---:|---|---|---|---|"]
        base = found.get((dataset, "erm"))
        for method in methods:
            cells = found[dataset, method]
            n = len(cells[METRICS[0][0]])
            row = [method, str(n)]
            for metric, _ in METRICS:
                mean, half = mean_ci(list(cells[metric].values()))
                row.append(f"{fmt(mean, digits)} ± {fmt(half, digits)}")
            for metric, _ in METRICS:
                if method == "erm" or base is None:
                    row.append("")
                    continue
                row.append(difference(paired(cells[metric], base[metric]), digits))
            lines.append("| " + " | ".join(row) + " |")
        other = twin.get(dataset)
        if (dataset, "cmixup") in found and (dataset, other) in found:   # the pairing alone: same mixing point
            diffs = [difference(paired(found[dataset, "cmixup"][m], found[dataset, other][m]), digits)
                     for m, _ in METRICS]
            lines += ["", f"C-Mixup's pairs against uniform pairs at the same point (cmixup − {other}): "
                      f"RMSE {diffs[0]}; MAPE {diffs[1]}."]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    results = Path(argv[0] if argv else "results")
    page = results / "regression.md"
    block = f"{BEGIN}\n\n{tables(*load(results))}\n{END}"
    text = page.read_text() if page.is_file() else f"{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        print(f"{page} lacks the markers {BEGIN!r} ... {END!r}", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    tmp = page.with_suffix(".md.tmp")
    tmp.write_text(head + block + rest.split(END, 1)[1])
    tmp.replace(page)
    print(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
