"""Allowed-value rules of config fields, declared with `Annotated` (`Annotated[int, at_least(1)]`) and checked
by `mixsuite.config` when a config is built: each rule's `problem(value)` says what is wrong with a value."""
from __future__ import annotations

import difflib
from typing import Callable

from .registry import nearest


class Rule:
    """An allowed-value rule of one field: `problem(value)` says what is wrong with a value (None: nothing)."""

    def problem(self, value) -> str | None:
        raise NotImplementedError


class OneOf(Rule):
    """A closed set of names, read when checked (a tuple, a dict's keys, a registry, or a callable giving one),
    plus open families by prefix (`timm:<name>`), each with a function that says what is wrong with the rest."""

    def __init__(self, *sources, prefixes: dict[str, Callable[[str], str | None]] | None = None,
                 ignore_case: bool = False):
        self.sources, self.prefixes, self.ignore_case = sources, dict(prefixes or {}), ignore_case

    def names(self) -> list[str]:
        out = []
        for source in self.sources:
            source = source() if callable(source) and not hasattr(source, "__iter__") else source
            items = [source] if isinstance(source, str) else list(source)
            out += [n for n in items if n not in out]
        return out

    def problem(self, value) -> str | None:
        names = self.names()
        if value in names or (self.ignore_case and isinstance(value, str) and value.lower() in names):
            return None
        for prefix, check in self.prefixes.items():
            if isinstance(value, str) and value.startswith(prefix):
                return check(value[len(prefix):])
        valid = names + [f"{p}<name>" for p in self.prefixes]
        spelled = str(value).lower() if self.ignore_case else str(value)
        close = nearest(spelled, names, n=1)
        if close:
            hint = f"; did you mean {close[0]!r}?"
        else:   # nothing close: still name the nearest spelling
            closest = difflib.get_close_matches(spelled, names, n=1, cutoff=0.0)
            hint = f"; the nearest is {closest[0]!r}" if closest else ""
        return f"{value!r} is not one of {', '.join(valid)}{hint}"


class Range(Rule):
    """lo <= value <= hi (either bound optional, either open), or one of the `allow`ed special values."""

    def __init__(self, lo=None, hi=None, *, lo_open: bool = False, hi_open: bool = False, allow=()):
        self.lo, self.hi, self.lo_open, self.hi_open, self.allow = lo, hi, lo_open, hi_open, tuple(allow)

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            text = f"in {'(' if self.lo_open else '['}{self.lo}, {self.hi}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            text = f"{'>' if self.lo_open else '>='} {self.lo}"
        else:
            text = f"{'<' if self.hi_open else '<='} {self.hi}"
        return text + "".join(f" or {a}" for a in self.allow)

    def problem(self, value) -> str | None:
        if value in self.allow:
            return None
        low = self.lo is None or (value > self.lo if self.lo_open else value >= self.lo)
        high = self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)
        return None if low and high else f"{value!r} is out of range: it must be {self.describe()}"


class Each(Rule):
    """A rule applied to every item of a list field."""

    def __init__(self, rule: Rule):
        self.rule = rule

    def problem(self, value) -> str | None:
        for i, item in enumerate(value):
            bad = self.rule.problem(item)
            if bad:
                return f"item {i}: {bad}"
        return None


class NonEmpty(Rule):
    def problem(self, value) -> str | None:
        return None if len(value) else "must not be empty"


def one_of(*sources, prefixes=None, ignore_case: bool = False) -> OneOf:
    return OneOf(*sources, prefixes=prefixes, ignore_case=ignore_case)


def at_least(lo, allow=()) -> Range:
    return Range(lo, allow=allow)


def between(lo, hi, allow=()) -> Range:
    return Range(lo, hi, allow=allow)


def each(rule: Rule) -> Each:
    return Each(rule)


positive = Range(0, lo_open=True)
non_negative = Range(0)
probability = Range(0, 1)
non_empty = NonEmpty()
