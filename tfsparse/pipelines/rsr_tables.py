"""RSR's tables (Rakin et al. 2019) as pipelines: Tables 1, 2, 5 (white box) and 3 (black box).

Every table is a grid of trained models, each measured in one or more *settings*:

* a **scheme** (RSR Table 1's rows) is the RSR recipe of :mod:`tfsparse.pipelines.rsr` with
  parts switched off — ``pgd`` (neither CNI nor lasso), ``cni`` (CNI, λ = 0), ``lasso`` (λ, no
  noise), ``rsr`` (both). All four train with the same ensemble loss (eq. 5, ``a =
  rsr.clean_weight``), the same PGD-``rsr.steps`` from ``rsr.random_start`` and the same
  budget, so CNI and lasso are the only differences between rows (the PGD baseline is
  therefore He et al.'s "vanilla" a = 0.5 adversarial training, as in the PNI paper RSR
  compares with, not Madry's a = 0);
* a **stage**: ``before`` pruning, or ``after`` threshold pruning (RSR §3.4,
  :func:`tfsparse.pipelines.rsr.threshold`) at the γ that gives ``table.sparsities`` (one
  per width) *in that model*, so every scheme is pruned to the same sparsity — the paper's
  "prune each of the four training cases by equal amount", whose PGD row is the missing
  control "PGD training, then γ";
* for models with noise layers: the **σ rule** of eq. 4 (``table.sigma_rules``, after
  pruning only: the variance of the full kernel, the paper's, or of its non-zero entries)
  and the **inference noise** (``table.inference_noise``: on / off, RSR Table 5);
* a **width** (``table.widths``, RSR Table 2).

White-box settings (kinds ``rsr_table1``, ``rsr_width``, ``rsr_noise``) record clean
accuracy (whole test split), and on the first ``table.num_examples`` test images FGSM, PGD
(``pgd.eval_steps`` steps from x, RSR eq. 2), EOT-PGD (``rsr.eot_samples`` draws per step;
noisy models only — on a deterministic model it equals PGD) and AutoAttack
(``autoattack.version``, ``rand`` for random models; one draw per gradient on deterministic
models, where more draws average identical gradients) accuracy, their per-sample worst case
and weight sparsity — all by :func:`tfsparse.evaluation.evaluate`. Black-box settings (kind
``rsr_blackbox``, RSR Table 3) record ZOO's success rate on ``zoo.num_examples`` seeded
random test images, counted both ways (over the correctly classified samples, Chen et
al.'s count, and over all attacked test samples, RSR's), and the accuracy under PGD
examples transferred from each source model of ``transfer.sources`` (trained by the
pipeline or loaded from a path), beside the white-box PGD accuracy; every attack queries the
target as deployed (RSR's with its inference noise on, as the paper's were).

Seeds (``seeds``) repeat the whole grid; :func:`report_section` shows mean ± 95 % CI
(Student t, :func:`tfsparse.reporting.aggregate`). The unit of work is one setting (a
table row of one seed): trained weights are kept under ``checkpoints/`` and every record
goes to ``results.json`` as it completes, so ``--resume`` continues with the first missing
row without retraining; a model killed mid-training resumes from its last epoch checkpoint
(``checkpoints/seed<S>/<model>.training/``, removed once its weights are kept). When
complete the run directory holds ``results.csv``, ``results.md`` (this module's section)
and ``results.png`` (its figure).
"""

import json
import math
import os
import shutil
import time

import ml_collections
import numpy as np

from tfsparse import attacks
from tfsparse import evaluation
from tfsparse import metrics
from tfsparse import plotting
from tfsparse import reporting
from tfsparse import results
from tfsparse import training
from tfsparse.attacks.autoattack import VERSIONS as AUTOATTACK_RAW_VERSIONS
from tfsparse.errors import ConfigError
from tfsparse.layers import SIGMA_RULES
from tfsparse.layers import has_inference_noise
from tfsparse.layers import set_inference_noise
from tfsparse.model_io import load_keras_model
from tfsparse.pipelines import rsr as robust
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._build import train_section
from tfsparse.pipelines._run import Run
from tfsparse.sparsity import weight_sparsity

