"""Few-shot datasets as (images, labels) tensors split by class: base classes to train on, val and novel classes
for episodes.

- Omniglot (the library's loader): background classes are base (the last `val_classes` of them val), the
  evaluation classes novel; or Vinyals et al.'s split of all 1,623 characters (`omniglot-vinyals`), each rotation
  a class.
- miniImageNet, tieredImageNet, CUB, CIFAR-FS in the usual layout <root>/<name>/<split>/<class>/<image>.
"""
from __future__ import annotations

from pathlib import Path

import torch

from mixsuite.data import ClassSplit, load_class_folder, load_omniglot
from mixsuite.errors import DataNotFound, UnknownName
from mixsuite.registry import did_you_mean
from mixsuite.splits import require_examples

Split = ClassSplit
OMNIGLOT = ("omniglot", "omniglot-vinyals")
FOLDER_DATASETS = {"miniimagenet": "miniImageNet", "tieredimagenet": "tieredImageNet", "cub": "CUB",
                   "cifar-fs": "CIFAR-FS"}


def load(dataset: str, root: Path, image_size: int, val_classes: int = 0) -> tuple[Split, Split, Split]:
    """(base, val, novel) splits of `dataset`, resized to image_size.

    omniglot: base = background characters but the last `val_classes` (validation), novel = the evaluation
    alphabets. omniglot-vinyals: Vinyals et al.'s 1,028 / 172 / 423 characters (train / val / test), each in 4
    rotations, each rotation a class (4,112 / 688 / 1,692 classes); val_classes does not apply.
    """
    key = dataset.lower()
    if key == "omniglot":
        background, evaluation = load_omniglot(root, image_size)
        base, val = background.split_at_class(background.n_classes - val_classes)
        return base, val, evaluation
    if key == "omniglot-vinyals":
        return _omniglot_vinyals(root, image_size)
    if key in FOLDER_DATASETS:
        return tuple(_image_folder(root, FOLDER_DATASETS[key], split, image_size) for split in ("train", "val", "test"))
    raise UnknownName(f"unknown few-shot dataset {dataset!r}; {did_you_mean(key, [*OMNIGLOT, *FOLDER_DATASETS])}")


def sources(dataset: str, root: Path) -> tuple[str, str, str]:
    """Where the (base, val, novel) splits of `dataset` are read from, for messages."""
    key = dataset.lower()
    if key == "omniglot":
        npz = next((c for c in (root / "omniglot", root) if (c / "images_background.npz").is_file()), root / "omniglot")
        return (str(npz / "images_background.npz"),) * 2 + (str(npz / "images_evaluation.npz"),)
    if key == "omniglot-vinyals":
        folder = next((c for c in (root / "omniglot", root) if (c / "vinyals_splits").is_dir()), root / "omniglot")
        return tuple(str(folder / "vinyals_splits" / f"{s}.txt") for s in ("train", "val", "test"))
    return tuple(str(root / FOLDER_DATASETS.get(key, dataset) / s) for s in ("train", "val", "test"))


def require_episodes(split: str, labels: torch.Tensor, way: int, per_class: int, source: str) -> None:
    """Refuse a split with fewer than `way` classes of at least `per_class` images (an episode's shots + queries)."""
    counts = torch.bincount(labels.long()) if len(labels) else torch.zeros(0, dtype=torch.long)
    counts = counts[counts > 0]
    usable = int((counts >= per_class).sum())
    require_examples(split, usable, source, f"{len(labels)} images in {len(counts)} classes", need=way,
                     unit="classes", why=f"with >= {per_class} images each for a {way}-way episode")


def _omniglot_vinyals(root: Path, size: int) -> tuple[Split, Split, Split]:
    folder = next((c for c in (root / "omniglot", root) if (c / "vinyals_splits" / "train.txt").is_file()), None)
    if folder is None or not (folder / "characters.tsv").is_file():
        raise DataNotFound("Omniglot's Vinyals split", [root / "omniglot" / "vinyals_splits" / "train.txt",
                                                        root / "omniglot" / "characters.tsv"],
                           "It needs vinyals_splits/{train,val,test}.txt (one '<alphabet>/<character>/rot<deg>' a "
                           "line, from the Prototypical Networks repository) and characters.tsv (the table of "
                           "alphabet/character folders to character ids) beside the npz files.")
    sets = dict(zip(("background", "evaluation"), load_omniglot(root, size)))
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


ROTATION_NAMES = ("rot000", "rot090", "rot180", "rot270")


def vinyals_split(path: Path, index: dict, sets: dict[str, Split]) -> Split:
    """The characters listed in `path` ('<alphabet>/<character>/rot<deg>' a line, all 4 rotations of each), in
    order of first appearance: character i rotated by k * 90 degrees counter-clockwise is class 4i + k (a split
    with rotation_groups). `sets`: Omniglot's background and evaluation splits by name."""
    rotations: dict[str, set] = {}
    for i, line in enumerate(path.read_text().split()):
        name, _, rot = line.rpartition("/")
        if name not in index or rot not in ROTATION_NAMES:
            raise ValueError(f"{path}, line {i + 1}: {line!r} is not '<alphabet>/<character>/rot<000|090|180|270>' "
                             "of a character in characters.tsv")
        rotations.setdefault(name, set()).add(rot)
    missing = [name for name, rots in rotations.items() if len(rots) != len(ROTATION_NAMES)]
    if missing:
        raise ValueError(f"{path}: {missing[0]} (and {len(missing) - 1} more) lacks some of its 4 rotations; "
                         "each rotation is a class, and the rotation loss needs all four")
    images, labels = [], []
    for i, name in enumerate(rotations):
        which, j = index[name]
        drawings = sets[which].images[sets[which].labels == j]
        for k in range(len(ROTATION_NAMES)):
            images.append(torch.rot90(drawings, k, dims=(2, 3)))
            labels.append(torch.full((len(drawings),), 4 * i + k))
    return Split(torch.cat(images), torch.cat(labels), rotation_groups=True)


def _image_folder(root: Path, name: str, split: str, size: int) -> Split:
    folder = root / name / split
    if not folder.is_dir():
        raise DataNotFound(f"{name} split {split!r}", folder,
                           f"Arrange it as {root}/{name}/{{train,val,test}}/<class>/<image> (the standard class splits "
                           "of the few-shot literature) and set data_root or $MIXSUITE_DATA.")
    return load_class_folder(folder, size, f"{name}-{split}")
