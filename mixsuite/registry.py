"""A small registry that fails loudly: duplicates are refused, unknown names suggest the nearest ones."""
from __future__ import annotations

import difflib
from typing import Iterator, TypeVar

from .errors import UnknownName

T = TypeVar("T")


def nearest(name: str, candidates, n: int = 3) -> list[str]:
    """The candidates closest to `name` (for 'did you mean' messages)."""
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.4)


def did_you_mean(name: str, candidates) -> str:
    close = nearest(name, candidates)
    if close:
        return f"did you mean {' or '.join(repr(c) for c in close)}?"
    return f"valid names: {', '.join(sorted(candidates)) or '(none)'}"


class Registry:
    """Maps names to objects. `@REG.register()` or `REG.register(obj, name=...)`; `REG.get(name)`."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, object] = {}

    def register(self, obj=None, *, name: str | None = None):
        def add(o):
            key = name or getattr(o, "name", None) or o.__name__
            if key in self._items and self._items[key] is not o:
                raise KeyError(f"{self.kind} {key!r} is already registered (by {self._items[key]!r})")
            self._items[key] = o
            return o

        return add if obj is None else add(obj)

    def get(self, name: str):
        if name not in self._items:
            raise UnknownName(f"unknown {self.kind} {name!r}; {did_you_mean(name, self._items)}")
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list[str]:
        return sorted(self._items)
