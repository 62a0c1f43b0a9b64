"""keras-tuner search over RSR's λ and γ; writes a table of all trials and the best config.

Usage:
  python scripts/tune.py --config=configs/tune_rsr.py:quick --workdir=runs/tune_q
  python scripts/tune.py --config=configs/tune_rsr.py:quick --workdir=runs/t --max_trials=2

The workdir receives config.json, trials.csv and trials.md (every trial: λ, target sparsity,
a, α₀, score, clean / PGD accuracy, sparsity, γ; best first), best.json (the best trial's
hyperparameters and metrics) and keras-tuner's own state under tuner/.
Exit codes: 0 ok, 1 failure, 2 bad usage.
"""

import os

import _bootstrap  # noqa: F401
from absl import flags

import tfsparse  # noqa: F401
from tfsparse import cli
from tfsparse import config as config_lib

_CONFIG = cli.define_config_file("config", f"{_bootstrap.REPO_ROOT}/configs/tune_rsr.py", "Tuning config file[:variant].")
_MAX_TRIALS = flags.DEFINE_integer("max_trials", None, "Trials to run (overrides config.max_trials).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data file or directory (overrides config.data.data_dir).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory to create (must not already hold files).", required=True)


def markdown(rows):
    """A markdown table of ``rows`` (dicts with the same keys)."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) > 1:
        raise config_lib.ConfigError(f"unexpected arguments {argv[1:]}; pass options as --flags")
    config = _CONFIG.value
    with config.unlocked():
        if _MAX_TRIALS.value is not None:
            config.max_trials = _MAX_TRIALS.value
        if _DATA_DIR.value is not None:
            config.data.data_dir = _DATA_DIR.value
    config_lib.validate(config)
    if config.max_trials < 1:
        raise config_lib.ConfigError(f"max_trials must be >= 1, got {config.max_trials}")
    from tfsparse import results
    from tfsparse.builders import load_data
    from tfsparse.training.recipes import validate_training
    from tfsparse.tuning import RSRTuner

    validate_training(config)
    results.check_run_dir_free(_WORKDIR.value)
    dataset = load_data(config.data, seed=config.data.seed)
    run_dir = results.make_run_dir(_WORKDIR.value)
    results.write_json(os.path.join(run_dir, "config.json"), {"config": config.to_dict(), "metadata": results.metadata()})
    tuner = RSRTuner(config, dataset, max_trials=config.max_trials, seed=config.seed,
                     directory=run_dir, project_name="tuner")
    tuner.search()
    rows = tuner.results_table()
    results.write_csv(os.path.join(run_dir, "trials.csv"), rows)
    results.atomic_write_text(os.path.join(run_dir, "trials.md"), markdown(rows))
    results.write_json(os.path.join(run_dir, "best.json"), rows[0])
    print(markdown(rows))
    print(f"run directory: {_WORKDIR.value}")


if __name__ == "__main__":
    cli.run(main)
