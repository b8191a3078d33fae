"""Atomic files: a failed write leaves the old file whole and no temporary behind; files get the usual mode."""
import json
import os

import pytest
import torch

from mixsuite.checkpoint import atomic_write_json, load, save


def test_atomic_json_has_the_umask_mode_and_replaces_whole(tmp_path):
    path = tmp_path / "rec.json"
    atomic_write_json(path, {"a": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}


def test_failed_checkpoint_keeps_the_previous_one(tmp_path):
    path = tmp_path / "ckpt.pt"
    save(path, {"step": torch.tensor(1)})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        save(path, {"step": torch.tensor(2), "bad": Unpicklable()})
    assert int(load(path)["step"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]
