"""Guo et al. 2018 §4.3, Table 2 analogue: the most-pruned models of a sweep against its dense reference.

Guo's Table 2 attacks Han et al.'s published compressed LeNets (56× LeNet-300-100 at 98.21%
weight sparsity, 108× LeNet-5 at 99.07%) and their dense references; those files cannot be
fetched here. This experiment takes this project's own most-pruned rounds instead: the last
``pruned_models.last_rounds`` rounds of every seed of a ``guo_progressive_pruning`` sweep (its
kept ``checkpoints/seed<S>/round<R>.weights.h5``) and that sweep's dense round 0, re-evaluated
with this config's ``eval`` section (no retraining), and says so in its table.

``pruned_models.sweep_dir``: the run directory of a finished sweep (scripts/sweep.py), or ''
to run the sweep of this config's own sections (those of ``configs/guo_mnist.py``, same
variant) first, in ``<workdir>/sweep``.

Variants (``--config=configs/guo_pruned_models.py:VARIANT``): quick, full, paper — the
sweep budgets and evaluation of ``configs/guo_mnist.py`` (quick with 3 seeds).

Examples:
  # over an existing full sweep (minutes: 3 models per seed are evaluated)
  python scripts/experiment.py --config=configs/guo_pruned_models.py:full \
      --config.pruned_models.sweep_dir=runs/guo_lenet5 --workdir=runs/guo_table2_lenet5
  # self-contained: quick sweep then its last 2 rounds (~10 min on 2 CPU cores)
  python scripts/experiment.py --config=configs/guo_pruned_models.py:quick --workdir=runs/guo_table2_q
"""

import ml_collections

from configs import guo_mnist


def get_config(arg=None):
    config = guo_mnist.get_config(arg)
    config.experiment = "guo_pruned_models"
    if config.variant == "quick":
        config.seeds = (0, 1, 2)
    config.pruned_models = ml_collections.ConfigDict({"sweep_dir": "", "last_rounds": 2})
    return config