# Scheme -> (CNI on, lasso on): RSR Table 1's rows as parts of the one recipe.
SCHEMES = {"pgd": (False, False), "cni": (True, False), "lasso": (False, True), "rsr": (True, True)}
STAGES = ("before", "after")
NOISE_SETTINGS = ("on", "off")
WHITE_BOX = ("rsr_table1", "rsr_width", "rsr_noise")
BLACK_BOX = "rsr_blackbox"
SOURCE_TRAININGS = ("clean", "pgd")
AUTOATTACK_VERSIONS = ("off",) + AUTOATTACK_RAW_VERSIONS
# Fields that identify one record (one setting of one seed).
ROW_FIELDS = ("seed", "width", "scheme", "stage", "sigma_rule", "inference_noise")
WHITE_BOX_MEASURES = ["sparsity", "clean_accuracy", "fgsm_accuracy", "pgd_accuracy", "eot_pgd_accuracy",
                      "autoattack_accuracy", "worst_case_accuracy", "gamma", "params_remaining"]
BLACK_BOX_MEASURES = ["sparsity", "clean_accuracy", "pgd_accuracy", "zoo_success_over_correct",
                      "zoo_success_over_samples", "zoo_mean_l2"]


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def check_config(config):
    """Checks the table sections (``table``, ``autoattack``, ``zoo``, ``transfer``) before any work.

    Raises:
      ConfigError: naming the key, the bad value and what to change.
    """
    _require(config.experiment in WHITE_BOX + (BLACK_BOX,),
             f"experiment {config.experiment!r} is not an RSR table; choose from {WHITE_BOX + (BLACK_BOX,)}")
    t = config.table
    unknown = [s for s in t.schemes if s not in SCHEMES]
    _require(t.schemes and not unknown, f"table.schemes {list(t.schemes)}: choose from {tuple(SCHEMES)}")
    _require(t.stages and all(s in STAGES for s in t.stages), f"table.stages {list(t.stages)}: choose from {STAGES}")
    _require(t.widths and all(w > 0 for w in t.widths), f"table.widths must be > 0, got {list(t.widths)}")
    _require(len(t.sparsities) == len(t.widths),
             f"table.sparsities needs one target per width ({len(t.widths)}), got {list(t.sparsities)}")
    _require(all(0 < s < 1 for s in t.sparsities), f"table.sparsities must be in (0, 1), got {list(t.sparsities)}")
    _require(t.sigma_rules and all(r in SIGMA_RULES for r in t.sigma_rules),
             f"table.sigma_rules {list(t.sigma_rules)}: choose from {SIGMA_RULES}")
    _require(t.inference_noise and all(n in NOISE_SETTINGS for n in t.inference_noise),
             f"table.inference_noise {list(t.inference_noise)}: choose from {NOISE_SETTINGS}")
    _require(t.num_examples >= 1, f"table.num_examples must be >= 1, got {t.num_examples}")
    _require(t.batch_size >= 1, f"table.batch_size must be >= 1, got {t.batch_size}")
    _require(config.pgd.eval_steps >= 1, f"pgd.eval_steps must be >= 1 for a table, got {config.pgd.eval_steps}")
    if config.experiment in WHITE_BOX:
        a = config.autoattack
        _require(a.version in AUTOATTACK_VERSIONS,
                 f"autoattack.version {a.version!r}: choose from {AUTOATTACK_VERSIONS}")
        _require(a.steps >= 1 and a.eot_samples >= 1,
                 f"autoattack.steps and autoattack.eot_samples must be >= 1, got {a.steps}, {a.eot_samples}")
        return
    z = config.zoo
    _require(z.num_examples >= 1, f"zoo.num_examples must be >= 1, got {z.num_examples}")
    try:
        zoo_attack(config)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"zoo: {error}") from None
    for name, source in config.transfer.sources.items():
        _require(source.training in SOURCE_TRAININGS,
                 f"transfer.sources.{name}.training {source.training!r}: choose from {SOURCE_TRAININGS}")
        _require(not source.path or os.path.exists(source.path),
                 f"transfer.sources.{name}.path {source.path} does not exist; give a saved Keras model or ''")


def scheme_config(config, scheme, width):
    """The RSR-recipe config of one scheme and width (training only: γ and target 0, pruned later)."""
    noise, lasso = SCHEMES[scheme]
    cfg = config.copy_and_resolve_references()
    with cfg.unlocked():
        cfg.training = "rsr"
        cfg.model.width = float(width)
        cfg.rsr.noise = cfg.rsr.noise if noise else ""
        cfg.rsr.lasso = cfg.rsr.lasso if lasso else 0.0
        cfg.rsr.gamma = 0.0
        cfg.rsr.target_sparsity = 0.0
    return cfg


