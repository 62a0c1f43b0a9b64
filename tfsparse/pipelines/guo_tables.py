"""Guo et al. 2018's tables beside the sweep: Table 1 (activation L1) here, and the text of all three.

Three experiment kinds (``configs/guo_activation_l1.py``, ``configs/guo_pruned_models.py``,
``configs/guo_clever.py``), each run by ``scripts/experiment.py``:

* ``guo_activation_l1`` (:data:`run_activation_l1`, Guo §4.2 "Activation sparsity", Table 1):
  for each λ of ``activation_l1.strengths`` and each seed, the model with an
  :class:`~tfsparse.layers.ActivationL1` (loss λ · batch mean of the per-example L1 norm) at
  the input of its last fully connected layer is trained; recorded: the activation sparsity
  there (fraction of exact zeros over the whole test split, ``tfsparse.sparsity.activation_sparsity``),
  and the measures of :func:`~tfsparse.pipelines._build.robustness_record` (clean accuracy,
  r∞ by FGS, r2 by DeepFool, ...).
* ``guo_pruned_models`` (Table 2 analogue) and ``guo_clever`` (the CLEVER table of Guo's
  supplement, Weng et al. 2018) read the rounds of a sweep:
  :mod:`~tfsparse.pipelines.guo_sweep_tables`.

Each is a declaration on the experiment engine (:mod:`~tfsparse.pipelines.engine`): the unit
of work is one (seed, λ) or (seed, round) record, written to ``results.json`` as it
completes; ``--resume`` continues after the last one. The three share their outputs and report
(:func:`report_section`: title, what was measured, the seed summary, mean ± 95 % CI).
"""

import os
import time

from tfsparse import layers as layers_lib
from tfsparse import reporting
from tfsparse import results
from tfsparse import sparsity
from tfsparse import training
from tfsparse.errors import ConfigError
from tfsparse.pipelines import engine
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import parse_measures
from tfsparse.pipelines._build import robustness_columns
from tfsparse.pipelines._build import robustness_record
from tfsparse.pipelines._build import train_section
from tfsparse.pipelines._guo import measure_line
from tfsparse.pipelines._guo import measures_in
from tfsparse.pipelines._guo import require
from tfsparse.sparsity import activation_tensor

ACTIVATION_L1 = "guo_activation_l1"
PRUNED_MODELS = "guo_pruned_models"
CLEVER = "guo_clever"
GROUP_BY = {ACTIVATION_L1: "strength", PRUNED_MODELS: "round", CLEVER: "round"}


def _measures(records, by):
    """The numeric measures present in ``records`` (robustness_record's keys, whatever the eval asked)."""
    keys = []
    for record in records:
        for key, value in record.items():
            if key not in keys and isinstance(value, (int, float)) and not isinstance(value, bool):
                keys.append(key)
    return [k for k in keys if k not in ("seed", by)]


def write_outputs(run_dir):
    """results.csv and results.md (the seed summary, mean ± 95 % CI); returns the ``summary`` field."""
    _, state, config = engine.read_run(run_dir, tuple(GROUP_BY))
    state["config"] = config
    kind, records = state["pipeline"], state["records"]
    results.write_csv(os.path.join(run_dir, "results.csv"),
                      [{k: v for k, v in r.items() if not isinstance(v, dict)} for r in records])
    summary = reporting.aggregate(records, GROUP_BY[kind], _measures(records, GROUP_BY[kind]))
    results.atomic_write_text(os.path.join(run_dir, "results.md"),
                              f"# {_title(kind, state)}\n\n{_describe(kind, state, records)}\n\n"
                              + reporting.markdown_table(summary, _columns(kind, state)))
    return {"summary": summary}


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
    require(len(a.strengths) >= 1, "activation_l1.strengths must list at least one λ, e.g. (0.0, 1e-4)")
    require(all(s >= 0 for s in a.strengths), f"activation_l1.strengths must be >= 0, got {list(a.strengths)}")


def _regularised_layer(config, dataset, log):
    """The layer ``activation_l1.layer`` names ('' = the input of the last fully connected layer), checked."""
    probe = build_model(config.model, dataset, config.seeds[0])
    layer = config.activation_l1.layer or last_fc_input_layer(probe)
    names = [candidate.name for candidate in probe.layers]
    require(layer in names, f"activation_l1.layer {layer!r} is not a layer of {config.model.name}; choose from "
                            f"{names} or '' (the input of the last fully connected layer)")
    return layer


def _train_regularised(work, unit):
    """Guo Table 1: the model with ActivationL1(λ) at the layer, trained; its activation sparsity and measures."""
    config, dataset, layer, strength = work.config, work.dataset, work.data, unit.fields["strength"]
    model = layers_lib.insert_activation_l1(build_model(config.model, dataset, work.seed), layer, strength)
    started = time.perf_counter()
    training.train(model, dataset.x_train, dataset.y_train, train_section(config), seed=work.seed,
                   verbose=config.verbose)
    entry = {"layer": layer, "train_seconds": time.perf_counter() - started,
             "activation_sparsity": sparsity.activation_sparsity(model, dataset.x_test, layer_name=layer,
                                                                 batch_size=config.eval.batch_size)}
    entry.update(robustness_record(model, dataset, config))
    return entry


# Guo Table 1 (configs/guo_activation_l1.py), called as run_activation_l1(config, workdir, resume=False,
# log=print): per seed and λ of activation_l1.strengths, one _train_regularised record.
run_activation_l1 = engine.Experiment(
    kind=ACTIVATION_L1, check=_check_activation_l1, prepare=_regularised_layer, run_unit=_train_regularised,
    units=lambda config, seed: [engine.Unit(f"strength {s:g}", {"strength": float(s), "seed": seed})
                                for s in config.activation_l1.strengths],
    facts=lambda config, dataset: {"experiment": ACTIVATION_L1, "model": config.model.name,
                                   "dataset": config.data.name},
    describe=lambda e, config: (f"λ {e['strength']:g} seed {e['seed']}: activation sparsity {e['activation_sparsity']:.4f} "
                        + measure_line(e, measures_in(e))),
    write_outputs=write_outputs, report=lambda run_dirs: report_section(run_dirs))


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
        _, state, config = engine.read_run(run_dir, tuple(GROUP_BY))
        state["config"] = config
        kind, records = state["pipeline"], state.get("records", [])
        by, columns = GROUP_BY[kind], _columns(kind, state)
        summary = reporting.aggregate(records, by, _measures(records, by))
        status = "" if state.get("status") == "complete" else f" — {state.get('status')}, incomplete"
        blocks.append(f"### {_title(kind, state)} ({state['config'].get('variant', '')}){status}\n\n"
                      f"{_describe(kind, state, records)}\n\n" + reporting.markdown_table(summary, columns))
    return "\n".join(blocks)
