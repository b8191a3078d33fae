"""Lake et al.'s 20 original one-shot runs (Science 2015; `all_runs.zip` of the Omniglot repository).

Each run is a within-alphabet 20-way 1-shot problem: 20 training images (`runNN/training/classNN.png`, one drawing
of each of 20 characters of one evaluation alphabet) and 20 test images (`runNN/test/itemNN.png`, another drawer's
drawing of each), paired in `runNN/class_labels.txt` as '<test file> <training file>' lines. The paper reports the
error rate over the 400 test images (people 4.5 %, BPL 3.3 %). Its characters come from the evaluation alphabets,
which the Vinyals split trains on: score it on a model trained on the background set only.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mixsuite.data import resize_uint8
from mixsuite.errors import DataNotFound

from .episodes import episode_accuracies


@dataclass
class LakeRuns:
    """train, test: uint8 (runs, 20, 1, size, size) with ink = 255; answer[r, i] = the training class of test i."""

    train: torch.Tensor
    test: torch.Tensor
    answer: torch.Tensor


def find_zip(root: Path) -> Path:
    for path in (root / "omniglot" / "all_runs.zip", root / "all_runs.zip"):
        if path.is_file():
            return path
    raise DataNotFound("Lake's one-shot runs", [root / "omniglot" / "all_runs.zip", root / "all_runs.zip"],
                       "Put all_runs.zip (python/one-shot-classification/ of the Omniglot repository) beside the "
                       "Omniglot npz files, or set lake_runs=false.")


def load_runs(path: Path, size: int) -> LakeRuns:
    """Every run in the zip, in run order; images resized to `size` as the training images are (area)."""
    from PIL import Image

    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        runs = sorted({n.split("/")[0] for n in names if n.endswith("/class_labels.txt")})
        if not runs:
            raise ValueError(f"{path}: no <run>/class_labels.txt inside; is this Lake's all_runs.zip?")

        def image(name: str) -> torch.Tensor:
            pixels = np.asarray(Image.open(io.BytesIO(z.read(name))).convert("1"))
            return torch.from_numpy(~pixels).to(torch.uint8)[None] * 255      # the files: True = background

        train, test, answer = [], [], []
        for run in runs:
            pairs = [line.split() for line in z.read(f"{run}/class_labels.txt").decode().splitlines() if line.strip()]
            train_files = sorted(t for _, t in pairs)
            test_files = sorted(q for q, _ in pairs)
            truth = dict(pairs)
            if len(set(train_files)) != len(pairs) or not set(train_files) | set(test_files) <= names:
                raise ValueError(f"{path}: {run}/class_labels.txt must pair each test image with a distinct "
                                 "training image of the zip")
            train.append(torch.stack([image(f) for f in train_files]))
            test.append(torch.stack([image(f) for f in test_files]))
            answer.append(torch.tensor([train_files.index(truth[q]) for q in test_files]))
    n_runs, way = len(runs), len(train[0])
    resize = lambda x: resize_uint8(torch.cat(x), size).view(n_runs, way, 1, size, size)
    return LakeRuns(resize(train), resize(test), torch.stack(answer))


def run_accuracies(train_feats: torch.Tensor, test_feats: torch.Tensor, answer: torch.Tensor,
                   classifier: str = "nearest", **fit) -> torch.Tensor:
    """Accuracy of each run (runs,) from features (runs, way, D).

    classifier: `nearest` = the training image of highest cosine similarity (Lake's protocol scores a similarity
    per pair); `logistic` / `cosine` / `prototype` = the task's episode classifier on the run's 20 one-shot images
    (`prototype` is `nearest` with one shot).
    """
    if classifier == "nearest":
        sims = F.normalize(test_feats, dim=-1) @ F.normalize(train_feats, dim=-1).transpose(1, 2)
        return (sims.argmax(dim=-1) == answer).float().mean(dim=1)
    runs, way, dim = train_feats.shape
    feats = torch.cat([train_feats.reshape(-1, dim), test_feats.reshape(-1, dim)])
    support = torch.arange(runs * way).view(runs, way, 1)
    order = answer.argsort(dim=1)                          # the test image of class c, for c = 0..way-1
    query = runs * way + (torch.arange(runs)[:, None] * way + order)[..., None]
    return episode_accuracies(feats, support, query, classifier, **fit)
