"""A split too small to train or evaluate on is refused before training: the error names the split, the file it
came from and what that file held. A run that saw no data is not a result (an empty test split once recorded a
perfect 0 % error)."""
from __future__ import annotations

from .errors import EmptySplit


def require_examples(split: str, count: int, source, held: str | None = None, *, need: int = 1,
                     unit: str = "examples", why: str = "") -> None:
    """Raise EmptySplit unless the `split` split has at least `need` `unit`s. `source`: the file (or folder) it was
    read from; `held`: what that file held (default: the count itself); `why`: what the minimum is needed for."""
    if count >= need:
        return
    size = "is empty" if count == 0 else f"has {count} {unit}"
    wanted = f" (at least {need} {unit} needed{' ' + why if why else ''})" if need > 1 or why else ""
    raise EmptySplit(f"the {split} split {size}{wanted}: {source} held {held or f'{count} {unit}'}. A run that saw "
                     "no data is not a result: fix or replace that file (or set data_root to a complete copy); "
                     "nothing was trained")