def _save_weights(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path[: -len(".weights.h5")] + ".partial.weights.h5"
    model.save_weights(partial)
    os.replace(partial, path)


def _trained(run, cfg, dataset, seed, name, log):
    """The trained (unpruned) model of ``cfg``: loaded from ``checkpoints/`` or trained and saved.

    Returns:
      ``(model, info)``: ``info`` holds ``train_seconds`` and the recipe's settings, or
      ``{"loaded": path}`` when the weights came from an earlier (interrupted) run.
    """
    path = run.file("checkpoints", f"seed{seed}", f"{name}.weights.h5")
    if os.path.exists(path):
        model = build_model(cfg.model, dataset, seed, noise_cfg=cfg.rsr)  # as train_robust builds it
        model.load_weights(path)
        set_inference_noise(model, cfg.rsr.inference_noise)
        return model, {"loaded": path}
    # Every epoch is checkpointed while it trains, so a run killed mid-training resumes there.
    clock, checkpoints = training.TrainingClock(), run.file("checkpoints", f"seed{seed}", f"{name}.training")
    if training.checkpointed_epochs(checkpoints):
        log(f"seed {seed} {name}: resuming after epoch {training.checkpointed_epochs(checkpoints)}")
    model, _, _, info = robust.train_robust(cfg, dataset, seed, verbose=cfg.verbose, callbacks=[clock],
                                            checkpoint_dir=checkpoints)
    info["train_seconds"] = clock.seconds
    _save_weights(model, path)
    shutil.rmtree(checkpoints, ignore_errors=True)
    log(f"seed {seed} {name}: trained in {info['train_seconds']:.1f} s")
    return model, info


def _with_sigma_rule(model, cfg, dataset, seed, rule):
    """A copy of noisy ``model`` whose noise layers measure σ by ``rule`` (same weights, switch included)."""
    if rule == cfg.rsr.noise_sigma_rule:
        return model
    other = cfg.rsr.copy_and_resolve_references()
    other.noise_sigma_rule = rule
    copy = build_model(cfg.model, dataset, seed, noise_cfg=other)
    copy.set_weights(model.get_weights())
    return copy


def _settings(config, scheme, stage):
    """``(sigma_rule, inference_noise)`` pairs measured for one scheme at one stage (None: no noise layers)."""
    noisy = SCHEMES[scheme][0] and bool(config.rsr.noise)
    if not noisy:
        return [(None, None)]
    rules = tuple(config.table.sigma_rules) if stage == "after" else (config.rsr.noise_sigma_rule,)
    return [(rule, noise) for rule in rules for noise in config.table.inference_noise]


def row_id(record):
    """The identity of a record (one setting of one seed), for resume and aggregation."""
    return tuple(record.get(field) for field in ROW_FIELDS)


def label(record):
    """A record's setting as a readable label (seed left out): the aggregation key."""
    parts = [f"w={record['width']:g}", record["scheme"], record["stage"]]
    if record.get("sigma_rule"):
        parts.append(f"σ {record['sigma_rule']}")
    if record.get("inference_noise"):
        parts.append(f"noise {record['inference_noise']}")
    return " ".join(parts)


def _prunable_size(model):
    stats = weight_sparsity(model)
    return stats["size"], stats["size"] - stats["zeros"]


def whitebox_measures(model, dataset, config, context):
    """Clean, FGSM, PGD, EOT-PGD (noisy models), AutoAttack accuracy and their worst case (one evaluate call)."""
    del context
    x, y = eval_subset(dataset, config.table.num_examples)
    noisy = has_inference_noise(model)
    suite = [attacks.FGSM(eps=config.pgd.eps), robust.eval_attack(config, model, eot=False)]
    if noisy:
        suite.append(robust.eval_attack(config, model, eot=True))
    if config.autoattack.version != "off":
        suite.append(attacks.AutoAttack(eps=config.pgd.eps, version=config.autoattack.version,
                                        steps=int(config.autoattack.steps),
                                        eot_samples=int(config.autoattack.eot_samples) if noisy else 1))
    report = evaluation.evaluate(model, x, y, suite, batch_size=config.table.batch_size, seed=config.pgd.seed,
                                 stochastic=noisy)
    found = report["attacks"]
    return {
        "clean_accuracy": metrics.clean_accuracy(model, dataset.x_test, dataset.y_test,
                                                 batch_size=config.table.batch_size),
        "fgsm_accuracy": found["fgsm"]["accuracy"],
        "pgd_accuracy": found["pgd"]["accuracy"],
        "eot_pgd_accuracy": found["eot_pgd"]["accuracy"] if "eot_pgd" in found else None,
        "autoattack_accuracy": found["autoattack"]["accuracy"] if "autoattack" in found else None,
        "worst_case_accuracy": report["worst_case"]["accuracy"],
        "num_eval": report["n"],
        "attacks": {key: entry["repr"] for key, entry in found.items()},
        "flags": [flag["flag"] for flag in report["flags"]],
    }


def zoo_attack(config):
    """ZOO (Chen et al. 2017) with the ``zoo`` section's parameters (all but ``num_examples``)."""
    params = {key: value for key, value in config.zoo.items() if key != "num_examples"}
    return attacks.ZOO(**params)


def zoo_subset(dataset, config):
    """RSR's "200 randomly selected test samples": a subset seeded by ``data.seed``."""
    n = min(int(config.zoo.num_examples), len(dataset.x_test))
    order = np.random.default_rng(config.data.seed).permutation(len(dataset.x_test))[:n]
    return dataset.x_test[order], dataset.y_test[order]


def blackbox_measures(model, dataset, config, context):
    """ZOO success counted both ways, transfer accuracy from every source, white-box PGD beside them."""
    x, y = eval_subset(dataset, config.table.num_examples)
    white = robust.eval_attack(config, model)
    # Each source is deterministic: the PGD of eval_attack, crafted on it, scored on the target.
    suite = [white] + [attacks.TransferAttack(source_model=source, attack=robust.eval_attack(config, source))
                       for source in context["sources"].values()]
    report = evaluation.evaluate(model, x, y, suite, batch_size=config.table.batch_size, seed=config.pgd.seed,
                                 stochastic=has_inference_noise(model))
    entries = list(report["attacks"].values())
    record = {
        "clean_accuracy": metrics.clean_accuracy(model, dataset.x_test, dataset.y_test,
                                                 batch_size=config.table.batch_size),
        "pgd_accuracy": entries[0]["accuracy"], "num_eval": report["n"],
        "attacks": {key: entry["repr"] for key, entry in report["attacks"].items()},
        "flags": [flag["flag"] for flag in report["flags"]],
    }
    for name, entry in zip(context["sources"], entries[1:]):
        record[f"transfer_{name}"] = entry["accuracy"]
    x_zoo, y_zoo = zoo_subset(dataset, config)
    zoo = evaluation.evaluate(model, x_zoo, y_zoo, [zoo_attack(config)], batch_size=config.table.batch_size,
                              seed=config.pgd.seed)
    entry = zoo["attacks"]["zoo"]
    record.update({
        "zoo_success_over_correct": entry["success_rate"], "zoo_success_over_samples": entry["success_rate_all"],
        "zoo_mean_l2": entry["mean_l2"], "zoo_clean_accuracy": zoo["clean_accuracy"], "zoo_num_examples": zoo["n"],
        "zoo_seconds": entry["seconds"], "zoo_queries_per_sample": entry.get("queries_per_sample"),
    })
    return record


def _source_models(run, config, dataset, log):
    """The transfer sources of ``transfer.sources``: loaded from ``path`` or trained (and kept) by the pipeline.

    A ``clean`` source trains with the ``train`` section; a ``pgd`` source with Madry PGD
    training (``pgd`` section, ``adversarial_train``). Seed: the first of ``seeds``.
    """
    seed = config.seeds[0]
    sources = {}
    for name, spec in config.transfer.sources.items():
        if spec.path:
            sources[name] = load_keras_model(spec.path)
            continue
        cfg = config.copy_and_resolve_references()
        with cfg.unlocked():
            cfg.model.name = spec.model
            cfg.model.width = float(spec.width)
            cfg.training = spec.training
        path = run.file("checkpoints", "sources", f"{name}.weights.h5")
        if os.path.exists(path):
            model = build_model(cfg.model, dataset, seed)
            model.load_weights(path)
        else:
            started = time.perf_counter()
            if spec.training == "clean":
                model = build_model(cfg.model, dataset, seed)
                training.train(model, dataset.x_train, dataset.y_train, train_section(cfg), seed=seed,
                               verbose=config.verbose)
            else:
                model = robust.train_robust(cfg, dataset, seed, verbose=config.verbose)[0]
            _save_weights(model, path)
            log(f"source {name} ({spec.model}, {spec.training}) trained in {time.perf_counter() - started:.1f} s")
        sources[name] = model
    for name, model in sources.items():
        accuracy = metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, batch_size=config.table.batch_size)
        run.update(**{f"source_{name}_clean_accuracy": accuracy})
    return sources


