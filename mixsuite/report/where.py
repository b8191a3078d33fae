"""`--where KEY=VALUE`: keep the records whose config holds that value (dotted keys for nested settings, the value
read as YAML as a run's override is: `lake_runs=true`, `epochs=40`, `mix_layers=[block3]`); `KEY=V1,V2` keeps
those holding any of the values, split as a sweep's are (`'mix_layers=[input],[block1,block2]'`)."""
from __future__ import annotations

from ..config import parse_value, split_values
from ..errors import ConfigError, UsageError
from .config_diff import flatten


def parse_where(items) -> list[tuple[str, list]]:
    """["epochs=40,60"] -> [("epochs", [40, 60])]; a malformed item is a UsageError that shows the form."""
    out = []
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--where {item!r}: give KEY=VALUE, a config key and its value (e.g. --where epochs=40)")
        try:
            texts = split_values(raw, key) if raw else [""]
        except ConfigError as e:
            raise UsageError(f"--where {item!r}: {e}") from None
        out.append((key, [parse_value(text) for text in texts]))
    return out


def apply_where(records: list[dict], where: list[tuple[str, list]]) -> list[dict]:
    """The records whose flattened config has every key at one of its values. A key that no record's config has is
    a UsageError (a typo would otherwise print an empty table) naming some keys there are."""
    configs = [flatten(r.get("config") or {}) for r in records]
    for key, _ in where:
        if records and not any(key in c for c in configs):
            known = sorted({k for c in configs for k in c})
            raise UsageError(f"--where {key}=...: no record's config has the key {key!r}; "
                             f"keys there include {', '.join(known[:12])}{' ...' if len(known) > 12 else ''}")
    return [r for r, c in zip(records, configs) if all(key in c and c[key] in values for key, values in where)]
