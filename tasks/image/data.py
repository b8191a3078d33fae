"""Datasets as uint8 tensors (N, 3, H, W) + int64 labels, decoded once and cached; balanced subsets and a
validation split taken per class.

    cifar10-jpeg   the shared JPEG copy of CIFAR-10 (<data_root>/cifar10_jpeg/cifar10_jpeg.npz)
    cifar10, cifar100, svhn    torchvision's datasets under <data_root> (downloaded only with download=true)
    tiny-imagenet  <data_root>/tiny-imagenet-200 (train/<wnid>/images/*.JPEG; val as ImageFolder or with
                   val_annotations.txt)
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mixsuite.cache import cached, source_key
from mixsuite.errors import DamagedFile, DataNotFound, UnknownName, UserError
from mixsuite.registry import did_you_mean
from mixsuite.splits import require_examples

CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
SVHN_STATS = ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass
class ImageData:
    train_x: torch.Tensor      # uint8 (N, 3, H, W)
    train_y: torch.Tensor      # int64 (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple
    std: tuple
    flip: bool                 # horizontal flips are label-preserving (not for digits)
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None


def load_dataset(name: str, root: Path, *, download: bool = False, train_per_class: int = 0,
                 test_per_class: int = 0, val_per_class: int = 0) -> ImageData:
    """The named dataset, with the first `train_per_class` images of each class for training (0 = all but the
    validation images), the last `val_per_class` of each class held out for validation, and the first
    `test_per_class` test images of each class (0 = all)."""
    if name not in LOADERS:
        raise UnknownName(f"unknown dataset {name!r}; {did_you_mean(name, LOADERS)}")
    raw = LOADERS[name](Path(root), download)
    train_rank, counts = rank_in_class(raw["train_y"])
    val_mask = train_rank >= (counts[raw["train_y"]] - val_per_class) if val_per_class else None
    train_mask = torch.ones_like(raw["train_y"], dtype=torch.bool)
    if train_per_class:
        train_mask = train_rank < train_per_class
    if val_mask is not None:
        if (train_mask & val_mask).any():
            raise UserError(f"train_per_class={train_per_class} + val_per_class={val_per_class} exceed the "
                            f"{int(counts.min())} training images of the smallest class of {name}")
        train_mask &= ~val_mask
    test_mask = torch.ones_like(raw["test_y"], dtype=torch.bool)
    if test_per_class:
        test_mask = rank_in_class(raw["test_y"])[0] < test_per_class
    data = ImageData(raw["train_x"][train_mask], raw["train_y"][train_mask], raw["test_x"][test_mask],
                     raw["test_y"][test_mask], int(raw["num_classes"]), *STATS[name], flip=name != "svhn")
    if val_mask is not None:
        data.val_x, data.val_y = raw["train_x"][val_mask], raw["train_y"][val_mask]
    for split, y in (("train", data.train_y), ("val", data.val_y), ("test", data.test_y)):
        if y is not None:
            require_examples(split, len(y), f"the {name} data under {root}", f"{len(raw['train_y'])} train and "
                             f"{len(raw['test_y'])} test images", unit="images")
    return data


def rank_in_class(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rank of each sample among its class, in dataset order; the count of each class)."""
    labels = labels.long()
    counts = torch.bincount(labels)
    order = torch.argsort(labels, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(labels)
    rank[order] = torch.arange(len(labels)) - starts[labels[order]]
    return rank, counts


CIFAR10_JPEG_HOW = ("Copy cifar10_jpeg/cifar10_jpeg.npz again from the shared data copy it came from (it is not "
                    "downloadable; dataset=cifar10 download=true fetches torchvision's CIFAR-10 instead)")
TINY_IMAGENET_HOW = "Unzip http://cs231n.stanford.edu/tiny-imagenet-200.zip again under the data root"


def _rgb(source, path: Path, how: str, what: str = "") -> np.ndarray:
    """One image as an (H, W, 3) uint8 array; an image that does not decode names its file (and which image)."""
    from PIL import Image

    try:
        with Image.open(source) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as e:   # PIL: truncated or unidentified image data
        raise DamagedFile(path, f"{what}{e}", how) from None


def _decode_jpegs(buf: np.ndarray, offsets: np.ndarray, path: Path, split: str) -> torch.Tensor:
    require_examples(split, len(offsets) - 1, path, f"{len(offsets) - 1} {split} images", unit="images")
    imgs = [_rgb(io.BytesIO(buf[offsets[i]:offsets[i + 1]].tobytes()), path, CIFAR10_JPEG_HOW,
                 f"{split} image {i} does not decode: ") for i in range(len(offsets) - 1)]
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()


def load_cifar10_jpeg(root: Path, download: bool) -> dict:
    path = root / "cifar10_jpeg" / "cifar10_jpeg.npz"
    if not path.is_file():
        raise DataNotFound("cifar10-jpeg (cifar10_jpeg.npz)", path,
                           "Set data_root= or MIXSUITE_DATA to the folder holding cifar10_jpeg/ (it is not "
                           "downloadable; use dataset=cifar10 download=true for torchvision's CIFAR-10).")

    def build():
        try:
            with np.load(path) as npz:
                d = {k: npz[k] for k in ("train_jpeg", "train_offsets", "train_labels", "test_jpeg", "test_offsets",
                                         "test_labels", "classes")}
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:  # truncated, or not this file
            raise DamagedFile(path, f"{type(e).__name__}: {e}", CIFAR10_JPEG_HOW) from None
        # images are stored sorted by (class, file number): that order is kept, the loader shuffles
        return {"train_x": _decode_jpegs(d["train_jpeg"], d["train_offsets"], path, "train"),
                "train_y": torch.from_numpy(d["train_labels"].astype(np.int64)),
                "test_x": _decode_jpegs(d["test_jpeg"], d["test_offsets"], path, "test"),
                "test_y": torch.from_numpy(d["test_labels"].astype(np.int64)), "num_classes": len(d["classes"])}

    return cached(f"cifar10-jpeg-{source_key(path)}", build)


def _torchvision(name: str, root: Path, download: bool) -> dict:
    from torchvision import datasets

    def split(train: bool):
        try:
            if name == "svhn":
                ds = datasets.SVHN(str(root / "svhn"), split="train" if train else "test", download=download)
                return torch.from_numpy(ds.data), torch.from_numpy(ds.labels.astype(np.int64))
            cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
            ds = cls(str(root), train=train, download=download)
            return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets)
        except RuntimeError as e:
            where = root / "svhn" if name == "svhn" else root
            raise DataNotFound(name, where, f"Pass download=true to fetch it with torchvision ({e})") from None

    (tx, ty), (vx, vy) = split(True), split(False)
    return {"train_x": tx, "train_y": ty, "test_x": vx, "test_y": vy, "num_classes": int(ty.max()) + 1}


