"""The RSR keras-tuner search (λ, target sparsity γ, clean weight a, noise α₀) from Python.

    python examples/tune_rsr.py

The same search as ``scripts/tune.py --config=configs/tune_rsr.py:quick`` (see that
config's docstring and :mod:`tfsparse.pipelines.tune`), driven step by step instead of
through the CLI: build the config, shrink it, validate it, load the data, run
:class:`tfsparse.pipelines.tune.RSRTuner` into a temporary directory and print its table.
Each trial trains LeNet-300-100 with RSR (PGD ensemble loss + lasso + noise), prunes it to
the trial's sparsity and scores ``pgd_accuracy − penalty · max(0, min_sparsity − sparsity)``.

Output: the markdown table of trials (best first) and ``name=value`` lines:
``trials=4``, ``best_score=...``, ``best_clean_accuracy=...``, ``best_pgd_accuracy=...``,
``best_sparsity=...``, ``best_lasso=...``, ``best_target_sparsity=...``.

Set ``TFSPARSE_EXAMPLE_QUICK=1`` for a reduced run (fewer images, PGD steps and trials;
same code path) — used by ``tests/test_examples_extend.py``.
"""

import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # `configs` is a package at the repository root, not installed

from configs import tune_rsr  # noqa: E402
from tfsparse.pipelines import tune  # noqa: E402
from tfsparse.pipelines._build import load_data  # noqa: E402
from tfsparse.pipelines.validate import validate  # noqa: E402

QUICK = os.environ.get("TFSPARSE_EXAMPLE_QUICK", "") not in ("", "0")


def make_config():
    """configs/tune_rsr.py:quick, shrunk to run in about a minute on 2 CPU cores."""
    config = tune_rsr.get_config("quick")  # LeNet-5, 1,000 MNIST images, 4 trials, PGD-7 ε=0.1
    config.max_trials = 2 if QUICK else 4
    config.model.name = "lenet300_100"  # an MLP: much cheaper than LeNet-5 on CPU
    config.data.num_train = 512 if QUICK else 3000  # embedded MNIST sample (6,000 train images)
    config.data.num_test = 100 if QUICK else 500
    config.adversarial_train.batch_size = 64
    config.adversarial_train.epochs = 1.0 if QUICK else 2.0
    config.rsr.steps = 3 if QUICK else 7  # PGD steps of RSR's training attack
    config.rsr.eot_samples = 1 if QUICK else 2  # EOT samples when evaluating noisy models
    config.pgd.eval_steps = 5 if QUICK else 10  # PGD steps of each trial's evaluation
    config.search.eval_examples = config.data.num_test
    return validate(config)  # raises ConfigError naming the first bad value


def main():
    start = time.time()
    config = make_config()
    dataset = load_data(config.data)  # == tfsparse.data.load("mnist", num_train=..., num_test=...)
    print(f"quick={int(QUICK)} model={config.model.name} num_train={len(dataset.x_train)} "
          f"max_trials={config.max_trials}")
    with tempfile.TemporaryDirectory() as tmpdir:
        tuner = tune.RSRTuner(config, dataset, max_trials=config.max_trials, seed=config.seed,
                              directory=tmpdir, project_name="rsr_example")
        # Optional progress hook: called with each finished keras-tuner Trial.
        tuner.on_trial = lambda trial: print(
            f"# trial {trial.trial_id} done: score={trial.score:.4f}", flush=True)
        tuner.search()
        rows = tuner.results_table()  # one dict per trial, best first
    print(tune.markdown(rows))
    best = rows[0]
    print(f"trials={len(rows)}")
    for key in ("score", "clean_accuracy", "pgd_accuracy", "sparsity", "lasso", "target_sparsity"):
        print(f"best_{key}={best[key]:.6g}")
    print(f"total_seconds={time.time() - start:.1f}")


if __name__ == "__main__":
    main()
