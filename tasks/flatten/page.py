"""The numbers and the figure of results/flatten.md, from the flatten records of a results folder:

    python tasks/flatten/page.py results --epochs 12 --figure results/figures/flatten-spectra.png \
        --page results/flatten.md

Per method: mean ± 95 % CI (Student t, n - 1 df) over seeds; per method against erm: the mean per-seed
difference, its CI, the paired t-test's p and n. The figure (the blog's Figure 6 shape): the singular values (all
but the largest) of the bottleneck codes of six classes' test images at the selected epoch, one line per
method (the mean over seeds).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

METHODS = ("erm", "weight_decay", "dropout", "input", "manifold")
PAPER = {"erm": (51.73, 78.67), "weight_decay": (33.76, 73.36), "dropout": (28.83, 77.47),
         "input": (33.46, 66.89), "manifold": (31.65, 40.98)}   # arXiv 1806.05236v7 section 3.2: top, sum of rest
COLUMNS = [("best_sv_top", "sv_top (test)"), ("best_sv_rest", "sv_rest (test)"),
           ("best_train_sv_top", "sv_top (train)"), ("best_train_sv_rest", "sv_rest (train)"),
           ("best_sv_rest_over_top", "sv_rest / sv_top (test)"), ("rest_over_overall", "sv_rest / all-class sum (test)"),
           ("best_h1_sv_top", "h1 sv_top"), ("best_h1_sv_rest", "h1 sv_rest"),
           ("best_test_acc", "test acc %"), ("best_test_nll", "test NLL"), ("best_epoch", "epoch")]
PERCENT = {"best_test_acc"}
BEGIN, END = "<!-- numbers: tasks/flatten/page.py -->", "<!-- /numbers -->"


def t_quantile(df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, df))


def mean_ci(vals: list[float]) -> tuple[float, float, int]:
    """(mean, half-width of the 95 % Student-t CI, n); half-width nan for n < 2."""
    n = len(vals)
    m = statistics.fmean(vals)
    if n < 2:
        return m, math.nan, n
    return m, t_quantile(n - 1) * statistics.stdev(vals) / math.sqrt(n), n


def paired(a: dict[int, float], b: dict[int, float]) -> dict | None:
    """a - b on the seeds both have: mean, CI half-width, two-sided paired t-test p, n."""
    from scipy import stats

    seeds = sorted(set(a) & set(b))
    d = [a[s] - b[s] for s in seeds]
    if len(d) < 2:
        return None
    m, half, n = mean_ci(d)
    p = float(stats.ttest_1samp(d, 0.0).pvalue) if statistics.stdev(d) > 0 else 0.0
    return {"mean": m, "half": half, "p": p, "n": n, "below": sum(x < 0 for x in d)}


def load(root: Path, epochs: int | None) -> dict[str, list[dict]]:
    from mixsuite.report.records import load_records

    by_method: dict[str, list[dict]] = {}
    for rec in load_records(root, tasks=["flatten"]):
        if epochs is None or rec["config"]["epochs"] == epochs:
            by_method.setdefault(rec["method"], []).append(rec)
    return by_method


def values(recs: list[dict], key: str) -> dict[int, float]:
    if key == "best_sv_rest_over_top":   # scale-free: both grow with the codes' overall scale
        return {r["seed"]: r["metrics"]["best_sv_rest"] / r["metrics"]["best_sv_top"] for r in recs}
    if key == "rest_over_overall":        # scale-free: against the spread of all classes' codes together
        return {r["seed"]: rest_over_overall(s) for r in recs if (s := spectra_of(r)) is not None}
    scale = 100.0 if key in PERCENT else 1.0
    return {r["seed"]: scale * r["metrics"][key] for r in recs if key in r["metrics"]}


def fmt(m: float, half: float, digits: int) -> str:
    return f"{m:.{digits}f}" if math.isnan(half) else f"{m:.{digits}f} ± {half:.{digits}f}"


def main_table(by_method: dict) -> str:
    head = "| method | n | paper sv_top | paper sv_rest | " + " | ".join(c for _, c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (4 + len(COLUMNS))]
    for method in METHODS:
        recs = by_method.get(method, [])
        if not recs:
            continue
        cells = []
        for key, _ in COLUMNS:
            v = list(values(recs, key).values())
            digits = 0 if key == "best_epoch" else (4 if key in ("best_test_nll", "rest_over_overall") else 2)
            cells.append(fmt(*mean_ci(v)[:2], digits) if v else "–")
        top, rest = PAPER[method]
        lines.append(f"| {method} | {len(recs)} | {top} | {rest} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


PAIRED_KEYS = [("best_sv_rest", "sv_rest (test)", 2), ("best_sv_top", "sv_top (test)", 2),
               ("best_train_sv_rest", "sv_rest (train)", 2), ("best_sv_rest_over_top", "sv_rest / sv_top", 3),
               ("rest_over_overall", "sv_rest / all-class sum", 4), ("best_h1_sv_rest", "h1 sv_rest", 2),
               ("best_test_acc", "test acc (points)", 3), ("best_test_nll", "test NLL", 4)]


def differences_table(by_method: dict, rows: list[tuple[str, str, str]], keys: list[tuple], head: str) -> str:
    """One row per (label, method, baseline) whose runs exist: each key's paired difference method − baseline."""
    lines = [f"| {head} | " + " | ".join(f"{label}: Δ ± CI, p, below/n" for _, label, _ in keys) + " |",
             "|" + "---|" * (1 + len(keys))]
    for label, method, base in rows:
        a, b = by_method.get(method, []), by_method.get(base, [])
        if not a or not b:
            continue
        cells = []
        for key, _, digits in keys:
            r = paired(values(a, key), values(b, key))
            cells.append("–" if r is None else
                         f"{fmt(r['mean'], r['half'], digits)}, p {r['p']:.2g}, {r['below']}/{r['n']}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(by_method: dict) -> str:
    return differences_table(by_method, [(m, m, "erm") for m in METHODS[1:]], PAIRED_KEYS, "method − erm")


def against_manifold(by_method: dict) -> str:
    """Manifold mixup against each other method (section 3.2: "only Manifold Mixup" reduces the rest)."""
    return differences_table(by_method, [(m, "manifold", m) for m in METHODS[:-1]],
                             [PAIRED_KEYS[0], PAIRED_KEYS[4]], "manifold − method")


def spectra_of(rec: dict) -> dict | None:
    """The selected epoch's spectra.json kept with a record (bottleneck, test images), or None."""
    from mixsuite.report.records import run_file

    path = run_file(rec, "spectra.json")
    return None if path is None else json.loads(Path(path).read_text())


def rest_over_overall(spectra: dict) -> float:
    """sv_rest / the sum of the singular values of all classes' codes together (the same images, centred)."""
    per = list(spectra["per_class"].values())
    return sum(sum(s[1:]) for s in per) / len(per) / sum(spectra["overall"])


def mean_spectra(recs: list[dict]) -> dict | None:
    """Per class, the mean over seeds of the selected epoch's singular values (spectra.json kept with a record)."""
    import torch

    per_seed = [s["per_class"] for s in map(spectra_of, recs) if s is not None]
    if not per_seed:
        return None
    return {c: torch.tensor([s[c] for s in per_seed]).mean(0) for c in per_seed[0]}


def plot(by_method: dict, path: Path, classes=("0", "1", "2", "3", "4", "5")) -> Path:
    from mixsuite.analysis import panel_grid, save_figure

    spectra = {m: mean_spectra(by_method[m]) for m in METHODS if by_method.get(m)}
    spectra = {m: s for m, s in spectra.items() if s is not None}
    fig, axes = panel_grid(len(classes), max_cols=3, panel_size=(3.4, 2.7))
    for ax, c in zip(axes, classes):
        for method, s in spectra.items():
            # from the second on: the paper's figures cut the largest off too (its mean is in the table)
            ax.plot(range(2, len(s[c]) + 1), s[c][1:].numpy(), marker=".",
                    label=f"{method} (n={len(by_method[method])})")
        ax.set_xticks(range(2, len(s[c]) + 1, 2))
        ax.set_title(f"digit {c}")
        ax.set_xlabel("singular value index")
        ax.set_ylabel("singular value")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.suptitle("MNIST, 12-unit bottleneck: class-specific singular values 2-12 (test images, selected "
                 "epoch, mean over seeds)", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=7)
    return save_figure(fig, path, tight=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="the results folder (holds runs/flatten/*.json)")
    ap.add_argument("--epochs", type=int, default=None, help="only the records of this many epochs")
    ap.add_argument("--figure", type=Path, default=None, help="write the spectra figure here")
    ap.add_argument("--page", type=Path, default=None,
                    help=f"rewrite the part of this page between {BEGIN!r} and {END!r} instead of printing")
    args = ap.parse_args(argv)
    by_method = load(args.results, args.epochs)
    if not by_method:
        print(f"no finished flatten records under {args.results}", file=sys.stderr)
        return 1
    text = main_table(by_method) + "\n\n" + paired_table(by_method) + "\n\n" + against_manifold(by_method)
    if args.figure:
        plot(by_method, args.figure)
    if args.page is None:
        print(text)
        return 0
    page = args.page.read_text()
    if BEGIN not in page or END not in page:
        print(f"{args.page} has no {BEGIN!r} ... {END!r} block to rewrite", file=sys.stderr)
        return 1
    head, rest = page.split(BEGIN, 1)
    from mixsuite.checkpoint import atomic_write_text

    atomic_write_text(args.page, head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
