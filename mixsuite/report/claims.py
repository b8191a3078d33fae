"""The claims ledger: `mixsuite compare RESULTS --claims FILE`. Each claim's verdict follows by rule from its ONE
primary comparison (declared in the claims file before looking, claims_file.py), paired by seed (stats.py):

  supported      n ≥ 3 and the 95 % CI of method − baseline lies wholly on the expected side of zero
  contradicted   n ≥ 3 and the 95 % CI lies wholly on the other side
  inconclusive   otherwise (with n to decide: the seeds the observed mean and sd would need)
  not measured   no paired seeds (or the claim says why no record can measure it)

No correction for multiple claims: each claim has one primary, fixed in advance; the secondaries are context.
"""
from __future__ import annotations

import difflib
import shlex
from pathlib import Path

from ..errors import UserError
from . import units
from .claims_file import DECIDABLE_WITHIN, metric_format
from .config_diff import ABSENT, canonical, config_differences, describe as describe_settings, flatten
from .records import group_key, is_number, load_records
from .stats import decided, fmt_n_to_decide, fmt_p, paired

VERDICTS = ("supported", "contradicted", "inconclusive", "not measured")


def matches(record: dict, where: dict) -> bool:
    config = flatten(record.get("config") or {})
    for key, want in where.items():
        have = record["dataset"] if key == "dataset" else config.get(key, ABSENT)
        if canonical(have) != canonical(want):
            return False
    return True


def _check_where_keys(records: list[dict], where: dict, label: str) -> None:
    keys = {k for r in records for k in flatten(r.get("config") or {})} | {"dataset"}
    for key in where:
        if key not in keys:
            close = difflib.get_close_matches(key, sorted(keys), n=3)
            raise UserError(f"{label}: where {key}: no record of the task has this config key"
                            + (f"; close ones: {', '.join(close)}" if close else ""))


def _one_config(records: list[dict], spec: dict, side: str, label: str) -> list[dict]:
    """The records of one side (method or baseline) under its where (and config pin); more than one config among
    them is an error naming each with its settings."""
    method, where, pin = spec[side], spec["sides"][side], spec.get(f"{side}_config")
    mine = [r for r in records if r["method"] == method and matches(r, where)
            and (pin is None or r["config_hash"].startswith(pin))]
    keys = sorted({group_key(r) for r in mine})
    if len(keys) > 1:
        differences = config_differences(mine)
        listed = "; ".join(f"{k[1]} {k[3]} ({describe_settings(differences.get(k, {}))})" for k in keys)
        raise UserError(f"{label}: {method} matches {len(keys)} configs with where {where or '{}'}: {listed}; add "
                        f"the settings that tell them apart to `where` (or `{side}_where`)")
    return mine


def compare_spec(spec: dict, records: list[dict], label: str, folder: str = "results") -> dict:
    """One declared comparison against the records read: its paired statistics (None: no seed in common) and
    the command that prints it."""
    task_records = [r for r in records if r["task"] == spec["task"]]
    if not task_records:
        tasks = sorted({r["task"] for r in records})
        raise UserError(f"{label}: no record of task {spec['task']!r}; the tasks there: {', '.join(tasks) or 'none'}")
    for side in ("method", "baseline"):
        _check_where_keys(task_records, spec["sides"][side], label)
    there = sorted({k for r in task_records for k, v in r["metrics"].items() if is_number(v)})
    if spec["metric"] not in there:
        close = difflib.get_close_matches(spec["metric"], there, n=4, cutoff=0.5)
        raise UserError(f"{label}: metric {spec['metric']!r} is in no {spec['task']} record's metrics"
                        + (f"; close ones: {', '.join(close)}" if close else f"; they are: {', '.join(there)}"))
    method = _one_config(task_records, spec, "method", label)
    base = _one_config(task_records, spec, "baseline", label)
    values = {r["seed"]: r["metrics"][spec["metric"]] for r in method if is_number(r["metrics"].get(spec["metric"]))}
    base_values = {r["seed"]: r["metrics"][spec["metric"]] for r in base if is_number(r["metrics"].get(spec["metric"]))}
    d = paired(values, base_values)
    seeds = d["seeds"] if d else []
    base_config = base[0]["config_hash"] if base else None
    return {"spec": spec, "d": d, "seeds": seeds,
            "method_mean": _mean([values[s] for s in seeds]), "base_mean": _mean([base_values[s] for s in seeds]),
            "method_config": method[0]["config_hash"] if method else None, "base_config": base_config,
            "command": command(spec, seeds, sorted(set(values) | set(base_values)), folder,
                               _paired_name(spec, base_config, task_records))}