def run_table(config, workdir, *, resume=False, log=print):
    """Runs (or with ``resume`` continues) the RSR table of ``config`` (``configs/rsr_*.py``).

    ``config.experiment`` picks the measures: ``rsr_table1`` / ``rsr_width`` / ``rsr_noise``
    white box, ``rsr_blackbox`` black box (the grid is the same, see the module docstring).

    Writes ``config.json``, ``results.json`` (status, ``last_completed`` setting, ``records``
    so far, per-model training info under ``models``), trained weights under
    ``checkpoints/``, and when complete ``results.csv``, ``results.md`` and ``results.png``.

    Args:
      config: a validated table config.
      workdir: the run directory.
      resume: continue an interrupted run in ``workdir`` (same config).
      log: progress sink, one line per setting.

    Returns:
      The absolute path of the run directory.

    Raises:
      ConfigError: on a bad table section (:func:`check_config`) or run directory.
    """
    check_config(config)
    kind = config.experiment
    run = Run(workdir, config, kind, resume=resume).prepare()
    if run.already_complete:
        log(f"run {run.path} is already complete; nothing to resume")
        return run.path
    dataset = load_data(config.data, log=log)
    previous = run.previous or {}
    records = list(previous.get("records", []))
    models = dict(previous.get("models", {}))
    done = {row_id(r) for r in records}
    measure = blackbox_measures if kind == BLACK_BOX else whitebox_measures
    with run.start(experiment=kind, model=config.model.name, dataset=config.data.name, records=records,
                   models=models):
        context = {}
        if kind == BLACK_BOX:
            context = {"sources": _source_models(run, config, dataset, log)}
        for seed in config.seeds:
            for width, target in zip(config.table.widths, config.table.sparsities):
                for scheme in config.table.schemes:
                    wanted = [(stage, rule, noise) for stage in config.table.stages
                              for rule, noise in _settings(config, scheme, stage)
                              if (seed, float(width), scheme, stage, rule, noise) not in done]
                    if not wanted:
                        continue
                    name = f"{scheme}_w{width:g}"
                    cfg = scheme_config(config, scheme, width)
                    model, info = _trained(run, cfg, dataset, seed, name, log)
                    models.setdefault(f"seed{seed}/{name}", info)
                    staged = {"before": (model, 0.0)}
                    if any(stage == "after" for stage, _, _ in wanted):
                        staged["after"] = robust.threshold(model, _pruning(cfg.rsr, target))
                    for stage, rule, noise in wanted:
                        variant, gamma = staged[stage]
                        if rule is not None:
                            variant = _with_sigma_rule(variant, cfg, dataset, seed, rule)
                            set_inference_noise(variant, noise == "on")
                        size, nonzero = _prunable_size(variant)
                        started = time.perf_counter()
                        record = {"seed": seed, "width": float(width), "scheme": scheme, "stage": stage,
                                  "sigma_rule": rule, "inference_noise": noise, "gamma": gamma,
                                  "target_sparsity": target if stage == "after" else 0.0,
                                  "sparsity": 1.0 - nonzero / size, "prunable_params": size,
                                  "nonzero_params": nonzero}
                        record.update(measure(variant, dataset, config, context))
                        record["eval_seconds"] = time.perf_counter() - started
                        record["label"] = label(record)
                        records.append(record)
                        run.update(last_completed=f"seed {seed} {record['label']}", records=records, models=models)
                        log(f"seed {seed} {record['label']}: " + ", ".join(
                            f"{k} {record[k]:.4f}" for k in ("sparsity", "clean_accuracy", "pgd_accuracy")))
        _write_outputs(run, kind, records)
    return run.path


