"""Every ```python block of README.md and docs/*.md runs (fresh namespace, the repository root as the working
directory, MIXSUITE_DATA set); blocks that must not run are fenced ```bash / ```text (docs/README.md says so)."""
import os
import re
from pathlib import Path

import pytest

from conftest import ROOT
from mixsuite.errors import DataNotFound

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n`]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks():
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            if match.group(1) == "python":
                line = text[:match.start()].count("\n") + 1
                yield pytest.param(match.group(2), id=f"{page.relative_to(ROOT)}:{line}")


def test_the_pages_hold_python_blocks_and_every_fence_is_named():
    assert len(list(python_blocks())) >= 4
    for page in PAGES:
        opening = [m.group(1) for m in FENCE.finditer(page.read_text())]
        assert "" not in opening, f"{page.name}: a bare ``` block; name it (python runs, text/bash do not)"


@pytest.mark.parametrize("code", list(python_blocks()))
def test_python_block_runs(code, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert os.environ.get("MIXSUITE_DATA"), "conftest sets MIXSUITE_DATA from the shared data folder"
    try:
        exec(compile(code, "<block>", "exec"), {"__name__": "__doc_block__"})
    except DataNotFound as e:   # a block that reads a dataset this machine does not have
        pytest.skip(str(e))
