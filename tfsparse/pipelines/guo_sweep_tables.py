"""Guo et al. 2018's tables over the rounds of a sweep: Table 2 analogue (pruned models) and CLEVER.

* ``guo_pruned_models`` (:data:`run_pruned_models`, ``configs/guo_pruned_models.py``, Table 2
  analogue): Guo attacks Han et al.'s published compressed LeNets (56× LeNet-300-100, 108×
  LeNet-5), which cannot be fetched; here the most-pruned rounds of one of this project's
  sweeps are evaluated against the sweep's dense round 0, with the ``eval`` section of this
  config (so a stronger or newer evaluation can be run over an old sweep without retraining).
* ``guo_clever`` (:data:`run_clever`, ``configs/guo_clever.py``, the CLEVER table of Guo's
  supplement, Weng et al. 2018): l2 and l∞ CLEVER scores of chosen rounds of a sweep (the
  dense round 0 and pruned rounds), beside that round's r∞ / r2 from the sweep's own records.

Both read a sweep run directory of ``guo_progressive_pruning``
(``checkpoints/seed<S>/round<R>.weights.h5`` and ``config.json``): the one named by
``<section>.sweep_dir``, or, when that is '', a sweep this run makes first in ``<workdir>/sweep``
from its own ``data``/``model``/``train``/``prune``/``eval``/``seeds`` sections (so a quick
config is self-contained). Declarations on the experiment engine
(:mod:`~tfsparse.pipelines.engine`): the unit of work is one (seed, round) record;
``--resume`` continues after the last one (and resumes an unfinished inner sweep). A table
over a named sweep measures that sweep's seeds. Their outputs and report are those of
:mod:`~tfsparse.pipelines.guo_tables`.
"""

import dataclasses
import os
import time

import ml_collections

from tfsparse import metrics
from tfsparse.pipelines import engine
from tfsparse.pipelines import guo
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._build import robustness_record
from tfsparse.pipelines._guo import SWEEP_KIND
from tfsparse.pipelines._guo import measure_line
from tfsparse.pipelines._guo import measures_in
from tfsparse.pipelines._guo import read_sweep
from tfsparse.pipelines._guo import records_by_round
from tfsparse.pipelines._guo import require
from tfsparse.pipelines._guo import round_model
from tfsparse.runlock import run_files
from tfsparse.pipelines.guo_tables import CLEVER
from tfsparse.pipelines.guo_tables import PRUNED_MODELS
from tfsparse.pipelines.guo_tables import write_outputs
from tfsparse.pipelines.guo_tables import report_section


def _sweep_config(config, section):
    """The sweep this run makes itself: its own sweep sections, experiment ``guo_progressive_pruning``."""
    own = ml_collections.ConfigDict(config.to_dict())
    with own.unlocked():
        del own[section]
        own.experiment = SWEEP_KIND
    return own


def _planned_sweep(config, section):
    """The sweep config a run will read, checked before any work: that of the complete sweep named by
    ``config[section].sweep_dir``, or this config's own sweep when that is ''."""
    if config[section].sweep_dir:
        return read_sweep(config[section].sweep_dir, section)[0]
    return _sweep_config(config, section)


@dataclasses.dataclass
class _Sweep:
    """The sweep a table reads; this config's own is run (or resumed) in ``<run dir>/sweep`` on first use."""

    config: object
    section: str
    path: str
    dataset: object
    cfg: object = None
    state: dict = None

    def open(self, log):
        if self.state is None:
            if not self.config[self.section].sweep_dir:
                started = bool(run_files(self.path))  # not its lock file alone
                log(f"{self.section}.sweep_dir is '': {'resuming' if started else 'running'} this config's sweep "
                    f"in {self.path}")
                guo.run_sweep(_sweep_config(self.config, self.section), self.path, resume=started, log=log)
            self.cfg, self.state = read_sweep(self.path, self.section)
        return self


