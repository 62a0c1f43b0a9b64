"""Pipelines: the floor between ``scripts/`` and the library — one experiment engine and its declarations.

* :mod:`~tfsparse.pipelines.engine` — ``run_experiment(spec, config, workdir, resume=…)``:
  the one run loop of every paper table (run directory, status, seeds × units, done-set and
  resume, per-unit checkpoints, records and summary after every unit, outputs, figures,
  pooling of run directories for scripts/report.py). A table is an
  :class:`~tfsparse.pipelines.engine.Experiment` declaration: its check, its units, how one
  unit is trained and measured, its summary, outputs, figures and report (docs/EXPERIMENTS.md).
* The declarations, by paper: ``guo`` (the progressive-pruning sweep, also scripts/sweep.py),
  ``guo_tables`` (Table 1 activation L1), ``guo_sweep_tables`` (Table 2 analogue, CLEVER), ``guo_r2_gap``; ``wang``
  (Tables 1–2), ``wang_lottery`` / ``wang_iwi`` (Tables 3–4); ``rsr_tables`` (RSR Tables 1, 2,
  3, 5); ``certified`` (certified accuracy of dense vs pruned models, beyond the papers).
  :data:`EXPERIMENTS` maps a config's ``experiment`` key to its declaration.
* Single runs: ``train`` (clean / PGD / RSR), ``prune``, ``tune`` (keras-tuner over RSR's λ, γ),
  ``evaluate`` (a saved model under an attack suite), ``export``, ``report``; ``rsr`` is the
  PGD / RSR training recipe shared by ``train``, ``tune`` and the RSR tables.
* ``_run`` (run directory, status, resume), ``_build`` (data, model, suites from config
  sections), :mod:`~tfsparse.pipelines.validate` (every section checked before any work).

Each module imports only the floors below it: evaluation, training, the parts, and the
ground floor (compat, errors, results). Nothing below imports a pipeline.
"""

import importlib

from tfsparse.errors import ConfigError


# Every experiment, by the ``experiment`` key of its configs (= the ``pipeline`` its run
# directories record): (module, declaration). A declaration is an ``engine.Experiment``, called
# as ``fn(config, workdir, *, resume=False, log=print) -> run_dir`` (scripts/experiment.py);
# its ``report(run_dirs) -> markdown`` renders its runs for scripts/report.py.
EXPERIMENTS = {
    "guo_progressive_pruning": ("tfsparse.pipelines.guo", "run_sweep"),
    "guo_activation_l1": ("tfsparse.pipelines.guo_tables", "run_activation_l1"),
    "guo_pruned_models": ("tfsparse.pipelines.guo_sweep_tables", "run_pruned_models"),
    "guo_clever": ("tfsparse.pipelines.guo_sweep_tables", "run_clever"),
    "wang_oneshot": ("tfsparse.pipelines.wang", "run_oneshot_table"),
    "guo_r2_gap": ("tfsparse.pipelines.guo_r2_gap", "run_r2_gap"),
    "rsr_table1": ("tfsparse.pipelines.rsr_tables", "TABLE1"),
    "rsr_width": ("tfsparse.pipelines.rsr_tables", "WIDTH"),
    "rsr_noise": ("tfsparse.pipelines.rsr_tables", "NOISE"),
    "rsr_blackbox": ("tfsparse.pipelines.rsr_tables", "BLACKBOX"),
    "wang_lottery": ("tfsparse.pipelines.wang_lottery", "run_lottery_table"),
    "wang_iwi": ("tfsparse.pipelines.wang_iwi", "run_iwi_table"),
    "certified_pruning": ("tfsparse.pipelines.certified", "EXPERIMENT"),
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
