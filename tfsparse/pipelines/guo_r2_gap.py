"""The r2-gap experiment (``configs/guo_r2_gap.py``): r2 of dense LeNets under candidate causes.

Guo et al. 2018 report r2 (DeepFool distance, eq. 1 / 5) about 1.7× ours on LeNet-5 and 1.2×
on LeNet-300-100, with clean accuracy and r∞ matching. For each model of ``models`` and each
seed, one Caffe-policy training run (the ``train`` section) is measured after each of
``lengths`` iterations, under each entry of ``variants``: a change of the ``eval`` section
(DeepFool's box, box rule, iterations, overshoot; C&W instead of DeepFool) and the ``output``
attacked — the logits, or the softmax probabilities that Caffe's ``prob`` layer outputs
(the model with a softmax appended; the attack's margins are then probability differences).

Every measurement goes through :func:`tfsparse.pipelines._build.robustness_record`, the
sweep's evaluator, so r2 follows the sweep's failure rule and carries its failure count.
A declaration on the experiment engine (:mod:`~tfsparse.pipelines.engine`): the unit of work
is one row (model, seed, length, variant), written to ``results.json`` as it is measured; the
seed's training run of a model is made once, for its first row, and kept for the others (a
resumed run trains it again: the same seed gives the same weights).
"""

import os
import time

import ml_collections

from tfsparse import reporting
from tfsparse import results
from tfsparse import training
from tfsparse.compat import keras
from tfsparse.errors import ConfigError
from tfsparse.pipelines import engine
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import guo_suite
from tfsparse.pipelines._build import robustness_record
from tfsparse.pipelines._build import train_section

KIND = "guo_r2_gap"
OUTPUTS = ("logits", "softmax")


def variant_configs(config):
    """``{variant: (output, config)}``: the run config with each variant's eval keys applied.

    Every variant is checked here, before any training (its attack is built once).

    Raises:
      ConfigError: for an unknown output or eval key, or a bad attack setting.
    """
    variants = {}
    for name, changes in config.variants.items():
        changes = dict(changes)
        output = changes.pop("output", "logits")
        if output not in OUTPUTS:
            raise ConfigError(f"variants.{name}.output {output!r} is unknown; choose from {OUTPUTS}")
        unknown = sorted(set(changes) - set(config.eval.keys()))
        if unknown:
            raise ConfigError(f"variants.{name} changes {unknown}, which are not eval keys; "
                              f"choose from {sorted(config.eval.keys())}")
        measured = ml_collections.ConfigDict(config.to_dict())
        measured.eval.update(changes)
        guo_suite(measured.eval, measured.xla)  # raises ConfigError on a bad setting
        variants[name] = (output, measured)
    return variants


def _lengths(config):
    lengths = tuple(int(n) for n in config.lengths)
    if not lengths or list(lengths) != sorted(set(lengths)) or lengths[0] < 1:
        raise ConfigError(f"lengths must be increasing positive iteration counts, got {lengths}")
    if lengths[-1] != config.train.steps:
        raise ConfigError(f"the last of lengths ({lengths[-1]}) must equal train.steps ({config.train.steps})")
    return lengths


class _Snapshots(keras.callbacks.Callback):
    """Keeps a copy of the weights after each iteration count in ``lengths``."""

    def __init__(self, lengths):
        super().__init__()
        self.lengths = set(lengths)
        self.weights = {}

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step in self.lengths and step not in self.weights:
            self.weights[step] = self.model.get_weights()


def with_softmax(model):
    """``model`` followed by a softmax: the probabilities Caffe's ``prob`` layer outputs."""
    return keras.Sequential([model, keras.layers.Softmax()], name=f"{model.name}_softmax")


def _check(config):
    _lengths(config)
    variant_configs(config)


def _units(config, seed):
    return [engine.Unit(f"{name} @ {steps} {variant}",
                        {"model": name, "seed": seed, "train_steps": steps, "variant": variant})
            for name in config.models for steps in _lengths(config) for variant in config.variants]


def _trained(work, name):
    """The Caffe-policy training run of ``name`` for this seed, with its weights at every length."""
    config, dataset, lengths = work.config, work.dataset, _lengths(work.config)
    model_cfg = ml_collections.ConfigDict(config.model.to_dict())
    model_cfg.name = name
    model = build_model(model_cfg, dataset, work.seed)
    snapshots = _Snapshots(lengths)
    started = time.perf_counter()
    training.train(model, dataset.x_train, dataset.y_train, train_section(config), seed=work.seed,
                   verbose=config.verbose, callbacks=[snapshots])
    work.log(f"{name} seed {work.seed}: trained {lengths[-1]:,} iterations in {time.perf_counter() - started:.0f} s")
    return model, snapshots.weights


