"""Guo et al. 2018's sweep: robustness vs weight sparsity under progressive pruning (scripts/sweep.py).

For each of ``seeds``: train a dense reference with the ``train`` section, then
``prune.rounds`` rounds of removing ``prune.rate`` of the remaining weights per layer,
retraining between rounds (Guo §4.1 after Han et al. 2015). After training and after every
round: clean accuracy (whole test split), weight sparsity counted in the stripped weights, and
the ``eval.measures`` of Guo §4 from :func:`tfsparse.evaluation.evaluate` on the first
``eval.num_examples`` test images: r∞ = accuracy under FGS (``r_inf``) and rFGS
(``r_inf_rfgs``) at ε (Guo eq. 5, MNIST ε = 0.1), r2 = mean ‖x̃ − x‖₂ with x̃ from DeepFool
(``r2``) and C&W (``r2_cw``), Guo eq. 1 / 5, each with its failure count and the failure rule
of :func:`tfsparse.metrics.robustness.minimal_distances`.

A declaration on the experiment engine (:mod:`~tfsparse.pipelines.engine`). The unit of
work is one (seed, round); round R continues from round R − 1's model (in memory, or on
resume from ``checkpoints/seed<S>/round<R−1>.weights.h5``). Its stripped weights go to
``checkpoints/seed<S>/round<R>.weights.h5`` and its record to ``results.json`` before the
next round starts, so ``--resume`` continues after the last completed round and ends with
the records of an uninterrupted run. :func:`reevaluate_sweep` (``sweep.py --reevaluate``)
re-measures those kept weights with another ``eval`` section — a new attack over an old
sweep — without retraining.

Every number is reported per round as the mean over seeds ± the half-width of its 95 %
Student-t confidence interval (:func:`tfsparse.reporting.aggregate`): ``summary`` in
results.json, ``results_summary.csv``, ``results.md`` and the figure's error bars; with the
over-pruning finding of :func:`tfsparse.reporting.over_pruning` (each measure's peak, the
round where r2 falls while clean accuracy holds).

Under ``distribute`` the dense training and every round's pruning and retraining run in the
strategy's scope (``train.batch_size`` is the global batch); each round is measured and saved
from a single-device copy. ``multi_worker`` is refused: every round retrains tfmot pruning
wrappers, which cannot train across workers (:func:`~tfsparse.pipelines._build.distribution`).
"""


import datetime
import os
import time

import ml_collections

from tfsparse import reporting
from tfsparse import results
from tfsparse import sparsity
from tfsparse import training
from tfsparse.errors import RunDirError
from tfsparse.pipelines import engine
from tfsparse.pipelines._build import MINIMAL_MEASURES
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import distribution
from tfsparse.pipelines._build import guo_suite
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._build import num_outputs
from tfsparse.pipelines._build import subset_note
from tfsparse.pipelines._build import robustness_record
from tfsparse.pipelines._build import single_device_copy
from tfsparse.pipelines._build import strategy_scope
from tfsparse.pipelines._build import train_section
from tfsparse.pipelines._guo import FIGURE
from tfsparse.pipelines._guo import draw_sweep_figure
from tfsparse.pipelines._guo import SWEEP_KIND as KIND
from tfsparse.pipelines._guo import measures_in
from tfsparse.pipelines._guo import round_weights_path
from tfsparse.pipelines._guo import summary_keys
from tfsparse.pipelines._guo import sweep_section
from tfsparse.pipelines._guo import write_sweep_outputs
from tfsparse.pipelines._run import CONFIG_FILE
from tfsparse.pipelines._run import RESULTS_FILE
from tfsparse.pipelines._run import describe
from tfsparse.runlock import RunLock

# Record keys kept by a re-evaluation (the training facts of each round).
TRAINING_KEYS = ("seed", "round", "target_sparsity", "train_seconds")


def _check(config):
    guo_suite(config.eval, config.xla)  # checks the eval section before any work
    distribution(config, "train", wrappers=True)


def _facts(config, dataset):
    """What results.json says about the sweep besides its records (read by :func:`report_section`)."""
    return {"experiment": KIND, "model": config.model.name, "dataset": config.data.name,
            "data_source": dataset.source, "num_train": len(dataset.x_train), "num_test": len(dataset.x_test),
            "seeds": list(config.seeds), "measures": list(guo_suite(config.eval, config.xla)),
            "num_eval": min(int(config.eval.num_examples), len(dataset.x_test)), "fgs_eps": config.eval.fgs_eps}


