"""Omniglot (Lake et al. 2015): the background set (30 alphabets, 964 characters) and the evaluation set
(20 alphabets, 659 characters), 20 drawings each, ink = 255, resized to `size`.

Read from the npz copies (omniglot/images_background.npz, images_evaluation.npz) or torchvision's folder
layout (omniglot-py/images_background/<alphabet>/<character>/*.png); decoded once into the cache."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..cache import cached, source_key
from ..errors import DataNotFound
from .classes import ClassSplit, resize_uint8


def load_omniglot(root: Path, size: int) -> tuple[ClassSplit, ClassSplit]:
    """(background, evaluation): classes in file order (alphabet by alphabet), labels from 0 in each."""
    candidates = [root / "omniglot", root]
    npz = next((c for c in candidates if (c / "images_background.npz").is_file()), None)
    if npz is not None:
        files = [npz / "images_background.npz", npz / "images_evaluation.npz"]
        build = lambda: {n: _from_npz(f, size) for n, f in zip(("background", "evaluation"), files)}
        data = cached(f"omniglot-{size}-{source_key(*files)}", build)
    else:
        folders = [c / "omniglot-py" for c in candidates]
        folder = next((f for f in folders if (f / "images_background").is_dir()), None)
        if folder is None:
            raise DataNotFound("Omniglot", [c / "images_background.npz" for c in candidates] +
                               [f / "images_background" for f in folders],
                               "Point data_root (or $MIXSUITE_DATA) at a folder holding "
                               "omniglot/images_background.npz, "
                               "or download it with torchvision.datasets.Omniglot(root, background=True/False, "
                               "download=True).")
        data = cached(f"omniglot-folder-{size}-{source_key(folder / 'images_background')}",
                      lambda: {n: _from_folder(folder / f"images_{n}", size) for n in ("background", "evaluation")})
    return tuple(ClassSplit(data[n]["images"], data[n]["labels"]) for n in ("background", "evaluation"))


def _from_npz(path: Path, size: int) -> dict:
    d = np.load(path)
    ink = torch.from_numpy(~d["images"]).to(torch.uint8) * 255          # True = background in the files
    n_cls, n_per = ink.shape[:2]
    images = resize_uint8(ink.reshape(n_cls * n_per, 1, *ink.shape[2:]), size)
    return {"images": images, "labels": torch.arange(n_cls).repeat_interleave(n_per)}


def _from_folder(folder: Path, size: int) -> dict:
    from PIL import Image

    chars = sorted(p for p in folder.glob("*/*") if p.is_dir())
    images, labels = [], []
    for i, char in enumerate(chars):
        for f in sorted(char.glob("*.png")):
            images.append(255 - torch.from_numpy(np.asarray(Image.open(f).convert("L"), dtype=np.uint8).copy()))
            labels.append(i)
    return {"images": resize_uint8(torch.stack(images)[:, None], size), "labels": torch.tensor(labels)}
