"""Guo et al. 2018's tables beside the sweep: Table 1 (activation L1), Table 2 (pruned models), CLEVER.

Three experiment kinds (``configs/guo_activation_l1.py``, ``configs/guo_pruned_models.py``,
``configs/guo_clever.py``), each run by ``scripts/experiment.py``:

* ``guo_activation_l1`` (:func:`run_activation_l1`, Guo §4.2 "Activation sparsity", Table 1):
  for each λ of ``activation_l1.strengths`` and each seed, the model with an
  :class:`~tfsparse.layers.ActivationL1` (loss λ · batch mean of the per-example L1 norm) at
  the input of its last fully connected layer is trained; recorded: the activation sparsity
  there (fraction of exact zeros over the whole test split, ``tfsparse.sparsity.activations``),
  and the measures of :func:`~tfsparse.pipelines._build.robustness_record` (clean accuracy,
  r∞ by FGS, r2 by DeepFool, ...).
* ``guo_pruned_models`` (:func:`run_pruned_models`, Table 2 analogue): Guo attacks Han et
  al.'s published compressed LeNets (56× LeNet-300-100, 108× LeNet-5), which cannot be
  fetched; here the most-pruned rounds of one of this project's sweeps are evaluated against
  the sweep's dense round 0, with the ``eval`` section of this config (so a stronger or newer
  evaluation can be run over an old sweep without retraining).
* ``guo_clever`` (:func:`run_clever`, the CLEVER table of Guo's supplement, Weng et al. 2018):
  l2 and l∞ CLEVER scores of chosen rounds of a sweep (the dense round 0 and pruned rounds),
  beside that round's r∞ / r2 from the sweep's own records.

Table 2 and CLEVER read a sweep run directory of ``guo_progressive_pruning``
(``checkpoints/seed<S>/round<R>.weights.h5`` and ``config.json``): the one named by
``<section>.sweep_dir``, or, when that is '', a sweep this run makes first in ``<workdir>/sweep``
from its own ``data``/``model``/``train``/``prune``/``eval``/``seeds`` sections (so a quick
config is self-contained). The unit of work is one (seed, λ) or (seed, round) record, written
to ``results.json`` as it completes; ``--resume`` continues after the last one (and resumes
an unfinished inner sweep).
"""

import json
import os
import time

import ml_collections

from tfsparse import layers as layers_lib
from tfsparse import metrics
from tfsparse import reporting
from tfsparse import results
from tfsparse import sparsity
from tfsparse import training
from tfsparse.errors import ConfigError
from tfsparse.pipelines import guo
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._build import parse_measures
from tfsparse.pipelines._build import robustness_columns
from tfsparse.pipelines._build import robustness_record
from tfsparse.pipelines._build import train_section
from tfsparse.pipelines._run import Run
from tfsparse.sparsity.activations import activation_tensor

ACTIVATION_L1 = "guo_activation_l1"
PRUNED_MODELS = "guo_pruned_models"
CLEVER = "guo_clever"


def _read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def _measures(records, by):
    """The numeric measures present in ``records`` (robustness_record's keys, whatever the eval asked)."""
    keys = []
    for record in records:
        for key, value in record.items():
            if key not in keys and isinstance(value, (int, float)) and not isinstance(value, bool):
                keys.append(key)
    return [k for k in keys if k not in ("seed", by)]


def _summary_line(entry, measures):
    return " ".join(f"{key} {entry[key]:.4f}" for key in ("clean_accuracy", *measures))


def _write_tables(run, records, by, columns, title, text):
    flat = [{k: v for k, v in r.items() if not isinstance(v, dict)} for r in records]
    results.write_csv(run.file("results.csv"), flat)
    summary = reporting.aggregate(records, by, _measures(records, by))
    run.update(summary=summary)
    results.atomic_write_text(run.file("results.md"),
                              f"# {title}\n\n{text}\n\n" + reporting.markdown_table(summary, columns))


# --- Table 1: activation L1 ------------------------------------------------------------------


def last_fc_input_layer(model):
    """Name of the layer whose output is the input of the model's last Dense layer (Guo Table 1)."""
    tensor = activation_tensor(model)
    for layer in model.layers:
        if layer.output is tensor:
            return layer.name
    raise ConfigError(f"{model.name}: the input of its last Dense layer is not a layer output; "
                      "set activation_l1.layer")