def command_where(spec: dict) -> dict[str, list]:
    """The --where filters of the command: the common `where`, and each key both sides set, at either value."""
    out = {key: [value] for key, value in spec["where"].items()}
    method_where, base_where = spec["sides"]["method"], spec["sides"]["baseline"]
    for key in sorted(set(method_where) & set(base_where) - set(out)):
        out[key] = [method_where[key]] + ([base_where[key]] if canonical(base_where[key]) != canonical(method_where[key])
                                          else [])
    return out


def _paired_name(spec: dict, base_config: str | None, records: list[dict]) -> str:
    """What `--paired` needs in the command: the baseline method, or its config hash where the command's filters
    leave it several configs (a `baseline_where` or `baseline_config` the --where filters cannot say)."""
    where = command_where(spec)
    left = {r["config_hash"] for r in records if r["method"] == spec["baseline"]
            and all(any(matches(r, {k: v}) for v in values) for k, values in where.items())}
    return spec["baseline"] if len(left) <= 1 or base_config is None else base_config


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def command(spec: dict, seeds: list, all_seeds: list, results: str = "results", paired_with: str = "") -> str:
    """`mixsuite compare` that prints the comparison's every figure: the means (table) and Δ, CI, p (paired)."""
    folders = [results if f in (".", "") else f"{results}/{f}" for f in spec.get("results") or ["."]]
    parts = ["mixsuite", "compare", *folders, "--task", spec["task"]]
    for key, values in command_where(spec).items():
        parts += ["--where", f"{key}={','.join(yaml_text(v) for v in values)}"]
    parts += ["--method", spec["baseline"], "--method", spec["method"]]
    if seeds and seeds != all_seeds:   # the means over the paired seeds only
        parts += ["--seeds", *map(str, seeds)]
    parts += ["--paired", paired_with or spec["baseline"], "--metric", spec["metric"]]
    return " ".join(shlex.quote(p) for p in parts)


def yaml_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(yaml_text(v) for v in value) + "]"
    return str(value)


def verdict(result: dict | None) -> str:
    """The rule, from the primary comparison (None: the claim declares it not measurable)."""
    if result is None or result["d"] is None:
        return "not measured"
    d = result["d"]
    if not decided(d):
        return "inconclusive"
    expected_sign = 1 if result["spec"]["expect"] == "higher" else -1
    return "supported" if d["mean"] * expected_sign > 0 else "contradicted"


def evaluate(claims: dict, roots: list[Path]) -> list[dict]:
    """Every claim with its primary and secondary comparisons against the records under `roots` (a comparison's
    `results` folder is read under the first root)."""
    cache: dict[str, list[dict]] = {}

    def records_for(spec: dict) -> list[dict]:
        folders = tuple(spec.get("results") or ())
        if folders not in cache:
            paths = [roots[0] / f for f in folders] if folders else roots
            missing = [str(p) for p in paths if not p.is_dir()]
            if missing:
                raise UserError(f"results {', '.join(folders)}: no such folder ({', '.join(missing)}) under "
                                f"{roots[0]}")
            cache[folders] = [r for p in paths for r in load_records(p)]
        return cache[folders]

    out = []
    for claim in claims["claims"]:
        label = f"claim {claim['id']}"
        primary = compare_spec(claim["primary"], records_for(claim["primary"]), f"{label} primary", str(roots[0])) \
            if claim["primary"] else None
        secondary = [s if s["kind"] == "figure" else
                     {"kind": "comparison", **compare_spec(s, records_for(s), f"{label} secondary {j + 1}",
                                                           str(roots[0]))}
                     for j, s in enumerate(claim["secondary"])]
        out.append({**claim, "verdict": verdict(primary), "result": primary, "secondary_results": secondary,
                    "folder": str(roots[0])})
    return out


