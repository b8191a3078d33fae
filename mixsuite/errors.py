"""Errors a person can act on: the CLI prints their message (no traceback) and exits non-zero."""


class UserError(Exception):
    """A mistake in the input, with the fix in its message. Exit code 1."""

    def __str__(self) -> str:  # KeyError would otherwise print the message quoted
        return str(self.args[0]) if self.args else ""


class UsageError(UserError):
    """A command-line option that names something that is not there (a metric no record has). Exit code 2."""


class ConfigError(UserError, ValueError):
    """A bad config key or value. Exit code 2."""


class UnknownName(UserError, KeyError):
    """A name not in a registry (task, mixing backend, model, dataset); the message suggests the nearest."""


class DataNotFound(UserError, FileNotFoundError):
    """A dataset is missing: say where it was looked for and how to get it."""

    def __init__(self, what: str, looked_in, how: str):
        paths = looked_in if isinstance(looked_in, (list, tuple)) else [looked_in]
        super().__init__(f"{what} not found; looked in: {', '.join(str(p) for p in paths)}. {how}")