def _check_activation_l1(config):
    a = config.activation_l1
    _require(len(a.strengths) >= 1, "activation_l1.strengths must list at least one λ, e.g. (0.0, 1e-4)")
    _require(all(s >= 0 for s in a.strengths), f"activation_l1.strengths must be >= 0, got {list(a.strengths)}")


def run_activation_l1(config, workdir, *, resume=False, log=print):
    """Runs (or with ``resume`` continues) Guo Table 1 of ``config`` (``configs/guo_activation_l1.py``).

    For each λ in ``activation_l1.strengths`` and seed in ``seeds``: build the model, insert
    :class:`~tfsparse.layers.ActivationL1` (λ) at ``activation_l1.layer`` ('' = the input of
    the last fully connected layer), train it with the ``train`` section, and record
    ``strength``, ``seed``, ``activation_sparsity`` and the measures of
    :func:`~tfsparse.pipelines._build.robustness_record`.

    Writes ``config.json``, ``results.json`` (records, ``summary`` per λ with mean / std /
    95 % CI over seeds), and when complete ``results.csv`` and ``results.md``.

    Args:
      config: a validated config (``configs/guo_activation_l1.py``).
      workdir: the run directory.
      resume: continue an interrupted run in ``workdir`` (same config).
      log: progress sink, one line per record.

    Returns:
      The absolute path of the run directory.

    Raises:
      ConfigError: on a negative λ or an unknown ``activation_l1.layer``, before any work.
    """
    _check_activation_l1(config)
    run = Run(workdir, config, ACTIVATION_L1, resume=resume).prepare()
    if run.already_complete:
        log(f"run {run.path} is already complete; nothing to resume")
        return run.path
    dataset = load_data(config.data, log=log)
    probe = build_model(config.model, dataset, config.seeds[0])
    layer = config.activation_l1.layer or last_fc_input_layer(probe)
    names = [candidate.name for candidate in probe.layers]
    _require(layer in names, f"activation_l1.layer {layer!r} is not a layer of {config.model.name}; choose from "
                             f"{names} or '' (the input of the last fully connected layer)")
    records = list((run.previous or {}).get("records", []))
    done = {(r["strength"], r["seed"]) for r in records}
    with run.start(experiment=ACTIVATION_L1, model=config.model.name, dataset=config.data.name, records=records):
        for strength in config.activation_l1.strengths:
            for seed in config.seeds:
                if (float(strength), seed) in done:
                    continue
                model = layers_lib.insert_activation_l1(build_model(config.model, dataset, seed), layer,
                                                        float(strength))
                started = time.perf_counter()
                training.train(model, dataset.x_train, dataset.y_train, train_section(config), seed=seed,
                               verbose=config.verbose)
                entry = {"strength": float(strength), "seed": seed, "layer": layer,
                         "train_seconds": time.perf_counter() - started,
                         "activation_sparsity": sparsity.activation_sparsity(
                             model, dataset.x_test, layer_name=layer, batch_size=config.eval.batch_size)}
                entry.update(robustness_record(model, dataset, config))
                records.append(entry)
                run.update(last_completed=f"strength {strength:g} seed {seed}", records=records)
                log(f"λ {strength:g} seed {seed}: activation sparsity {entry['activation_sparsity']:.4f} "
                    + _summary_line(entry, parse_measures(config.eval.measures)))
        state = dict(run.state, config=config.to_dict())
        _write_tables(run, records, "strength", _columns(ACTIVATION_L1, state), _title(ACTIVATION_L1, state),
                      _describe(ACTIVATION_L1, state, records))
    return run.path


# --- sweep-reading tables: Table 2 analogue and CLEVER ----------------------------------------


def _sweep_config(config, section):
    """The sweep this run makes itself: its own sweep sections, experiment ``guo_progressive_pruning``."""
    own = ml_collections.ConfigDict(config.to_dict())
    with own.unlocked():
        del own[section]
        own.experiment = guo.KIND
    return own


def _planned_sweep(config, section):
    """The sweep config a run will read, checked before any work: that of the complete sweep named by
    ``config[section].sweep_dir``, or this config's own sweep when that is ''."""
    if config[section].sweep_dir:
        return _read_sweep(config[section].sweep_dir, section)[0]
    return _sweep_config(config, section)


