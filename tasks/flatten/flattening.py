"""The paper's flattening measure: per class, the singular values of the class's (centred) bottleneck
representations; reported as the largest one and the sum of all the others, each averaged over the classes."""
from __future__ import annotations

import torch


def flattening(spectra: dict) -> dict:
    """{"sv_top": mean_c s_c[0], "sv_rest": mean_c sum_{i>=1} s_c[i]} from `singular_values(...)`'s per_class."""
    per = list(spectra["per_class"].values())
    if not per:
        raise ValueError("the flattening measure needs per-class spectra (singular_values with labels)")
    top = sum(float(s[0]) for s in per) / len(per)
    rest = sum(float(s[1:].sum()) for s in per) / len(per)
    return {"sv_top": top, "sv_rest": rest}


def per_class_head(labels: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the first n points of every class (in the split's order): equal class sizes, since singular
    values grow with the number of points (as sqrt(n) for points drawn from one distribution)."""
    keep = []
    for c in labels.unique().tolist():
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < n:
            raise ValueError(f"sv_per_class: class {c} has only {len(idx)} points, fewer than {n}")
        keep.append(idx[:n])
    return torch.cat(keep).sort().values

