"""What a report needs from a task that its records do not carry: the direction of a metric, the baseline method
(both declared on the Task class: `primary_mode`, `baseline_method`) and, for records made before runs wrote it,
what a run mixed with (its task's Config resolves it). The Task class is imported by the record's task name, once,
only when a report asks (so `compare` on one task never imports another task's dependencies). A task that cannot
be found or imported here (a record of a plugin not installed) falls back to the metric's name."""
from __future__ import annotations

import functools
import re
import warnings

LOWER_IS_BETTER = re.compile(r"loss|err|nll|ece|cer|wer|time")   # the fallback when no task declares a direction


@functools.lru_cache(maxsize=None)
def task_class(name: str):
    """The Task class registered as `name` (a folder under ./tasks, an entry point), or None."""
    from ..task import resolve

    try:
        with warnings.catch_warnings():   # a plugin's dependencies' import-time deprecation notices are not the
            warnings.simplefilter("ignore", FutureWarning)   # report's (torch_geometric's torch.jit.script)
            warnings.simplefilter("ignore", DeprecationWarning)
            return resolve(name).load()
    except Exception:  # a report must not die on a plugin it cannot import; callers fall back
        return None


def metric_mode(task: str, metric: str) -> tuple[str, str]:
    """("max" or "min", where that comes from) for one task's metric."""
    cls = task_class(task)
    declared = cls.metric_mode(metric) if cls is not None and hasattr(cls, "metric_mode") else None
    if declared in ("max", "min"):
        return declared, f"declared by the {task} task"
    return ("min" if LOWER_IS_BETTER.search(metric) else "max"), "read from the metric's name"


def baseline_method(task: str) -> str | None:
    cls = task_class(task)
    return getattr(cls, "baseline_method", None) if cls is not None else None


def mixing_of(record: dict) -> dict | None:
    """What the run mixed with, as resolved (its method's own alpha and S where the config left them null): the
    record's `mixing`, or for a record made before runs wrote it, resolved from its config by its task's Config;
    None when neither can say."""
    if record.get("mixing") is not None:
        return record["mixing"]
    cls = task_class(record.get("task", ""))
    if cls is None or "config" not in record:
        return None
    from ..config import from_record
    from ..mixing import mixing_used

    try:
        return mixing_used(from_record(cls.Config, record["config"]))
    except Exception:  # a config today's code rejects: the report shows the recorded value
        return None