def _open_sweep(config, section, run, log):
    """``(sweep_dir, sweep config, sweep results)``: the named sweep, or this config's own, run (or
    resumed) now in ``<run dir>/sweep``."""
    sweep_dir = config[section].sweep_dir
    if not sweep_dir:
        sweep_dir = run.file("sweep")
        started = os.path.isdir(sweep_dir) and bool(os.listdir(sweep_dir))
        log(f"{section}.sweep_dir is '': {'resuming' if started else 'running'} this config's sweep in {sweep_dir}")
        guo.run_sweep(_sweep_config(config, section), sweep_dir, resume=started, log=log)
    sweep_cfg, state = _read_sweep(sweep_dir, section)
    return os.path.abspath(sweep_dir), sweep_cfg, state


def _read_sweep(sweep_dir, section):
    sweep_dir = os.path.abspath(sweep_dir)
    paths = [os.path.join(sweep_dir, name) for name in ("config.json", "results.json")]
    _require(all(os.path.isfile(p) for p in paths),
             f"{section}.sweep_dir {sweep_dir} holds no config.json / results.json; name the run directory "
             "of a scripts/sweep.py (guo_progressive_pruning) run")
    stored, state = (_read_json(p) for p in paths)
    _require(state.get("pipeline") == guo.KIND,
             f"{section}.sweep_dir {sweep_dir} holds a {state.get('pipeline')!r} run, not a {guo.KIND} sweep")
    _require(state.get("status") == "complete",
             f"{section}.sweep_dir {sweep_dir} is not complete ({state.get('status')}); finish it with --resume")
    return ml_collections.ConfigDict(stored["config"]), state


def _round_model(sweep_dir, sweep_cfg, dataset, seed, round_index):
    """The stripped model of (seed, round) of a sweep, rebuilt and loaded from its checkpoint."""
    path = guo.round_weights_path(sweep_dir, seed, round_index)
    _require(os.path.isfile(path), f"{path} is missing; the sweep keeps one weights file per (seed, round)")
    model = build_model(sweep_cfg.model, dataset, seed)
    model.load_weights(path)
    return model


def _records_by_round(state):
    return {(r["seed"], r["round"]): r for r in state.get("records", [])}


def _check_pruned_models(config):
    _require(config.pruned_models.last_rounds >= 1,
             f"pruned_models.last_rounds must be >= 1, got {config.pruned_models.last_rounds}")


