"""What sets apart the configs of one task, dataset and method: the legend under a `mixsuite compare` table.

A config hash names a config without saying what is in it. Where a dataset and method ran with several configs,
the legend lists, for each, the settings in which they differ, read from the run records. A record made before a
setting existed lacks it; the legend says so, since that alone changes the hash.
"""
from __future__ import annotations

import json
from collections import defaultdict

from ..config import NON_SEMANTIC
from .records import group_key

ABSENT = object()


def flatten(config: dict, prefix: str = "") -> dict:
    """{"model": {"depth": 18}} -> {"model.depth": 18}."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def semantic_settings(config: dict) -> dict:
    return {k: v for k, v in flatten(config).items() if k.split(".")[0] not in NON_SEMANTIC}


def canonical(value) -> str:
    return "\0absent" if value is ABSENT else json.dumps(value, sort_keys=True, default=str)


def group_configs(records: list[dict]) -> dict[tuple, dict]:
    """{group key: its settings, flattened}: the union over its records (an `added_field` at its default may be
    in some of them only)."""
    configs = defaultdict(dict)
    for record in records:
        configs[group_key(record)].update(semantic_settings(record.get("config") or {}))
    return configs


def config_differences(records: list[dict]) -> dict[tuple, dict]:
    """{group key: {setting: value or ABSENT}} for the groups whose task, dataset and method have several configs,
    with the settings whose values are not the same across those configs."""
    configs = group_configs(records)
    siblings = defaultdict(list)
    for key in configs:
        siblings[key[:3]].append(key)
    out = {}
    for keys in siblings.values():
        if len(keys) < 2:
            continue
        names = sorted(set().union(*(configs[k] for k in keys)))
        varying = [n for n in names if len({canonical(configs[k].get(n, ABSENT)) for k in keys}) > 1]
        for k in keys:
            out[k] = {n: configs[k].get(n, ABSENT) for n in varying}
    return out


def _show(value) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)


def describe(settings: dict) -> str:
    """'gamma=3.0, aliased_ema=true; lacks attention_dropout' for one config's row of the legend."""
    present = ", ".join(f"{name}={_show(v)}" for name, v in settings.items() if v is not ABSENT)
    absent = [name for name, v in settings.items() if v is ABSENT]
    text = present + ("; " if present and absent else "") + (f"lacks {', '.join(absent)}" if absent else "")
    return text or "no recorded setting differs"


def format_differences(differences: dict[tuple, dict], task: str) -> list[str]:
    """Markdown lines of one task's legend, or none when each of its datasets and methods has one config."""
    keys = sorted(k for k in differences if k[0] == task)
    if not keys:
        return []
    lines = ["Configs of one dataset and method differ in (lacks: the records predate that setting):", "",
             "| dataset | method | config | settings |", "|---|---|---|---|"]
    lines += [f"| {dataset} | {method} | {chash} | {describe(differences[(task, dataset, method, chash)])} |"
              for _, dataset, method, chash in keys]
    return lines + [""]