def _prepare(config, dataset, log):
    num_outputs(config.model, dataset)  # before any work (linear_binary needs two classes)
    note = subset_note(dataset, config.eval.num_examples, "eval.num_examples")
    if note:
        log(note)
    strategy, _ = distribution(config, "train", wrappers=True)  # made once per process: the check's
    if strategy is not None:
        log(f"distribute={config.distribute}: {strategy.num_replicas_in_sync} replicas, global batch "
            f"{config.train.batch_size}")
    return dataset


def _units(config, seed):
    return [engine.Unit(f"round {r}", {"seed": seed, "round": r}) for r in range(config.prune.rounds + 1)]


class _SeedWork(engine.Work):
    """One seed's sweep: the model of its last round (in the strategy's scope under ``distribute``)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.strategy = distribution(self.config, "train", wrappers=True)[0]
        self.model = None

    def previous(self, round_index):
        """The model of ``round_index``: the one just pruned, or on resume its kept weights."""
        if self.model is None:
            with strategy_scope(self.strategy):
                self.model = build_model(self.config.model, self.dataset, self.seed)
                self.model.load_weights(round_weights_path(self.run.path, self.seed, round_index))
            self.log(f"seed {self.seed}: resuming after round {round_index}")
        return self.model

    def measure(self, round_index, target, seconds):
        """Keeps the round's weights and measures it (a single-device copy under ``distribute``)."""
        model = self.model
        if self.strategy is not None:
            model = single_device_copy(model, self.config.model, self.dataset, self.seed)
        self.save(f"round{round_index}", model)
        entry = {"target_sparsity": target, "train_seconds": seconds}
        entry.update(robustness_record(model, self.dataset, self.config))
        return entry


def _run_round(work, unit):
    """Round 0: train the dense reference; round R: prune ρ of the remaining weights, retrain (Guo §4.1)."""
    config, dataset, index = work.config, work.dataset, unit.fields["round"]
    if index == 0:
        with strategy_scope(work.strategy):
            work.model = build_model(config.model, dataset, work.seed)
            started = time.perf_counter()
            training.train(work.model, dataset.x_train, dataset.y_train, train_section(config), seed=work.seed,
                           verbose=config.verbose)
        return work.measure(0, 0.0, time.perf_counter() - started)
    model = work.previous(index - 1)
    retrain_cfg = train_section(config, learning_rate=config.prune.retrain_learning_rate,
                                lr_schedule=config.prune.retrain_lr_schedule, steps=config.prune.retrain_steps,
                                epochs=0.0)
    clock = {"start": time.perf_counter()}

    def retrain(wrapped):
        clock["start"] = time.perf_counter()
        training.train(wrapped, dataset.x_train, dataset.y_train, retrain_cfg, seed=work.seed, verbose=config.verbose)

    # One round per call: each round is measured outside the strategy's scope.
    with strategy_scope(work.strategy):
        work.model = sparsity.progressive_prune(model, rounds=index, rate=config.prune.rate, retrain=retrain,
                                                keep_dense=tuple(config.prune.keep_dense), start=index)
    target = sparsity.progressive_targets(config.prune.rounds, config.prune.rate)[index - 1]
    return work.measure(index, target, time.perf_counter() - clock["start"])


def round_line(entry, rounds):
    """The progress line of one (seed, round) record of a sweep of ``rounds`` rounds."""
    values = " ".join(f"{m} {entry[m]:.4f}" + (f" ({entry[m + '_failures']} failed)" if m in MINIMAL_MEASURES
                                                else "") for m in measures_in(entry))
    return (f"seed {entry['seed']} round {entry['round']}/{rounds}: sparsity {entry['sparsity']:.4f} "
            f"clean {entry['clean_accuracy']:.4f} {values} (train {entry['train_seconds']:.1f} s, "
            f"eval {entry['eval_seconds']:.1f} s)")


def _summarise(records):
    return reporting.aggregate(records, "round", summary_keys(measures_in(records[0]) if records else ()))


def _write_outputs(run_dir):
    _, state, config = engine.read_run(run_dir, (KIND,))
    fields = write_sweep_outputs(run_dir, state, config)
    draw_sweep_figure(run_dir, dict(state, **fields), config)
    return fields


def _figures(run_dir):
    _, state, config = engine.read_run(run_dir, (KIND,))
    return draw_sweep_figure(run_dir, state, config)


def report_section(run_dirs):
    """Markdown for one or several sweep run directories (scripts/report.py), one section each.

    Each section: a title (model, data, pruning, seeds, eval size), the attack settings, the
    per-round table (mean ± 95 % CI over seeds, r2 failure counts), the over-pruning finding
    (:func:`tfsparse.reporting.over_pruning`) and the figure's path. Computed from the files
    only, so a run made before ``summary``/``over_pruning`` existed renders the same way.

    Raises:
      RunDirError: a directory that holds no sweep with records.
    """
    sections = []
    for run_dir in run_dirs:
        _, state, config = engine.read_run(run_dir, (KIND,))
        engine.require_records(run_dir, state)
        sections.append(sweep_section(state, config, os.path.join(run_dir, FIGURE), "###"))
    return "\n".join(sections)