def _on_sweep(spec, section):
    """``run(config, workdir, *, resume, log)`` of a table over the rounds of a sweep (``<section>.sweep_dir``).

    The table's seeds are the sweep's; its data are the sweep's (loaded again only when they
    differ from this config's); ``sweep_dir``, ``model`` and ``dataset`` are facts of its run.
    """

    def run(config, workdir, *, resume=False, log=print):
        spec.check(config)
        planned = _planned_sweep(config, section)
        path = os.path.abspath(config[section].sweep_dir or os.path.join(workdir, "sweep"))
        if list(planned.seeds) != list(config.seeds):
            config = ml_collections.ConfigDict(config.to_dict())
            config.seeds = tuple(planned.seeds)
        same_data = planned.data.to_dict() == config.data.to_dict()
        bound = dataclasses.replace(
            spec, facts=lambda c, d: {"experiment": spec.kind, "sweep_dir": path, "model": planned.model.name,
                                      "dataset": planned.data.name},
            prepare=lambda c, d, _: _Sweep(c, section, path, d if same_data else load_data(planned.data)))
        return engine.run_experiment(bound, config, workdir, resume=resume, log=log)

    run.__doc__, run.report = spec.run_unit.__doc__, spec.report
    return run


def _round_units(rounds):
    return lambda config, seed: [engine.Unit(f"round {r}", {"seed": seed, "round": r}) for r in rounds(config)]


def _check_pruned_models(config):
    require(config.pruned_models.last_rounds >= 1,
            f"pruned_models.last_rounds must be >= 1, got {config.pruned_models.last_rounds}")
    rounds, last = int(_planned_sweep(config, "pruned_models").prune.rounds), int(config.pruned_models.last_rounds)
    require(last <= rounds, f"pruned_models.last_rounds {last} exceeds the sweep's {rounds} rounds")


def _pruned_rounds(config):
    rounds, last = int(_planned_sweep(config, "pruned_models").prune.rounds), int(config.pruned_models.last_rounds)
    return [0, *range(rounds - last + 1, rounds + 1)]


def _measure_round(work, unit):
    """Guo Table 2 analogue: the last ``pruned_models.last_rounds`` rounds of a sweep vs its dense round.

    Each seed's round 0 (dense) and its ``last_rounds`` most-pruned rounds are rebuilt from the
    sweep's checkpoints and measured by
    :func:`~tfsparse.pipelines._build.robustness_record` with this config's ``eval`` and
    ``xla`` (the sweep's data, model and seeds). Records: ``seed``, ``round``, ``role``
    ("dense" / "pruned"), ``compression`` (1 / (1 − weight sparsity), Han et al.'s "×") and the
    measures.

    Example::

        config = guo_pruned_models.get_config("full")  # configs/guo_pruned_models.py
        config.pruned_models.sweep_dir = "runs/guo_lenet5"  # a finished scripts/sweep.py run
        run_pruned_models(config, "runs/guo_table2_lenet5")

    Raises:
      ConfigError: if the sweep directory is not a complete sweep or lacks a checkpoint, or
        ``last_rounds`` exceeds its rounds.
    """
    sweep, (seed, round_index) = work.data.open(work.log), (unit.fields["seed"], unit.fields["round"])
    measured_cfg = ml_collections.ConfigDict(sweep.cfg.to_dict())
    measured_cfg.eval, measured_cfg.xla = work.config.eval, work.config.xla
    model = round_model(sweep.path, sweep.cfg, sweep.dataset, seed, round_index)
    entry = {"role": "dense" if round_index == 0 else "pruned"}
    entry.update(robustness_record(model, sweep.dataset, measured_cfg))
    entry["compression"] = 1.0 / max(1.0 - entry["sparsity"], 1e-12)
    return entry


PRUNED_MODELS_TABLE = engine.Experiment(
    kind=PRUNED_MODELS, check=_check_pruned_models, units=_round_units(_pruned_rounds), run_unit=_measure_round,
    describe=lambda e, config: f"seed {e['seed']} round {e['round']}: sparsity {e['sparsity']:.4f} "
                       + measure_line(e, measures_in(e)),
    write_outputs=write_outputs, report=report_section)
