"""keras-tuner search over RSR's lambda and gamma; writes a table of all trials and the best config.

Usage:
  python scripts/tune.py --config=configs/tune_rsr.py:quick --workdir=runs/tune_q
  python scripts/tune.py --config=configs/tune_rsr.py:quick --workdir=runs/t --max_trials=2

The workdir receives config.json, results.json (status, last completed trial; when done the
Pareto front over sparsity x clean x PGD accuracy and the over-pruning point), trials.csv and
trials.md (every trial: lambda, target sparsity, a, alpha0, score, clean / PGD accuracy,
sparsity, gamma, pareto; best first), best.json (the best trial), pareto.png (the front, the
over-pruning point marked), fig2.png (RSR Fig. 2a-c: PGD accuracy vs sparsity, accuracy vs
lambda and vs gamma) and keras-tuner's own state under tuner/. The objective (constrained:
PGD accuracy with a sparsity floor; weighted: a weighted sum) is --config.search.objective. Under scripts/launch_local.py --keras_tuner the trials run on parallel workers and the
chief (keras-tuner's oracle) writes the workdir (docs/SCALE.md). An interrupted search
continues with the same flags plus --resume (completed trials are kept).
Exit codes: 0 ok, 1 failure, 2 bad usage, 130/143 interrupted.
"""

import _bootstrap  # noqa: F401
from absl import flags

from tfsparse import cli

_CONFIG = cli.define_config_file("config", f"{_bootstrap.REPO_ROOT}/configs/tune_rsr.py", "Tuning config file[:variant].")
_MAX_TRIALS = flags.DEFINE_integer("max_trials", None, "Trials to run (config.max_trials).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data file or directory (config.data.data_dir).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory to create (or to continue with --resume).",
                               required=True)
_RESUME = flags.DEFINE_bool("resume", False, "Continue the interrupted search in --workdir (same flags).")


def main(argv):
    config = _CONFIG.value
    config = cli.resolved_config(_CONFIG, [
        (_MAX_TRIALS.value, config, "max_trials"), (_DATA_DIR.value, config.data, "data_dir"),
    ])
    from tfsparse.pipelines.tune import run_search

    run_search(config, _WORKDIR.value, resume=_RESUME.value)
    print(f"run directory: {_WORKDIR.value}")


if __name__ == "__main__":
    cli.run(main)
