"""Typed configuration: dataclass defaults, then YAML files, then `key=value` overrides (later wins).

Unknown keys and ill-typed values raise ConfigError naming the key (and the nearest valid one).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .registry import nearest


from .errors import ConfigError  # noqa: F401  (re-exported: mixsuite.config.ConfigError)


@dataclass
class RunConfig:
    """Fields every task shares; a task's config dataclass extends it."""

    dataset: str = ""
    method: str = "erm"
    seed: int = 0
    epochs: int = 10
    device: str = "auto"          # auto | cpu | cuda | cuda:N
    amp: str = "auto"             # auto (bf16 on CUDA, off on CPU) | off | bf16 | fp16
    channels_last: bool = True    # for 4-D inputs on CUDA
    eval_every: int = 1           # evaluate every N epochs (and always at the last one)
    checkpoint_every: int = 1     # checkpoint every N epochs (and always at the last one)
    log_every: int = 1            # print a summary line every N epochs (metrics.jsonl gets every epoch)
    data_root: str = ""           # "" -> $MIXSUITE_DATA -> ./data
    num_workers: int = 0
    progress: bool = True         # progress bars (only on a TTY and on rank 0)
    tensorboard: bool = False     # also write each epoch's metrics as TensorBoard scalars in the run folder


# Fields that do not change what is computed: left out of the config hash that groups runs in tables.
NON_SEMANTIC = {"seed", "device", "data_root", "num_workers", "progress", "checkpoint_every", "log_every", "tensorboard"}
HASHED_WHEN_SET = "hashed_when_set"


def added_field(default):
    """A config field added after runs were recorded, whose default computes what the code did before it existed.

    It enters the config hash only when set to another value, so the configs that leave it alone keep the hash
    (and the table rows, and the resumable checkpoints) they had. A plain field would give every config a new hash.
    """
    return field(default=default, metadata={HASHED_WHEN_SET: True})


def _origin(tp):
    return typing.get_origin(tp)


def _is_optional(tp) -> tuple[bool, object]:
    if _origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) < len(typing.get_args(tp)) and len(args) == 1:
            return True, args[0]
    return False, tp


def coerce(value, tp, key: str):
    """Check (and gently convert) a YAML-parsed value against a field's annotation."""
    optional, tp = _is_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: null is not allowed (expected {getattr(tp, '__name__', tp)})")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return merge(tp(), value, prefix=key + ".")
    origin = _origin(tp)
    if origin in (list, tuple):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value] if not isinstance(value, str) else [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        item = args[0] if args else typing.Any
        out = [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return out if origin is list else tuple(out)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if tp is typing.Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def merge(cfg, updates: dict, prefix: str = ""):
    """A copy of dataclass `cfg` with `updates` (possibly nested dicts) applied and type-checked."""
    hints = typing.get_type_hints(type(cfg))
    names = [f.name for f in dataclasses.fields(cfg)]
    changes = {}
    for key, value in updates.items():
        if key not in hints or key not in names:
            close = nearest(key, names, n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(f"unknown config key '{prefix}{key}' for {type(cfg).__name__}{hint}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = merge(current, value, prefix=f"{prefix}{key}.")
        else:
            changes[key] = coerce(value, hints[key], prefix + key)
    return dataclasses.replace(cfg, **changes)


def parse_override(text: str) -> dict:
    """'a.b=1e-3' -> {'a': {'b': 0.001}} (values parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def load_yaml(path: str | Path, what: str = "config file") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {str(path)!r} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {str(path)!r} must hold a mapping of keys to values")
    return data


def build_config(cls, files=(), overrides=()):
    """Defaults of `cls`, then each YAML file, then each 'key=value' override."""
    cfg = cls()
    for f in files:
        cfg = merge(cfg, load_yaml(f))
    for o in overrides:
        cfg = merge(cfg, parse_override(o))
    return cfg


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def to_yaml(cfg) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def config_hash(cfg) -> str:
    """A short hash of what the config computes (seed, device and paths left out, and `added_field`s at their
    default)."""
    unset = {f.name for f in dataclasses.fields(cfg)
             if f.metadata.get(HASHED_WHEN_SET) and getattr(cfg, f.name) == f.default}
    d = {k: v for k, v in to_dict(cfg).items() if k not in NON_SEMANTIC and k not in unset}
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]
