"""A writable cache for decoded / processed datasets ($MIXSUITE_CACHE, else ~/.cache/mixsuite).

Data roots may be read-only (a shared copy); anything derived from them is built once and kept here.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from . import checkpoint


def cache_dir() -> Path:
    path = Path(os.environ.get("MIXSUITE_CACHE", "") or Path.home() / ".cache" / "mixsuite")
    path.mkdir(parents=True, exist_ok=True)
    return path


def source_key(*paths: str | Path) -> str:
    """A short key that changes when any source file's path, size or mtime changes."""
    h = hashlib.sha1()
    for p in paths:
        st = Path(p).stat()
        h.update(f"{Path(p).resolve()}|{st.st_size}|{int(st.st_mtime)}".encode())
    return h.hexdigest()[:12]


def cached(name: str, build: Callable[[], dict]) -> dict:
    """Load `<cache>/<name>.pt`, or build it (a dict of tensors / plain values), save it atomically, return it.

    Put a `source_key(...)` of the inputs and any option that changes the result into `name`.
    """
    path = cache_dir() / f"{name}.pt"
    if path.is_file():
        try:
            return checkpoint.load(path)
        except Exception:  # a corrupt or stale file: rebuild it
            path.unlink(missing_ok=True)
    data = build()
    checkpoint.save(path, data)
    return data


def cached_dir(name: str, build: Callable[[Path], None]) -> Path:
    """`<cache>/<name>/`, made once by `build(folder)` in a temporary folder that is renamed into place only
    when the build succeeded: a failed or interrupted build leaves nothing under `name`.

    Put a `source_key(...)` of the inputs into `name`, so another source (or a changed file) gets its own folder.
    """
    final = cache_dir() / name
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(dir=cache_dir(), prefix=f".{name}.", suffix=".tmp"))
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp)  # another process built it meanwhile: keep theirs
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
