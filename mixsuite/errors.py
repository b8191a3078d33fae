"""Errors a person can act on: the CLI prints their message (no traceback) and exits non-zero."""


class UserError(Exception):
    """A mistake in the input, with the fix in its message. Exit code 1 (`exit_code`)."""

    exit_code = 1

    def __str__(self) -> str:  # KeyError would otherwise print the message quoted
        return str(self.args[0]) if self.args else ""


class UsageError(UserError):
    """A command-line option that names something that is not there (a metric no record has). Exit code 2."""


class ConfigError(UserError, ValueError):
    """A bad config key or value. Exit code 2."""

    exit_code = 2


class RunRefused(UserError):
    """The run cannot start as asked: its folders cannot be written, another process trains it, or the task
    cannot run this way. Checked before any training. Exit code 2."""

    exit_code = 2


class DamagedFile(UserError):
    """A file that exists but cannot be read (truncated, corrupt): the message names it and how to get a good
    copy. Exit code 2."""

    exit_code = 2

    def __init__(self, path, reason, how: str):
        super().__init__(f"{path} is damaged ({reason}). {how}")
        self.path, self.reason, self.how = path, reason, how

    def __reduce__(self):  # rebuilt from its three parts when it crosses processes (--jobs workers)
        return type(self), (self.path, self.reason, self.how)


class UnknownName(UserError, KeyError):
    """A name not in a registry (task, mixing backend, model, dataset); the message suggests the nearest."""


class DataNotFound(UserError, FileNotFoundError):
    """A dataset is missing: say where it was looked for and how to get it."""

    def __init__(self, what: str, looked_in, how: str):
        paths = looked_in if isinstance(looked_in, (list, tuple)) else [looked_in]
        super().__init__(f"{what} not found; looked in: {', '.join(str(p) for p in paths)}. {how}")


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the run stops with its last good checkpoint kept (exit code 1)."""


class MissingExtra(UserError, ImportError):
    """A task or an integration needs a package of an optional extra that is not installed
    (mixsuite/extras.py names the extra). Exit code 2."""

    exit_code = 2


class EmptySplit(UserError):
    """A train, validation or test split with too few examples to train or evaluate on (a run that saw no data
    once recorded a perfect score). Checked before training. Exit code 2."""

    exit_code = 2