run_pruned_models = _on_sweep(PRUNED_MODELS_TABLE, "pruned_models")


def _check_clever(config):
    c = config.clever
    require(c.num_images >= 1, f"clever.num_images must be >= 1, got {c.num_images}")
    require(c.batches >= 2, f"clever.batches (N_b) must be >= 2, got {c.batches}")
    require(c.samples >= 1, f"clever.samples (N_s) must be >= 1, got {c.samples}")
    require(c.l2_radius > 0 and c.linf_radius > 0,
            f"clever.l2_radius and clever.linf_radius must be > 0, got {c.l2_radius}, {c.linf_radius}")
    require(len(c.rounds) >= 1, "clever.rounds must list at least one round, e.g. (0, 8)")
    planned = _planned_sweep(config, "clever")
    require(planned.model.name != "linear_binary", "CLEVER needs multi-class logits; linear_binary has one")
    bad = [r for r in c.rounds if not 0 <= r <= planned.prune.rounds]
    require(not bad, f"clever.rounds {bad} are not rounds of the sweep (0..{planned.prune.rounds})")


def _clever_round(work, unit):
    """CLEVER scores (Weng et al. 2018) of chosen rounds of a sweep, dense and pruned (Guo's CLEVER table).

    For each seed of the sweep and each round in ``clever.rounds``: the untargeted l2 and l∞
    CLEVER scores (:func:`tfsparse.metrics.clever`, ``clever.batches`` × ``clever.samples``
    gradient samples per image, radii ``clever.l2_radius`` / ``clever.linf_radius``) averaged
    over the first ``clever.num_images`` test images, with the round's weight sparsity, clean
    accuracy, r∞ and r2 copied from the sweep's record of that round.

    The Lipschitz estimate is the reverse-Weibull location of
    :func:`tfsparse.metrics.clever.fit_reverse_weibull`, whose MLE stays near the sample
    maximum of the gradient norms (tests/test_metrics.py, the xfailed extrapolation test): the
    scores are then close to ``g(x₀) / max‖∇g‖`` over the samples, at most slightly above a
    converged fit's.

    Raises:
      ConfigError: on a bad ``clever`` value, a round the sweep does not have, a one-logit
        model, or a sweep directory that is not a complete sweep.
    """
    sweep, (seed, round_index), c = work.data.open(work.log), (unit.fields["seed"], unit.fields["round"]), \
        work.config.clever
    x, _ = eval_subset(sweep.dataset, c.num_images)
    model = round_model(sweep.path, sweep.cfg, sweep.dataset, seed, round_index)
    started = time.perf_counter()
    entry = {"num_images": len(x)}
    for norm, radius in (("l2", c.l2_radius), ("linf", c.linf_radius)):
        scores = metrics.clever(model, x, norm=norm, radius=float(radius), batches=int(c.batches),
                                samples=int(c.samples), seed=seed)
        entry[f"clever_{norm}"] = scores["mean"]
    entry["clever_seconds"] = time.perf_counter() - started
    swept_round = records_by_round(sweep.state).get((seed, round_index), {})
    entry.update({k: swept_round.get(k) for k in ("sparsity", "clean_accuracy", "r_inf", "r2")})
    return entry


CLEVER_TABLE = engine.Experiment(
    kind=CLEVER, check=_check_clever, units=_round_units(lambda config: config.clever.rounds),
    run_unit=_clever_round, write_outputs=write_outputs, report=report_section,
    describe=lambda e, config: (f"seed {e['seed']} round {e['round']}: CLEVER l2 {e['clever_l2']:.4f} "
                        f"l∞ {e['clever_linf']:.4f} ({e['clever_seconds']:.1f} s)"))
run_clever = _on_sweep(CLEVER_TABLE, "clever")
