"""Usage errors: the ground floor every layer raises from and the CLI maps to exit code 2.

A usage error means the user asked for something that cannot work (a bad config value,
missing or malformed data, a run directory that is taken); its message is one line that
says what is wrong and what to change. Everything else that goes wrong is a failure
(exit 1). :class:`Interrupted` carries SIGTERM through the stack like Ctrl-C's
``KeyboardInterrupt``, so a run can record that it was stopped.
"""


class UsageError(ValueError):
    """Bad input; the one-line message names the value and what to change (CLI exit 2)."""


class ConfigError(UsageError):
    """A config value or flag is invalid."""


class NonFiniteOutputError(ConfigError):
    """The model outputs NaN or Inf: no accuracy or robustness number can be computed from it."""


class DataError(UsageError):
    """Bad or missing data."""


class RunDirError(UsageError, FileExistsError):
    """The run directory or output path cannot be used as asked (taken, not writable, ...)."""


class Interrupted(KeyboardInterrupt):
    """The process received a stop signal (SIGTERM); ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum):
        super().__init__(f"signal {signum}")
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
