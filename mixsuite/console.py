"""What runs and sweeps print: flushed lines, durations as people read them."""
from __future__ import annotations


def log_line(msg: str) -> None:
    """print, flushed: run logs are often redirected to a file and read while the run goes on."""
    print(msg, flush=True)


def duration(seconds: float) -> str:
    """12m05s under an hour, 1h02m from there."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def time_left(epochs_done: int, seconds: float, epochs_left: int, early_stopping: bool) -> str:
    """` eta=12m05s` from the mean time of the epochs done (` eta<=...` when early stopping may end it sooner)."""
    if epochs_done <= 0 or epochs_left <= 0:
        return ""
    return f" eta{'<=' if early_stopping else '='}{duration(seconds / epochs_done * epochs_left)}"


def summary_line(run_id: str, epochs: int, seconds: float, primary: str, final: dict) -> str:
    """`done <run_id>: <epochs> epochs in <t>; <primary>=<value> (best epoch <n>)`."""
    value = final.get(primary, final.get(f"best_{primary}"))
    headline = f"; {primary}={short_number(value)}" if value is not None else ""
    best = f" (best epoch {final['best_epoch']})" if "best_epoch" in final else ""
    return f"done {run_id}: {epochs} epochs in {seconds:.1f} s{headline}{best}"


def short_number(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
