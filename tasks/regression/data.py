"""The C-Mixup regression benchmarks under `<data root>/regression/` (see that folder's README):
Airfoil Self-Noise and NO2 (tabular, one target) and Exchange-Rate (8 daily series, windows of 168 steps).

Every split is (x, y) float32 tensors; y is (N, 1) for the tabular sets and (N, 8) for the series.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mixsuite.errors import DataNotFound, UserError

FOLDER = "regression"
FILES = {"airfoil": "airfoil_self_noise.dat", "no2": "no2.csv", "exchange_rate": "exchange_rate.txt.gz"}
AIRFOIL_PERMS = "airfoil_cmixup_perms.npz"
AIRFOIL_SPLIT = (1003, 300, 200)     # C-Mixup's train / validation / test rows after its seeded shuffle


class SplitTooSmall(UserError):
    """A split with too few rows to train or measure on. Exit code 2."""

    exit_code = 2


@dataclass
class Splits:
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    note: str                       # how the split was made, for the log and the record
    scale: torch.Tensor | None = None   # the series' per-column max |value| (targets are divided by it)

    def sizes(self) -> tuple[int, int, int]:
        return len(self.train[0]), len(self.val[0]), len(self.test[0])


def data_file(root: Path, dataset: str) -> Path:
    path = Path(root) / FOLDER / FILES[dataset]
    if not path.is_file():
        raise DataNotFound(f"the {dataset} data ({FILES[dataset]})", path.parent,
                           f"put the C-Mixup regression files there (see {FOLDER}/README.md of the shared data), "
                           "or set data_root / $MIXSUITE_DATA to the folder that holds regression/")
    return path


def _tensors(x: np.ndarray, y: np.ndarray):
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)


def min_max(x: np.ndarray) -> np.ndarray:
    """Each column scaled to [0, 1] by its min and max over all rows (C-Mixup's Airfoil scaling); a constant
    column becomes 0."""
    lo, span = x.min(0), np.ptp(x, 0)
    return (x - lo) / np.where(span > 0, span, 1.0)


def check_sizes(splits: Splits, path: Path, min_train: int) -> Splits:
    """Refuse an empty split, or a training split with fewer rows than one batch, naming it and the file."""
    for name, n, need in zip(("train", "val", "test"), splits.sizes(), (min_train, 1, 1)):
        if n < need:
            raise SplitTooSmall(f"the {name} split of {path} has {n} rows; it needs at least {need} "
                                f"({'one batch' if name == 'train' else 'one row'}): the file looks truncated, "
                                "get a complete copy (see regression/README.md), or lower batch_size")
    return splits


def load_airfoil(root: Path, seed: int) -> Splits:
    """C-Mixup's Airfoil: rows shuffled by its seed-`seed` permutation (stored for seeds 0-9), the 5 inputs min-max
    scaled over all 1503 rows, the target in dB; 1003 / 300 / 200 rows."""
    path = data_file(root, "airfoil")
    table = np.loadtxt(path)
    if table.ndim != 2 or table.shape[1] != 6:
        raise UserError(f"{path} should hold 6 tab-separated columns, got shape {table.shape}")
    perms = np.load(path.parent / AIRFOIL_PERMS)
    seeds = list(perms["seeds"])
    if seed not in seeds:
        raise UserError(f"{AIRFOIL_PERMS} holds C-Mixup's Airfoil shuffles for seeds {seeds[0]}-{seeds[-1]} only; "
                        f"run seed={seed} with one of them")
    order = perms["perm"][seeds.index(seed)].astype(np.int64)
    order = order[order < len(table)]   # a truncated file keeps the rows it has, in C-Mixup's order
    x, y = min_max(table[:, :5]), table[:, 5:]
    a, b = AIRFOIL_SPLIT[0], AIRFOIL_SPLIT[0] + AIRFOIL_SPLIT[1]
    idx = order[:a], order[a:b], order[b:]
    return Splits(*(_tensors(x[i], y[i]) for i in idx), note=f"C-Mixup's seed-{seed} shuffle, 1003/300/200")


def load_no2(root: Path, seed: int, fractions=(0.6, 0.2)) -> Splits:
    """NO2: C-Mixup's split is not public, so ours: a permutation drawn with numpy's seed `seed` cut at 60/20/20
    (300 / 100 / 100 rows); the 7 inputs min-max scaled over all rows as Airfoil; the target log NO2."""
    path = data_file(root, "no2")
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    if table.shape[1] != 8:
        raise UserError(f"{path} should hold 8 comma-separated columns after its header, got shape {table.shape}")
    n = len(table)
    order = np.random.RandomState(seed).permutation(n)
    a, b = int(fractions[0] * n), int((fractions[0] + fractions[1]) * n)
    x, y = min_max(table[:, :7]), table[:, 7:]
    idx = order[:a], order[a:b], order[b:]
    return Splits(*(_tensors(x[i], y[i]) for i in idx),
                  note=f"our split (C-Mixup's is not public): RandomState({seed}) permutation, 60/20/20")


def load_exchange_rate(root: Path, window: int = 168, horizon: int = 12, fractions=(0.6, 0.2)) -> Splits:
    """Exchange-Rate as LSTNet and C-Mixup: each series divided by its max |value|; time-ordered split at
    int(0.6 n) and int(0.8 n); the sample for step t has the `window` steps ending `horizon` steps before t as
    input and the 8 values at t as target (targets t >= window + horizon - 1)."""
    path = data_file(root, "exchange_rate")
    raw = np.loadtxt(path, delimiter=",", ndmin=2)
    scale = np.abs(raw).max(0)
    data = raw / np.where(scale > 0, scale, 1.0)
    n = len(data)
    cuts = (window + horizon - 1, int(fractions[0] * n), int((fractions[0] + fractions[1]) * n), n)

    def windows(first: int, end: int):
        targets = np.arange(first, end)
        starts = targets - horizon + 1 - window
        x = np.stack([data[s:s + window] for s in starts]) if len(targets) else np.zeros((0, window, data.shape[1]))
        return _tensors(x, data[targets] if len(targets) else np.zeros((0, data.shape[1])))

    parts = [windows(max(cuts[0], lo), hi) for lo, hi in ((cuts[0], cuts[1]), (cuts[1], cuts[2]), (cuts[2], cuts[3]))]
    return Splits(*parts, note=f"time-ordered 60/20/20, window {window}, horizon {horizon}",
                  scale=torch.as_tensor(scale, dtype=torch.float32))


def load(root: Path, dataset: str, seed: int, batch_size: int, window: int = 168, horizon: int = 12) -> Splits:
    if dataset == "airfoil":
        splits = load_airfoil(root, seed)
    elif dataset == "no2":
        splits = load_no2(root, seed)
    else:
        splits = load_exchange_rate(root, window, horizon)
    return check_sizes(splits, data_file(root, dataset), batch_size)