SWEEP = engine.Experiment(kind=KIND, units=_units, run_unit=_run_round, describe=lambda entry, config: round_line(entry, config.prune.rounds),
                          write_outputs=_write_outputs, figures=_figures, report=report_section, check=_check, facts=_facts,
                          summarise=_summarise, work=_SeedWork, prepare=_prepare)


# Guo's sweep as scripts/sweep.py, the README and users' code call it:
# ``run_sweep(config, workdir, *, resume=False, log=print) -> run_dir``.
run_sweep = SWEEP


def reevaluate_sweep(config, workdir, *, log=print):
    """Re-measures every kept round of a complete sweep with ``config.eval``, without retraining.

    Each record's weights (``checkpoints/seed<S>/round<R>.weights.h5``) are loaded into the
    run's model (``config.json``: data, model, seeds) and measured by
    :func:`~tfsparse.pipelines._build.robustness_record` with the ``eval`` section of
    ``config`` — e.g. all four measures over a sweep made with two. Only ``eval`` comes from
    ``config``; every other section is the run's own. The records keep their training facts
    (seed, round, target sparsity, ``train_seconds``) and get every measure anew. Nothing is
    written until every round is measured (an interrupted re-evaluation leaves the run as it
    was); then results.json (records, summary, over_pruning, ``reevaluated`` history),
    config.json (the new ``eval``), the CSVs, results.md and the figure are each replaced
    atomically.

    Example::

        reevaluate_sweep(guo_mnist.get_config("full"), "runs/guo_lenet300_full")

    Raises:
      ConfigError: bad ``eval`` settings.
      RunDirError: ``workdir`` is not a complete sweep, or a round's weights are missing.
    """
    measures = tuple(guo_suite(config.eval, config.xla))
    path = os.path.abspath(workdir)
    _, state, _ = engine.read_run(path, (KIND,), "--reevaluate")
    lock = RunLock.acquire(path)  # no other process writes the run while it is re-measured
    stored = engine.read_json(path, CONFIG_FILE, "--reevaluate")
    if state.get("status") != "complete":
        raise RunDirError(f"--reevaluate: {path} is not a complete sweep ({describe(path)}); finish it with "
                          "--resume (same flags as its start) first")
    records = sorted(state.get("records", []), key=lambda r: (r["seed"], r["round"]))
    missing = [round_weights_path(path, r["seed"], r["round"]) for r in records
               if not os.path.isfile(round_weights_path(path, r["seed"], r["round"]))]
    if not records or missing:
        raise RunDirError(f"--reevaluate: {path} keeps no weights for "
                          f"{missing[0] if missing else 'any round'}; only sweeps that kept checkpoints/ "
                          "can be re-measured")
    run_config = ml_collections.ConfigDict(stored["config"])
    previous_eval = run_config.eval.to_dict()
    run_config.eval = ml_collections.ConfigDict(config.eval.to_dict())
    dataset = load_data(run_config.data)
    note = subset_note(dataset, config.eval.num_examples, "eval.num_examples")
    if note:
        log(note)
    log(f"re-evaluating {len(records)} rounds of {path} with measures {','.join(measures)} on "
        f"{min(config.eval.num_examples, len(dataset.x_test))} test images")
    fresh = []
    for old in records:
        model = build_model(run_config.model, dataset, old["seed"])
        model.load_weights(round_weights_path(path, old["seed"], old["round"]))
        entry = {key: old[key] for key in TRAINING_KEYS}
        entry.update(robustness_record(model, dataset, run_config))
        fresh.append(entry)
        log(round_line(entry, run_config.prune.rounds))
    history = list(state.get("reevaluated", [])) + [{
        "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "measures": list(measures), "previous_eval": previous_eval,
        "git_commit": results.metadata()["git_commit"]}]
    state.update(records=fresh, reevaluated=history, **_facts(run_config, dataset))
    state.update(write_sweep_outputs(path, state, run_config.to_dict()))
    draw_sweep_figure(path, state, run_config.to_dict())
    state["metadata"] = state.pop("metadata", None)  # last, as every results.json has it
    stored["config"] = run_config.to_dict()
    results.write_json(os.path.join(path, CONFIG_FILE), stored)
    results.write_json(os.path.join(path, RESULTS_FILE), state)
    lock.release()
    return path