def _pruning(rsr_cfg, target):
    """The ``rsr`` section that :func:`tfsparse.pipelines.rsr.threshold` reads: γ of ``target`` sparsity."""
    section = ml_collections.ConfigDict(rsr_cfg.to_dict())
    section.gamma = 0.0
    section.target_sparsity = float(target)
    return section


def _write_outputs(run, kind, records):
    flat = [{k: v for k, v in r.items() if k not in ("attacks", "flags")} for r in records]
    results.write_csv(run.file("results.csv"), flat)
    config = run.config
    figure = run.file("results.png")
    text = _section(kind, config.to_dict(), records, figure)
    results.atomic_write_text(run.file("results.md"), text)


# Table columns per kind: (key, header, format).
_SETTING_COLUMNS = {
    "rsr_table1": [("scheme", "scheme", "{}"), ("stage", "pruning", "{}"), ("sigma_rule", "σ rule", "{}"),
                   ("inference_noise", "inference noise", "{}")],
    "rsr_width": [("width", "width", "{:g}"), ("scheme", "scheme", "{}"), ("stage", "pruning", "{}"),
                  ("params_remaining", "params vs widest (%)", "{:.2f}")],
    "rsr_noise": [("scheme", "scheme", "{}"), ("stage", "pruning", "{}"), ("inference_noise", "inference noise", "{}")],
    "rsr_blackbox": [("scheme", "scheme", "{}"), ("stage", "pruning", "{}")],
}
_WHITE_BOX_COLUMNS = [("sparsity", "weight sparsity", "{:.4f}"), ("clean_accuracy", "clean", "{:.4f}"),
                      ("fgsm_accuracy", "FGSM", "{:.4f}"), ("pgd_accuracy", "PGD", "{:.4f}"),
                      ("eot_pgd_accuracy", "EOT-PGD", "{:.4f}"), ("autoattack_accuracy", "AutoAttack", "{:.4f}"),
                      ("worst_case_accuracy", "worst case", "{:.4f}"), ("n", "seeds", "{:d}")]
