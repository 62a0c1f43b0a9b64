"""Guo et al.'s sweep: dense reference → progressive pruning → r∞ / r2 at every round.

Usage:
  python scripts/sweep.py --config=configs/guo_mnist.py:quick --workdir=runs/demo
  python scripts/sweep.py --config=configs/guo_mnist.py:full \
      --config.data.data_dir=../shared/data/mnist.npz --config.model.name=lenet5 --workdir=runs/lenet5

Writes config.json, results.json, results.csv, results.md and robustness_vs_sparsity.png
into --workdir (which must not already hold files) and prints its path at the end.
Exit codes: 0 ok, 1 failure, 2 bad usage (bad flag/config/data, existing workdir).
"""

import _bootstrap  # noqa: F401  (sys.path for configs/, quiet TF logs)
from absl import flags

import tfsparse  # noqa: F401  (selects tf_keras before TensorFlow loads)
from tfsparse import cli
from tfsparse import config as config_lib

_CONFIG = cli.define_config_file(
    "config", f"{_bootstrap.REPO_ROOT}/configs/guo_mnist.py:quick", "Experiment config file[:variant]."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory to create (must not already hold files).", required=True)


def main(argv):
    if len(argv) > 1:
        raise config_lib.ConfigError(f"unexpected arguments {argv[1:]}; pass options as --flags")
    config = config_lib.validate(_CONFIG.value)
    from tfsparse.experiments import run_sweep

    run_dir = run_sweep(config, _WORKDIR.value)
    print(f"run directory: {run_dir}")


if __name__ == "__main__":
    cli.run(main)
