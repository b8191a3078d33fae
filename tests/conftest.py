import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MIXSUITE_DATA", "") or ROOT.parent / "shared" / "data").resolve()
if SHARED_DATA.is_dir():  # absolute, so subprocesses started in other folders find it too
    os.environ["MIXSUITE_DATA"] = str(SHARED_DATA)
# One processed-data cache for the whole session (loaders decode once; smoke runs reuse it), unless set outside.
os.environ.setdefault("MIXSUITE_CACHE", tempfile.mkdtemp(prefix="mixsuite-cache-"))


def run_cli(*args, cwd=ROOT, env=None, timeout=600):
    """`python -m mixsuite ARGS` in a subprocess; returns the CompletedProcess."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mixsuite", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set MIXSUITE_DATA)")
    return SHARED_DATA
