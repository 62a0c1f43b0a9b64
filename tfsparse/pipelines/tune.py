"""keras-tuner search over RSR's λ and γ (SPEC §8; Rakin et al. 2019 §4.2, Fig. 2b–c) (scripts/tune.py).

:class:`RSRTuner` subclasses keras-tuner's ``BaseTuner`` and implements ``run_trial``
itself (keras-tuner's ``Tuner`` drives ``model.fit`` through Keras 3 paths that clash
with tf_keras, keras-tuner issue #1039). Each trial runs the one RSR recipe of
:mod:`tfsparse.pipelines.rsr` with the trial's λ (log scale), target sparsity (γ), clean
weight ``a`` and noise init α₀, then measures PGD accuracy (EOT-PGD when inference noise
is on) with the one evaluator on the first ``search.eval_examples`` test images.

Objective (stated, maximised; ``search.objective``):

* ``"constrained"``: ``score = pgd_accuracy − penalty · max(0, min_sparsity − sparsity)`` —
  PGD accuracy subject to sparsity ≥ ``min_sparsity``, the constraint enforced by a linear
  penalty (:func:`score`);
* ``"weighted"``: ``score = weight_clean · clean_accuracy + weight_robust · pgd_accuracy +
  weight_sparsity · sparsity`` (:func:`weighted_score`).

Whatever the objective, every trial's clean / PGD accuracy and sparsity go to the table, and
the finished search reports the **Pareto front** over (sparsity, clean, PGD accuracy)
(:func:`pareto_front`: the trials no other trial beats on all three) and the **over-pruning
point** (:func:`over_pruning_point`: the first sparsity level whose best PGD accuracy has
fallen more than ``search.over_pruning_drop`` below the best at lower sparsity; RSR Fig. 2a,
after Guo et al. 2018), both in ``results.json`` and as figures: ``pareto.png`` and
``fig2.png`` (RSR Fig. 2a–c from the same trials: PGD accuracy vs sparsity, clean and PGD
accuracy vs λ and vs γ).
"""

import math
import os
import shutil
import tempfile

import keras_tuner

from tfsparse import metrics
from tfsparse import plotting
from tfsparse import reporting
from tfsparse import results
from tfsparse.compat import keras
from tfsparse.errors import ConfigError
from tfsparse.pipelines import rsr as robust
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._run import Run
from tfsparse.sparsity import weight_sparsity

KIND = "tune_rsr"
OBJECTIVE = "score"
METRICS = (OBJECTIVE, "clean_accuracy", "pgd_accuracy", "sparsity", "gamma")
# search.objective: what "score" is (module docstring).
OBJECTIVES = ("constrained", "weighted")
# The three aims the λ/γ search trades off, all maximised (the Pareto front's axes).
PARETO_KEYS = ("sparsity", "clean_accuracy", "pgd_accuracy")


def score(pgd_acc, sparsity, min_sparsity, penalty):
    """The ``constrained`` objective: PGD accuracy minus ``penalty`` × the sparsity shortfall."""
    return float(pgd_acc) - float(penalty) * max(0.0, float(min_sparsity) - float(sparsity))


def weighted_score(clean_acc, pgd_acc, sparsity, weight_clean, weight_robust, weight_sparsity):
    """The ``weighted`` objective: ``w_c · clean + w_r · PGD accuracy + w_s · sparsity``."""
    return float(weight_clean * clean_acc + weight_robust * pgd_acc + weight_sparsity * sparsity)


def objective(clean_acc, pgd_acc, sparsity, search):
    """The trial's ``score`` under ``search.objective`` (a ``search`` config section).

    Raises:
      ConfigError: on an unknown ``search.objective``.
    """
    if search.objective == "constrained":
        return score(pgd_acc, sparsity, search.min_sparsity, search.penalty)
    if search.objective == "weighted":
        return weighted_score(clean_acc, pgd_acc, sparsity, search.weight_clean, search.weight_robust,
                              search.weight_sparsity)
    raise ConfigError(f"search.objective {search.objective!r} is unknown; choose from {OBJECTIVES}")


def pareto_front(trials, keys):
    """The trials no other trial dominates, all ``keys`` maximised, in their input order.

    Trial ``a`` dominates ``b`` when ``a[k] >= b[k]`` for every key and ``a[k] > b[k]`` for
    one; trials with equal values do not dominate each other (both stay). Trials missing a
    key or holding a non-finite value (a failed trial) take no part.

    Example::

        pareto_front([{"s": 0.5, "r": 0.4}, {"s": 0.7, "r": 0.3}, {"s": 0.5, "r": 0.2}], ["s", "r"])
        # -> the first two

    Args:
      trials: dicts (e.g. :meth:`RSRTuner.results_table` rows).
      keys: the keys to maximise, e.g. :data:`PARETO_KEYS`.

    Returns:
      The non-dominated trials (the same dict objects).
    """
    keys = list(keys)
    valid = [t for t in trials if all(isinstance(t.get(k), (int, float)) and math.isfinite(t[k]) for k in keys)]

    def dominates(a, b):
        return all(a[k] >= b[k] for k in keys) and any(a[k] > b[k] for k in keys)

    return [t for t in valid if not any(dominates(other, t) for other in valid if other is not t)]


