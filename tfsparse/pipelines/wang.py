"""Wang et al.'s one-shot pruning table (Tables 1–2): GUP / LUP / FP / NS × p, inherited vs re-initialised.

One dense reference is trained (with the network-slimming L1 penalty on BN γ when NS is
among the methods, Liu et al. 2017). For each method and pruning ratio p the reference is
pruned once and retrained — with its surviving weights ("inherited") and, as the control
of Wang Table 2, with the same structure or mask but fresh weights ("reinit": FP-rand /
scratch). Every resulting model gets the measurements of ``robustness_record`` (by the one
evaluator) plus its parameter and FLOP reduction. ``p`` is the fraction of weights (GUP,
LUP) or of channels (FP: filters of each conv; NS: BN channels globally) removed.

The unit of work is one table row: the reference's weights are kept under
``checkpoints/`` and every row goes to ``results.json`` as it completes, so ``--resume``
continues with the first missing row.

Under ``distribute`` the reference and every pruned model are built, pruned and retrained in
the strategy's scope (``train.batch_size`` is the global batch); each row is measured on a
single-device copy, and in a multi-worker cluster (methods fp and ns only: GUP/LUP retrain
tfmot pruning wrappers, which cannot train across workers) only the chief measures and writes
the run directory.
"""

import os
import time

from tfsparse import reporting
from tfsparse import results
from tfsparse import sparsity
from tfsparse import training
from tfsparse.pipelines._build import ROBUSTNESS_COLUMNS
from tfsparse.pipelines._build import WRAPPED_METHODS
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import distribution
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._build import robustness_record
from tfsparse.pipelines._build import strategy_scope
from tfsparse.pipelines._build import train_section
from tfsparse.pipelines._run import Run

KIND = "wang_oneshot"
TABLE_COLUMNS = [("method", "method", "{}"), ("p", "p", "{:.2f}"), ("init", "weights", "{}"),
                 ("params_reduction", "params removed", "{:.4f}"), *ROBUSTNESS_COLUMNS]


def run_oneshot_table(config, workdir, *, resume=False, log=print):
    """Runs (or with ``resume`` continues) the table of ``config`` (``configs/wang_mnist.py``).

    Writes ``config.json``, ``results.json`` (status, ``last_completed`` row, rows so far),
    and when complete ``results.csv`` and ``results.md``. Returns the run directory.
    """
    strategy, chief = distribution(config, "train", wrappers=bool(set(config.methods) & set(WRAPPED_METHODS)))
    run = Run(workdir, config, KIND, resume=resume, writer=chief).prepare()
    if run.already_complete:
        log(f"run {run.path} is already complete; nothing to resume")
        return run.path
    dataset = load_data(config.data)
    log(f"data: {dataset.name} from {dataset.source}: {len(dataset.x_train)} train / {len(dataset.x_test)} test")
    if strategy is not None:
        log(f"distribute={config.distribute}: {strategy.num_replicas_in_sync} replicas, global batch "
            f"{config.train.batch_size}" + ("" if chief else " (worker: writes nothing to the run directory)"))
    seed = config.seeds[0]
    rows = list((run.previous or {}).get("rows", []))
    done = {(r["method"], r["p"], r["init"]) for r in rows}
    reference_weights = run.file("checkpoints", "reference.weights.h5")

    def measured(model):
        """The model evaluation sees: under a strategy, a copy with plain variables made outside its
        scope, on every worker (reading the trained weights is a collective)."""
        return sparsity.copy_model(model) if strategy is not None else model

    with run.start(experiment=KIND, model=config.model.name, dataset=config.data.name, rows=rows):
        with strategy_scope(strategy):
            dense = build_model(config.model, dataset, seed)
            if "ns" in config.methods and config.prune.ns_l1 > 0:
                dense.add_loss(sparsity.bn_gamma_l1(dense, config.prune.ns_l1))
            if ("dense", 0.0, "inherited") in done:
                dense.load_weights(reference_weights)
            else:
                started = time.perf_counter()
                training.train(dense, dataset.x_train, dataset.y_train, train_section(config), seed=seed,
                               verbose=config.verbose)
                log(f"dense reference trained in {time.perf_counter() - started:.1f} s")
        reference_model = measured(dense)
        if chief and ("dense", 0.0, "inherited") not in done:
            os.makedirs(os.path.dirname(reference_weights), exist_ok=True)
            reference_model.save_weights(reference_weights)
        reference = sparsity.structure_summary(reference_model)
        retrain_cfg = train_section(config, learning_rate=config.prune.retrain_learning_rate,
                                    lr_schedule=config.prune.retrain_lr_schedule,
                                    steps=config.prune.retrain_steps, epochs=0.0)

        def retrain(model):
            training.train(model, dataset.x_train, dataset.y_train, retrain_cfg, seed=seed, verbose=config.verbose)
            return sparsity.strip(model) if sparsity.has_pruning_wrappers(model) else model

        def record(method, p, init, model):
            model = measured(model)
            if not chief:
                return
            row = {"method": method, "p": p, "init": init}
            row.update(robustness_record(model, dataset, config))
            reduction = sparsity.structure_reduction(reference_model, model)
            row["params_reduction"] = reduction["params"] if method in ("fp", "ns") else row["sparsity"]
            row["flops_reduction"] = reduction["flops"]
            rows.append(row)
            run.update(last_completed=f"{method} p={p} {init}", reference=reference, rows=rows)
            log(f"{method:>5} p={p:.2f} {init:>9}: sparsity {row['sparsity']:.4f} clean {row['clean_accuracy']:.4f} "
                f"r_inf {row['r_inf']:.4f} r2 {row['r2']:.4f}")

        if ("dense", 0.0, "inherited") not in done:
            record("dense", 0.0, "inherited", dense)
        for method in config.methods:
            for p in config.sparsities:
                wanted = [init for init in ("inherited", "reinit") if init in config.inits and (method, p, init) not in done]
                if not wanted:
                    continue
                with strategy_scope(strategy):
                    inherited = retrain(sparsity.prune_with(
                        method, dense, p, keep_dense=tuple(config.prune.keep_dense),
                        layer_types=tuple(config.prune.layer_types), ns_max_per_layer=config.prune.ns_max_per_layer,
                    ))
                if "inherited" in wanted:
                    record(method, p, "inherited", inherited)
                if "reinit" not in wanted:
                    continue
                with strategy_scope(strategy):
                    if method in ("gup", "lup"):
                        fresh = sparsity.wrap_with_masks(
                            sparsity.reinitialize(dense, seed=seed + 1, keep_mask=False), sparsity.masks(inherited)
                        )
                    else:
                        fresh = sparsity.reinitialize(inherited, seed=seed + 1, keep_mask=False)
                    fresh = retrain(fresh)
                record(method, p, "reinit", fresh)

        if chief:
            flat = [{k: v for k, v in r.items() if k != "layer_sparsity"} for r in rows]
            results.write_csv(run.file("results.csv"), flat)
            title = (f"{config.model.name} on {config.data.name}: one-shot pruning, {config.prune.retrain_steps} "
                     f"retraining steps; r∞ by FGS ε = {config.eval.fgs_eps}, r2 by DeepFool on "
                     f"{rows[0]['num_eval']} test images")
            results.atomic_write_text(run.file("results.md"),
                                      f"# {title}\n\n" + reporting.markdown_table(rows, TABLE_COLUMNS))
    return run.path
