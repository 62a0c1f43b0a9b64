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

The unit of work is one (seed, round): its stripped weights go to
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
import json
import os
import time

import ml_collections

from tfsparse import plotting
from tfsparse import reporting
from tfsparse import results
from tfsparse import sparsity
from tfsparse import training
from tfsparse.errors import RunDirError
from tfsparse.pipelines._build import MEASURE_LABELS
from tfsparse.pipelines._build import MEASURES
from tfsparse.pipelines._build import MINIMAL_MEASURES
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import distribution
from tfsparse.pipelines._build import guo_suite
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._build import robustness_columns
from tfsparse.pipelines._build import robustness_record
from tfsparse.pipelines._build import single_device_copy
from tfsparse.pipelines._build import strategy_scope
from tfsparse.pipelines._build import train_section
from tfsparse.pipelines._run import CONFIG_FILE
from tfsparse.pipelines._run import RESULTS_FILE
from tfsparse.pipelines._run import Run
from tfsparse.pipelines._run import describe

KIND = "guo_progressive_pruning"
FIGURE = "robustness_vs_sparsity.png"
SUMMARY_CSV = "results_summary.csv"
# Record keys kept by a re-evaluation (the training facts of each round).
TRAINING_KEYS = ("seed", "round", "target_sparsity", "train_seconds")


def summary_keys(measures):
    """Keys averaged over seeds per round: sparsities, clean accuracy, measures and r2 failures."""
    keys = ["target_sparsity", "sparsity", "clean_accuracy"]
    for measure in measures:
        keys += [measure] + ([f"{measure}_failures"] if measure in MINIMAL_MEASURES else [])
    return keys


# The linear-model theory of a record (``record["theory"]``, Guo et al. 2018 Theorems 3.1 and
# 3.2 from tfsparse.metrics.theory.linear_model_bounds), as table headers.
THEORY_LABELS = {"thm31_r2": "r2 (Thm 3.1)", "thm31_r_inf_bound": "r∞ bound (Thm 3.1)",
                 "thm32_r2_bound": "r2 bound (Thm 3.2)", "thm32_r_inf_bound": "r∞ bound (Thm 3.2)"}


def theory_keys(records):
    """The flat keys (``theory_<name>``) of the theory values the records carry, in label order."""
    found = {name for r in records for name in (r.get("theory") or {})}
    return [f"theory_{name}" for name in THEORY_LABELS if name in found]


def table_columns(measures, theory=()):
    """Columns of the per-round table: round, seeds, target sparsity, the robustness columns,
    then the theory values beside them (linear models)."""
    return [("round", "round", "{:d}"), ("n", "seeds", "{:d}"), ("target_sparsity", "target sparsity", "{:.4f}"),
            *robustness_columns(measures),
            *[(key, THEORY_LABELS[key[len("theory_"):]], "{:.4f}") for key in theory]]


def round_weights_path(run_dir, seed, round_index):
    """Where the stripped weights of (seed, round) are kept in the run directory ``run_dir``."""
    return os.path.join(run_dir, "checkpoints", f"seed{seed}", f"round{round_index}.weights.h5")


