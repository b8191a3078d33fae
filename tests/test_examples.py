"""Every script in examples/ runs with --smoke (well under a minute on a CPU) and prints its figures; one whose
dataset or extra is missing is skipped."""
import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

DATA = Path(os.environ.get("MIXSUITE_DATA", "data"))
# script -> (the dataset file it reads or None, the packages it needs, the last line's pattern)
EXAMPLES = {
    "cifar10_manifold_mixup.py": ("cifar10_jpeg/cifar10_jpeg.npz", [], r"Epoch: 001, Loss: (\S+), Test: (\S+)"),
    "graphmix_cora.py": ("planetoid/Cora/raw/ind.cora.x", ["torch_geometric"], r"Epoch: 005, Loss: (\S+), .*Test: (\S+)"),
    "timm_mixup_swap.py": (None, ["timm"], r"Epoch: 001, Loss: (\S+)"),
    "lightning_mixup.py": (None, ["lightning"], r"val_acc: (\S+)"),
    "hf_mixup.py": (None, ["transformers"], r"eval_loss: (\S+)"),
}


def test_every_example_is_run():
    assert sorted(p.name for p in (ROOT / "examples").glob("*.py")) == sorted(EXAMPLES)


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_runs_with_smoke(script, tmp_path):
    dataset, packages, pattern = EXAMPLES[script]
    if dataset and not (DATA / dataset).is_file():
        pytest.skip(f"{DATA / dataset} is not here")
    for package in packages:
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed")
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--smoke"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(pattern, done.stdout)
    assert found, done.stdout
    assert all(math.isfinite(float(v)) for v in found.groups())
    assert list(tmp_path.iterdir()) == []   # nothing left in the folder it ran from
