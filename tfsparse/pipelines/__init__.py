"""Pipelines: one module per kind of run, the floor between ``scripts/`` and the library.

* :mod:`~tfsparse.pipelines.train` — ``train_and_evaluate``: one model, clean / PGD / RSR.
* :mod:`~tfsparse.pipelines.guo` — ``run_sweep``: Guo et al.'s progressive-pruning sweep.
* :mod:`~tfsparse.pipelines.wang` — ``run_oneshot_table``: Wang et al.'s one-shot table.
* :mod:`~tfsparse.pipelines.prune` — ``prune_saved_model``: prune, retrain, export a saved model.
* :mod:`~tfsparse.pipelines.tune` — ``run_search``: keras-tuner search over RSR's λ and γ.
* :mod:`~tfsparse.pipelines.evaluate` — ``evaluate_model``: a saved model under an attack suite.
* :mod:`~tfsparse.pipelines.rsr` — the PGD / RSR training recipe shared by ``train`` and ``tune``.
* ``_run`` (run directory, status, resume), ``_build`` (data, model, suites from config
  sections), :mod:`~tfsparse.pipelines.validate` (every section checked before any work).

Each module imports only the floors below it: evaluation, training, the parts, and the
ground floor (compat, errors, results). Nothing below imports a pipeline.
"""

from tfsparse.errors import ConfigError


def experiment(name):
    """The pipeline ``fn(config, workdir, *, resume=False) -> run_dir`` of an ``experiment`` name."""
    from tfsparse.pipelines import guo
    from tfsparse.pipelines import wang

    experiments = {guo.KIND: guo.run_sweep, wang.KIND: wang.run_oneshot_table}
    if name not in experiments:
        raise ConfigError(f"experiment {name!r} is unknown; choose from {sorted(experiments)}")
    return experiments[name]
