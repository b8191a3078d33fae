"""`mixsuite compare RESULTS --across-tasks` with a claims file: the results' front page (results/README.md),
designed for a reader with two minutes.

First the claims table (claims.py: verdict, headline, n, Δ with its 95 % CI, a link to the details in claims.md);
then per task one compact table per headline protocol (the claims file's `tasks:`): methods as rows, the task's
headline metrics (validation-selected) as columns in their units with 3 significant digits, n, and Δ against the
task's baseline with its 95 % CI (stats.py; ▲ / ▼ where n ≥ 3 and the CI excludes zero).

A protocol is named in words: the config file of configs/<task>/ whose settings the runs match best, then the keys
in which they differ from it ("cpu-overfit-short · epochs 80"). Of several configs of one method in a protocol the
page shows the one with the most seeds (then the latest); the others (first attempts, shorter runs) only with
--all, named by the settings that set them apart. Config hashes stay off the tables; the appendix lists them
(--show-hash also puts them beside the names).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import yaml

from . import units
from .claims import matches, yaml_text, evaluate, ledger_rows, RULE
from .claims_file import metric_format
from .config_diff import canonical, config_differences, describe as describe_settings, flatten
from .records import group_key, is_number, load_records
from .stats import mark, paired

PER_RUN_KEYS = {"seed", "method", "alpha", "mix_layers", "device", "data_root", "progress"}


def config_files(task: str) -> dict[str, dict]:
    """{stem: flattened settings} of configs/<task>/*.yaml, looked for under the working folder (a checkout)."""
    folder = Path("configs") / task
    out = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else ():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            out[path.stem] = flatten(data)
    return out


def protocol_name(task: str, config: dict) -> str:
    """'cpu-overfit-short · epochs 80': the best-matching config file, then its settings the runs changed."""
    flat = flatten(config)
    best = None
    for stem, settings in config_files(task).items():
        keys = [k for k in settings if k not in PER_RUN_KEYS and k in flat]
        changed = [k for k in keys if canonical(settings[k]) != canonical(flat[k])]
        score = (len(changed), -len(keys), stem)
        if len(changed) * 2 < len(keys) and (best is None or score < best[0]):   # mostly that file
            best = (score, stem, changed)
    if best is None:
        return "the task's defaults"
    _, stem, changed = best
    return " · ".join([stem] + [f"{k} {yaml_text(flat[k])}" for k in changed])


def _choose(groups: dict, show_all: bool) -> list[tuple]:
    """Per method the config with the most seeds (then the latest run); every config with --all."""
    by_method = defaultdict(list)
    for key, recs in groups.items():
        by_method[key[2]].append(key)
    chosen = []
    for method, keys in by_method.items():
        keys.sort(key=lambda k: (len(groups[k]), max(r.get("started_at") or "" for r in groups[k])), reverse=True)
        chosen += keys if show_all else keys[:1]
    return chosen


def protocol_table(task: str, spec: dict, protocol: dict, records: list[dict], claims: dict, show_all: bool,
                   show_hash: bool, appendix: list) -> list[str]:
    recs = [r for r in records if r["task"] == task and matches(r, protocol["where"])]
    if not recs:
        return [f"(no record matches {protocol['where']})", ""]
    groups = defaultdict(list)
    for r in recs:
        groups[group_key(r)].append(r)
    keys = _choose(groups, show_all)
    base_keys = [k for k in keys if k[2] == spec["baseline"]]
    base = max(base_keys, key=lambda k: len(groups[k])) if base_keys else None
    differences = config_differences([r for k in keys for r in groups[k]])
    name = protocol.get("name") or protocol_name(task, (groups[base] if base else recs)[0]["config"]) \
        or ", ".join(f"{k} {yaml_text(v)}" for k, v in protocol["where"].items())
    if protocol.get("dataset_title") and not name.startswith(protocol["dataset_title"]):
        name = f"{protocol['dataset_title']} · {name}"
    metrics = spec["metrics"]
    formats = {m: metric_format(claims, m) for m in metrics}
    short = {m: formats[m].get("short") or formats[m]["label"] for m in metrics}
    head = ["method"] + [short[m] for m in metrics] + ["n"] + [f"Δ {short[m]} (95 % CI)" for m in metrics]
    out = [f"**{name}** (baseline {spec['baseline']})", "", "| " + " | ".join(head) + " |",
           "|---" * len(head) + "|"]
    order = sorted(keys, key=lambda k: (k != base, k[2], -len(groups[k])))
    for key in order:
        label = key[2]
        if show_all and sum(k[2] == key[2] for k in keys) > 1:
            label += f" · {describe_settings(differences.get(key, {}))}"
        if show_hash:
            label += f" `{key[3]}`"
        appendix.append((task, name, key[2], key[3], len(groups[key])))
        cells, deltas = [], []
        for m in metrics:
            values = {r["seed"]: r["metrics"][m] for r in groups[key] if is_number(r["metrics"].get(m))}
            fmt = formats[m]
            cells.append(units.value(sum(values.values()) / len(values), fmt["unit"], fmt["scale"]) if values else "")
            if key == base or base is None:
                deltas.append("baseline" if key == base else "")
                continue
            base_values = {r["seed"]: r["metrics"][m] for r in groups[base] if is_number(r["metrics"].get(m))}
            d = paired(values, base_values) if values else None
            if d is None:
                deltas.append("no paired seed")
                continue
            symbol = mark(d, "max" if metrics[m] == "higher" else "min")
            n_note = f", n {d['n']}" if d["n"] != len(values) else ""
            deltas.append(f"{units.delta(d, fmt['unit'], fmt['scale'])} {units.ci(d, fmt['unit'], fmt['scale'])}"
                          f"{n_note}{' ' + symbol if symbol else ''}")
        out.append(f"| {label} | " + " | ".join(cells) + f" | {len(groups[key])} | " + " | ".join(deltas) + " |")
    return out + [""]


def task_sections(claims: dict, records: list[dict], roots: list[Path], show_all: bool, show_hash: bool,
                  pages: dict, appendix: list) -> list[str]:
    out = []
    for task, spec in claims["tasks"].items():
        link = f" ([{pages[task]}]({pages[task]}))" if task in pages else ""
        out += [f"### {task}{link}", ""]
        if spec["summary"]:
            out += [spec["summary"], ""]
        for protocol in spec["protocols"]:
            folders = protocol.get("results")
            recs = records if not folders else [r for f in ([folders] if isinstance(folders, str) else folders)
                                                for r in load_records(roots[0] / f)]
            for one in per_dataset(task, protocol, recs):
                out += protocol_table(task, spec, one, recs, claims, show_all, show_hash, appendix)
    return out


def per_dataset(task: str, protocol: dict, records: list[dict]) -> list[dict]:
    """The protocol, or one a dataset where its records hold several and it names none: a mean over two datasets
    (or a method shown on one and its baseline on another) would mean nothing."""
    if "dataset" in protocol["where"]:
        return [protocol]
    datasets = sorted({r.get("dataset") for r in records if r["task"] == task and matches(r, protocol["where"])})
    if len(datasets) <= 1:
        return [protocol]
    return [{**protocol, "where": {**protocol["where"], "dataset": d}, "dataset_title": d} for d in datasets]


def front_page(claims: dict, records: list[dict], roots: list[Path], claims_path: str, show_all: bool = False,
               show_hash: bool = False) -> str:
    root = roots[0]
    flags = (" --all" if show_all else "") + (" --show-hash" if show_hash else "")
    command = f"mixsuite compare {' '.join(map(str, roots))} --across-tasks{flags} > {root / 'README.md'}"
    pages = {p.stem: p.name for p in sorted(root.glob("*.md")) if p.name != "README.md"}
    out = ["# Results", "", f"Generated by `{command}` from the run records in "
           f"{', '.join(str(r / 'runs') for r in roots)} and the claims in `{claims_path}`; do not edit by hand.", "",
           "## The claims", "", RULE, ""]
    out += ledger_rows(evaluate(claims, roots), claims, link="claims.md") + [""]
    out += ["## Each task's headline protocol", "",
            "Rows: methods; columns: the task's headline metrics, read at the epoch chosen on validation where the task "
            "has a validation set (mean over seeds), n seeds, "
            "and each method's paired difference from the task's baseline (same seeds) with its 95 % CI; ▲ / ▼: "
            "better / worse where n ≥ 3 and the CI excludes zero. pt: percentage points. Of several configs of one "
            "method the one with the most seeds is shown" + ("" if show_all else " (all of them: `--all`)") + ".", ""]
    appendix: list = []
    out += task_sections(claims, records, roots, show_all, show_hash, pages, appendix)
    if pages:
        out += ["## Pages", ""] + [f"- [{name}]({name}): {_title(root / name)}" for name in pages.values()] + [""]
    out += ["## Appendix: the config hashes behind each row", "", "| task | protocol | method | config | n |",
            "|---|---|---|---|---|"]
    out += [f"| {t} | {p} | {m} | {h} | {n} |" for t, p, m, h, n in appendix]
    return "\n".join(out).rstrip() + "\n"


def _title(page: Path) -> str:
    return next((ln.lstrip("# ").strip() for ln in page.read_text().splitlines() if ln.startswith("#")), "")
