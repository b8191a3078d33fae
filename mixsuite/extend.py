"""Extending a finished run: train a config that differs from it only in a larger `epochs` on from its last checkpoint,
instead of from scratch.

This gives the numbers of a run trained for the larger `epochs` from the start only where nothing in training
depends on the number of epochs (no learning-rate schedule over the run, no stage that ends at a share of it) and
the shorter run's last epoch did nothing the longer run does not do there (it evaluated there anyway). The task says
whether that holds (`Task.extension_problem`); the engine checks the rest and refuses with the reason otherwise.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from . import checkpoint
from .config import NON_SEMANTIC, config_hash, load_yaml, to_dict
from .errors import UserError

CHECKPOINT = "checkpoint.pt"


def shorter_run(cfg, task, run_dir: str | Path) -> tuple[Path, int, str]:
    """The checkpoint of the run in `run_dir`, the epoch it holds and the hash of the config it was made with, once
    it is sure that extending that run gives the numbers `cfg` would from scratch; a UserError that says why not
    otherwise."""
    run_dir = Path(run_dir)
    path, saved = run_dir / CHECKPOINT, run_dir / "config.yaml"
    if not (path.is_file() and saved.is_file()):
        raise UserError(f"--extend: no run of this config with the shorter epochs at {run_dir} (its {CHECKPOINT} "
                        "and config.yaml); run that one first, or drop --extend")
    old = load_yaml(saved, "the run's config")
    old_epochs = int(old.get("epochs", 0))
    state = checkpoint.load(path, how="Extend another run, or train from scratch")
    if state.get("config_hash") != config_hash(dataclasses.replace(cfg, epochs=old_epochs)):
        ours = to_dict(cfg)
        differ = sorted(k for k in set(old) | set(ours)
                        if k not in NON_SEMANTIC and k != "epochs" and old.get(k) != ours.get(k))
        raise UserError(f"--extend {run_dir}: that run's config differs from this one"
                        f"{' in ' + ', '.join(differ) if differ else ''}; only epochs may differ")
    if old_epochs >= cfg.epochs:
        raise UserError(f"--extend {run_dir}: that run has epochs={old_epochs}; set epochs above it (e.g. "
                        f"epochs={2 * old_epochs})")
    if old_epochs % cfg.eval_every:
        raise UserError(f"--extend {run_dir}: its last epoch {old_epochs} was evaluated only because it was the last "
                        f"(eval_every={cfg.eval_every}), which a longer run does not do; train from scratch")
    problem = task.extension_problem(old_epochs)
    if problem:
        raise UserError(f"--extend {run_dir}: {problem}; train the longer config from scratch")
    return path, state["epoch"], state["config_hash"]


def copy_history(run_dir: str | Path, into: Path, upto: int) -> None:
    """The shorter run's metrics.jsonl lines up to epoch `upto`, as the start of this run's."""
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if (Path(run_dir) / "metrics.jsonl").is_file() \
        else []
    kept = [ln for ln in lines if ln and json.loads(ln)["epoch"] <= upto]
    checkpoint.atomic_write_text(into / "metrics.jsonl", "".join(ln + "\n" for ln in kept))
