"""Runs a paper experiment pipeline named by its config's ``experiment`` key.

Usage:
  python scripts/experiment.py --config=configs/wang_mnist.py:quick --workdir=runs/wang_quick
  python scripts/experiment.py --config=configs/guo_mnist.py:full --workdir=runs/guo

Known experiments: guo_progressive_pruning (configs/guo_*.py; also scripts/sweep.py) and
wang_oneshot (configs/wang_mnist.py, configs/wang_cifar.py). A killed or interrupted run continues with the
same flags plus --resume. --config.distribute=mirrored trains the guo sweep's models on the machine's replicas
(docs/SCALE.md; Wang's adversarial tables run on one device). Exit codes: 0 ok, 1 failure, 2 bad usage, 130/143 interrupted.
"""

import _bootstrap  # noqa: F401
from absl import flags

from tfsparse import cli

_CONFIG = cli.define_config_file("config", f"{_bootstrap.REPO_ROOT}/configs/wang_mnist.py:quick",
                                 "Experiment config file[:variant].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory to create (or to continue with --resume).",
                               required=True)
_RESUME = flags.DEFINE_bool("resume", False, "Continue the interrupted run in --workdir (same flags).")


def main(argv):
    config = cli.resolved_config(_CONFIG)
    from tfsparse import pipelines

    run_dir = pipelines.experiment(config.experiment)(config, _WORKDIR.value, resume=_RESUME.value)
    print(f"run directory: {run_dir}")


if __name__ == "__main__":
    cli.run(main)
