"""A folder of <class>/<image> files (torchvision's ImageFolder layout) as one ClassSplit: classes in sorted
order, RGB images resized to size x size, decoded once into the cache."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..cache import cached, source_key
from .classes import ClassSplit

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def load_class_folder(folder: Path, size: int, cache_name: str) -> ClassSplit:
    """Every image under folder/<class>/; `cache_name` names the cache entry (with the size and a source key)."""
    from PIL import Image

    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    files = [[f for f in sorted(c.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES] for c in classes]

    def build():
        imgs, labels = [], []
        for i, class_files in enumerate(files):
            for f in class_files:
                img = Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR)
                imgs.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
                labels.append(i)
        return {"images": torch.stack(imgs), "labels": torch.tensor(labels)}

    data = cached(f"{cache_name}-{size}-{source_key(folder)}-{sum(map(len, files))}", build)
    return ClassSplit(data["images"], data["labels"])
