"""Handwritten text lines: images normalised to a fixed height (variable width) with their transcriptions.

Layouts under the data root:
- `htr_testaments_de_poilus/` (lines.tsv + lines_h64.tar, writer-disjoint split column): dataset `poilus`;
- `iam/` with `lines.txt` (IAM's format) and `lines/<form-prefix>/<form>/<line-id>.png`: dataset `iam`
  (split by form, seeded 80/10/10, unless `iam/split.tsv` maps line ids to train/val/test);
- any folder with `labels.tsv` of `path<TAB>text[<TAB>split]`: dataset `tsv:<folder>`.
Decoded lines are cached (mixsuite.cache) as one uint8 buffer per split.
"""
from __future__ import annotations

import csv
import io
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mixsuite.cache import cached, source_key
from mixsuite.errors import DamagedFile, DataNotFound
from mixsuite.splits import require_examples

SPLITS = ("train", "val", "test")


@dataclass
class Lines:
    """A split: images (grey, ink dark on white as stored) packed into one buffer, widths and texts."""

    pixels: torch.Tensor        # uint8 (height, sum of widths)
    widths: torch.Tensor        # int64 (N,)
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def offsets(self) -> torch.Tensor:
        return torch.cumsum(self.widths, 0) - self.widths


def _to_height(img, height: int, max_width: int) -> torch.Tensor:
    from PIL import Image

    img = img.convert("L")
    w = max(1, round(img.width * height / img.height))
    img = img.resize((min(w, max_width), height), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())


def _pack(images: list[torch.Tensor], texts: list[str], height: int) -> dict:
    pixels = torch.cat(images, dim=1) if images else torch.zeros(height, 0, dtype=torch.uint8)
    return {"pixels": pixels, "widths": torch.tensor([im.shape[1] for im in images], dtype=torch.long), "texts": texts}


def _poilus(folder: Path, height: int, max_width: int) -> dict:
    from PIL import Image

    with open(folder / "lines.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    out = {s: ([], []) for s in SPLITS}
    archive, member = folder / "lines_h64.tar", "(opening the archive)"
    try:
        with tarfile.open(archive) as tar:
            for r in rows:
                member = f"lines/{r['id']}.png"
                img = Image.open(io.BytesIO(tar.extractfile(member).read()))
                out[r["split"]][0].append(_to_height(img, height, max_width))
                out[r["split"]][1].append(r["text"])
    except (tarfile.TarError, EOFError, OSError, KeyError, ValueError, SyntaxError) as e:  # truncated or incomplete
        raise DamagedFile(archive, f"{member}: {type(e).__name__}: {e}",
                          "Copy lines_h64.tar again from the dataset's source (with its lines.tsv: the two must "
                          "match), or set data_root to a good copy") from None
    return {s: _pack(*v, height) for s, v in out.items()}


def _tsv(folder: Path, height: int, max_width: int) -> dict:
    from PIL import Image

    rows = [ln.rstrip("\n").split("\t") for ln in (folder / "labels.tsv").read_text(encoding="utf-8").splitlines() if ln]
    rng = random.Random(0)
    out = {s: ([], []) for s in SPLITS}
    for r in rows:
        split = r[2] if len(r) > 2 and r[2] in SPLITS else rng.choices(SPLITS, weights=(8, 1, 1))[0]
        out[split][0].append(_to_height(Image.open(folder / r[0]), height, max_width))
        out[split][1].append(r[1])
    return {s: _pack(*v, height) for s, v in out.items()}


def _iam(folder: Path, height: int, max_width: int) -> dict:
    from PIL import Image

    split_of = {}
    if (folder / "split.tsv").is_file():
        split_of = dict(ln.split("\t") for ln in (folder / "split.tsv").read_text().split("\n") if "\t" in ln)
    forms = sorted({ln.split()[0].rsplit("-", 1)[0] for ln in _iam_rows(folder)})
    rng = random.Random(0)
    form_split = {f: rng.choices(SPLITS, weights=(8, 1, 1))[0] for f in forms}
    out = {s: ([], []) for s in SPLITS}
    for ln in _iam_rows(folder):
        parts = ln.split(" ")
        line_id, text = parts[0], " ".join(parts[8:]).replace("|", " ")
        form = line_id.rsplit("-", 1)[0]
        path = folder / "lines" / form.split("-")[0] / form / f"{line_id}.png"
        split = split_of.get(line_id, form_split[form])
        out[split][0].append(_to_height(Image.open(path), height, max_width))
        out[split][1].append(text)
    return {s: _pack(*v, height) for s, v in out.items()}


def _iam_rows(folder: Path) -> list[str]:
    return [ln for ln in (folder / "lines.txt").read_text().splitlines() if ln and not ln.startswith("#")]


def load_lines(root: Path, dataset: str, height: int, max_width: int) -> dict[str, Lines]:
    """{'train': Lines, 'val': Lines, 'test': Lines} at `height` pixels, widths capped at `max_width`."""
    root = Path(root)
    if dataset == "poilus":
        folder, files, build = root / "htr_testaments_de_poilus", ["lines.tsv", "lines_h64.tar"], _poilus
    elif dataset == "iam":
        folder, files, build = root / "iam", ["lines.txt"], _iam
    elif dataset.startswith("tsv:"):
        folder = Path(dataset[4:]) if Path(dataset[4:]).is_absolute() else root / dataset[4:]
        files, build = ["labels.tsv"], _tsv
    else:
        raise DataNotFound(f"handwriting dataset {dataset!r}", root,
                           "Use dataset=poilus, dataset=iam, or dataset=tsv:<folder with labels.tsv>.")
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise DataNotFound(f"{dataset} lines ({', '.join(missing)})", folder,
                           "Set data_root (or $MIXSUITE_DATA) to the folder that contains it; IAM needs lines.txt and "
                           "lines/ from the IAM database; a custom set needs labels.tsv with path<TAB>text rows.")
    key = f"htr-{dataset.replace('/', '_').replace(':', '_')}-{height}-{max_width}-{source_key(*[folder / f for f in files])}"
    data = cached(key, lambda: build(folder, height, max_width))
    counts = {s: len(d["texts"]) for s, d in data.items()}
    held = f"{sum(counts.values())} lines (" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")"
    for s in SPLITS:
        require_examples(s, counts[s], folder / files[0], held, unit="lines")
    return {s: Lines(d["pixels"], d["widths"], list(d["texts"])) for s, d in data.items()}
