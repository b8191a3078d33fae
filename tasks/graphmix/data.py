"""Planetoid citation graphs (public split) through torch_geometric, prepared once for fast full-graph training.

The data root holds `planetoid/<Name>/raw/ind.<name>.*` (the layout `Planetoid` uses). The root may be
read-only, so the raw files are copied into mixsuite's cache and processed there, in a folder named after the
source files (their path, sizes and times) and moved into place only once processed: another copy of the data
gets its own folder, and a copy that fails to read leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import io
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from mixsuite.cache import cached_dir, source_key
from mixsuite.errors import DamagedFile, DataNotFound, UnknownName
from mixsuite.registry import did_you_mean
from mixsuite.splits import require_examples

NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
SUFFIXES = ["x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"]


@dataclass
class Graph:
    """Row-normalised sparse features, the normalised adjacency D^-1/2 (A+I) D^-1/2, labels and the split."""

    x: torch.Tensor          # (N, F) sparse COO, rows sum to 1
    adj: torch.Tensor        # (N, N) sparse CSR
    y: torch.Tensor          # (N,)
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    test_idx: torch.Tensor
    num_classes: int

    @property
    def num_nodes(self) -> int:
        return self.y.numel()

    def to(self, device) -> "Graph":
        return Graph(self.x.to(device), self.adj.to(device), self.y.to(device), self.train_idx.to(device),
                     self.val_idx.to(device), self.test_idx.to(device), self.num_classes)


def raw_files(name: str) -> list[str]:
    return [f"ind.{name.lower()}.{s}" for s in SUFFIXES]


def find_raw(data_root: Path, name: str) -> Path | None:
    """The folder holding all raw files of `name`, under data_root/planetoid/<Name>/raw or data_root/<Name>/raw."""
    for base in (data_root / "planetoid", data_root):
        raw = base / name / "raw"
        if all((raw / f).is_file() for f in raw_files(name)):
            return raw
    return None


def binarize_features(data):
    """Every non-zero feature becomes 1, as the official GraphMix loader reads features (`binary=True`)."""
    data.x = (data.x != 0).to(data.x.dtype)
    return data


def load_planetoid(data_root: Path, dataset: str, download: bool = False, binary: bool = False) -> Graph:
    """The public Planetoid split of `dataset` (cora, citeseer, pubmed), features row-normalised.

    binary: set every non-zero feature to 1 first. Cora and CiteSeer are binary already; PubMed's TF-IDF weights
    are not, and the official GraphMix code binarises them.
    """
    from . import pyg  # noqa: F401  (before torch_geometric: its import-time warning silenced)
    from torch_geometric.datasets import Planetoid
    from torch_geometric.transforms import Compose, NormalizeFeatures

    key = dataset.lower()
    if key not in NAMES:
        raise UnknownName(f"unknown Planetoid dataset {dataset!r}; {did_you_mean(key, NAMES)}")
    name = NAMES[key]
    raw = find_raw(Path(data_root), name)
    if raw is not None:
        files = [raw / f for f in raw_files(name)]
        key = f"planetoid-{name}-{source_key(*files)}"   # another copy, or a changed file: another folder

        def build(folder: Path) -> None:
            (folder / name / "raw").mkdir(parents=True)
            for f in files:
                shutil.copyfile(f, folder / name / "raw" / f.name)
            _process(folder, name, raw)
    elif download:
        key = f"planetoid-{name}-download"

        def build(folder: Path) -> None:
            _process(folder, name, None)
    else:
        looked = [Path(data_root) / "planetoid" / name / "raw", Path(data_root) / name / "raw"]
        missing = _missing(looked[0], name)
        raise DataNotFound(
            f"Planetoid {name}" + (f" (incomplete: {', '.join(missing)} missing)" if missing else ""), looked,
            "Put the raw ind.* files there (data_root=... or $MIXSUITE_DATA), or pass download=true to let "
            "torch_geometric fetch them.")
    work = cached_dir(key, build)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the pickles name scipy.sparse.csr (a deprecation warning)
        normalise = Compose([binarize_features, NormalizeFeatures()]) if binary else NormalizeFeatures()
        data = Planetoid(str(work), name, split="public", transform=normalise)[0]
    graph = _prepare(data)
    source = raw if raw is not None else Path(work) / name / "raw"
    for split, idx, file in (("train", graph.train_idx, "y"), ("val", graph.val_idx, "ally"),
                             ("test", graph.test_idx, "test.index")):
        require_examples(split, len(idx), source / f"ind.{name.lower()}.{file}", f"{len(idx)} {split} nodes "
                         f"of {graph.num_nodes}", unit="nodes")
    return graph


def _process(folder: Path, name: str, raw: Path | None) -> None:
    """Let torch_geometric read the raw files under folder/<name>/raw once and write its processed file there;
    a raw file it cannot read is named, with where to get a good copy."""
    from torch_geometric.datasets import Planetoid

    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):   # its "Processing...", "Done!"
            warnings.simplefilter("ignore")
            Planetoid(str(folder), name, split="public")
    except Exception as e:
        damaged = _damaged_raw_file(folder / name / "raw", name) if raw is not None else None
        if damaged is None:
            raise
        file, reason = damaged
        raise DamagedFile(raw / file, reason,
                          "Replace it with a good copy of the Planetoid raw files (the planetoid repository's "
                          "data/ folder, github.com/kimiyoung/planetoid), or point data_root at a folder without "
                          "them and pass download=true to let torch_geometric fetch them") from None


def _damaged_raw_file(raw: Path, name: str) -> tuple[str, str] | None:
    """(file name, what is wrong) of the first raw file that does not read, or None."""
    import pickle

    for f in raw_files(name):
        try:
            if f.endswith("test.index"):
                [int(line) for line in (raw / f).read_text().split()]
            else:
                with warnings.catch_warnings(), open(raw / f, "rb") as fh:
                    warnings.simplefilter("ignore")
                    pickle.load(fh, encoding="latin1")
        except Exception as e:
            return f, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return None


def _missing(raw: Path, name: str) -> list[str]:
    if not raw.is_dir():
        return []
    return [f for f in raw_files(name) if not (raw / f).is_file()]


def _prepare(data) -> Graph:
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    n = data.num_nodes
    edge_index, weight = gcn_norm(data.edge_index, None, n, add_self_loops=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        adj = torch.sparse_coo_tensor(edge_index.flip(0), weight, (n, n)).coalesce().to_sparse_csr()
    idx = torch.arange(n)
    return Graph(data.x.to_sparse().coalesce(), adj, data.y, idx[data.train_mask], idx[data.val_mask],
                 idx[data.test_mask], int(data.y.max()) + 1)