def over_pruning_point(trials, drop, *, level_key="target_sparsity", sparsity_key="sparsity",
                       robust_key="pgd_accuracy"):
    """Where robust accuracy falls off with sparsity: RSR Fig. 2a's "over-sparsified" point.

    The trials are grouped by sparsity level (``level_key``, the searched target sparsity) and
    each level is represented by its best robust accuracy over the other hyperparameters (λ,
    a, α₀): what that sparsity allows at best. Walking the levels from dense to sparse, the
    point is the first level whose best is more than ``drop`` (absolute) below the running
    peak of the levels before it.

    Args:
      trials: trial rows with ``level_key``, ``sparsity_key``, ``robust_key`` and ``trial``.
      drop: the fall in robust accuracy that marks over-pruning (absolute, e.g. 0.05).

    Returns:
      ``{"trial", "target_sparsity", "sparsity", "pgd_accuracy", "peak_trial", "peak_sparsity",
      "peak_pgd_accuracy"}`` for the point, or None when robust accuracy never falls that far.
    """
    best = {}
    for t in trials:
        value = t.get(robust_key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            level = t[level_key]
            if level not in best or value > best[level][robust_key]:
                best[level] = t
    peak = None
    for level in sorted(best):
        row = best[level]
        if peak is not None and row[robust_key] < peak[robust_key] - drop:
            return {"trial": row.get("trial"), "target_sparsity": level, "sparsity": row[sparsity_key],
                    "pgd_accuracy": row[robust_key], "peak_trial": peak.get("trial"),
                    "peak_sparsity": peak[sparsity_key], "peak_pgd_accuracy": peak[robust_key]}
        if peak is None or row[robust_key] > peak[robust_key]:
            peak = row
    return None


class RandomSearch(keras_tuner.oracles.RandomSearchOracle):
    """keras-tuner's random search that calls ``on_end(trial)`` once it has recorded (and saved)
    an ended trial — in the oracle's process: in distributed mode the chief, which runs no trial
    itself, so this is where the chief learns of progress (keras-tuner's documented way to extend
    ``end_trial`` is to override it and call ``super()``)."""

    on_end = None

    def end_trial(self, trial):
        super().end_trial(trial)
        if self.on_end is not None:
            self.on_end(trial)


class RSRTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """Searches RSR's λ, target sparsity (γ), clean weight ``a`` and noise init α₀.

    Example::

        tuner = RSRTuner(config, dataset, max_trials=8, directory="runs/tune", project_name="rsr")
        tuner.search()
        rows = tuner.results_table()

    Args:
      config: a ``configs/tune_rsr.py`` config (``model``, ``adversarial_train``, ``pgd``,
        ``rsr``, ``search``, ``xla`` sections). ``search`` holds the ranges: ``lasso_min``,
        ``lasso_max``, ``sparsities`` (choices), ``clean_weights``, ``noise_alphas``,
        ``min_sparsity``, ``penalty``, ``eval_examples``.
      dataset: a ``tfsparse.data`` dataset.
      max_trials: trials of the random search.
      seed: seed of the oracle and of every trial's model.
      **kwargs: ``BaseTuner`` arguments (``directory``, ``project_name``, ``overwrite``).
    """

    def __init__(self, config, dataset, *, max_trials=10, seed=0, **kwargs):
        oracle = RandomSearch(
            objective=keras_tuner.Objective(OBJECTIVE, direction="max"), max_trials=max_trials, seed=seed
        )
        self.config = config  # before BaseTuner's __init__, which declares the space with it
        super().__init__(oracle=oracle, hypermodel=None, **kwargs)
        self.dataset = dataset
        self.seed = seed
        self.on_trial = None  # called with each trial this process ran, after it ended

    def _hyperparameters(self, hp):
        search = self.config.search
        return {
            "lasso": hp.Float("lasso", search.lasso_min, search.lasso_max, sampling="log"),
            "target_sparsity": hp.Choice("target_sparsity", list(search.sparsities)),
            "clean_weight": hp.Choice("clean_weight", list(search.clean_weights)),
            "noise_alpha": hp.Choice("noise_alpha", list(search.noise_alphas)),
        }

    def _populate_initial_space(self):
        # The oracle must know the whole space before the first trial: in distributed mode a
        # second worker asks for a trial while the first still runs, and a random search over a
        # space it has not seen yet has nothing new to offer, so it would stop that worker.
        hp = self.oracle.get_space()
        self._hyperparameters(hp)
        self.oracle.update_space(hp)

    def trial_config(self, values):
        """The config of one trial: the search's config with the trial's RSR values."""
        config = self.config.copy_and_resolve_references()
        with config.unlocked():
            config.training = "rsr"
            config.rsr.lasso = values["lasso"]
            config.rsr.target_sparsity = values["target_sparsity"]
            config.rsr.gamma = 0.0
            config.rsr.clean_weight = values["clean_weight"]
            config.rsr.noise_alpha = values["noise_alpha"]
        return config

    def run_trial(self, trial, *args, **kwargs):
        """Trains, prunes and evaluates one RSR configuration.

        Returns:
          ``{"score", "clean_accuracy", "pgd_accuracy", "sparsity", "gamma"}`` as floats.
        """
        config = self.trial_config(self._hyperparameters(trial.hyperparameters))
        keras.backend.clear_session()
        pruned, _, _, info = robust.train_robust(config, self.dataset, self.seed)
        x, y = eval_subset(self.dataset, config.search.eval_examples)
        robust_accuracy, _ = robust.pgd_accuracy(pruned, x, y, config, batch_size=500)
        sparsity = weight_sparsity(pruned)["overall"]
        clean_accuracy = float(metrics.clean_accuracy(pruned, x, y))
        return {
            OBJECTIVE: objective(clean_accuracy, robust_accuracy, sparsity, config.search),
            "clean_accuracy": clean_accuracy,
            "pgd_accuracy": float(robust_accuracy),
            "sparsity": float(sparsity),
            "gamma": float(info["gamma"]),
        }

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self.on_trial is not None:
            self.on_trial(trial)

    def results_table(self):
        """One dict per completed trial: trial id, hyperparameters and metrics, best first."""
        rows = []
        for trial in self.oracle.get_best_trials(num_trials=len(self.oracle.trials)):
            row = {"trial": trial.trial_id, **trial.hyperparameters.values}
            for name in METRICS:
                value = trial.metrics.get_last_value(name) if trial.metrics.exists(name) else math.nan
                row[name] = float(value)
            rows.append(row)
        return rows


def markdown(rows):
    """A markdown table of trial rows (floats to 4 significant digits)."""
    columns = [(key, key, "{:.4g}" if isinstance(value, float) else "{}") for key, value in rows[0].items()]
    return reporting.markdown_table(rows, columns)


def tuner_role():
    """This process's part in keras-tuner's distributed mode: None (not distributed), ``"chief"``
    (serves the oracle) or the worker's ``KERASTUNER_TUNER_ID`` — keras-tuner's own rule: the
    mode is on when ``KERASTUNER_ORACLE_IP`` is set, and an id containing "chief" is the chief."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    return "chief" if "chief" in tuner_id else tuner_id


def run_search(config, workdir, *, resume=False, log=print):
    """Runs (or with ``resume`` continues) the search of ``config`` into ``workdir``.

    The workdir receives ``config.json``, ``results.json`` (status, ``last_completed``
    trial), keras-tuner's own state under ``tuner/`` (completed trials are reloaded on
    resume), and when complete ``trials.csv`` / ``trials.md`` (every trial, best first, with
    a ``pareto`` column), ``best.json``, ``pareto.png`` and ``fig2.png``; ``results.json``
    then also holds ``pareto_front`` (the front's rows) and ``over_pruning``
    (:func:`over_pruning_point`, or None).

    In keras-tuner's distributed mode (:func:`tuner_role`; ``scripts/launch_local.py
    --keras_tuner`` sets it up) the chief runs no trial: it serves the oracle, which hands
    each worker its next trial and records the results, and when every trial has ended it
    alone writes the run directory above. Workers run trials, keep keras-tuner's per-worker
    state in a scratch folder that is removed at the end, and write nothing to ``workdir``.

    Returns:
      The trial rows, best first (a worker: an empty list).
    """
    role = tuner_role()
    chief = role in (None, "chief")
    run = Run(workdir, config, KIND, resume=resume, writer=chief).prepare()
    if run.already_complete:
        log(f"run {run.path} is already complete; nothing to resume")
        return run.previous.get("trials", [])
    dataset = None if role == "chief" else load_data(config.data)  # the oracle trains nothing
    directory = run.path if chief else tempfile.mkdtemp(prefix=f"tfsparse-{role}-")
    with run.start(model=config.model.name, dataset=config.data.name):
        tuner = RSRTuner(config, dataset, max_trials=config.max_trials, seed=config.seed,
                         directory=directory, project_name="tuner", overwrite=False)
        if chief:
            tuner.oracle.on_end = lambda trial: run.update(last_completed=f"trial {trial.trial_id}")
        else:
            tuner.on_trial = lambda trial: log(f"trial {trial.trial_id} done by {role}")
        try:
            tuner.search()
        finally:
            if not chief:
                shutil.rmtree(directory, ignore_errors=True)
        if not chief:
            return []
        rows = tuner.results_table()
        front = pareto_front(rows, PARETO_KEYS)
        for row in rows:
            row["pareto"] = any(row is member for member in front)
        point = over_pruning_point(rows, config.search.over_pruning_drop)
        results.write_csv(run.file("trials.csv"), rows)
        results.atomic_write_text(run.file("trials.md"), markdown(rows))
        results.write_json(run.file("best.json"), rows[0])
        plotting.plot_pareto_front(rows, run.file("pareto.png"), over_pruning=point)
        plotting.plot_tuning_curves(rows, run.file("fig2.png"), over_pruning=point)
        run.update(last_completed=f"trial {len(rows)}", trials=rows, best=rows[0], pareto_keys=list(PARETO_KEYS),
                   pareto_front=front, over_pruning=point)
    log(markdown(rows))
    return rows
