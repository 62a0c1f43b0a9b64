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
The unit of work is one (model, seed): its rows go to ``results.json`` when all its lengths
and variants are measured, and ``--resume`` continues with the next one.
"""

import json
import os
import time

import ml_collections

from tfsparse import reporting
from tfsparse import results
from tfsparse import training
from tfsparse.compat import keras
from tfsparse.errors import ConfigError
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import guo_suite
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._build import robustness_record
from tfsparse.pipelines._build import train_section
from tfsparse.pipelines._run import Run

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


def run_r2_gap(config, workdir, *, resume=False, log=print):
    """Runs (or with ``resume`` continues) the r2-gap experiment of ``config`` in ``workdir``.

    Writes ``config.json``, ``results.json`` (rows so far) and when complete ``results.csv``
    and ``results.md`` (rows averaged over seeds, mean ± 95 % CI). Returns the run directory.
    """
    lengths = _lengths(config)
    variants = variant_configs(config)
    run = Run(workdir, config, KIND, resume=resume).prepare()
    if run.already_complete:
        log(f"run {run.path} is already complete; nothing to resume")
        return run.path
    dataset = load_data(config.data, log=log)
    rows = list((run.previous or {}).get("records", []))
    with run.start(experiment=KIND, dataset=config.data.name, records=rows):
        for name in config.models:
            model_cfg = ml_collections.ConfigDict(config.model.to_dict())
            model_cfg.name = name
            for seed in config.seeds:
                if any(r["model"] == name and r["seed"] == seed for r in rows):
                    continue
                model = build_model(model_cfg, dataset, seed)
                snapshots = _Snapshots(lengths)
                started = time.perf_counter()
                training.train(model, dataset.x_train, dataset.y_train, train_section(config), seed=seed,
                               verbose=config.verbose, callbacks=[snapshots])
                log(f"{name} seed {seed}: trained {lengths[-1]:,} iterations in {time.perf_counter() - started:.0f} s")
                for steps in lengths:
                    model.set_weights(snapshots.weights[steps])
                    for variant, (output, measured) in variants.items():
                        attacked = with_softmax(model) if output == "softmax" else model
                        measured.model.name = name
                        record = robustness_record(attacked, dataset, measured)
                        measure = next(iter(guo_suite(measured.eval, measured.xla)))
                        row = {"model": name, "seed": seed, "train_steps": steps, "variant": variant,
                               "output": output, "measure": measure, "clean_accuracy": record["clean_accuracy"],
                               "r2": record[measure], "failures": record[f"{measure}_failures"],
                               "num_eval": record["num_eval"], "eval_seconds": record["eval_seconds"]}
                        rows.append(row)
                        log(f"{name} seed {seed} @ {steps:,}: {variant}: r2 {row['r2']:.3f} "
                            f"({row['failures']} failures, {row['eval_seconds']:.1f} s)")
                run.update(last_completed=f"{name} seed {seed}", records=rows)
        results.write_csv(os.path.join(run.path, "results.csv"), rows)
        results.atomic_write_text(os.path.join(run.path, "results.md"), report_section([run.path]))
    return run.path


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
        with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as handle:
            rows = json.load(handle)["records"]
        with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as handle:
            config = json.load(handle)["config"]
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
