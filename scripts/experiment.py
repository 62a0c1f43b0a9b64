"""Runs a paper experiment pipeline named by its config's ``experiment`` key.

Usage:
  python scripts/experiment.py --config=configs/wang_mnist.py:quick --workdir=runs/wang_quick
  python scripts/experiment.py --config=configs/guo_mnist.py:full --workdir=runs/guo

Known experiments: guo_progressive_pruning (configs/guo_*.py; also scripts/sweep.py) and
wang_oneshot (configs/wang_mnist.py). Exit codes: 0 ok, 1 failure, 2 bad usage.
"""

import _bootstrap  # noqa: F401
from absl import flags

import tfsparse  # noqa: F401
from tfsparse import cli
from tfsparse import config as config_lib

_CONFIG = cli.define_config_file("config", f"{_bootstrap.REPO_ROOT}/configs/wang_mnist.py:quick", "Experiment config file[:variant].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory to create (must not already hold files).", required=True)


def main(argv):
    if len(argv) > 1:
        raise config_lib.ConfigError(f"unexpected arguments {argv[1:]}; pass options as --flags")
    config = config_lib.validate(_CONFIG.value)
    from tfsparse import experiments

    run_dir = experiments.get(config.get("experiment", "guo_progressive_pruning"))(config, _WORKDIR.value)
    print(f"run directory: {run_dir}")


if __name__ == "__main__":
    cli.run(main)
