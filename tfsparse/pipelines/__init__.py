"""Pipelines: one module per kind of run, the floor between ``scripts/`` and the library.

* :mod:`~tfsparse.pipelines.train` — ``train_and_evaluate``: one model, clean / PGD / RSR.
* :mod:`~tfsparse.pipelines.guo` — ``run_sweep``: Guo et al.'s progressive-pruning sweep.
* :mod:`~tfsparse.pipelines.guo_tables` — Guo's Table 1 (activation L1), Table 2 analogue and CLEVER table.
* :mod:`~tfsparse.pipelines.guo_r2_gap` — ``run_r2_gap``: why our LeNets' r2 is below Guo's (candidate causes).
* :mod:`~tfsparse.pipelines.wang` — ``run_oneshot_table``: Wang et al.'s Tables 1–2 (adversarial pruning).
* :mod:`~tfsparse.pipelines.wang_lottery` / :mod:`~tfsparse.pipelines.wang_iwi` — Wang's Tables 3 (adversarial
  lottery tickets) and 4 (Inverse Weights Inheritance).
* :mod:`~tfsparse.pipelines.prune` — ``prune_saved_model``: prune, retrain, export a saved model.
* :mod:`~tfsparse.pipelines.tune` — ``run_search``: keras-tuner search over RSR's λ and γ.
* :mod:`~tfsparse.pipelines.evaluate` — ``evaluate_model``: a saved model under an attack suite.
* :mod:`~tfsparse.pipelines.rsr` — the PGD / RSR training recipe shared by ``train``, ``tune`` and the RSR tables.
* :mod:`~tfsparse.pipelines.rsr_tables` — ``run_table``: RSR Tables 1, 2, 5 (white box) and 3 (black box).
* ``_run`` (run directory, status, resume), ``_build`` (data, model, suites from config
  sections), :mod:`~tfsparse.pipelines.validate` (every section checked before any work).

Each module imports only the floors below it: evaluation, training, the parts, and the
ground floor (compat, errors, results). Nothing below imports a pipeline.
"""

import importlib

from tfsparse.errors import ConfigError


# Every experiment pipeline, by the ``experiment`` key of its configs (= the ``pipeline`` its
# run directories record): (module, runner). The runner is ``fn(config, workdir, *,
# resume=False) -> run_dir`` (scripts/experiment.py); the module's ``report_section(run_dirs)
# -> markdown`` renders its runs for scripts/report.py.
EXPERIMENTS = {
    "guo_progressive_pruning": ("tfsparse.pipelines.guo", "run_sweep"),
    "guo_activation_l1": ("tfsparse.pipelines.guo_tables", "run_activation_l1"),
    "guo_pruned_models": ("tfsparse.pipelines.guo_tables", "run_pruned_models"),
    "guo_clever": ("tfsparse.pipelines.guo_tables", "run_clever"),
    "wang_oneshot": ("tfsparse.pipelines.wang", "run_oneshot_table"),
    "guo_r2_gap": ("tfsparse.pipelines.guo_r2_gap", "run_r2_gap"),
    "rsr_table1": ("tfsparse.pipelines.rsr_tables", "run_table"),
    "rsr_width": ("tfsparse.pipelines.rsr_tables", "run_table"),
    "rsr_noise": ("tfsparse.pipelines.rsr_tables", "run_table"),
    "rsr_blackbox": ("tfsparse.pipelines.rsr_tables", "run_table"),
    "wang_lottery": ("tfsparse.pipelines.wang_lottery", "run_lottery_table"),
    "wang_iwi": ("tfsparse.pipelines.wang_iwi", "run_iwi_table"),
}


def _module(name):
    if name not in EXPERIMENTS:
        raise ConfigError(f"experiment {name!r} is unknown; choose from {sorted(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name][0])


def experiment(name):
    """The pipeline ``fn(config, workdir, *, resume=False) -> run_dir`` of an ``experiment`` name."""
    return getattr(_module(name), EXPERIMENTS[name][1])


def report_section(name):
    """``fn(run_dirs) -> markdown``: the results section of runs of experiment ``name``."""
    spec = experiment(name)
    report = getattr(spec, "report", None) or getattr(_module(name), "report_section", None)
    if report is None:
        raise ConfigError(f"report.py cannot render {name!r} runs yet; read their results.md")
    return report
