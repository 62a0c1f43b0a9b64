"""Guo et al. 2018's central experiment: robustness vs weight sparsity under progressive pruning.

For each seed: train a dense reference, then m rounds of progressive magnitude pruning
(ρ of the remaining weights per layer per round, retraining between rounds). After
training and after every round: clean accuracy (whole test split), weight sparsity
counted in the stripped weights, r∞ = accuracy under FGS at ε (Guo eq. 5, MNIST ε = 0.1)
and r2 = (1/N) Σ 1[y = ŷ]·‖x̃ − x‖₂ with x̃ from DeepFool (Guo eq. 1/5) on a fixed
subset of the test split.
"""

import os
import time

from tfsparse import plotting
from tfsparse import reporting
from tfsparse import results
from tfsparse import sparsity
from tfsparse import training
from tfsparse.builders import build_model
from tfsparse.builders import open_run
from tfsparse.builders import train_section
from tfsparse.experiments.measure import robustness_record

TABLE_COLUMNS = [
    ("round", "round", "{:d}"),
    ("target_sparsity", "target sparsity", "{:.4f}"),
    ("sparsity", "weight sparsity", "{:.4f}"),
    ("clean_accuracy", "clean accuracy", "{:.4f}"),
    ("r_inf", "r∞ (FGS)", "{:.4f}"),
    ("r2", "r2 (DeepFool)", "{:.4f}"),
]


def run_sweep(config, workdir, log=print):
    """Runs the sweep of ``config`` and writes its run directory.

    Writes ``config.json`` (resolved config + metadata), ``results.json`` (rewritten after
    every round, so an interrupted run keeps what it measured), ``results.csv``,
    ``results.md`` and ``robustness_vs_sparsity.png``.

    Args:
      config: a validated config (see ``configs/guo_mnist.py``).
      workdir: the run directory; must not exist or be empty.
      log: progress sink, one line per step.

    Returns:
      The absolute path of the run directory.
    """
    run_dir, dataset, meta = open_run(config, workdir, log)
    records = []

    def record(seed, round_index, target, model, seconds):
        entry = {"seed": seed, "round": round_index, "target_sparsity": target, "train_seconds": seconds}
        entry.update(robustness_record(model, dataset, config))
        records.append(entry)
        _write_results(run_dir, config, meta, records)
        log(
            f"seed {seed} round {round_index}/{config.prune.rounds}: sparsity {entry['sparsity']:.4f} "
            f"clean {entry['clean_accuracy']:.4f} r_inf {entry['r_inf']:.4f} r2 {entry['r2']:.4f} "
            f"(train {seconds:.1f} s, eval {entry['eval_seconds']:.1f} s)"
        )

    dense_cfg = train_section(config)
    retrain_cfg = train_section(
        config,
        learning_rate=config.prune.retrain_learning_rate,
        lr_schedule=config.prune.retrain_lr_schedule,
    )
    for seed in config.seeds:
        model = build_model(config.model, dataset, seed)
        started = time.perf_counter()
        training.train(model, dataset.x_train, dataset.y_train, dense_cfg, seed=seed, verbose=config.verbose)
        record(seed, 0, 0.0, model, time.perf_counter() - started)

        clock = {"start": time.perf_counter()}

        def retrain(wrapped, seed=seed, clock=clock):
            clock["start"] = time.perf_counter()
            training.train(
                wrapped, dataset.x_train, dataset.y_train, retrain_cfg,
                steps=config.prune.retrain_steps, seed=seed, verbose=config.verbose,
            )

        def on_round(index, target, stripped, seed=seed, clock=clock):
            record(seed, index, target, stripped, time.perf_counter() - clock["start"])

        sparsity.progressive_prune(
            model,
            rounds=config.prune.rounds,
            rate=config.prune.rate,
            retrain=retrain,
            keep_dense=tuple(config.prune.keep_dense),
            on_round=on_round,
        )
    _write_reports(run_dir, config, records)
    return run_dir


def _write_results(run_dir, config, meta, records):
    summary = reporting.aggregate(records, "round", ["target_sparsity", "sparsity", "clean_accuracy", "r_inf", "r2"])
    results.write_json(
        os.path.join(run_dir, "results.json"),
        {"experiment": "guo_progressive_pruning", "model": config.model.name, "dataset": config.data.name,
         "fgs_eps": config.eval.fgs_eps, "records": records, "summary": summary, "metadata": meta},
    )


def _write_reports(run_dir, config, records):
    flat = [{k: v for k, v in r.items() if k != "layer_sparsity"} for r in records]
    results.write_csv(os.path.join(run_dir, "results.csv"), flat)
    summary = reporting.aggregate(records, "round", ["target_sparsity", "sparsity", "clean_accuracy", "r_inf", "r2"])
    title = (
        f"{config.model.name} on {config.data.name}: progressive pruning "
        f"(ρ = {config.prune.rate:.3g}, {len(config.seeds)} seed(s)); r∞ by FGS ε = {config.eval.fgs_eps}, "
        f"r2 by DeepFool on {min(config.eval.num_examples, records[0]['num_eval'])} test images"
    )
    results.atomic_write_text(
        os.path.join(run_dir, "results.md"), f"# {title}\n\n" + reporting.markdown_table(summary, TABLE_COLUMNS)
    )
    plotting.plot_robustness_vs_sparsity(records, os.path.join(run_dir, "robustness_vs_sparsity.png"), title=config.model.name)
