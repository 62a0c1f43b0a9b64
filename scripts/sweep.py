"""Guo et al.'s sweep: dense references -> progressive pruning -> r∞ / r2 (four attacks) at every round.

The documented alias of scripts/experiment.py for Guo's sweep (same flags, same run directory),
plus --reevaluate.

Usage:
  python scripts/sweep.py --config=configs/guo_mnist.py:quick --workdir=runs/demo
  python scripts/sweep.py --config=configs/guo_mnist.py:full \
      --config.data.data_dir=../shared/data/mnist.npz --config.model.name=lenet5 --workdir=runs/lenet5
  python scripts/sweep.py --reevaluate --config=configs/guo_mnist.py:full --workdir=runs/lenet5 \
      --config.eval.measures=r_inf,r_inf_rfgs,r2,r2_cw

Writes config.json, results.json (status, last completed round, every record, the per-round
mean ± 95% CI summary, the over-pruning finding), checkpoints/ (each round's weights), and when
complete results.csv, results_summary.csv, results.md and robustness_vs_sparsity.png into
--workdir, and prints its path at the end. A killed or interrupted sweep continues after its
last completed round with the same flags plus --resume.
--reevaluate re-measures every kept round of the complete sweep in --workdir with the eval
section of --config (named explicitly; only --config.eval.* overrides), without retraining,
and rewrites its results files (train_seconds kept; nothing written if interrupted).
--config.distribute=mirrored trains and retrains on every GPU of the machine (docs/SCALE.md).
Exit codes: 0 ok, 1 failure, 2 bad usage (bad flag/config/data, taken workdir), 130/143 interrupted.
"""

import sys

import _bootstrap  # noqa: F401  (sys.path for configs/, quiet TF logs)
from absl import flags

from tfsparse import cli
from tfsparse.errors import UsageError

_CONFIG = cli.define_config_file(
    "config", f"{_bootstrap.REPO_ROOT}/configs/guo_mnist.py:quick", "Experiment config file[:variant]."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory to create (or to continue with --resume).",
                               required=True)
_RESUME = flags.DEFINE_bool("resume", False, "Continue the interrupted sweep in --workdir (same flags).")
_REEVALUATE = flags.DEFINE_bool("reevaluate", False, "Re-measure the complete sweep in --workdir with the eval "
                                "section of --config, without retraining.")


def main(argv):
    if _REEVALUATE.value:
        others = [a.split("=")[0] for a in sys.argv[1:]
                  if a.startswith("--config.") and not a.startswith("--config.eval.")]
        if _RESUME.value or others or not flags.FLAGS["config"].present:
            raise UsageError("--reevaluate takes the eval section of an explicit --config=FILE:VARIANT and only "
                             f"--config.eval.* overrides{', not ' + ', '.join(others) if others else ''}"
                             f"{' (and no --resume)' if _RESUME.value else ''}")
    config = cli.resolved_config(_CONFIG)
    from tfsparse.pipelines.guo import reevaluate_sweep
    from tfsparse.pipelines.guo import run_sweep

    if _REEVALUATE.value:
        run_dir = reevaluate_sweep(config, _WORKDIR.value)
    else:
        run_dir = run_sweep(config, _WORKDIR.value, resume=_RESUME.value)
    print(f"run directory: {run_dir}")


if __name__ == "__main__":
    cli.run(main)
