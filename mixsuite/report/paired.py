"""Each configuration against a baseline on the seeds both ran: `mixsuite compare --paired BASELINE`.

Runs with the same seed start from the same random draws (the initial weights, the data order), so the
per-seed difference of two configurations is less noisy than the difference of their means. For every group of
runs (task, dataset, method, config) and the baseline group of the same task and dataset (of several, the nearest:
`nearest_baseline`, e.g. each loss's own erm), the table gives the mean per-seed difference of one metric,
its standard error, the 95 % CI from Student's t (n − 1 df), the two-sided p, n to decide, and on how many seeds
the group was above, equal to or below the baseline (above is better for accuracy, worse for a loss); the
statistics themselves are stats.py's. With `holm=True` the table's p-values are Holm-adjusted together.
"""
from __future__ import annotations

from collections import defaultdict

from ..errors import UserError
from .config_diff import ABSENT, canonical, group_configs
from .records import is_number, group_key
from .stats import fmt_ci, fmt_counts, fmt_n_to_decide, fmt_p, fmt_se, holm, paired


def by_seed(records: list[dict], metric: str) -> dict[tuple, dict[int, float]]:
    """{group: {seed: value}}; a seed that a group holds twice (two folders with the same run) is an error."""
    groups: dict[tuple, dict[int, float]] = defaultdict(dict)
    for r in records:
        value = r["metrics"].get(metric)
        if not is_number(value):
            continue
        key = group_key(r)
        seeds = groups[key]
        if r["seed"] in seeds:
            raise UserError(f"seed {r['seed']} of {'/'.join(key)} is there twice (the same run "
                            "in two results folders?): read one of them, or pick seeds with --seeds")
        seeds[r["seed"]] = value
    return groups


def _baseline_groups(groups, baseline: str, metric: str) -> dict[tuple, list[tuple]]:
    """{(task, dataset): the baseline's groups}, matching the method name or a config hash prefix."""
    found = defaultdict(list)
    for key in groups:
        task, dataset, method, chash = key
        if method == baseline or (len(baseline) >= 4 and chash.startswith(baseline)):
            found[task, dataset].append(key)
    if not found:
        raise UserError(f"--paired {baseline}: no runs of a method or config hash {baseline!r} with the metric "
                        f"{metric!r} among the records read (see the method and config columns of `mixsuite compare`)")
    return found


def nearest_baseline(key, values: dict, base_keys: list, groups: dict, configs: dict) -> tuple:
    """Of several baseline configs (erm with two losses, say), the one sharing the most seeds with `key`, then the
    one whose settings differ least from its own, then the one with more seeds, then by hash."""
    def differing(base):
        names = set(configs[key]) | set(configs[base])
        return sum(canonical(configs[key].get(n, ABSENT)) != canonical(configs[base].get(n, ABSENT))
                   for n in names if n != "method")
    return min(base_keys, key=lambda b: (-len(set(values) & set(groups[b])), differing(b), -len(groups[b]), b[3]))


def paired_differences(records: list[dict], baseline: str, metric: str) -> list[dict]:
    """One line per group that has a baseline on its task and dataset and shares at least one seed with it."""
    groups = by_seed(records, metric)
    baselines = _baseline_groups(groups, baseline, metric)
    configs = group_configs(records)
    lines = []
    for key, values in sorted(groups.items()):
        base_keys = baselines.get(key[:2], [])
        if not base_keys or key in base_keys:
            continue
        base_key = nearest_baseline(key, values, base_keys, groups, configs)
        line = paired_difference(values, groups[base_key])
        if line is not None:
            lines.append({"key": key, "baseline": base_key, **line})
    return lines


def paired_difference(values: dict[int, float], base: dict[int, float]) -> dict | None:
    """{seed: value} against the baseline's on the seeds both have (stats.paired): mean difference, SE, 95 % CI,
    p, and the seeds above / equal / below; None when they share no seed."""
    return paired(values, base)


def format_paired(lines: list[dict], baseline: str, metric: str, digits: int = 4, holm_on: bool = False) -> str:
    ps = holm([x["p"] for x in lines]) if holm_on else [x["p"] for x in lines]
    p_head = "p (Holm)" if holm_on else "p"
    out = [f"### {metric}: paired against {baseline} (same seeds)\n",
           f"| task | dataset | method | config | baseline | n | Δ mean ± SE | 95 % CI | {p_head} | n to decide | "
           "seeds above / equal / below |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for x, p in zip(lines, ps):
        task, dataset, method, chash = x["key"]
        out.append(f"| {task} | {dataset} | {method} | {chash} | {x['baseline'][2]} {x['baseline'][3]} | "
                   f"{x['n']} | {x['mean']:+.{digits}f}{fmt_se(x, digits)} | {fmt_ci(x, digits)} | {fmt_p(p)} | "
                   f"{fmt_n_to_decide(x)} | {fmt_counts(x)} |")
    if not lines:
        out.append(f"| (no run shares a seed with {baseline} on its task and dataset) | | | | | | | | | | |")
    caption = ("95 % CI: Student's t with n − 1 degrees of freedom; n to decide: the seeds the observed mean and sd "
               "would need for the CI to exclude zero (at least 3)")
    if holm_on:
        caption += f"; p Holm-adjusted across the table's {sum(1 for q in ps if q == q)} comparisons"
    return "\n".join(out) + f"\n\n{caption}.\n"