def run_pruned_models(config, workdir, *, resume=False, log=print):
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

    Args:
      config: a validated config (``configs/guo_pruned_models.py``).
      workdir: the run directory.
      resume: continue an interrupted run in ``workdir`` (same config).
      log: progress sink, one line per record.

    Returns:
      The absolute path of the run directory.

    Raises:
      ConfigError: if the sweep directory is not a complete sweep or lacks a checkpoint, or
        ``last_rounds`` exceeds its rounds.
    """
    _check_pruned_models(config)
    rounds = int(_planned_sweep(config, "pruned_models").prune.rounds)
    last = int(config.pruned_models.last_rounds)
    _require(last <= rounds, f"pruned_models.last_rounds {last} exceeds the sweep's {rounds} rounds")
    run = Run(workdir, config, PRUNED_MODELS, resume=resume).prepare()
    if run.already_complete:
        log(f"run {run.path} is already complete; nothing to resume")
        return run.path
    records = list((run.previous or {}).get("records", []))
    done = {(r["seed"], r["round"]) for r in records}
    with run.start(experiment=PRUNED_MODELS, records=records):
        sweep_dir, sweep_cfg, _ = _open_sweep(config, "pruned_models", run, log)
        measured_cfg = ml_collections.ConfigDict(sweep_cfg.to_dict())
        measured_cfg.eval, measured_cfg.xla = config.eval, config.xla
        dataset = load_data(sweep_cfg.data)
        run.update(sweep_dir=sweep_dir, model=sweep_cfg.model.name, dataset=sweep_cfg.data.name)
        for seed in sweep_cfg.seeds:
            for round_index in [0, *range(rounds - last + 1, rounds + 1)]:
                if (seed, round_index) in done:
                    continue
                model = _round_model(sweep_dir, sweep_cfg, dataset, seed, round_index)
                entry = {"seed": seed, "round": round_index, "role": "dense" if round_index == 0 else "pruned"}
                entry.update(robustness_record(model, dataset, measured_cfg))
                entry["compression"] = 1.0 / max(1.0 - entry["sparsity"], 1e-12)
                records.append(entry)
                run.update(last_completed=f"seed {seed} round {round_index}", records=records)
                log(f"seed {seed} round {round_index}: sparsity {entry['sparsity']:.4f} "
                    + _summary_line(entry, parse_measures(config.eval.measures)))
        state = dict(run.state, config=config.to_dict())
        _write_tables(run, records, "round", _columns(PRUNED_MODELS, state), _title(PRUNED_MODELS, state),
                      _describe(PRUNED_MODELS, state, records))
    return run.path


def _check_clever(config):
    c = config.clever
    _require(c.num_images >= 1, f"clever.num_images must be >= 1, got {c.num_images}")
    _require(c.batches >= 2, f"clever.batches (N_b) must be >= 2, got {c.batches}")
    _require(c.samples >= 1, f"clever.samples (N_s) must be >= 1, got {c.samples}")
    _require(c.l2_radius > 0 and c.linf_radius > 0,
             f"clever.l2_radius and clever.linf_radius must be > 0, got {c.l2_radius}, {c.linf_radius}")
    _require(len(c.rounds) >= 1, "clever.rounds must list at least one round, e.g. (0, 8)")


def run_clever(config, workdir, *, resume=False, log=print):
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

    Args:
      config: a validated config (``configs/guo_clever.py``).
      workdir: the run directory.
      resume: continue an interrupted run in ``workdir`` (same config).
      log: progress sink, one line per record.

    Returns:
      The absolute path of the run directory.

    Raises:
      ConfigError: on a bad ``clever`` value, a round the sweep does not have, a one-logit
        model, or a sweep directory that is not a complete sweep.
    """
    _check_clever(config)
    planned = _planned_sweep(config, "clever")
    _require(planned.model.name != "linear_binary", "CLEVER needs multi-class logits; linear_binary has one")
    bad = [r for r in config.clever.rounds if not 0 <= r <= planned.prune.rounds]
    _require(not bad, f"clever.rounds {bad} are not rounds of the sweep (0..{planned.prune.rounds})")
    run = Run(workdir, config, CLEVER, resume=resume).prepare()
    if run.already_complete:
        log(f"run {run.path} is already complete; nothing to resume")
        return run.path
    records = list((run.previous or {}).get("records", []))
    done = {(r["seed"], r["round"]) for r in records}
    c = config.clever
    with run.start(experiment=CLEVER, records=records):
        sweep_dir, sweep_cfg, state = _open_sweep(config, "clever", run, log)
        dataset = load_data(sweep_cfg.data)
        x, _ = eval_subset(dataset, c.num_images)
        swept = _records_by_round(state)
        run.update(sweep_dir=sweep_dir, model=sweep_cfg.model.name, dataset=sweep_cfg.data.name)
        for seed in sweep_cfg.seeds:
            for round_index in c.rounds:
                if (seed, round_index) in done:
                    continue
                model = _round_model(sweep_dir, sweep_cfg, dataset, seed, round_index)
                started = time.perf_counter()
                entry = {"seed": seed, "round": round_index, "num_images": len(x)}
                for norm, radius in (("l2", c.l2_radius), ("linf", c.linf_radius)):
                    scores = metrics.clever(model, x, norm=norm, radius=float(radius), batches=int(c.batches),
                                            samples=int(c.samples), seed=seed)
                    entry[f"clever_{norm}"] = scores["mean"]
                entry["clever_seconds"] = time.perf_counter() - started
                swept_round = swept.get((seed, round_index), {})
                entry.update({k: swept_round.get(k) for k in ("sparsity", "clean_accuracy", "r_inf", "r2")})
                records.append(entry)
                run.update(last_completed=f"seed {seed} round {round_index}", records=records)
                log(f"seed {seed} round {round_index}: CLEVER l2 {entry['clever_l2']:.4f} "
                    f"l∞ {entry['clever_linf']:.4f} ({entry['clever_seconds']:.1f} s)")
        state = dict(run.state, config=config.to_dict())
        _write_tables(run, records, "round", _columns(CLEVER, state), _title(CLEVER, state),
                      _describe(CLEVER, state, records))
    return run.path


# --- report ------------------------------------------------------------------------------


def _title(kind, state):
    model, dataset = state.get("model", "?"), state.get("dataset", "?")
    return {ACTIVATION_L1: f"Guo Table 1: activation L1 on {model} ({dataset})",
            PRUNED_MODELS: f"Guo Table 2 analogue: the most-pruned rounds of a {model} sweep ({dataset})",
            CLEVER: f"Guo CLEVER table: {model} ({dataset}), dense and pruned"}[kind]


def _seeds(records):
    return sorted({r["seed"] for r in records})