def load_tiny_imagenet(root: Path, download: bool) -> dict:
    base = root / "tiny-imagenet-200"
    if not (base / "train").is_dir():
        raise DataNotFound("tiny-imagenet", base / "train",
                           "Download http://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it under the data "
                           "root (torchvision cannot fetch it).")

    def build():
        classes = sorted(p.name for p in (base / "train").iterdir() if p.is_dir())
        index = {c: i for i, c in enumerate(classes)}
        train = [(p, index[c]) for c in classes for p in sorted((base / "train" / c).rglob("*.JPEG"))]
        ann = base / "val" / "val_annotations.txt"
        if ann.is_file():
            rows = [line.split("\t")[:2] for line in ann.read_text().splitlines() if line.strip()]
            test = [(base / "val" / "images" / f, index[c]) for f, c in rows]
        else:
            test = [(p, index[c]) for c in classes for p in sorted((base / "val" / c).rglob("*.JPEG"))]

        def decode(items):
            x = np.stack([_rgb(p, p, TINY_IMAGENET_HOW) for p, _ in items])
            return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.tensor([y for _, y in items])

        require_examples("train", len(train), base / "train", f"{len(classes)} class folders", unit="images")
        require_examples("test", len(test), ann if ann.is_file() else base / "val", f"{len(test)} images", unit="images")
        (tx, ty), (vx, vy) = decode(train), decode(test)
        return {"train_x": tx, "train_y": ty, "test_x": vx, "test_y": vy, "num_classes": len(classes)}

    return cached(f"tiny-imagenet-{source_key(base / 'train', base / 'val')}", build)


LOADERS = {
    "cifar10-jpeg": load_cifar10_jpeg,
    "cifar10": lambda root, dl: _torchvision("cifar10", root, dl),
    "cifar100": lambda root, dl: _torchvision("cifar100", root, dl),
    "svhn": lambda root, dl: _torchvision("svhn", root, dl),
    "tiny-imagenet": load_tiny_imagenet,
}
STATS = {"cifar10-jpeg": CIFAR10_STATS, "cifar10": CIFAR10_STATS, "cifar100": CIFAR100_STATS,
         "svhn": SVHN_STATS, "tiny-imagenet": IMAGENET_STATS}
