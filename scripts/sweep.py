"""Guo et al.'s sweep: dense reference -> progressive pruning -> r_inf / r2 at every round.

Usage:
  python scripts/sweep.py --config=configs/guo_mnist.py:quick --workdir=runs/demo
  python scripts/sweep.py --config=configs/guo_mnist.py:full \
      --config.data.data_dir=../shared/data/mnist.npz --config.model.name=lenet5 --workdir=runs/lenet5

Writes config.json, results.json (status, last completed round, every record so far),
checkpoints/ (each round's weights), and when complete results.csv, results.md and
robustness_vs_sparsity.png into --workdir, and prints its path at the end. A killed or
interrupted sweep continues after its last completed round with the same flags plus --resume.
--config.distribute=mirrored trains and retrains on every GPU of the machine (docs/SCALE.md).
Exit codes: 0 ok, 1 failure, 2 bad usage (bad flag/config/data, taken workdir), 130/143 interrupted.
"""

import _bootstrap  # noqa: F401  (sys.path for configs/, quiet TF logs)
from absl import flags

from tfsparse import cli

_CONFIG = cli.define_config_file(
    "config", f"{_bootstrap.REPO_ROOT}/configs/guo_mnist.py:quick", "Experiment config file[:variant]."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory to create (or to continue with --resume).",
                               required=True)
_RESUME = flags.DEFINE_bool("resume", False, "Continue the interrupted sweep in --workdir (same flags).")


def main(argv):
    config = cli.resolved_config(_CONFIG)
    from tfsparse.pipelines.guo import run_sweep

    run_dir = run_sweep(config, _WORKDIR.value, resume=_RESUME.value)
    print(f"run directory: {run_dir}")


if __name__ == "__main__":
    cli.run(main)
