"""A small registry that fails loudly: duplicates are refused, unknown names suggest the nearest ones.

A registry may also take the entries of an entry-point group (third-party plugins, e.g. `mixsuite.mixers`):
their names are read on the first lookup, a plugin is imported only when it is asked for, and a name claimed
twice (by the package and a plugin, or by two plugins) is an error naming both.
"""
from __future__ import annotations

import difflib
import importlib.metadata
from typing import Callable, Iterator, TypeVar

from .errors import UnknownName, UserError

T = TypeVar("T")


def nearest(name: str, candidates, n: int = 3) -> list[str]:
    """The candidates closest to `name` (for 'did you mean' messages)."""
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.4)


def did_you_mean(name: str, candidates) -> str:
    close = nearest(name, candidates)
    if close:
        return f"did you mean {' or '.join(repr(c) for c in close)}?"
    return f"valid names: {', '.join(sorted(candidates)) or '(none)'}"


class DuplicateName(UserError, KeyError):
    """Two registrations of one name (e.g. a plugin's entry point shadowing a built-in)."""


class PluginError(UserError, ImportError):
    """A plugin's entry point that cannot be imported or is not the kind of object the registry holds."""


class _Plugin:
    """An entry point found but not imported yet."""

    def __init__(self, ep):
        self.ep = ep
        dist = getattr(ep, "dist", None)
        self.source = f"entry point {ep.name} = {ep.value}" + (f" (package {dist.name})" if dist else "")

    def __repr__(self) -> str:
        return self.source


class Registry:
    """Maps names to objects. `@REG.register()` or `REG.register(obj, name=...)`; `REG.get(name)`.

    With `entry_point_group`, installed packages add entries under that group; `check(obj)` returns an error
    message (or None) for what a plugin's entry point loads.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None,
                 check: Callable[[object], str | None] | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.check = check
        self._items: dict[str, object] = {}
        self._scanned = entry_point_group is None

    def register(self, obj=None, *, name: str | None = None):
        def add(o):
            key = name or getattr(o, "name", None) or o.__name__
            old = self._items.get(key)
            if old is not None and old is not o and not self._is_plugin_of(old, o):
                raise DuplicateName(f"{self.kind} {key!r} is already registered (by {old!r})")
            self._items[key] = o
            return o

        return add if obj is None else add(obj)

    @staticmethod
    def _is_plugin_of(old, o) -> bool:
        """A plugin module registering itself while its entry point is being loaded."""
        return isinstance(old, _Plugin) and old.ep.value == f"{o.__module__}:{getattr(o, '__qualname__', '')}"

    def scan_entry_points(self) -> None:
        """Read the entry-point group's names (once); a name already taken is an error naming both claimants."""
        if self._scanned:
            return
        self._scanned = True
        for ep in importlib.metadata.entry_points(group=self.entry_point_group):
            plugin = _Plugin(ep)
            if ep.name in self._items:
                raise DuplicateName(
                    f"{self.kind} {ep.name!r} is claimed twice: by {self._items[ep.name]!r} and by {plugin.source}; "
                    f"rename the entry point under [project.entry-points.\"{self.entry_point_group}\"]")
            self._items[ep.name] = plugin

    def get(self, name: str):
        self.scan_entry_points()
        if name not in self._items:
            raise UnknownName(f"unknown {self.kind} {name!r}; {did_you_mean(name, self._items)}")
        item = self._items[name]
        if isinstance(item, _Plugin):
            try:
                obj = item.ep.load()
            except Exception as e:
                raise PluginError(f"cannot import {self.kind} {name!r} from {item.source}: {e}") from e
            problem = self.check(obj) if self.check else None
            if problem:
                raise PluginError(f"{self.kind} {name!r} from {item.source}: {problem}")
            self._items[name] = item = obj
        return item

    def __contains__(self, name: str) -> bool:
        self.scan_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        self.scan_entry_points()
        return sorted(self._items)
