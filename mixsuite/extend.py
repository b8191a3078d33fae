"""Extending a run: train a config on from the checkpoint of a run of the same config with fewer `epochs` and/or a
shorter early-stopping `patience`, instead of from scratch (`mixsuite run --extend epochs=40 --extend patience=5`).

A run with more epochs or more patience passes through every state of the shorter one (a smaller patience only
stops sooner), so this gives the numbers of the longer config trained from scratch, where nothing in training
depends on the number of epochs (no learning-rate schedule over the run, no stage that ends at a share of it) and
the shorter run's last epoch did nothing the longer run does not do there (evaluated and tested only because it was
the last). The task says whether that holds (`Task.extension_problem`); the rest is checked here, and a refusal says
why.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from . import checkpoint
from .config import config_hash
from .errors import UserError

EXTENDABLE = ("epochs", "patience")


def shorter_config(cfg, settings: dict):
    """`cfg` with the shorter run's settings ({"epochs": 40, "patience": 5}); a UserError for anything else."""
    if not settings:
        return None
    others = sorted(set(settings) - set(EXTENDABLE))
    if others:
        raise UserError(f"--extend {others[0]}=...: only {' and '.join(EXTENDABLE)} can be extended (KEY=VALUE, "
                        f"e.g. --extend epochs=40)")
    bad = [f"{k}={v}" for k, v in settings.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0]
    if bad:
        raise UserError(f"--extend {bad[0]}: the value must be a whole number of epochs")
    short = dataclasses.replace(cfg, **settings)
    if short.epochs > cfg.epochs:
        raise UserError(f"--extend epochs={short.epochs}: set epochs above it (e.g. epochs={2 * short.epochs})")
    if "patience" in settings and not (short.patience and (not cfg.patience or short.patience <= cfg.patience)):
        raise UserError(f"--extend patience={short.patience}: the shorter run must stop early (patience > 0) and "
                        f"sooner than this one (patience={cfg.patience}; 0 never stops)")
    if config_hash(short) == config_hash(cfg):
        raise UserError("--extend: that is this config; give the shorter run's epochs or patience")
    return short


def shorter_run(short, task, path: Path) -> dict:
    """The state in the shorter run's (config `short`) checkpoint `path`, once it is sure that training on from it
    gives the longer config's numbers from scratch."""
    if not path.is_file():
        raise UserError(f"--extend: no run of this config with epochs={short.epochs}, patience={short.patience} at "
                        f"{path.parent} (its {path.name}); run that one first, or drop --extend")
    state = checkpoint.load(path, how="Extend another run, or train from scratch")
    if state.get("config_hash") != config_hash(short):
        raise UserError(f"--extend: the checkpoint in {path.parent} was made with another config than its folder says")
    if short.epochs < task.cfg.epochs:   # more patience alone changes nothing the run has done
        if short.epochs % short.eval_every:
            raise UserError(f"--extend: the shorter run's last epoch {short.epochs} was evaluated only because it was "
                            f"the last (eval_every={short.eval_every}), which a longer run does not do; train from "
                            "scratch")
        problem = task.extension_problem(short.epochs)
        if problem:
            raise UserError(f"--extend: {problem}; train the longer config from scratch")
    return state


def copy_history(run_dir: str | Path, into: Path, upto: int) -> None:
    """The shorter run's metrics.jsonl lines up to epoch `upto`, as the start of this run's."""
    source = Path(run_dir) / "metrics.jsonl"
    lines = source.read_text().splitlines() if source.is_file() else []
    kept = [ln for ln in lines if ln and json.loads(ln)["epoch"] <= upto]
    checkpoint.atomic_write_text(into / "metrics.jsonl", "".join(ln + "\n" for ln in kept))