def _measure_row(work, unit):
    """r2 of the model after ``train_steps`` iterations under one variant (its eval keys and output)."""
    name, steps, variant = unit.fields["model"], unit.fields["train_steps"], unit.fields["variant"]
    model, weights = work.once(f"trained {name}", lambda: _trained(work, name))
    output, measured = work.once("variants", lambda: variant_configs(work.config))[variant]
    model.set_weights(weights[steps])
    attacked = with_softmax(model) if output == "softmax" else model
    measured.model.name = name
    record = robustness_record(attacked, work.dataset, measured)
    measure = next(iter(guo_suite(measured.eval, measured.xla)))
    return {"output": output, "measure": measure, "clean_accuracy": record["clean_accuracy"],
            "r2": record[measure], "failures": record[f"{measure}_failures"], "num_eval": record["num_eval"],
            "eval_seconds": record["eval_seconds"]}


def _write_outputs(run_dir):
    _, state, _ = engine.read_run(run_dir, (KIND,))
    results.write_csv(os.path.join(run_dir, "results.csv"), state["records"])
    results.atomic_write_text(os.path.join(run_dir, "results.md"), report_section([run_dir]))


# Runs (or with resume continues) the r2-gap experiment of a config: run_r2_gap(config, workdir, *,
# resume=False, log=print) writes config.json, results.json (rows so far) and when complete
# results.csv and results.md (rows averaged over seeds, mean ± 95 % CI); returns the run directory.
run_r2_gap = engine.Experiment(
    kind=KIND, check=_check, units=_units, run_unit=_measure_row, write_outputs=_write_outputs,
    report=lambda run_dirs: report_section(run_dirs),
    facts=lambda config, dataset: {"experiment": KIND, "dataset": config.data.name},
    describe=lambda row, config: (f"{row['model']} seed {row['seed']} @ {row['train_steps']:,}: {row['variant']}: r2 "
                          f"{row['r2']:.3f} ({row['failures']} failures, {row['eval_seconds']:.1f} s)"))


def pivot(rows):
    """One row per (model, training length): clean accuracy, then each variant's r2 (mean over
    seeds, with ``_ci95``) and the variants that left failures, for :func:`report_section`."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    merged = {}  # one record per (model, length, seed): the variants side by side
    for r in rows:
        entry = merged.setdefault((r["model"], r["train_steps"], r["seed"]),
                                  {"group": (r["model"], r["train_steps"]), "clean_accuracy": r["clean_accuracy"]})
        entry.update({r["variant"]: r["r2"], f"{r['variant']}_failures": r["failures"]})
    summary = reporting.aggregate(list(merged.values()), "group",
                                  ["clean_accuracy", *variants, *[f"{v}_failures" for v in variants]])
    for row in summary:
        row["model"], row["train_steps"] = row.pop("group")
        row["failures"] = ", ".join(f"{v} {row[f'{v}_failures']:g}" for v in variants
                                    if row[f"{v}_failures"]) or "none"
    columns = [("model", "model", "{}"), ("train_steps", "iterations", "{:,}"),
               ("clean_accuracy", "clean accuracy", "{:.4f}"), *[(v, v, "{:.3f}") for v in variants],
               ("failures", "failures (mean per seed)", "{}")]
    return summary, columns


def report_section(run_dirs):
    """Markdown: r2 per model and training length, one column per variant (mean ± 95 % CI over seeds)."""
    blocks = []
    for run_dir in run_dirs:
        _, state, config = engine.read_run(run_dir, (KIND,))
        rows = state["records"]
        seeds = sorted({r["seed"] for r in rows})
        n = rows[0]["num_eval"] if rows else 0
        summary, columns = pivot(rows)
        blocks.append(
            f"r2 of dense Caffe-policy LeNets on {config['data']['name']} (first {n:,} test images; "
            f"{len(seeds)} seed(s) {seeds}, mean ± 95 % CI over seeds when several), one column per variant "
            f"(`configs/guo_r2_gap.py`); failures: correctly classified images the attack did not flip, left out "
            f"of r2. Run: `{os.path.basename(os.path.normpath(run_dir))}`.\n\n"
            + reporting.markdown_table(summary, columns))
    return "\n".join(blocks)
