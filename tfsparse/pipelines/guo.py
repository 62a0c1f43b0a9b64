"""Guo et al. 2018's sweep: robustness vs weight sparsity under progressive pruning (scripts/sweep.py).

For each seed: train a dense reference with the ``train`` section, then ``prune.rounds``
rounds of removing ``prune.rate`` of the remaining weights per layer, retraining between
rounds (Guo §4.1 after Han et al. 2015). After training and after every round: clean
accuracy (whole test split), weight sparsity counted in the stripped weights, and from
:func:`tfsparse.evaluation.evaluate` on the first ``eval.num_examples`` test images
r∞ = accuracy under FGS at ε (Guo eq. 5, MNIST ε = 0.1) and r2 = (1/N) Σ 1[y = ŷ]·‖x̃ − x‖₂
with x̃ from DeepFool (Guo eq. 1/5).

The unit of work is one (seed, round): its stripped weights go to
``checkpoints/seed<S>/round<R>.weights.h5`` and its record to ``results.json`` before the
next round starts, so ``--resume`` continues after the last completed round and ends with
the records of an uninterrupted run; the kept weights also let a later attack re-evaluate
any round without retraining.

Under ``distribute`` the dense training and every round's pruning and retraining run in the
strategy's scope (``train.batch_size`` is the global batch); each round is measured and saved
from a single-device copy. ``multi_worker`` is refused: every round retrains tfmot pruning
wrappers, which cannot train across workers (:func:`~tfsparse.pipelines._build.distribution`).
"""

import os
import time

from tfsparse import plotting
from tfsparse import reporting
from tfsparse import results
from tfsparse import sparsity
from tfsparse import training
from tfsparse.pipelines._build import ROBUSTNESS_COLUMNS
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import distribution
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._build import robustness_record
from tfsparse.pipelines._build import single_device_copy
from tfsparse.pipelines._build import strategy_scope
from tfsparse.pipelines._build import train_section
from tfsparse.pipelines._run import Run

KIND = "guo_progressive_pruning"
MEASURES = ["target_sparsity", "sparsity", "clean_accuracy", "r_inf", "r2"]
TABLE_COLUMNS = [("round", "round", "{:d}"), ("target_sparsity", "target sparsity", "{:.4f}"), *ROBUSTNESS_COLUMNS]


def round_weights_path(run, seed, round_index):
    """Where the stripped weights of (seed, round) are kept."""
    return run.file("checkpoints", f"seed{seed}", f"round{round_index}.weights.h5")


def _save_weights(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path[: -len(".weights.h5")] + ".partial.weights.h5"
    model.save_weights(partial)
    os.replace(partial, path)


def run_sweep(config, workdir, *, resume=False, log=print):
    """Runs (or with ``resume`` continues) the sweep of ``config`` in ``workdir``.

    Writes ``config.json``, ``results.json`` (status, ``last_completed`` = ``seed S round
    R``, every record so far; rewritten after each round), per-round weights under
    ``checkpoints/``, and when complete ``results.csv``, ``results.md`` and
    ``robustness_vs_sparsity.png``.

    Args:
      config: a validated config (see ``configs/guo_mnist.py``).
      workdir: the run directory.
      resume: continue an interrupted run in ``workdir`` (same config).
      log: progress sink, one line per round.

    Returns:
      The absolute path of the run directory.
    """
    strategy, _ = distribution(config, "train", wrappers=True)
    run = Run(workdir, config, KIND, resume=resume).prepare()
    if run.already_complete:
        log(f"run {run.path} is already complete; nothing to resume")
        return run.path
    dataset = load_data(config.data)
    log(f"data: {dataset.name} from {dataset.source}: {len(dataset.x_train)} train / {len(dataset.x_test)} test")
    if strategy is not None:
        log(f"distribute={config.distribute}: {strategy.num_replicas_in_sync} replicas, global batch "
            f"{config.train.batch_size}")
    records = list((run.previous or {}).get("records", []))
    dense_cfg = train_section(config)
    retrain_cfg = train_section(config, learning_rate=config.prune.retrain_learning_rate,
                                lr_schedule=config.prune.retrain_lr_schedule, steps=config.prune.retrain_steps,
                                epochs=0.0)
    with run.start(experiment=KIND, model=config.model.name, dataset=config.data.name,
                   fgs_eps=config.eval.fgs_eps, records=records):

        def record(seed, round_index, target, model, seconds):
            if strategy is not None:
                model = single_device_copy(model, config.model, dataset, seed)
            _save_weights(model, round_weights_path(run, seed, round_index))
            entry = {"seed": seed, "round": round_index, "target_sparsity": target, "train_seconds": seconds}
            entry.update(robustness_record(model, dataset, config))
            records.append(entry)
            run.update(last_completed=f"seed {seed} round {round_index}", records=records,
                       summary=reporting.aggregate(records, "round", MEASURES))
            log(f"seed {seed} round {round_index}/{config.prune.rounds}: sparsity {entry['sparsity']:.4f} "
                f"clean {entry['clean_accuracy']:.4f} r_inf {entry['r_inf']:.4f} r2 {entry['r2']:.4f} "
                f"(train {seconds:.1f} s, eval {entry['eval_seconds']:.1f} s)")

        for seed in config.seeds:
            done = [r["round"] for r in records if r["seed"] == seed]
            last = max(done) if done else -1
            if last == config.prune.rounds:
                continue
            with strategy_scope(strategy):
                model = build_model(config.model, dataset, seed)
                if last >= 0:
                    model.load_weights(round_weights_path(run, seed, last))
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
        _write_reports(run.path, config, records)
    return run.path


def _write_reports(run_dir, config, records):
    flat = [{k: v for k, v in r.items() if k != "layer_sparsity"} for r in records]
    results.write_csv(os.path.join(run_dir, "results.csv"), flat)
    summary = reporting.aggregate(records, "round", MEASURES)
    title = (
        f"{config.model.name} on {config.data.name}: progressive pruning "
        f"(ρ = {config.prune.rate:.3g}, {len(config.seeds)} seed(s)); r∞ by FGS ε = {config.eval.fgs_eps}, "
        f"r2 by DeepFool on {records[0]['num_eval']} test images"
    )
    results.atomic_write_text(
        os.path.join(run_dir, "results.md"), f"# {title}\n\n" + reporting.markdown_table(summary, TABLE_COLUMNS)
    )
    plotting.plot_robustness_vs_sparsity(records, os.path.join(run_dir, "robustness_vs_sparsity.png"),
                                         title=config.model.name)
