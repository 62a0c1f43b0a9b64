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


def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        sys.stderr.write(f"error: {error}\nTry --help for the list of flags.\n")
        sys.exit(2)


def run(main):
    """Runs an absl ``main`` with tfsparse's exit-code contract."""

    def guarded(argv):
        try:
            return main(argv)
        except _usage_errors() as error:
            sys.stderr.write(f"error: {error}\n")
            sys.exit(2)

    app.run(guarded, flags_parser=_parse_flags)
