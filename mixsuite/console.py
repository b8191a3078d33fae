"""What runs and sweeps print: flushed lines, durations as people read them."""
from __future__ import annotations


def log_line(msg: str) -> None:
    """print, flushed: run logs are often redirected to a file and read while the run goes on."""
    print(msg, flush=True)


def duration(seconds: float) -> str:
    """12m05s under an hour, 1h02m from there."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
