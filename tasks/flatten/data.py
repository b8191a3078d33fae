"""MNIST from `<data_root>/mnist/mnist.npz` (the Keras layout: x_train, y_train, x_test, y_test, uint8), images as
flat float vectors in [0, 1]; the validation split is the last `val_size` training images (official order)."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mixsuite.errors import DataNotFound, UserError

KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass
class MnistSplits:
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def _flat(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255.0)


def load_mnist(root: Path, val_size: int) -> MnistSplits:
    path = Path(root) / "mnist" / "mnist.npz"
    if not path.is_file():
        raise DataNotFound("MNIST (mnist/mnist.npz)", path,
                           "Set data_root= or MIXSUITE_DATA to the folder that holds mnist/mnist.npz (the Keras "
                           "mnist.npz: keys x_train, y_train, x_test, y_test).")
    try:
        with np.load(path) as npz:
            x_train, y_train, x_test, y_test = (npz[k] for k in KEYS)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise UserError(f"{path} is not a readable MNIST npz ({type(e).__name__}: {e}); it needs the keys "
                        f"{', '.join(KEYS)}") from None
    if not 0 < val_size < len(x_train):
        raise UserError(f"val_size: {val_size} must leave training images on both sides of the split "
                        f"(1..{len(x_train) - 1})")
    cut = len(x_train) - val_size
    xs, ys = _flat(x_train), torch.from_numpy(y_train.astype(np.int64))
    return MnistSplits(xs[:cut], ys[:cut], xs[cut:], ys[cut:], _flat(x_test), torch.from_numpy(y_test.astype(np.int64)))
