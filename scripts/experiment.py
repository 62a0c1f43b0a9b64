"""Runs a paper experiment pipeline named by its config's ``experiment`` key.

Usage:
  python scripts/experiment.py --config=configs/wang_mnist.py:quick --workdir=runs/wang_quick
  python scripts/experiment.py --config=configs/guo_mnist.py:full --workdir=runs/guo

Known experiments (tfsparse.pipelines.EXPERIMENTS, by the config's ``experiment`` key):
guo_progressive_pruning (configs/guo_mnist.py, guo_linear.py, guo_cifar.py; also scripts/sweep.py),
guo_activation_l1, guo_pruned_models, guo_clever, guo_r2_gap (configs/guo_*.py); wang_oneshot
(configs/wang_mnist.py, wang_cifar.py), wang_lottery, wang_iwi; rsr_table1, rsr_width, rsr_noise,
rsr_blackbox (configs/rsr_*.py). Tables render into docs with scripts/report.py RUN_DIR.... A killed or interrupted run continues with the
same flags plus --resume. --config.distribute=mirrored trains the guo sweep's models on the machine's replicas
(docs/SCALE.md; Wang's adversarial tables run on one device). Exit codes: 0 ok, 1 failure, 2 bad usage, 130/143 interrupted.
"""

import _bootstrap  # noqa: F401
from absl import flags

from tfsparse import cli
from tfsparse.pipelines import EXPERIMENTS

_CONFIG = cli.define_config_file("config", f"{_bootstrap.REPO_ROOT}/configs/wang_mnist.py:quick",
                                 "Experiment config file[:variant].", experiments=tuple(EXPERIMENTS))
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