# --- the page ----------------------------------------------------------------------------------------------------

def headline(result: dict, claims: dict) -> str:
    """'test error 42.7 % → 39.6 %' (baseline → method, over the paired seeds)."""
    fmt = metric_format(claims, result["spec"]["metric"])
    return (f"{fmt.get('short') or fmt['label']} {units.value(result['base_mean'], fmt['unit'], fmt['scale'])} → "
            f"{units.value(result['method_mean'], fmt['unit'], fmt['scale'])}")


def delta_with_ci(result: dict, claims: dict) -> str:
    fmt = metric_format(claims, result["spec"]["metric"])
    return f"{units.delta(result['d'], fmt['unit'], fmt['scale'])} {units.ci(result['d'], fmt['unit'], fmt['scale'])}"


def anchor(claim: dict) -> str:
    return f"claim-{claim['id']}"


def _verdict_text(claim: dict, claims: dict) -> str:
    """The verdict, and for an inconclusive one what more seeds would do: "n to decide" where that many are within
    reach (at most the claims file's `decidable_within`, default 8), else "not decidable at this scale"."""
    text = f"**{claim['verdict']}**"
    if claim["verdict"] == "inconclusive":
        n = fmt_n_to_decide(claim["result"]["d"])
        if n.startswith(">") or (n.isdigit() and int(n) > claims.get("decidable_within", DECIDABLE_WITHIN)):
            return text + f": not decidable at this scale (needs ~{n.lstrip('> ')} seeds)"
        text += f" (n to decide: {n})"
    return text


def _side(spec: dict, between: str = "−") -> str:
    """'image · epochs 40: manifold (alpha 0.2) − erm'."""
    def settings(where: dict) -> str:
        return ", ".join(f"{k} {yaml_text(v)}" for k, v in where.items())

    def one(side: str) -> str:
        own = {k: v for k, v in spec["sides"][side].items() if k not in spec["where"]}
        return spec[side] + (f" ({settings(own)})" if own else "")

    if spec.get("protocol"):
        return f"{spec['task']} · {spec['protocol']}: {spec['method']} {between} {spec['baseline']}"
    common = settings(spec["where"])
    return f"{spec['task']}{' · ' + common if common else ''}: {one('method')} {between} {one('baseline')}"


def ledger_rows(evaluated: list[dict], claims: dict, link: str = "") -> list[str]:
    """The table: one row per claim, `| id | claim | verdict | headline | n | Δ (95 % CI) | p | command |`, or with
    `link` (the ledger page) the front page's `| id | claim | verdict | headline | n | Δ (95 % CI) | details |`."""
    head = "| id | claim | verdict | headline (baseline → method) | n | Δ (95 % CI) | p | " + \
           ("details |" if link else "command |")
    rows = [head, "|---" * (head.count("|") - 1) + "|"]
    for c in evaluated:
        r = c["result"]
        last = f"[details]({link}#{anchor(c)})" if link else (f"`{r['command']}`" if r else "—")
        if r is None or r["d"] is None:
            why = c["not_measured"] or f"no seed of {r['spec']['method']} has a paired {r['spec']['baseline']} run"
            rows.append(f"| {c['id']} | {c['claim']} | **not measured** | {why} | 0 | — | — | {last} |")
            continue
        rows.append(f"| {c['id']} | {c['claim']} | {_verdict_text(c, claims)} | {_side(r['spec'], 'vs')}, "
                    f"{headline(r, claims)} | {r['d']['n']} | {delta_with_ci(r, claims)} | "
                    f"{fmt_p(r['d']['p'])} | {last} |")
    return rows


