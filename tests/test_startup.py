"""`mixsuite --help`, `list` and `compare` start without importing torch (bench/startup_time.py times them)."""
import json
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

PROBE = """import sys
from mixsuite.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("TORCH" if "torch" in sys.modules else "NO-TORCH", file=sys.stderr)
"""


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("records") / "runs" / "spirals"
    folder.mkdir(parents=True)
    for path in sorted((ROOT / "results" / "runs" / "spirals").glob("*.json"))[:3]:
        shutil.copy(path, folder)
    return folder.parent.parent


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["list"], ["compare", "{records}"],
                                  ["compare", "{records}", "--metric", "test_acc", "--format", "csv"]])
def test_command_imports_no_torch(argv, records):
    argv = [a.format(records=records) for a in argv]
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.stderr.strip().splitlines()[-1] == "NO-TORCH", done.stderr
    if argv[0] == "list":
        assert "spirals" in done.stdout
    if argv[0] == "compare":
        assert "spirals" in done.stdout and "erm" in done.stdout, done.stdout   # the table was really made
