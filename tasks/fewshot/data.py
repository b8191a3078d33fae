"""Few-shot datasets as (images, labels) tensors split by class: base classes to train on, val and novel classes
for episodes.

- Omniglot from the npz copies (images_background.npz / images_evaluation.npz) or torchvision's folder layout
  (omniglot-py/images_background/<alphabet>/<character>/*.png).
- miniImageNet, tieredImageNet, CUB, CIFAR-FS in the usual layout <root>/<name>/<split>/<class>/<image>.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mixsuite.cache import cached, source_key
from mixsuite.errors import DataNotFound, UnknownName
from mixsuite.registry import did_you_mean

FOLDER_DATASETS = {"miniimagenet": "miniImageNet", "tieredimagenet": "tieredImageNet", "cub": "CUB",
                   "cifar-fs": "CIFAR-FS"}


@dataclass
class Split:
    """Images (N, C, H, W) uint8 and class labels 0..n_classes-1 of one split."""

    images: torch.Tensor
    labels: torch.Tensor

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1

    def subset_classes(self, n: int) -> "Split":
        keep = self.labels < n
        return Split(self.images[keep], self.labels[keep])


def load(dataset: str, root: Path, image_size: int, val_classes: int = 0) -> tuple[Split, Split, Split]:
    """(base, val, novel) splits of `dataset`, resized to image_size."""
    key = dataset.lower()
    if key == "omniglot":
        return _omniglot(root, image_size, val_classes)
    if key in FOLDER_DATASETS:
        return tuple(_image_folder(root, FOLDER_DATASETS[key], split, image_size) for split in ("train", "val", "test"))
    raise UnknownName(f"unknown few-shot dataset {dataset!r}; {did_you_mean(key, ['omniglot', *FOLDER_DATASETS])}")


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size), area interpolation, in chunks to bound memory."""
    out = [F.interpolate(c.float(), size=(size, size), mode="area").round().clamp(0, 255).to(torch.uint8)
           for c in x.split(2048)]
    return torch.cat(out)


def _omniglot(root: Path, size: int, val_classes: int) -> tuple[Split, Split, Split]:
    candidates = [root / "omniglot", root]
    npz = next((c for c in candidates if (c / "images_background.npz").is_file()), None)
    if npz is not None:
        files = [npz / "images_background.npz", npz / "images_evaluation.npz"]
        build = lambda: {n: _omniglot_npz(f, size) for n, f in zip(("background", "evaluation"), files)}
        data = cached(f"omniglot-{size}-{source_key(*files)}", build)
    else:
        folder = next((c / "omniglot-py" for c in candidates if (c / "omniglot-py" / "images_background").is_dir()), None)
        if folder is None:
            raise DataNotFound("Omniglot", [c / "images_background.npz" for c in candidates] +
                               [c / "omniglot-py" / "images_background" for c in candidates],
                               "Point data_root (or $MIXSUITE_DATA) at a folder holding omniglot/images_background.npz, "
                               "or download it with torchvision.datasets.Omniglot(root, background=True/False, download=True).")
        data = cached(f"omniglot-folder-{size}-{source_key(folder / 'images_background')}",
                      lambda: {n: _omniglot_folder(folder / f"images_{n}", size) for n in ("background", "evaluation")})
    bg, ev = data["background"], data["evaluation"]
    base = Split(bg["images"], bg["labels"])
    n_base = base.n_classes - val_classes
    val_mask = base.labels >= n_base
    val = Split(base.images[val_mask], base.labels[val_mask] - n_base)
    base = Split(base.images[~val_mask], base.labels[~val_mask])
    return base, val, Split(ev["images"], ev["labels"])


def _omniglot_npz(path: Path, size: int) -> dict:
    d = np.load(path)
    ink = torch.from_numpy(~d["images"]).to(torch.uint8) * 255          # True = background in the files
    n_cls, n_per = ink.shape[:2]
    images = _resize(ink.reshape(n_cls * n_per, 1, *ink.shape[2:]), size)
    return {"images": images, "labels": torch.arange(n_cls).repeat_interleave(n_per)}


def _omniglot_folder(folder: Path, size: int) -> dict:
    from PIL import Image

    chars = sorted(p for p in folder.glob("*/*") if p.is_dir())
    images, labels = [], []
    for i, char in enumerate(chars):
        for f in sorted(char.glob("*.png")):
            images.append(255 - torch.from_numpy(np.asarray(Image.open(f).convert("L"), dtype=np.uint8).copy()))
            labels.append(i)
    return {"images": _resize(torch.stack(images)[:, None], size), "labels": torch.tensor(labels)}


def _image_folder(root: Path, name: str, split: str, size: int) -> Split:
    from PIL import Image

    folder = root / name / split
    if not folder.is_dir():
        raise DataNotFound(f"{name} split {split!r}", folder,
                           f"Arrange it as {root}/{name}/{{train,val,test}}/<class>/<image> (the standard class splits "
                           "of the few-shot literature) and set data_root or $MIXSUITE_DATA.")
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    files = [f for c in classes for f in sorted(c.iterdir()) if f.suffix.lower() in (".jpg", ".jpeg", ".png")]

    def build():
        imgs, labels = [], []
        for i, c in enumerate(classes):
            for f in sorted(c.iterdir()):
                if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
                    img = Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR)
                    imgs.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
                    labels.append(i)
        return {"images": torch.stack(imgs), "labels": torch.tensor(labels)}

    data = cached(f"{name}-{split}-{size}-{source_key(folder)}-{len(files)}", build)
    return Split(data["images"], data["labels"])
