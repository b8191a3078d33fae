"""Typed configuration: dataclass defaults, then YAML files, then `key=value` overrides (later wins).

Unknown keys and ill-typed values raise ConfigError naming the key (and the nearest valid one). Allowed values
are declared once per field with `Annotated` rules and checked when the config is built, before any work:

    method: Annotated[str, one_of(METHODS)] = "manifold"
    epochs: Annotated[int, at_least(1)] = 10
    mix_prob: Annotated[float, probability] = 1.0

A subclass that only changes a field's default (`epochs: int = 1200`) keeps the rules of its bases; a config
class may add cross-field rules in `check()`, which returns a list of problems.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import yaml

from .config_rules import (Each, NonEmpty, OneOf, Range, Rule, at_least, between, each,  # noqa: F401
                           non_empty, non_negative, one_of, positive, probability)  # (re-exported)
from .errors import ConfigError  # noqa: F401  (re-exported: mixsuite.config.ConfigError)
from .registry import nearest


# Fields that do not change what is computed: left out of the config hash that groups runs in tables.
NON_SEMANTIC = {"seed", "device", "data_root", "num_workers", "progress", "checkpoint_every", "checkpoint_seconds",
                "log_every", "tensorboard", "seeds_batch"}   # seeds_batch: the per-seed numbers (mixsuite.stacked)
HASHED_WHEN_SET = "hashed_when_set"
COMPUTED_BEFORE = "computed_before"
DRAWING_ONLY = "drawing_only"


def drawing_field(default):
    """A field that changes only what a run draws, never the numbers its record holds (spirals' `beside`: another
    method's decision maps in the figure): left out of the config hash, as NON_SEMANTIC's fields are."""
    return field(default=default, metadata={DRAWING_ONLY: True})


def added_field(default, before=None):
    """A config field added after runs were recorded, whose default computes what the code did before it existed.

    It enters the config hash only when set to another value, so the configs that leave it alone keep the hash
    (and the table rows, and the resumable checkpoints) they had. A plain field would give every config a new hash.
    A list or dict default is copied for each config.

    `before`: a default changed since, so the value that computes what the code did before the field existed is
    not the default any more: that value, or a function of the config giving it. The field stays out of the hash
    only at that value, so the new default gives the configs that leave it alone a new hash.
    """
    metadata = {HASHED_WHEN_SET: True} if before is None else {HASHED_WHEN_SET: True, COMPUTED_BEFORE: before}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _value_before(cfg, f: dataclasses.Field):
    """The value of added field `f` that computes what the code did before it existed."""
    before = f.metadata.get(COMPUTED_BEFORE)
    if before is None:
        return _default(f)
    return before(cfg) if callable(before) else before


def _computes_as_before(cfg, f: dataclasses.Field) -> bool:
    return getattr(cfg, f.name) == _value_before(cfg, f)


def from_record(cls, values: dict):
    """The config of a run record's `config` with today's code: an added field the record lacks (it was made before
    the field existed) takes the value that computes what the code did then, not a default changed since."""
    cfg = merge(cls(), values)
    then = {f.name: _value_before(cfg, f) for f in dataclasses.fields(cfg)
            if f.name not in values and COMPUTED_BEFORE in f.metadata}
    return dataclasses.replace(cfg, **then) if then else cfg


@dataclass
class RunConfig:
    """Fields every task shares; a task's config dataclass extends it."""

    dataset: str = ""
    method: str = "erm"
    seed: int = 0
    epochs: Annotated[int, at_least(1)] = 10
    device: Annotated[str, one_of("auto", "cpu", "cuda", "mps", prefixes={"cuda:": lambda n: None if n.isdigit()
                                  else f"'cuda:{n}' is not a device: use cuda:<index>, e.g. cuda:0"})] = "auto"
    amp: Annotated[str, one_of("auto", "off", "bf16", "fp16")] = "auto"   # auto: bf16 on CUDA, off on CPU
    channels_last: bool = True    # for 4-D inputs on CUDA
    cpu_channels_last: bool = added_field(False)  # channels_last on CPU too (bench/memory_format.py measures it)
    eval_every: Annotated[int, at_least(1)] = 1        # evaluate every N epochs (and always at the last one)
    checkpoint_every: Annotated[int, at_least(1)] = 1  # checkpoint every N epochs (and always at the last one)
    checkpoint_seconds: Annotated[float, non_negative] = 30.0   # ... but no sooner than this after the last one
    #                               (in one process; 0: every N epochs): thousands of tiny epochs pay no save each
    log_every: Annotated[int, at_least(1)] = 1         # a summary line every N epochs (metrics.jsonl gets every one)
    data_root: str = ""           # "" -> $MIXSUITE_DATA -> ./data
    num_workers: Annotated[int, non_negative] = 0
    progress: bool = True         # progress bars (only on a TTY and on rank 0)
    tensorboard: bool = False     # also write each epoch's metrics as TensorBoard scalars in the run folder
    patience: Annotated[int, non_negative] = added_field(0)   # stop once this many epochs pass with no new best
                                                             # select metric (0: never)

    def check(self) -> list[str]:
        """Cross-field rules of a task's config: a list of problems, each starting with the field it is about."""
        return []


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


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
        bad = OneOf(typing.get_args(tp)).problem(value)
        if bad:
            raise ConfigError(f"{key}: {bad}")
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
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(number):   # no field means anything by inf or nan (alpha=.inf hung the Beta sampler)
            raise ConfigError(f"{key}: {value!r} is not a finite number; give a finite value")
        return number
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
    value = parse_value(raw)
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def parse_value(raw: str):
    """An override's value as YAML ('1e-3' -> 0.001, '[a,b]' -> ['a', 'b']); text that is not YAML stays text."""
    try:
        return yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        return raw


def split_values(raw: str, key: str) -> list[str]:
    """'0.5,1,[input,layer1]' -> ['0.5', '1', '[input,layer1]']: commas inside brackets or quotes do not split."""
    values, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(raw):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(raw[start:i].strip())
            start = i + 1
        if depth < 0:
            break
    if depth or quote:
        raise ConfigError(f"{key}={raw}: unbalanced brackets or quotes (a value that holds commas is bracketed: "
                          f"'{key}=[a,b],[c]')")
    values.append(raw[start:].strip())
    if len(values) > 1 and "" in values:
        raise ConfigError(f"{key}={raw}: an empty value between commas")
    return values


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
    """Defaults of `cls`, then each YAML file, then each 'key=value' override; then every rule is checked."""
    cfg = cls()
    for f in files:
        cfg = merge(cfg, load_yaml(f))
    for o in overrides:
        cfg = merge(cfg, parse_override(o))
    return validate(cfg)


@functools.cache
def field_rules(cls) -> dict[str, tuple[Rule, ...]]:
    """The rules of each field of dataclass `cls`: those declared on it by every class of its MRO, so a subclass
    that re-declares a field to change its default keeps its bases' rules. `Literal[...]` counts as a one_of."""
    rules: dict[str, list[Rule]] = {}
    for klass in reversed(cls.__mro__):
        own = klass.__dict__.get("__annotations__", {})
        if not own or not dataclasses.is_dataclass(klass):
            continue
        hints = typing.get_type_hints(klass, include_extras=True)
        for name in own:
            found = rules.setdefault(name, [])
            found += [r for r in _rules_of(hints[name]) if r not in found]
    names = {f.name for f in dataclasses.fields(cls)}
    return {name: tuple(r) for name, r in rules.items() if name in names}


def _rules_of(tp) -> list[Rule]:
    if _origin(tp) is Annotated:
        return [m for m in tp.__metadata__ if isinstance(m, Rule)] + _rules_of(tp.__origin__)
    if _origin(tp) is typing.Literal:
        return [OneOf(typing.get_args(tp))]
    return []


def problems(cfg, prefix: str = "") -> list[str]:
    """Every rule broken by `cfg` (nested configs included), each as 'field: what is wrong'."""
    out = []
    rules = field_rules(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out += problems(value, prefix=f"{prefix}{f.name}.")
            continue
        if value is None:  # an Optional field left unset is always allowed
            continue
        for rule in rules.get(f.name, ()):
            bad = rule.problem(value)
            if bad:
                out.append(f"{prefix}{f.name}: {bad}")
                break
    check = getattr(cfg, "check", None)
    if not out and callable(check):  # cross-field rules assume each field is valid on its own
        out += [prefix + p for p in check()]
    return out


def validate(cfg):
    """`cfg` itself if it breaks no rule; else a ConfigError listing every problem."""
    found = problems(cfg)
    if found:
        raise ConfigError(found[0] if len(found) == 1 else
                          f"{len(found)} problems:\n  " + "\n  ".join(found))
    return cfg


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def to_yaml(cfg) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def config_hash(cfg) -> str:
    """A short hash of what the config computes (seed, device, paths and `drawing_field`s left out, and
    `added_field`s at the value that computes what the code did before they existed)."""
    unset = {f.name for f in dataclasses.fields(cfg) if f.metadata.get(DRAWING_ONLY)
             or f.metadata.get(HASHED_WHEN_SET) and _computes_as_before(cfg, f)}
    d = {k: v for k, v in to_dict(cfg).items() if k not in NON_SEMANTIC and k not in unset}
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


def method_label(cfg) -> str:
    """The method as a run record and the tables name it (a config may say more than its `method` field, e.g.
    that a mixing method never mixes: see mixsuite.mixing.MixingConfig.method_label)."""
    label = getattr(cfg, "method_label", None)
    return label() if callable(label) else cfg.method
