"""Which optional extra of mixsuite installs which import, so that a missing one is named, not a traceback.

The core (torch, torchvision, timm, ...) is always there; the packages below come with an extra of
pyproject.toml (`pip install 'mixsuite[graph]'`). tests/test_packaging.py checks that this table and
pyproject.toml's extras agree.
"""
from __future__ import annotations

from .errors import MissingExtra

# top-level import name -> (distribution, extra)
EXTRA_OF_IMPORT = {
    "torch_geometric": ("torch-geometric", "graph"),
    "torchaudio": ("torchaudio", "htr"),
    "editdistance": ("editdistance", "htr"),
    "flashlight": ("flashlight-text", "htr"),
    "pytorch_metric_learning": ("pytorch-metric-learning", "metric"),
    "sklearn": ("scikit-learn", "metric"),
    "ray": ("ray", "ray"),
    "tensorboard": ("tensorboard", "tensorboard"),
    "lightning": ("lightning", "lightning"),
    "transformers": ("transformers", "hf"),
    "accelerate": ("accelerate", "accelerate"),
}


def install_hint(extra: str) -> str:
    return f"pip install 'mixsuite[{extra}]' (in a checkout: pip install -e '.[{extra}]')"


def missing_extra(error: ModuleNotFoundError, needed_by: str) -> MissingExtra | None:
    """The MissingExtra to raise for `error` (an import that failed) when an extra provides that module, else None
    (a module no extra provides is a bug or a broken install: let its own error through)."""
    top = (error.name or "").partition(".")[0]
    if top not in EXTRA_OF_IMPORT:
        return None
    dist, extra = EXTRA_OF_IMPORT[top]
    return MissingExtra(f"{needed_by} needs {dist}, which is not installed; it comes with the {extra!r} extra: "
                        f"{install_hint(extra)}")


def require(module: str, needed_by: str):
    """Import and return `module`, or raise MissingExtra naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        extra = missing_extra(e, needed_by)
        if extra is None:
            raise
        raise extra from e
