"""Shared plumbing of the absl scripts: exit codes 0/1/2 and one-line errors (SPEC §10).

absl exits 1 on a bad flag; tfsparse scripts exit 2 on bad usage (bad flag, bad config,
bad data, existing run directory) with one line saying what to change, and 1 on a
failure during the work itself.
"""

import sys

from absl import app
from absl import flags



def _usage_errors():
    from tfsparse.config import ConfigError
    from tfsparse.data import DataError
    from tfsparse.results import RunDirExistsError

    return (ConfigError, DataError, RunDirExistsError, flags.Error)


_BAD_USAGE = (flags.Error, AttributeError, KeyError, ValueError, TypeError)


def _usage_exit(error):
    # Config-file errors arrive with the whole traceback in the message: keep its last line.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    message = (lines[-1] if lines else type(error).__name__).strip('"')
    if isinstance(error, (AttributeError, KeyError)):
        message = f"unknown config key {message}; check the key against the config file"
    sys.stderr.write(f"error: {message}\nTry --help for the list of flags.\n")
    sys.exit(2)


def define_config_file(name, default, help_text):
    """``config_flags.DEFINE_config_file`` with bad overrides reported as usage errors.

    ml_collections already applies ``--config.*`` overrides from ``sys.argv`` while the
    flag is defined (at import of the script), so an unknown key must be caught here.
    """
    from ml_collections import config_flags

    try:
        return config_flags.DEFINE_config_file(name, default, help_text, lock_config=True)
    except _BAD_USAGE as error:
        _usage_exit(error)


def override(config, pairs):
    """Applies the scripts' convenience flags: ``(value, section, key)``, None = not given."""
    with config.unlocked():
        for value, section, key in pairs:
            if value is not None:
                section[key] = value
    return config


def _parse_flags(argv):
    # ml_collections applies --config.* overrides while parsing: an unknown key raises
    # AttributeError/KeyError and a bad variant ValueError, all of them bad usage.
    try:
        return flags.FLAGS(argv)
    except _BAD_USAGE as error:
        _usage_exit(error)


def run(main):
    """Runs an absl ``main`` with tfsparse's exit-code contract."""

    def guarded(argv):
        from tfsparse.compat import tf

        # Each pruning round attacks a new model, which TF reports as "retracing"; that is
        # expected here and would bury the progress lines.
        tf.get_logger().setLevel("ERROR")
        try:
            return main(argv)
        except _usage_errors() as error:
            sys.stderr.write(f"error: {error}\n")
            sys.exit(2)

    app.run(guarded, flags_parser=_parse_flags)
