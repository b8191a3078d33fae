"""Synthetic stand-ins for the shared datasets, in the files and layouts the loaders read, for machines that
receive the repository alone (a lent GPU machine gets no `../shared/data`): the same shapes and formats, random
content. `bench/gpu_check.py` uses a dataset's stand-in only where `$MIXSUITE_DATA` lacks it, and says so.

    python bench/standin_data.py OUT_DIR      # writes every stand-in under OUT_DIR (a data root)
"""
from __future__ import annotations

import io
import pickle
import sys
from pathlib import Path

import numpy as np


def cifar10_jpeg(root: Path, train_per_class: int = 50, test_per_class: int = 20, size: int = 32) -> Path:
    """`cifar10_jpeg/cifar10_jpeg.npz`: 10 classes of random JPEGs (each class a colour plus noise)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = root / "cifar10_jpeg"
    folder.mkdir(parents=True, exist_ok=True)
    colours = rng.integers(0, 256, (10, 1, 1, 3))
    arrays = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        blobs, labels = [], []
        for c in range(10):
            for _ in range(per_class):
                img = np.clip(colours[c] + rng.normal(0, 50, (size, size, 3)), 0, 255).astype(np.uint8)
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format="JPEG", quality=75)
                blobs.append(buf.getvalue())
                labels.append(c)
        arrays[f"{split}_jpeg"] = np.frombuffer(b"".join(blobs), np.uint8)
        arrays[f"{split}_offsets"] = np.cumsum([0] + [len(b) for b in blobs])
        arrays[f"{split}_labels"] = np.array(labels, np.int64)
    path = folder / "cifar10_jpeg.npz"
    np.savez(path, classes=np.array([f"class{c}" for c in range(10)]), **arrays)
    return path


def class_folders(folder: Path, n_classes: int, per_class: int, size: int = 16, channels: int = 3) -> Path:
    """`<folder>/<class>/<i>.png`: a random pattern per class plus noise."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for c in range(n_classes):
        pattern = rng.integers(0, 256, (size, size, channels))
        (folder / f"class{c:03d}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = np.clip(pattern + rng.normal(0, 40, pattern.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img.squeeze(-1) if channels == 1 else img).save(folder / f"class{c:03d}" / f"{i}.png")
    return folder


def cub_fewshot(root: Path) -> Path:
    """`CUB/{train,val,test}/<class>/<image>`, the few-shot folder layout (8 / 5 / 5 classes)."""
    for split, n_cls, n_img in (("train", 8, 16), ("val", 5, 10), ("test", 5, 10)):
        class_folders(root / "CUB" / split, n_cls, n_img)
    return root / "CUB"


def text_lines(root: Path, n_train: int = 32, n_eval: int = 8, height: int = 32) -> Path:
    """`lines/labels.tsv` + PNGs: the `tsv:lines` handwriting layout (file, text, split)."""
    from PIL import Image

    rng = np.random.default_rng(2)
    folder = root / "lines"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, split in enumerate(["train"] * n_train + ["val"] * n_eval + ["test"] * n_eval):
        text = "".join(rng.choice(list("abcde "), size=3 + i % 6)).strip() or "a"
        Image.fromarray(rng.integers(0, 255, (height, 48 + 16 * len(text)), dtype=np.uint8)).save(folder / f"{i}.png")
        rows.append(f"{i}.png\t{text}\t{split}")
    (folder / "labels.tsv").write_text("\n".join(rows) + "\n")
    return folder


def planetoid_cora(root: Path, nodes: int = 2708, features: int = 1433, classes: int = 7) -> Path:
    """`planetoid/Cora/raw/ind.cora.*`: Cora's shapes (140 train, 500 val, 1000 test nodes, 1433 binary
    features, 7 classes, ~5,400 undirected edges), random content, in Planetoid's pickle format."""
    import scipy.sparse as sp

    rng = np.random.default_rng(3)
    n_test, n_train = 1000, 140
    n_all = nodes - n_test
    labels = rng.integers(0, classes, nodes)
    onehot = np.eye(classes)[labels]
    x = sp.csr_matrix((rng.random((nodes, features)) < 0.0127).astype(np.float32))
    graph = {i: [] for i in range(nodes)}
    for a, b in rng.integers(0, nodes, (5429, 2)):
        if a != b:
            graph[int(a)].append(int(b))
            graph[int(b)].append(int(a))
    raw = root / "planetoid" / "Cora" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    parts = {"x": x[:n_train], "allx": x[:n_all], "tx": x[n_all:], "y": onehot[:n_train], "ally": onehot[:n_all],
             "ty": onehot[n_all:], "graph": graph}
    for name, value in parts.items():
        with open(raw / f"ind.cora.{name}", "wb") as f:
            pickle.dump(value, f)
    (raw / "ind.cora.test.index").write_text("\n".join(str(i) for i in range(n_all, nodes)) + "\n")
    return raw


def mnist(root: Path, n_train: int = 2000, n_test: int = 500) -> Path:
    """`mnist/mnist.npz` with the official keys (x_train uint8 (N, 28, 28), y_train, x_test, y_test)."""
    rng = np.random.default_rng(4)
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mnist.npz"
    np.savez_compressed(path, x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                        y_train=(np.arange(n_train) % 10).astype(np.uint8),
                        x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                        y_test=(np.arange(n_test) % 10).astype(np.uint8))
    return path


def write_all(root: Path) -> Path:
    root = Path(root)
    cifar10_jpeg(root)
    cub_fewshot(root)
    class_folders(root / "metric_folder", 40, 6)
    text_lines(root)
    planetoid_cora(root)
    mnist(root)
    return root


if __name__ == "__main__":
    print(write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "standin-data")))
