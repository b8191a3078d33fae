"""The blog's Figure 6 from run folders: a run that writes `spectra.json` (the singular values of each class's
last hidden representations, see mixsuite.analysis.singular_values) is drawn beside the others, one line per group
of runs (task, dataset, method, config) with each class's spectrum normalised to sum 1 and averaged over seeds."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import torch

from .records import group_key, group_label, run_file


def class_order(names) -> list[str]:
    """Class names as spectra.json keys them ("0", "1", ..., "10"), in numeric order."""
    return sorted(names, key=lambda c: (len(c), c))


def read_spectra(record: dict) -> dict | None:
    """The run's spectra.json, from its run folder or the copy kept beside the record."""
    path = run_file(record, "spectra.json")
    return json.loads(path.read_text()) if path is not None else None


def numerical_rank(values: torch.Tensor, tolerance: float = 1e-9) -> torch.Tensor:
    """The singular values above `tolerance` x the largest: a class of m points centred has rank <= m - 1, so with
    fewer points than dimensions (20 images a few-shot class, 64-d features) its last value is a rounding error
    (~1e-17) that a log-scale plot would draw as a cliff."""
    return values[values > tolerance * values.max()] if len(values) else values


def group_spectra(records: list[dict]) -> dict[str, dict]:
    """legend label -> {"per_class": {class: mean normalised singular values over the group's seeds}}."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for rec in records:
        spectra = read_spectra(rec)
        if spectra is not None:
            groups[group_key(rec)].append(spectra["per_class"])
    out = {}
    for key, runs in sorted(groups.items()):
        classes = class_order(set.intersection(*(set(r) for r in runs)))
        per_class = {}
        for c in classes:
            curves = [numerical_rank(torch.as_tensor(r[c], dtype=torch.float64)) for r in runs]
            k = min(len(v) for v in curves)
            per_class[c] = torch.stack([v[:k] / v.sum() for v in curves]).mean(0).tolist()
        out[group_label(key, len(runs))] = {"per_class": per_class}
    return out


def plot_group_spectra(records: list[dict], path: str | Path, classes: int = 6) -> Path:
    """The first `classes` classes' spectra, one panel each, one line per group of runs (log scale)."""
    from ..analysis import plot_class_spectra

    spectra = group_spectra(records)
    if not spectra:
        raise ValueError("no run folder has a spectra.json (the task must write one; are the runs' folders still "
                         "there?)")
    shared = class_order(set.intersection(*(set(s["per_class"]) for s in spectra.values())))
    return plot_class_spectra(spectra, path, classes=shared[:classes],
                              title="class-conditional singular values of the last hidden layer (normalised)")
