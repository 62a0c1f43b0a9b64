"""Usage errors: the ground floor every layer raises from and the CLI maps to exit code 2.

A usage error means the user asked for something that cannot work (a bad config value,
missing or malformed data, a run directory that is taken); its message is one line that
says what is wrong and what to change. Everything else that goes wrong is a failure
(exit 1). :class:`Interrupted` carries SIGTERM through the stack like Ctrl-C's
``KeyboardInterrupt``, so a run can record that it was stopped.

A signal handler's exception can be lost: raised while TensorFlow's C++ code is calling back
into Python (tracing, the TFLite converter), it comes out as a ``SystemError`` that a
``except Exception`` may swallow, and the work would go on. So :func:`request_stop` also
records the signal, and the places that commit a result (:func:`raise_if_stopped`), a run's
status and the CLI's exit consult that record, not only the exception.
"""


class UsageError(ValueError):
    """Bad input; the one-line message names the value and what to change (CLI exit 2)."""


class ConfigError(UsageError):
    """A config value or flag is invalid."""


class NonFiniteOutputError(ConfigError):
    """The model outputs NaN or Inf: no accuracy or robustness number can be computed from it."""


class NonFiniteGradientError(ConfigError):
    """The loss has NaN or Inf input gradients: a gradient attack on the model would stall."""


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


_stop_signal = []  # the signal number of a stop request, once one arrives


def request_stop(signum):
    """Records a stop request and raises :class:`Interrupted` (a SIGTERM handler's body)."""
    _stop_signal.append(int(signum))
    raise Interrupted(signum)


def clear_stop():
    """Forgets a stop request (a new command starts in the same process: tests, notebooks)."""
    _stop_signal.clear()


def stop_requested():
    """The signal number of the stop request received, or None."""
    return _stop_signal[0] if _stop_signal else None


def raise_if_stopped(cause=None):
    """Raises :class:`Interrupted` (from ``cause``) if a stop was requested; call before a commit."""
    if _stop_signal:
        raise Interrupted(_stop_signal[0]) from cause
