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
    rotation_groups: bool = False   # classes 4c..4c+3 are one character at 0, 90, 180, 270 degrees

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1

    def subset_classes(self, n: int) -> "Split":
        if self.rotation_groups and n % 4:
            raise ValueError(f"base_classes={n} would split a character's 4 rotation classes: use a multiple of 4")
        keep = self.labels < n
        return Split(self.images[keep], self.labels[keep], self.rotation_groups)

    def rotated_labels(self, labels: torch.Tensor, k: int) -> torch.Tensor:
        """The class of images of `labels` rotated by k * 90 degrees counter-clockwise (torch.rot90)."""
        if not self.rotation_groups:
            return labels
        return labels - labels % 4 + (labels % 4 + k) % 4


def load(dataset: str, root: Path, image_size: int, val_classes: int = 0) -> tuple[Split, Split, Split]:
    """(base, val, novel) splits of `dataset`, resized to image_size.

    omniglot: base = background characters but the last `val_classes` (validation), novel = the evaluation
    alphabets. omniglot-vinyals: Vinyals et al.'s 1,028 / 172 / 423 characters (train / val / test), each in 4
    rotations, each rotation a class (4,112 / 688 / 1,692 classes); val_classes does not apply.
    """
    key = dataset.lower()
    if key == "omniglot":
        return _omniglot(root, image_size, val_classes)
    if key == "omniglot-vinyals":
        return _omniglot_vinyals(root, image_size)
    if key in FOLDER_DATASETS:
        return tuple(_image_folder(root, FOLDER_DATASETS[key], split, image_size) for split in ("train", "val", "test"))
    raise UnknownName(f"unknown few-shot dataset {dataset!r}; {did_you_mean(key, ['omniglot', 'omniglot-vinyals', *FOLDER_DATASETS])}")


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size), area interpolation, in chunks to bound memory."""
    out = [F.interpolate(c.float(), size=(size, size), mode="area").round().clamp(0, 255).to(torch.uint8)
           for c in x.split(2048)]
    return torch.cat(out)


def _omniglot(root: Path, size: int, val_classes: int) -> tuple[Split, Split, Split]:
    bg, ev = _omniglot_sets(root, size)
    base = Split(bg["images"], bg["labels"])
    n_base = base.n_classes - val_classes
    val_mask = base.labels >= n_base
    val = Split(base.images[val_mask], base.labels[val_mask] - n_base)
    base = Split(base.images[~val_mask], base.labels[~val_mask])
    return base, val, Split(ev["images"], ev["labels"])


def _omniglot_vinyals(root: Path, size: int) -> tuple[Split, Split, Split]:
    folder = next((c for c in (root / "omniglot", root) if (c / "vinyals_splits" / "train.txt").is_file()), None)
    if folder is None or not (folder / "characters.tsv").is_file():
        raise DataNotFound("Omniglot's Vinyals split", [root / "omniglot" / "vinyals_splits" / "train.txt",
                                                        root / "omniglot" / "characters.tsv"],
                           "It needs vinyals_splits/{train,val,test}.txt (one '<alphabet>/<character>/rot<deg>' a "
                           "line, from the Prototypical Networks repository) and characters.tsv (the table of "
                           "alphabet/character folders to character ids) beside the npz files.")
    sets = dict(zip(("background", "evaluation"), _omniglot_sets(root, size)))
    index = read_characters(folder / "characters.tsv")
    return tuple(vinyals_split(folder / "vinyals_splits" / f"{name}.txt", index, sets)
                 for name in ("train", "val", "test"))


def read_characters(path: Path) -> dict[str, tuple[str, int]]:
    """'<alphabet>/<character>' -> (set, index in that set's npz) from characters.tsv."""
    lines = path.read_text().splitlines()
    cols = lines[0].split("\t")
    out = {}
    for line in lines[1:]:
        row = dict(zip(cols, line.split("\t")))
        out[f"{row['alphabet']}/{row['character']}"] = (row["set"], int(row["index_in_set"]))
    return out


ROTATIONS = ("rot000", "rot090", "rot180", "rot270")


def vinyals_split(path: Path, index: dict, sets: dict) -> Split:
    """The characters listed in `path` ('<alphabet>/<character>/rot<deg>' a line, all 4 rotations of each), in
    order of first appearance: character i rotated by k * 90 degrees counter-clockwise is class 4i + k."""
    rotations: dict[str, set] = {}
    for i, line in enumerate(path.read_text().split()):
        name, _, rot = line.rpartition("/")
        if name not in index or rot not in ROTATIONS:
            raise ValueError(f"{path}, line {i + 1}: {line!r} is not '<alphabet>/<character>/rot<000|090|180|270>' "
                             "of a character in characters.tsv")
        rotations.setdefault(name, set()).add(rot)
    missing = [name for name, rots in rotations.items() if len(rots) != 4]
    if missing:
        raise ValueError(f"{path}: {missing[0]} (and {len(missing) - 1} more) lacks some of its 4 rotations; "
                         "each rotation is a class, and the rotation loss needs all four")
    images, labels = [], []
    for i, name in enumerate(rotations):
        which, j = index[name]
        drawings = sets[which]["images"][sets[which]["labels"] == j]
        for k in range(4):
            images.append(torch.rot90(drawings, k, dims=(2, 3)))
            labels.append(torch.full((len(drawings),), 4 * i + k))
    return Split(torch.cat(images), torch.cat(labels), rotation_groups=True)


def _omniglot_sets(root: Path, size: int) -> tuple[dict, dict]:
    """The background and evaluation sets as {'images', 'labels'} at `size` px (cached)."""
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
    return data["background"], data["evaluation"]


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