_BLACK_BOX_COLUMNS = [("sparsity", "weight sparsity", "{:.4f}"), ("clean_accuracy", "clean", "{:.4f}"),
                      ("pgd_accuracy", "white-box PGD", "{:.4f}"),
                      ("zoo_success_over_samples", "ZOO success / test samples (RSR)", "{:.4f}"),
                      ("zoo_success_over_correct", "ZOO success / correct (Chen)", "{:.4f}"),
                      ("zoo_mean_l2", "ZOO mean l2 (seeds with a flip)", "{:.3f}")]
# Bars of each kind's figure: (key, legend).
_FIGURE_MEASURES = {
    "white": [("clean_accuracy", "clean"), ("pgd_accuracy", "PGD"), ("eot_pgd_accuracy", "EOT-PGD"),
              ("autoattack_accuracy", "AutoAttack"), ("sparsity", "weight sparsity")],
    "black": [("clean_accuracy", "clean"), ("pgd_accuracy", "white-box PGD"),
              ("zoo_success_over_samples", "ZOO success / samples"),
              ("zoo_success_over_correct", "ZOO success / correct")],
}


# Per-seed measures that are NaN when undefined: ZOO's mean l2 when it flipped nothing, its success
# rate over correctly classified samples (Chen et al.) when the model got none of the ZOO images right.
_UNDEFINED_WHEN_NAN = ("zoo_mean_l2", "zoo_success_over_correct")


def summary_rows(kind, records):
    """Records aggregated over seeds per setting (mean, std, 95 % CI), with the setting's fields kept."""
    records = [dict(r) for r in records]
    widest = {}
    for r in records:
        widest[r["seed"]] = max(widest.get(r["seed"], 0), r["prunable_params"])
    for r in records:
        r["params_remaining"] = 100.0 * r["nonzero_params"] / widest[r["seed"]]
        for key in _UNDEFINED_WHEN_NAN:
            if r.get(key) is not None and math.isnan(r[key]):
                r[key] = None  # undefined in this seed: left out of the mean, not turned into NaN
    keys = WHITE_BOX_MEASURES if kind in WHITE_BOX else BLACK_BOX_MEASURES + sorted(
        {k for r in records for k in r if k.startswith("transfer_")})
    order = {}
    for r in records:
        order.setdefault(r["label"], r)
    rows = reporting.aggregate(records, "label", keys)
    for row in rows:
        first = order[row["label"]]
        row.update({field: first[field] for field in ROW_FIELDS if field != "seed"})
        row["row"] = row["label"].replace(" ", "\n", 2)  # the figure's tick label
    position = {lab: i for i, lab in enumerate(order)}
    return sorted(rows, key=lambda row: position[row["label"]])