def _eval_words(config, n_eval):
    measures = ", ".join(parse_measures(config["eval"]["measures"]))
    return (f"{measures} on the first {n_eval} test images (r∞ at ε = {config['eval']['fgs_eps']:g}; r2 failures "
            f"left out of the mean and counted beside it)")


def _describe(kind, state, records):
    """What the table measures, in words: how many seeds, attack settings, and for Table 2 the substitution."""
    config = state["config"]
    seeds = _seeds(records)
    n_eval = records[0].get("num_eval") if records else None
    ci = f"mean ± 95 % CI over {len(seeds)} seeds" if len(seeds) > 1 else "1 seed, no interval"
    if kind == ACTIVATION_L1:
        layer = records[0]["layer"] if records else "?"
        return (f"λ multiplies the batch mean of the per-example L1 norm of the activations at `{layer}` (the input "
                f"of the last fully connected layer); activation sparsity = fraction of exact zeros there over the "
                f"test split; {_eval_words(config, n_eval)}; {ci}.")
    if kind == PRUNED_MODELS:
        return (f"Guo et al.'s Table 2 attacks Han et al.'s published compressed LeNets (56× LeNet-300-100, 108× "
                f"LeNet-5), which cannot be fetched. These rows are instead this project's own most-pruned rounds "
                f"(the last {config['pruned_models']['last_rounds']}) of the sweep `{state.get('sweep_dir')}`, "
                f"against its dense round 0, re-evaluated: {_eval_words(config, n_eval)}; compression = 1 / (1 − "
                f"weight sparsity); {ci}.")
    c = config["clever"]
    return (f"Untargeted CLEVER scores (Weng et al. 2018) on the first {c['num_images']} test images per model, "
            f"sample budget N_b × N_s = {c['batches']} × {c['samples']} gradient norms per image and class (Weng et "
            f"al.: 500 × 1,024), radii {c['l2_radius']:g} (l2) and {c['linf_radius']:g} (l∞), which also cap the "
            f"score; r2 / r∞ are the sweep's own values for the same round (`{state.get('sweep_dir')}`); {ci}. The "
            f"Lipschitz estimate stays near the sample maximum (see run_clever), so scores may sit slightly above "
            f"a converged reverse-Weibull fit's.")


GROUP_BY = {ACTIVATION_L1: "strength", PRUNED_MODELS: "round", CLEVER: "round"}


def _columns(kind, state):
    """Table columns (key, header, format) of a run of ``kind``, with the measures its ``eval`` asked for."""
    config = state["config"]
    if kind == CLEVER:
        return [("round", "round", "{:d}"), ("sparsity", "weight sparsity", "{:.4f}"),
                ("clean_accuracy", "clean accuracy", "{:.4f}"), ("clever_l2", "CLEVER l2", "{:.4f}"),
                ("clever_linf", "CLEVER l∞", "{:.4f}"), ("r2", "r2 (DeepFool, sweep)", "{:.4f}"),
                ("r_inf", "r∞ (FGS, sweep)", "{:.4f}")]
    measured = robustness_columns(parse_measures(config["eval"]["measures"]))
    if kind == ACTIVATION_L1:
        return [("strength", "λ (activation L1)", "{:g}"), ("activation_sparsity", "activation sparsity", "{:.4f}"),
                *measured[1:]]
    return [("round", "round", "{:d}"), ("compression", "compression (×)", "{:.1f}"), *measured]


def report_section(run_dirs):
    """Markdown of Table 1 / Table 2 analogue / CLEVER runs (scripts/report.py): one block per run directory.

    Each block is the run's seed summary (mean ± 95 % CI) recomputed from the records in its
    ``results.json``, with a line saying what was measured (and, for Table 2, what replaces
    Han et al.'s models).
    """
    blocks = []
    for run_dir in run_dirs:
        state = _read_json(os.path.join(run_dir, "results.json"))
        state["config"] = _read_json(os.path.join(run_dir, "config.json"))["config"]
        kind, records = state["pipeline"], state.get("records", [])
        by, columns = GROUP_BY[kind], _columns(kind, state)
        summary = reporting.aggregate(records, by, _measures(records, by))
        status = "" if state.get("status") == "complete" else f" — {state.get('status')}, incomplete"
        blocks.append(f"### {_title(kind, state)} ({state['config'].get('variant', '')}){status}\n\n"
                      f"{_describe(kind, state, records)}\n\n" + reporting.markdown_table(summary, columns))
    return "\n".join(blocks)