def _comparison_line(result: dict, claims: dict) -> str:
    spec, d = result["spec"], result["d"]
    if d is None:
        return f"| {_side(spec)} | {spec['metric']} | 0 | — | — | — | — | `{result['command']}` |"
    expected = "higher" if spec["expect"] == "higher" else "lower"
    return (f"| {_side(spec)} | {spec['metric']} (expect {expected}) | {d['n']} | {headline(result, claims)} | "
            f"{delta_with_ci(result, claims)} | {fmt_p(d['p'])} | {d['above']} / {d['equal']} / {d['below']} | "
            f"`{result['command']}` |")


def details(evaluated: list[dict], claims: dict) -> list[str]:
    out = []
    head = ["| comparison | metric | n | baseline → method | Δ (95 % CI) | p | seeds above / equal / below | command |",
            "|---|---|---|---|---|---|---|---|"]
    for c in evaluated:
        out += [f'<a id="{anchor(c)}"></a>', "", f"### {c['id']}. {c['claim']}: {c['verdict']}", ""]
        if c["result"] is None:
            out += [f"Not measured: {c['not_measured']}", ""]
        else:
            r = c["result"]
            out += ["Primary (decides the verdict):", ""] + head + [_comparison_line(r, claims), ""]
            out += [f"Configs: {r['spec']['method']} {r['method_config']}, {r['spec']['baseline']} "
                    f"{r['base_config']}; seeds {', '.join(map(str, r['seeds'])) or 'none in common'}.", ""]
        comparisons = [s for s in c["secondary_results"] if s["kind"] == "comparison"]
        figures = [s for s in c["secondary_results"] if s["kind"] == "figure"]
        if comparisons:
            out += ["Secondary (context, each with its own CI):", ""] + head
            out += [_comparison_line(s, claims) for s in comparisons] + [""]
        for f in figures:
            source = f" ({f['source']})" if f.get("source") else ""
            cmd = f": `{f['command']}`" if f.get("command") else ""
            out += [f"- Figure{source}: {f['figure']}{cmd}"]
        if figures:
            out.append("")
        if c["note"]:
            out += [f"Note: {c['note']}", ""]
    return out


RULE = ("Verdicts follow by rule from each claim's one primary comparison, declared before looking "
        "(paired by seed, method − baseline): **supported** where n ≥ 3 and the 95 % CI (Student's t, n − 1 "
        "degrees of freedom) lies wholly on the expected side of zero, **contradicted** where it lies wholly on the "
        "other side, **inconclusive** otherwise (n to decide: the smallest n ≥ 3 whose CI would exclude zero if "
        "the observed mean and sd held; *not decidable at this scale* where that is more seeds than the claims "
        "file's `decidable_within`, default 8), **not measured** where no seed is paired. No correction across claims; "
        "the secondary comparisons are context and decide nothing.")


def ledger(claims: dict, roots: list[Path], claims_path: str) -> str:
    """The whole page (results/claims.md)."""
    evaluated = evaluate(claims, roots)
    folders = " ".join(map(str, roots))
    out = ["# Claims: what each measures, its verdict by rule", "",
           f"Generated by `mixsuite compare {folders} --claims {claims_path}` from the run records in "
           f"{', '.join(str(r / 'runs') for r in roots)}; do not edit by hand: change the claims file or the "
           "records, then regenerate.", "", RULE, "", "Each row's command prints every figure in the row: the means "
           "(the table) and Δ, its CI and p (the paired table).", ""]
    out += ledger_rows(evaluated, claims) + ["", "## Details", ""] + details(evaluated, claims)
    return "\n".join(out).rstrip() + "\n"
