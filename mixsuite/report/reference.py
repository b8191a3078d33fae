"""Published numbers beside ours: `mixsuite compare --reference FILE.yaml`.

A reference file names one metric and lists what papers (or other reproductions) report for it:

    metric: best_test_acc
    scale: 100                # the file's numbers are the metric times this (here: percent)
    digits: 2                 # decimals in the printed table (default 2)
    entries:
      - {dataset: cora, method: graphmix, mean: 83.94, std: 0.57, n: 100, source: "paper, Table 1"}

Each entry is set beside every row of the table with the same dataset and method. An entry of another method
on a dataset the table has (a paper's own method, people, a published baseline) is listed after them as what
it is: a published number beside no row. A published mean has no seeds to pair with, so the gap is unpaired:
Welch's 95 % CI and two-sided p (stats.unpaired; ours alone when the reference gives no n or std), and the
verdict follows the one rule of stats.py: `above` / `below` only where n >= 3 and the CI excludes zero, else
`inconclusive`, so a table says whether a gap is larger than the seeds' noise rather than just its sign.
"""
from __future__ import annotations

from pathlib import Path

from ..config import load_yaml
from ..errors import ConfigError
from .stats import MIN_N_FOR_A_VERDICT, excludes_zero, fmt_ci, fmt_p, unpaired

ENTRY_KEYS = {"dataset": str, "method": str, "mean": (int, float), "std": (int, float), "n": int, "source": str}
REQUIRED_ENTRY_KEYS = ("dataset", "method", "mean", "source")


def load_reference(path: str | Path) -> dict:
    """Read and check a reference file; every mistake names the file, the entry and the key."""
    path = Path(path)
    data = load_yaml(path, what="reference file")
    unknown = set(data) - {"metric", "scale", "digits", "entries"}
    if unknown:
        raise ConfigError(f"reference file {path}: unknown key(s) {sorted(unknown)}; "
                          "allowed: metric, scale, digits, entries")
    if not isinstance(data.get("metric"), str):
        raise ConfigError(f"reference file {path}: 'metric' must name the run metric the numbers are for")
    scale = data.get("scale", 1)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
        raise ConfigError(f"reference file {path}: 'scale' must be a positive number, got {scale!r}")
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"reference file {path}: 'entries' must be a non-empty list")
    for i, entry in enumerate(entries):
        where = f"reference file {path}, entry {i + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a mapping, got {entry!r}")
        for key in REQUIRED_ENTRY_KEYS:
            if key not in entry:
                raise ConfigError(f"{where}: missing '{key}'")
        for key, value in entry.items():
            if key not in ENTRY_KEYS:
                raise ConfigError(f"{where}: unknown key '{key}'; allowed: {', '.join(ENTRY_KEYS)}")
            if not isinstance(value, ENTRY_KEYS[key]) or isinstance(value, bool):
                raise ConfigError(f"{where}: '{key}' has the wrong type ({value!r})")
    return {"metric": data["metric"], "scale": float(scale), "digits": int(data.get("digits", 2)),
            "entries": entries, "path": str(path)}


def compare_to_reference(rows: list[dict], ref: dict) -> list[dict]:
    """One line per (summary row, reference entry) with the same dataset and method, in the reference's units."""
    lines = []
    for entry in ref["entries"]:
        for row in rows:
            if (row["dataset"], row["method"]) != (entry["dataset"], entry["method"]):
                continue
            stat = row["stats"].get(ref["metric"])
            if stat is None:
                continue
            mean, std, n = (stat[0] * ref["scale"], stat[1] * ref["scale"], stat[2])
            gap = unpaired(mean, std, n, entry["mean"], entry.get("std"), entry.get("n"))
            gap["delta"] = gap.pop("mean")
            lines.append({"row": row, "entry": entry, **gap, "mean": mean, "std": std})
    return lines


def unmatched_entries(rows: list[dict], ref: dict) -> list[dict]:
    """The entries on a dataset the rows have whose method no row has: published numbers to read beside the rows,
    not against one of them."""
    datasets = {row["dataset"] for row in rows if ref["metric"] in row["stats"]}
    pairs = {(row["dataset"], row["method"]) for row in rows}
    return [e for e in ref["entries"] if e["dataset"] in datasets and (e["dataset"], e["method"]) not in pairs]


def verdict(gap: dict) -> str:
    """`above` / `below` the published mean where n >= 3 and the 95 % CI excludes zero, else `inconclusive`."""
    if gap["n"] < MIN_N_FOR_A_VERDICT or not excludes_zero(gap):
        return "inconclusive"
    return "above" if gap["delta"] > 0 else "below"


def _published(entry: dict, digits: int) -> str:
    """A reference entry's cell: its mean, ± its std and (n) when it gives them."""
    return f"{entry['mean']:.{digits}f}" + (f" ± {entry['std']:.{digits}f}" if "std" in entry else "") + \
        (f" ({entry['n']})" if "n" in entry else "")


def format_reference(lines: list[dict], ref: dict, unmatched: list[dict] = ()) -> str:
    """The table of `compare_to_reference`'s lines, then the `unmatched_entries` (their method run by no row)."""
    d = ref["digits"]
    out = [f"### {ref['metric']} beside {Path(ref['path']).name} (×{ref['scale']:g})\n",
           "| dataset | method | config | mixsuite (n) | reference (n) | Δ | 95 % CI | p | verdict | source |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for x in lines:
        e, r = x["entry"], x["row"]
        out.append(f"| {r['dataset']} | {r['method']} | {r['config_hash']} | {x['mean']:.{d}f} ± {x['std']:.{d}f} "
                   f"({x['n']}) | {_published(e, d)} | {x['delta']:+.{d}f} | {fmt_ci(x, d)} | {fmt_p(x['p'])} | "
                   f"{verdict(x)} | {e['source']} |")
    for e in unmatched:
        out.append(f"| {e['dataset']} | {e['method']} (published) | | | {_published(e, d)} | | | | beside no row | "
                   f"{e['source']} |")
    if not lines and not unmatched:
        out.append("| (no run matches a reference entry's dataset and method) | | | | | | | | | |")
    caption = ("Unpaired (a published mean has no seeds to pair with): Welch's 95 % CI and two-sided p, the "
               "reference's spread counted where it gives std and n; above / below only where n >= 3 and the CI "
               "excludes zero, else inconclusive")
    return "\n".join(out) + f"\n\n{caption}.\n"
