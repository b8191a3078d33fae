"""TensorBoard scalars of a run: each epoch's numeric metrics, written in the run folder (`tensorboard=true`).

    tensorboard --logdir runs/          # every run, each under its own folder runs/<task>/<run_id>/

The step is the epoch. A resumed run purges the events from the epoch it starts at, as metrics.jsonl is cut back
to the checkpoint, so a curve never shows an epoch twice.
"""
from __future__ import annotations

import math
from pathlib import Path

from .errors import UserError


class ScalarLog:
    def __init__(self, run_dir: str | Path, first_epoch: int):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("tensorboard=true needs the tensorboard package: pip install 'mixsuite[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=first_epoch)

    def add(self, metrics: dict) -> None:
        """One scalar per finite number in `metrics` (an epoch's line of metrics.jsonl), at step metrics['epoch']."""
        epoch = metrics["epoch"]
        for name, value in metrics.items():
            if name != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                self.writer.add_scalar(name, value, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