def _save_weights(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path[: -len(".weights.h5")] + ".partial.weights.h5"
    model.save_weights(partial)
    os.replace(partial, path)


def _log_round(log, entry, rounds, measures):
    values = " ".join(f"{m} {entry[m]:.4f}" + (f" ({entry[m + '_failures']} failed)" if m in MINIMAL_MEASURES
                                                else "") for m in measures)
    log(f"seed {entry['seed']} round {entry['round']}/{rounds}: sparsity {entry['sparsity']:.4f} "
        f"clean {entry['clean_accuracy']:.4f} {values} (train {entry['train_seconds']:.1f} s, "
        f"eval {entry['eval_seconds']:.1f} s)")


def _facts(config, dataset, measures):
    """What results.json says about the sweep besides its records (read by :func:`report_section`)."""
    return {"experiment": KIND, "model": config.model.name, "dataset": config.data.name,
            "data_source": dataset.source, "num_train": len(dataset.x_train), "num_test": len(dataset.x_test),
            "seeds": list(config.seeds), "measures": list(measures),
            "num_eval": min(int(config.eval.num_examples), len(dataset.x_test)), "fgs_eps": config.eval.fgs_eps}


def run_sweep(config, workdir, *, resume=False, log=print):
    """Runs (or with ``resume`` continues) the sweep of ``config`` in ``workdir``.

    Writes ``config.json``, ``results.json`` (status, ``last_completed`` = ``seed S round
    R``, every record so far and the per-round ``summary``; rewritten after each round),
    per-round weights under ``checkpoints/``, and when complete ``over_pruning`` in
    results.json, ``results.csv`` (one row per seed and round), ``results_summary.csv`` (mean,
    ``_ci95``, ``_std`` per round), ``results.md`` (:func:`report_section`) and
    ``robustness_vs_sparsity.png``.

    Example::

        run_sweep(guo_mnist.get_config("quick"), "runs/demo")

    Args:
      config: a validated config (see ``configs/guo_mnist.py``).
      workdir: the run directory.
      resume: continue an interrupted run in ``workdir`` (same config).
      log: progress sink, one line per round.

    Returns:
      The absolute path of the run directory.

    Raises:
      ConfigError: bad ``eval`` settings (before any work).
      RunDirError: a taken workdir, or nothing to resume.
    """
    measures = tuple(guo_suite(config.eval, config.xla))  # checks the eval section before any work
    strategy, _ = distribution(config, "train", wrappers=True)
    run = Run(workdir, config, KIND, resume=resume).prepare()
    if run.already_complete:
        log(f"run {run.path} is already complete; nothing to resume")
        return run.path
    dataset = load_data(config.data, log=log)
    if strategy is not None:
        log(f"distribute={config.distribute}: {strategy.num_replicas_in_sync} replicas, global batch "
            f"{config.train.batch_size}")
    records = list((run.previous or {}).get("records", []))
    dense_cfg = train_section(config)
    retrain_cfg = train_section(config, learning_rate=config.prune.retrain_learning_rate,
                                lr_schedule=config.prune.retrain_lr_schedule, steps=config.prune.retrain_steps,
                                epochs=0.0)
    with run.start(records=records, **_facts(config, dataset, measures)):

        def record(seed, round_index, target, model, seconds):
            if strategy is not None:
                model = single_device_copy(model, config.model, dataset, seed)
            _save_weights(model, round_weights_path(run.path, seed, round_index))
            entry = {"seed": seed, "round": round_index, "target_sparsity": target, "train_seconds": seconds}
            entry.update(robustness_record(model, dataset, config))
            records.append(entry)
            run.update(last_completed=f"seed {seed} round {round_index}", records=records,
                       summary=reporting.aggregate(records, "round", summary_keys(measures)))
            _log_round(log, entry, config.prune.rounds, measures)

        for seed in config.seeds:
            done = [r["round"] for r in records if r["seed"] == seed]
            last = max(done) if done else -1
            if last == config.prune.rounds:
                continue
            with strategy_scope(strategy):
                model = build_model(config.model, dataset, seed)
                if last >= 0:
                    model.load_weights(round_weights_path(run.path, seed, last))
                    log(f"seed {seed}: resuming after round {last}")
                else:
                    started = time.perf_counter()
                    training.train(model, dataset.x_train, dataset.y_train, dense_cfg, seed=seed,
                                   verbose=config.verbose)
            if last < 0:
                record(seed, 0, 0.0, model, time.perf_counter() - started)

            clock = {"start": time.perf_counter()}

            def retrain(wrapped, seed=seed, clock=clock):
                clock["start"] = time.perf_counter()
                training.train(wrapped, dataset.x_train, dataset.y_train, retrain_cfg, seed=seed,
                               verbose=config.verbose)

            targets = sparsity.progressive_targets(config.prune.rounds, config.prune.rate)
            for index in range(max(last, 0) + 1, config.prune.rounds + 1):
                # One round per call: each round is measured outside the strategy's scope.
                with strategy_scope(strategy):
                    model = sparsity.progressive_prune(
                        model, rounds=index, rate=config.prune.rate, retrain=retrain,
                        keep_dense=tuple(config.prune.keep_dense), start=index,
                    )
                record(seed, index, targets[index - 1], model, time.perf_counter() - clock["start"])
        run.update(**_write_reports(run.path, run.state, config.to_dict()))
    return run.path


def _read_run(run_dir, what):
    files = []
    for name in (CONFIG_FILE, RESULTS_FILE):
        try:
            with open(os.path.join(run_dir, name), encoding="utf-8") as handle:
                files.append(json.load(handle))
        except (OSError, ValueError):
            raise RunDirError(f"{what}: {run_dir} has no readable {name}; name a sweep's run directory") from None
    stored, state = files
    if state.get("pipeline") != KIND:
        raise RunDirError(f"{what}: {run_dir} holds a {state.get('pipeline')!r} run, not a {KIND!r} sweep")
    return stored, state


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

        reevaluate_sweep(guo_mnist.get_config("full"), "/work/runs/guo_lenet300_full")

    Args:
      config: a config whose ``eval`` section to measure with (validated).
      workdir: a complete sweep's run directory.
      log: progress sink, one line per round.

    Returns:
      The absolute path of the run directory.

    Raises:
      ConfigError: bad ``eval`` settings.
      RunDirError: ``workdir`` is not a complete sweep, or a round's weights are missing.
    """
    measures = tuple(guo_suite(config.eval, config.xla))
    path = os.path.abspath(workdir)
    stored, state = _read_run(path, "--reevaluate")
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
    log(f"re-evaluating {len(records)} rounds of {path} with measures {','.join(measures)} on "
        f"{min(config.eval.num_examples, len(dataset.x_test))} test images")
    fresh = []
    for old in records:
        model = build_model(run_config.model, dataset, old["seed"])
        model.load_weights(round_weights_path(path, old["seed"], old["round"]))
        entry = {key: old[key] for key in TRAINING_KEYS}
        entry.update(robustness_record(model, dataset, run_config))
        fresh.append(entry)
        _log_round(log, entry, run_config.prune.rounds, measures)
    history = list(state.get("reevaluated", [])) + [{
        "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "measures": list(measures), "previous_eval": previous_eval,
        "git_commit": results.metadata()["git_commit"]}]
    state.update(records=fresh, reevaluated=history, **_facts(run_config, dataset, measures))
    state.update(_write_reports(path, state, run_config.to_dict()))
    state["metadata"] = state.pop("metadata", None)  # last, as every results.json has it
    stored["config"] = run_config.to_dict()
    results.write_json(os.path.join(path, CONFIG_FILE), stored)
    results.write_json(os.path.join(path, RESULTS_FILE), state)
    return path


def _measures_of(state):
    return state.get("measures") or [m for m in MEASURES if any(m in r for r in state["records"])]


def _flat(record):
    flat = {k: v for k, v in record.items() if k not in ("layer_sparsity", "theory")}
    flat.update({f"theory_{k}": v for k, v in (record.get("theory") or {}).items() if not isinstance(v, (dict, list))})
    return flat


def _write_reports(run_dir, state, config_dict):
    """Writes results.csv, results_summary.csv, results.md and the figure; returns the fields
    ``summary`` and ``over_pruning`` for results.json."""
    records, measures = state["records"], _measures_of(state)
    summary = reporting.aggregate([_flat(r) for r in records], "round", summary_keys(measures) + theory_keys(records))
    found = reporting.over_pruning(records, measures)
    results.write_csv(os.path.join(run_dir, "results.csv"), [_flat(r) for r in records])
    results.write_csv(os.path.join(run_dir, SUMMARY_CSV), summary)
    seeds = len({r["seed"] for r in records})
    spread = f"{seeds} seeds, mean ± 95 % CI" if seeds > 1 else "1 seed"
    plotting.plot_robustness_vs_sparsity(records, os.path.join(run_dir, FIGURE), over_pruning=found,
                                         title=f"{config_dict['model']['name']} on {config_dict['data']['name']}: "
                                               f"{spread}")
    results.atomic_write_text(os.path.join(run_dir, "results.md"),
                              _section(dict(state, over_pruning=found), config_dict, FIGURE, "#"))
    return {"summary": summary, "over_pruning": found}


def _settings(eval_cfg, measures):
    parts = []
    if "r_inf" in measures or "r_inf_rfgs" in measures:
        parts.append(f"r∞ at ε = {eval_cfg['fgs_eps']:g}" + (
            f" (rFGS random step {eval_cfg['rfgs_alpha']:g}·ε)" if "r_inf_rfgs" in measures else ""))
    if "r2" in measures:
        parts.append(f"DeepFool overshoot {eval_cfg['deepfool_overshoot']:g}, {eval_cfg['deepfool_max_iter']} "
                     f"iterations, box rule {eval_cfg['deepfool_box_rule']}")
    if "r2_cw" in measures:
        parts.append(f"C&W {eval_cfg['cw_binary_search_steps']} × {eval_cfg['cw_steps']} Adam steps, rate "
                     f"{eval_cfg['cw_learning_rate']:g}, c₀ {eval_cfg['cw_initial_const']:g}, "
                     f"κ {eval_cfg['cw_confidence']:g}")
    return "; ".join(parts)


def _section(state, config_dict, figure, level):
    """The markdown of one sweep from its results.json ``state`` and config."""
    records, measures = state["records"], _measures_of(state)
    seeds = sorted({r["seed"] for r in records})
    theory = theory_keys(records)
    summary = reporting.aggregate([_flat(r) for r in records], "round", summary_keys(measures) + theory)
    found = state.get("over_pruning") or reporting.over_pruning(records, measures)
    prune, num_eval = config_dict["prune"], records[0]["num_eval"]
    data = state.get("data_source", config_dict["data"].get("data_dir") or "embedded sample")
    sizes = f", {state['num_train']:,} train / {state['num_test']:,} test" if "num_train" in state else ""
    lines = [
        f"{level} {config_dict['model']['name']} on {config_dict['data']['name']} ({data}{sizes}): progressive "
        f"pruning, ρ = {prune['rate']:.3g}, {prune['rounds']} rounds; {len(seeds)} seed(s); measures on the first "
        f"{num_eval:,} test images",
        "",
        f"Mean over seeds ± 95 % CI half-width (Student t; none for one seed). "
        f"{_settings(config_dict['eval'], measures)}. "
        f"*failures*: correctly classified images the r2 attack to their left did not flip (mean per seed, out of "
        f"{num_eval:,}); they are left out of that r2's mean.",
        "",
        reporting.markdown_table(summary, table_columns(measures, theory)),
        reporting.over_pruning_text(found, MEASURE_LABELS),
        f"![robustness vs sparsity]({figure})",
        "",
    ]
    if state.get("reevaluated"):
        last = state["reevaluated"][-1]
        lines.insert(-2, f"Re-evaluated from the kept weights on {last['at']} "
                         f"(measures {', '.join(last['measures'])}).\n")
    return "\n".join(lines)


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
        stored, state = _read_run(run_dir, "report")
        if not state.get("records"):
            raise RunDirError(f"report: {run_dir} has no completed round yet ({describe(run_dir)})")
        sections.append(_section(state, stored["config"], os.path.join(run_dir, FIGURE), "###"))
    return "\n".join(sections)
