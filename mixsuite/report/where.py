"""`--where KEY=VALUE`: keep the records whose config holds that value (dotted keys for nested settings, the value
read as YAML as a run's override is: `lake_runs=true`, `epochs=40`, `mix_layers=[block3]`)."""
from __future__ import annotations

import yaml

from ..errors import UsageError
from .config_diff import flatten


def parse_where(items) -> list[tuple[str, object]]:
    """["epochs=40"] -> [("epochs", 40)]; a malformed item is a UsageError that shows the form."""
    out = []
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--where {item!r}: give KEY=VALUE, a config key and its value (e.g. --where epochs=40)")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        out.append((key, value))
    return out


def apply_where(records: list[dict], where: list[tuple[str, object]]) -> list[dict]:
    """The records whose flattened config has every key at its value. A key that no record's config has is
    a UsageError (a typo would otherwise print an empty table) naming some keys there are."""
    configs = [flatten(r.get("config") or {}) for r in records]
    for key, _ in where:
        if records and not any(key in c for c in configs):
            known = sorted({k for c in configs for k in c})
            raise UsageError(f"--where {key}=...: no record's config has the key {key!r}; "
                             f"keys there include {', '.join(known[:12])}{' ...' if len(known) > 12 else ''}")
    return [r for r, c in zip(records, configs) if all(key in c and c[key] == value for key, value in where)]