def _title(kind, config, records):
    pgd, table = config["pgd"], config["table"]
    seeds = sorted({r["seed"] for r in records})
    start = "random start" if pgd["eval_random_start"] else "start at x"
    what = {"rsr_table1": "RSR Table 1: PGD / CNI / Lasso / RSR before and after threshold pruning at equal sparsity",
            "rsr_width": "RSR Table 2: width ablation", "rsr_noise": "RSR Table 5: inference noise on / off",
            "rsr_blackbox": "RSR Table 3: black-box attacks"}[kind]
    text = (f"{what} — {config['model']['name']} on {config['data']['name']}, {len(seeds)} seed(s) "
            f"(mean ± 95 % CI over seeds); PGD-{pgd['eval_steps']} at ε = {pgd['eps']:.4g}, step "
            f"{pgd['step_size']:.4g}, {start}, on the first {table['num_examples']} test images; clean accuracy on "
            f"the whole test split; after-pruning rows at target sparsity "
            f"{', '.join(f'{s:g}' for s in table['sparsities'])}.")
    if kind == BLACK_BOX:
        sources = ", ".join(f"{name} ({s['path'] or s['model'] + ' ' + s['training']})"
                            for name, s in config["transfer"]["sources"].items())
        text += (f" ZOO on {config['zoo']['num_examples']} seeded random test images; transfer: PGD crafted on "
                 f"{sources}, accuracy of the target.")
    return text


def _section(kind, config, records, figure):
    rows = summary_rows(kind, records)
    if kind == BLACK_BOX:
        transfer = sorted({k for r in records for k in r if k.startswith("transfer_")})
        columns = _SETTING_COLUMNS[kind] + _BLACK_BOX_COLUMNS + [
            (k, f"transfer from {k[len('transfer_'):]}", "{:.4f}") for k in transfer] + [("n", "seeds", "{:d}")]
        measures = _FIGURE_MEASURES["black"] + [(k, f"transfer {k[len('transfer_'):]}") for k in transfer]
    else:
        columns = _SETTING_COLUMNS[kind] + _WHITE_BOX_COLUMNS
        measures = _FIGURE_MEASURES["white"]
    title = _title(kind, config, records)
    plotting.plot_accuracy_by_row(rows, figure, measures, title=f"{config['model']['name']}: {kind}")
    return (f"### {title}\n\n" + reporting.markdown_table(rows, columns)
            + f"\n![{kind}]({figure})\n")


def report_section(run_dirs):
    """The markdown of RSR table runs: one table (mean ± 95 % CI over every seed found) per kind and model.

    Runs of one kind, model, dataset and config variant are pooled (e.g. seeds run in separate
    directories); each block's figure is written beside the first run's results as
    ``report.png``. A seed found in two directories is refused
    (:func:`tfsparse.reporting.pooled_records`).
    """
    groups = {}
    for run_dir in run_dirs:
        state = _read(os.path.join(run_dir, "results.json"))
        config = _read(os.path.join(run_dir, "config.json"))["config"]
        key = (state["pipeline"], config["model"]["name"], config["data"]["name"], config.get("variant"))
        group = groups.setdefault(key, {"config": config, "runs": [], "dir": run_dir})
        group["runs"].append((run_dir, state.get("records", [])))
    sections = []
    for (kind, _, _, _), group in groups.items():
        group["records"] = reporting.pooled_records(group["runs"])
        if not group["records"]:
            raise ConfigError(f"{group['dir']} holds no completed RSR table row yet; run or --resume it first")
        sections.append(_section(kind, group["config"], group["records"], os.path.join(group["dir"], "report.png")))
    return "\n".join(sections)


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path} cannot be read ({error}); is this an RSR table run directory?") from None
