"""Wang et al. 2020, Tables 1–2: adversarial one-shot pruning (LUP / GUP / FP / NS × p), inherited vs
re-initialised weights, with PGD-100, the distortion lower bound, AutoAttack and the Thm 2 bound.

Per seed (``config.seeds``):

1. **Reference.** The dense model is trained adversarially (Madry PGD, the ``pgd`` section,
   ``adversarial_train`` policy; :func:`tfsparse.pipelines.rsr.adversarial_model`), with the
   network-slimming L1 penalty on BN γ when NS is among the methods (Liu et al. 2017).
2. **Table 1, inherited.** For each method and ratio p the reference is pruned once
   (:func:`tfsparse.sparsity.prune_with`: GUP/LUP masks held by tfmot wrappers, FP/NS
   physically narrower) and **adversarially fine-tuned** with the same PGD for the
   ``finetune`` budget (Stop-E: a fixed number of epochs, LR ÷10 at each third on CIFAR).
3. **Table 2, re-initialised.** The same mask (GUP/LUP: "scratch") or the same narrow shape
   (FP: "FP-rand"; NS: "scratch") with fresh weights drawn from the layers' initialisers
   (:func:`tfsparse.sparsity.reinitialize`), adversarially trained **to convergence**: Stop-C
   (Wang §4: LR ÷10 after ``stop_c.patience`` epochs without a relative improvement of
   ``stop_c.min_delta`` of the validation loss, stop after ``stop_c.max_decays`` decays), capped
   at ``scratch``'s epochs. Both budgets (epochs run, optimizer steps, what stopped training)
   are in every row.

The validation split is the last ``validation.num_examples`` training images, held out of every
training run. At each epoch end it is attacked with PGD-``validation.pgd_steps`` at the training
ε: the adversarial cross-entropy is Stop-C's validation loss, and with ``select_epoch =
"best_sum"`` the weights of the epoch with the highest clean + PGD accuracy are kept — Wang
§4.2's "we choose to report the performance where the sum of adversarial accuracy and clean
accuracy is the highest", chosen here on the validation split rather than on the test set.
``select_epoch = "last"`` keeps the final weights.

Every row is measured by :func:`measure` (the one evaluator, :func:`tfsparse.evaluation.evaluate`):
clean accuracy on the whole test split; on the first ``measure.num_examples`` test images PGD-
``measure.pgd_steps`` accuracy (Wang: PGD-100 at 8/255, step 2/255) and, with ``measure.autoattack``,
AutoAttack accuracy; the distortion lower bound (:func:`tfsparse.metrics.distortion_lower_bound`,
bisection of the PGD ε on the first ``measure.distortion_examples`` images: mean minimal l∞ ε and
mean l2 of the perturbation found, [0, 1] pixel units); weight sparsity; params/FLOPs removed
against the dense reference; the Thm 2 Lipschitz bound (:func:`tfsparse.metrics.lipschitz_bound`,
conv layers by their operator norms; log10 of the largest class pair, l∞ and l2); the L0/L1/L2
norm products (Fig. 1) and the histogram of the non-zero kernel weights (Figs. 2–4).

The unit of work is one row: the reference's and every row's weights go under ``checkpoints/``
and the row to ``results.json`` as it completes, so ``--resume`` continues with the first
missing row. While a row trains, its every epoch is checkpointed (``checkpoints/seed<s>/
<row>.training/``: model, optimizer, Stop-C's counters, the epoch selection), so a run killed
mid-row resumes at its last completed epoch with the result of an uninterrupted run. When
complete, ``results.csv``, ``results.md`` (Tables 1 and 2) and the figures are written;
:func:`report_section` renders the same from run directories (scripts/report.py). Runs on
one device (``distribute`` must be ``none``): tfmot's wrappers cannot be PGD-trained under a
strategy (:class:`~tfsparse.training.AdversarialModel`).
"""

import math
import os
import shutil
import time

import ml_collections
import numpy as np

from tfsparse import attacks
from tfsparse import metrics
from tfsparse import plotting
from tfsparse import reporting
from tfsparse import results
from tfsparse import sparsity
from tfsparse import training
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.compat import xla_setting
from tfsparse.errors import ConfigError
from tfsparse.evaluation import evaluate
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._run import Run
from tfsparse.pipelines.rsr import adversarial_model

KIND = "wang_oneshot"
SELECTIONS = ("last", "best_sum")
METHOD_ORDER = ("dense", "lup", "gup", "fp", "ns")
MEASURES = ["clean_accuracy", "pgd_accuracy", "autoattack_accuracy", "distortion_eps", "distortion_l2",
            "sparsity", "params_reduction", "flops_reduction", "lipschitz_linf_log10", "lipschitz_l2_log10",
            "train_epochs", "train_steps", "log_l0", "log_l1", "log_l2"]
TABLE1_COLUMNS = [
    ("method", "method", "{}"), ("p", "p", "{:.2f}"), ("clean_accuracy", "clean", "{:.4f}"),
    ("pgd_accuracy", "PGD", "{:.4f}"), ("autoattack_accuracy", "AutoAttack", "{:.4f}"),
    ("distortion_eps", "dist. ε (l∞)", "{:.4f}"), ("distortion_l2", "dist. l2", "{:.3f}"),
    ("sparsity", "weight sparsity", "{:.3f}"), ("params_reduction", "params removed", "{:.3f}"),
    ("flops_reduction", "FLOPs removed", "{:.3f}"), ("lipschitz_linf_log10", "log10 Thm 2 (l∞)", "{:.2f}"),
    ("lipschitz_l2_log10", "log10 Thm 2 (l2)", "{:.2f}"), ("n", "seeds", "{:d}"),
    ("clean_accuracy_vs_dense", "Δ clean vs dense (paired)", "{:.4f}"),
    ("pgd_accuracy_vs_dense", "Δ PGD vs dense (paired)", "{:.4f}"),
]
TABLE2_COLUMNS = [
    ("method", "method", "{}"), ("p", "p", "{:.2f}"), ("init", "weights", "{}"),
    ("clean_accuracy", "clean", "{:.4f}"), ("pgd_accuracy", "PGD", "{:.4f}"),
    ("distortion_eps", "dist. ε (l∞)", "{:.4f}"), ("train_epochs", "epochs run", "{:.1f}"),
    ("train_steps", "steps run", "{:.0f}"), ("budget", "budget", "{}"), ("n", "seeds", "{:d}"),
    ("clean_accuracy_vs_inherited", "Δ clean vs inherited (paired)", "{:.4f}"),
    ("pgd_accuracy_vs_inherited", "Δ PGD vs inherited (paired)", "{:.4f}"),
]
PAIRED = ("clean_accuracy", "pgd_accuracy")  # also as per-seed differences: to dense (Table 1), to inherited (Table 2)


# --- training ----------------------------------------------------------------------------------


class EpochValidation(training.CheckpointedCallback):
    """Robustness on the fixed validation split at every epoch end, and Wang's epoch selection.

    Attacks ``inner`` (in inference mode) with ``attack`` and logs ``val_clean_accuracy``,
    ``val_pgd_accuracy`` and ``val_loss`` (the mean cross-entropy on the PGD examples: the
    training objective, which Stop-C watches; place this callback before ``StopC``). With
    ``select="best_sum"`` it keeps the weights of the epoch with the highest clean + PGD
    accuracy and restores them when training ends (Wang §4.2). The selection is checkpointed
    state: a row resumed mid-training still selects among all its epochs.
    """

    best = training.Persistent(tf.float64, -math.inf)
    best_epoch = training.Persistent(tf.int64, None)
    best_clean_accuracy = training.Persistent(tf.float64, None)
    best_pgd_accuracy = training.Persistent(tf.float64, None)
    best_loss = training.Persistent(tf.float64, None)

    def __init__(self, inner, x, y, attack, *, select, batch_size, seed=0):
        super().__init__()
        self.inner, self.x, self.y, self.attack = inner, x, y, attack
        self.select, self.batch_size, self.seed = select, batch_size, seed
        self.best_weights = ([tf.Variable(w, trainable=False) for w in inner.get_weights()]
                             if select == "best_sum" else [])

    @property
    def best_logs(self):
        """The validation figures of the selected epoch (empty before the first epoch end)."""
        if self.best_epoch is None:
            return {}
        return {"val_clean_accuracy": self.best_clean_accuracy, "val_pgd_accuracy": self.best_pgd_accuracy,
                "val_loss": self.best_loss}

    def checkpoint_state(self):
        return tf.train.Checkpoint(scalars=super().checkpoint_state(), best_weights=self.best_weights)

    def on_epoch_end(self, epoch, logs=None):
        result = self.attack.run(self.inner, self.x, self.y, batch_size=self.batch_size, seed=self.seed)
        logits = self.inner.predict(result.x_adv, batch_size=self.batch_size, verbose=0)
        loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(self.y, logits, from_logits=True)))
        if logs is not None:
            logs.update(val_clean_accuracy=result.clean_accuracy, val_pgd_accuracy=result.adv_accuracy, val_loss=loss)
        score = result.clean_accuracy + result.adv_accuracy
        if self.select == "last" or score > self.best:
            self.best, self.best_epoch = score, epoch
            self.best_clean_accuracy, self.best_pgd_accuracy, self.best_loss = (
                result.clean_accuracy, result.adv_accuracy, loss)
            for variable, value in zip(self.best_weights, self.inner.get_weights()):
                variable.assign(value)

    def on_train_end(self, logs=None):
        if self.best_weights and self.best_epoch is not None:
            self.inner.set_weights([variable.numpy() for variable in self.best_weights])


def _split(dataset, config):
    """``(x_train, y_train, x_val, y_val)``: the last ``validation.num_examples`` training images held out."""
    n = int(config.validation.num_examples)
    if not 0 < n < len(dataset.x_train):
        raise ConfigError(f"validation.num_examples must be in [1, {len(dataset.x_train) - 1}] for "
                          f"{len(dataset.x_train)} training images, got {n}")
    return dataset.x_train[:-n], dataset.y_train[:-n], dataset.x_train[-n:], dataset.y_train[-n:].astype(np.int32)


def adversarial_fit(config, model, data, section, *, seed, warmup_epochs=0.0, stop_c=False, checkpoint_dir=None,
                    log=print):
    """PGD-trains ``model`` in place with the ``section`` policy; returns the budget actually used.

    The :class:`~tfsparse.training.AdversarialModel` is the one of
    :func:`tfsparse.pipelines.rsr.adversarial_model` (the ``pgd`` attack, clean weight 0),
    built over a view of ``config`` whose ``adversarial_train`` is ``config[section]`` and
    whose ε warm-up lasts ``warmup_epochs``. Masks of pruning wrappers are held
    (``UpdatePruningStep`` is added by :func:`tfsparse.training.train_adversarial`).

    Args:
      data: ``(x_train, y_train, x_val, y_val)`` from the fixed split.
      section: the train section (``adversarial_train``, ``finetune`` or ``scratch``).
      stop_c: train until Stop-C stops (``stop_c`` section), ``section``'s epochs as the cap.
      checkpoint_dir: checkpoint every epoch there (model, optimizer, Stop-C and the epoch
        selection) and, when it holds a checkpoint, continue from it
        (:func:`tfsparse.training.fit_arrays`); the result is that of an uninterrupted fit.

    Returns:
      ``{"train_epochs", "train_steps", "stopped_by", "selected_epoch", "val_clean_accuracy",
      "val_pgd_accuracy", "train_seconds", "budget_epochs", "lr_decays"}``.
    """
    x, y, x_val, y_val = data
    view = ml_collections.ConfigDict(config.to_dict())
    view.adversarial_train = config[section]
    view.pgd.eps_warmup_epochs = float(warmup_epochs)
    adversarial, train_cfg = adversarial_model(view, model, len(x))
    pgd = config.pgd
    monitor = EpochValidation(
        model, x_val, y_val,
        attacks.PGD(eps=pgd.eps, step_size=config.validation.pgd_step_size,
                    steps=int(config.validation.pgd_steps), jit_compile=xla_setting(config.xla)),
        select=config.select_epoch, batch_size=config.measure.batch_size, seed=pgd.seed)
    callbacks = [monitor]
    stopper = None
    if stop_c:
        s = config.stop_c
        stopper = training.StopC(patience=int(s.patience), min_delta=s.min_delta, factor=s.factor,
                                 max_decays=int(s.max_decays))
        callbacks.append(stopper)
    clock = training.TrainingClock()
    if checkpoint_dir is not None and training.checkpointed_epochs(checkpoint_dir):
        log(f"  {section}: resuming after epoch {training.checkpointed_epochs(checkpoint_dir)} ({checkpoint_dir})")
    training.train_adversarial(adversarial, x, y, train_cfg, seed=seed, verbose=config.verbose,
                               callbacks=[*callbacks, clock], checkpoint_dir=checkpoint_dir)
    budget = training.steps_for(train_cfg, len(x)) / math.ceil(len(x) / train_cfg.batch_size)
    epochs = clock.epochs
    stopped = "stop_c" if stopper is not None and stopper.stopped_epoch is not None else "budget"
    info = {"train_epochs": epochs, "train_steps": int(adversarial.optimizer.iterations.numpy()),
            "stopped_by": stopped, "budget_epochs": float(budget),
            "lr_decays": stopper.decays if stopper is not None else None,
            "selected_epoch": (monitor.best_epoch + 1) if monitor.best_epoch is not None else None,
            "val_clean_accuracy": monitor.best_logs.get("val_clean_accuracy"),
            "val_pgd_accuracy": monitor.best_logs.get("val_pgd_accuracy"),
            "train_seconds": clock.seconds}
    log(f"  {section}: {epochs} epochs ({info['train_steps']} steps, {stopped}), selected epoch "
        f"{info['selected_epoch']}: val clean {info['val_clean_accuracy']:.4f} PGD {info['val_pgd_accuracy']:.4f}")
    return info


# --- measurement -------------------------------------------------------------------------------


def eval_suite(config):
    """PGD-``measure.pgd_steps`` (Wang: PGD-100) and, with ``measure.autoattack``, AutoAttack at the training ε."""
    e, jit = config.measure, xla_setting(config.xla)
    suite = [attacks.PGD(eps=config.pgd.eps, step_size=e.pgd_step_size, steps=int(e.pgd_steps),
                         restarts=int(e.pgd_restarts), jit_compile=jit)]
    if e.autoattack:
        suite.append(attacks.AutoAttack(eps=config.pgd.eps, steps=int(e.autoattack_steps),
                                        n_target_classes=int(e.autoattack_target_classes),
                                        square_queries=int(e.autoattack_square_queries), jit_compile=jit))
    return suite


def measure(model, reference, dataset, config, method):
    """Every column of a Wang table row for one (stripped) model; ``reference`` is the dense model.

    Returns:
      A flat dict (see the module docstring): accuracies, distortion bound, sparsity,
      reductions, log10 Thm 2 bounds, log norm products and the weight histogram.
    """
    e = config.measure
    started = time.perf_counter()
    x_eval, y_eval = eval_subset(dataset, e.num_examples)
    report = evaluate(model, x_eval, y_eval, eval_suite(config), batch_size=e.batch_size, seed=config.pgd.seed)
    x_dist, y_dist = eval_subset(dataset, e.distortion_examples)
    bound = metrics.distortion_lower_bound(model, x_dist, y_dist.astype(np.int32), eps_max=e.distortion_eps_max,
                                           steps=int(e.distortion_steps), bisection_steps=int(e.distortion_bisections),
                                           batch_size=e.batch_size, seed=config.pgd.seed)
    stats = sparsity.weight_sparsity(model)
    reduction = sparsity.structure_reduction(reference, model)
    norms = sparsity.weight_norms(model)
    products = sparsity.norm_products(model)
    lipschitz = {}
    for norm in ("linf", "l2"):
        pairs = metrics.lipschitz_bound(model, norm, iterations=int(e.lipschitz_iterations), tol=e.lipschitz_tol)
        lipschitz[norm] = float(np.log10(pairs[~np.eye(len(pairs), dtype=bool)].max()))
    histogram = sparsity.weight_histogram_data(model, bins=int(config.figures.histogram_bins))
    pgd_entry = report["attacks"]["pgd"]
    return {
        "clean_accuracy": metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, batch_size=e.batch_size),
        "eps": float(config.pgd.eps), "pgd_accuracy": pgd_entry["accuracy"], "pgd_attack": pgd_entry["repr"],
        "autoattack_accuracy": report["attacks"]["autoattack"]["accuracy"] if e.autoattack else None,
        "worst_case_accuracy": report["worst_case"]["accuracy"],
        "distortion_eps": bound["mean_eps"], "distortion_l2": bound["mean_l2"],
        "distortion_not_found": bound["not_found"], "distortion_units": bound["units"],
        "sparsity": stats["overall"],
        "params_reduction": reduction["params"] if method in ("fp", "ns") else stats["overall"],
        "flops_reduction": reduction["flops"],
        "lipschitz_linf_log10": lipschitz["linf"], "lipschitz_l2_log10": lipschitz["l2"],
        "log_l0": float(sum(math.log(v["l0"]) if v["l0"] else -math.inf for v in norms.values())),
        "log_l1": products["log_l1"], "log_l2": products["log_l2"],
        "histogram": {"counts": histogram["counts"].tolist(), "edges": histogram["edges"].tolist(),
                      "zeros": histogram["zeros"], "size": histogram["size"]},
        "num_eval": len(x_eval), "num_distortion": len(x_dist), "flags": [f["flag"] for f in report["flags"]],
        "eval_seconds": time.perf_counter() - started,
    }


# --- the table ---------------------------------------------------------------------------------


def _weights_path(run, seed, name):
    return run.file("checkpoints", f"seed{seed}", f"{name}.weights.h5")


def _training_dir(run, seed, name):
    """Per-epoch checkpoints of the training of row ``name`` while it runs (removed once the row is recorded)."""
    return run.file("checkpoints", f"seed{seed}", f"{name}.training")


def _save(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path[: -len(".weights.h5")] + ".partial.weights.h5"
    model.save_weights(partial)
    os.replace(partial, path)


def _check(config):
    if config.distribute != "none":
        raise ConfigError(f"distribute={config.distribute}: Wang's table PGD-trains tfmot-wrapped models, which "
                          "cannot run under a tf.distribute strategy; use --config.distribute=none")
    if config.training != "pgd":
        raise ConfigError(f"training {config.training!r}: Wang's tables train adversarially; set training='pgd'")
    if config.select_epoch not in SELECTIONS:
        raise ConfigError(f"select_epoch {config.select_epoch!r} is unknown; choose from {SELECTIONS}")
    if config.scratch.lr_schedule != "constant":
        raise ConfigError("scratch.lr_schedule must be 'constant': Stop-C sets the learning rate itself")


def run_oneshot_table(config, workdir, *, resume=False, log=print):
    """Runs (or with ``resume`` continues) Wang Tables 1–2 of ``config`` (configs/wang_mnist.py, wang_cifar.py).

    Writes ``config.json``, ``results.json`` (status, ``last_completed`` row, every row so far,
    the dense reference's structure), per-row weights under ``checkpoints/``, and when complete
    ``results.csv``, ``results.md`` and the figures (:func:`write_outputs`).

    Returns:
      The absolute path of the run directory.

    Raises:
      tfsparse.errors.ConfigError: on a config the table cannot run (see :func:`_check`).
    """
    _check(config)
    run = Run(workdir, config, KIND, resume=resume).prepare()
    if run.already_complete:
        log(f"run {run.path} is already complete; nothing to resume")
        return run.path
    dataset = load_data(config.data)
    data = _split(dataset, config)
    log(f"data: {dataset.name} from {dataset.source}: {len(data[0])} train / {len(data[2])} validation / "
        f"{len(dataset.x_test)} test")
    rows = list((run.previous or {}).get("rows", []))
    done = {(r["seed"], r["method"], r["p"], r["init"]) for r in rows}
    with run.start(experiment=KIND, model=config.model.name, dataset=config.data.name, rows=rows):
        for seed in config.seeds:
            _seed_rows(config, run, dataset, data, seed, rows, done, log)
        write_outputs(run.path, [run.state])
    return run.path


def _seed_rows(config, run, dataset, data, seed, rows, done, log):
    """The dense reference and every (method, p, init) row of one seed."""
    prune_cfg = config.prune

    def fresh_dense():
        model = build_model(config.model, dataset, seed)
        if "ns" in config.methods and prune_cfg.ns_l1 > 0:
            model.add_loss(sparsity.bn_gamma_l1(model, prune_cfg.ns_l1))
        return model

    dense = fresh_dense()
    if (seed, "dense", 0.0, "inherited") in done:
        dense.load_weights(_weights_path(run, seed, "reference"))
        budget = next(r for r in rows if (r["seed"], r["method"]) == (seed, "dense"))
    else:
        log(f"seed {seed}: adversarial training of the dense reference")
        budget = adversarial_fit(config, dense, data, "adversarial_train", seed=seed,
                                 warmup_epochs=config.pgd.eps_warmup_epochs,
                                 checkpoint_dir=_training_dir(run, seed, "reference"), log=log)
        _save(dense, _weights_path(run, seed, "reference"))
    reference = sparsity.structure_summary(dense)

    def record(method, p, init, model, info, name):
        row = {"seed": seed, "method": method, "p": p, "init": init}
        row.update({k: info.get(k) for k in ("train_epochs", "train_steps", "stopped_by", "budget_epochs",
                                             "lr_decays", "selected_epoch", "val_clean_accuracy",
                                             "val_pgd_accuracy", "train_seconds")})
        row.update(measure(model, dense, dataset, config, method))
        rows.append(row)
        run.update(last_completed=f"seed {seed} {method} p={p} {init}", reference=reference, rows=rows)
        log(f"seed {seed} {method:>5} p={p:.2f} {init:>9}: sparsity {row['sparsity']:.4f} clean "
            f"{row['clean_accuracy']:.4f} PGD {row['pgd_accuracy']:.4f} dist ε {row['distortion_eps']:.4f} "
            f"(train {row['train_seconds']:.0f} s, eval {row['eval_seconds']:.0f} s)")
        shutil.rmtree(_training_dir(run, seed, name), ignore_errors=True)

    if (seed, "dense", 0.0, "inherited") not in done:
        record("dense", 0.0, "inherited", dense, budget, "reference")
    for method in config.methods:
        for p in config.sparsities:
            wanted = [i for i in ("inherited", "reinit") if i in config.inits and (seed, method, p, i) not in done]
            if not wanted:
                continue
            pruned = sparsity.prune_with(method, dense, p, keep_dense=tuple(prune_cfg.keep_dense),
                                         layer_types=tuple(prune_cfg.layer_types),
                                         ns_max_per_layer=prune_cfg.ns_max_per_layer)
            name = f"{method}_p{p:g}"
            if "inherited" in wanted:
                log(f"seed {seed}: {method} p={p} inherited, adversarial fine-tuning")
                info = adversarial_fit(config, pruned, data, "finetune", seed=seed,
                                       checkpoint_dir=_training_dir(run, seed, f"{name}_inherited"), log=log)
                inherited = sparsity.strip(pruned) if sparsity.has_pruning_wrappers(pruned) else pruned
                _save(inherited, _weights_path(run, seed, f"{name}_inherited"))
                record(method, p, "inherited", inherited, info, f"{name}_inherited")
            elif method in ("gup", "lup"):  # resumed: the mask comes from the kept inherited weights
                inherited = sparsity.strip(pruned)
                inherited.load_weights(_weights_path(run, seed, f"{name}_inherited"))
            else:
                inherited = pruned
            if "reinit" not in wanted:
                continue
            log(f"seed {seed}: {method} p={p} re-initialised, adversarial training to Stop-C")
            if method in ("gup", "lup"):
                fresh = sparsity.wrap_with_masks(sparsity.reinitialize(fresh_dense(), seed=seed + 1, keep_mask=False),
                                                 sparsity.masks(inherited))
            else:
                fresh = sparsity.reinitialize(inherited, seed=seed + 1, keep_mask=False)
            info = adversarial_fit(config, fresh, data, "scratch", seed=seed, stop_c=True,
                                   warmup_epochs=config.pgd.eps_warmup_epochs,
                                   checkpoint_dir=_training_dir(run, seed, f"{name}_reinit"), log=log)
            fresh = sparsity.strip(fresh) if sparsity.has_pruning_wrappers(fresh) else fresh
            _save(fresh, _weights_path(run, seed, f"{name}_reinit"))
            record(method, p, "reinit", fresh, info, f"{name}_reinit")


# --- tables and figures from results -----------------------------------------------------------


def _group_key(row):
    return f"{METHOD_ORDER.index(row['method'])}|{row['p']:.4f}|{row['init']}"


def _paired_differences(keyed):
    """Per group, mean ± 95 % CI over seeds of the per-seed differences of :data:`PAIRED`: a
    pruned inherited row minus the dense reference of its seed (``<measure>_vs_dense``: does
    pruning cost robustness) and a re-initialised row minus the inherited row of its seed,
    method and p (``<measure>_vs_inherited``: Wang's inheritance > re-initialisation). The rows
    of a seed share the reference, so these intervals, unlike the unpaired ones, leave out the
    spread between seeds; a row whose counterpart is missing is left out."""
    by_key = {(r["seed"], r["method"], r["p"], r["init"]): r for r in keyed}
    differences = []
    for r in keyed:
        if r["method"] == "dense":
            continue
        if r["init"] == "inherited":
            baseline, suffix = by_key.get((r["seed"], "dense", 0.0, "inherited")), "dense"
        else:
            baseline, suffix = by_key.get((r["seed"], r["method"], r["p"], "inherited")), "inherited"
        if baseline is not None:
            differences.append({"group": r["group"], **{f"{k}_vs_{suffix}": r[k] - baseline[k] for k in PAIRED}})
    keys = [f"{k}_vs_{suffix}" for suffix in ("dense", "inherited") for k in PAIRED]
    return {d["group"]: {k: v for k, v in d.items() if k not in ("group", "n")}
            for d in reporting.aggregate(differences, "group", keys)}


def summary_rows(rows):
    """Rows aggregated over seeds per (method, p, init): mean and 95 % CI (reporting.aggregate), paper
    order, with the paired differences of :func:`_paired_differences`."""
    keyed = [dict(r, group=_group_key(r)) for r in rows]
    summary = reporting.aggregate(keyed, "group", MEASURES)
    paired = _paired_differences(keyed)
    for entry in summary:
        entry.update(paired.get(entry["group"], {}))
        first = next(r for r in keyed if r["group"] == entry["group"])
        entry.update(method=first["method"], p=first["p"], init=first["init"])
        members = [r for r in keyed if r["group"] == entry["group"]]
        stops = sorted({r.get("stopped_by") or "budget" for r in members})
        caps = sorted({r.get("budget_epochs") for r in members if r.get("budget_epochs") is not None})
        entry["budget"] = f"{'/'.join(stops)} (cap {'/'.join(f'{c:g}' for c in caps)} ep.)"
    return summary


def render(state):
    """Markdown of Tables 1–2 (and figure links) for one run's ``results.json`` dict."""
    rows = state["rows"]
    summary = summary_rows(rows)
    table1 = [r for r in summary if r["init"] == "inherited"]
    table2 = [r for r in summary if r["method"] != "dense" and
              any(o["method"] == r["method"] and o["p"] == r["p"] and o["init"] == "reinit" for o in summary)]
    first = rows[0]
    units = first.get("distortion_units", "")
    text = (f"### {state.get('model')} on {state.get('dataset')}: adversarial one-shot pruning (Wang Table 1)\n\n"
            f"PGD-trained reference, each pruned model PGD fine-tuned with its mask/shape held; PGD column: "
            f"{first.get('pgd_attack')} on the first {first['num_eval']} test images (ε = {first['eps']:.4g}); "
            f"distortion bound on the first {first['num_distortion']} ({units}); Thm 2 bounds as log10 of the largest class pair. "
            f"Mean ± 95 % CI over seeds.\n\n"
            + reporting.markdown_table(table1, TABLE1_COLUMNS))
    if table2:
        text += ("\n### Inherited vs re-initialised weights (Wang Table 2)\n\nre-initialised = same mask (GUP/LUP: "
                 "scratch) or same narrow shape (FP: FP-rand, NS: scratch) with fresh weights, PGD-trained until "
                 "Stop-C (budget column: what stopped it, and the epoch cap); inherited = the fine-tuning budget.\n\n"
                 + reporting.markdown_table(table2, TABLE2_COLUMNS))
    return text


def write_outputs(run_dir, states):
    """Writes ``results.csv``, ``results.md`` and the figures of ``states`` (results.json dicts) into ``run_dir``.

    Returns:
      The markdown (tables and figure links, paths relative to ``run_dir``).
    """
    rows = [r for s in states for r in s["rows"]]
    flat = [{k: v for k, v in r.items() if k != "histogram"} for r in rows]
    results.write_csv(os.path.join(run_dir, "results.csv"), flat)
    text = "\n".join(render(s) for s in states)
    figures = write_figures(rows, run_dir)
    text += "\n" + "\n".join(f"![{name}]({name})" for name in figures) + "\n"
    results.atomic_write_text(os.path.join(run_dir, "results.md"), text)
    return text


def write_figures(rows, folder):
    """Fig. 1 (robustness vs norm products) and Fig. 2-style histograms (per method, inherited vs
    re-initialised, and all methods at each p) from result rows; returns the file names."""
    names = []
    pruned = [r for r in rows if r["method"] != "dense"]
    if pruned:
        names.append(plotting.plot_robustness_vs_norm_products(
            rows, os.path.join(folder, "fig1_robustness_vs_norm_products.png")))
    seed = min(r["seed"] for r in rows)
    by = {(r["method"], r["p"], r["init"]): r["histogram"] for r in rows if r["seed"] == seed}
    for p in sorted({r["p"] for r in pruned}):
        panels = {}
        for method in METHOD_ORDER[1:]:
            curves = {init: by[(method, p, init)] for init in ("inherited", "reinit") if (method, p, init) in by}
            if curves:
                panels[method.upper()] = curves
        panels["all (inherited)"] = {m.upper(): by[(m, p, "inherited")] for m in METHOD_ORDER
                                     if (m, p, "inherited") in by and m != "dense"}
        if ("dense", 0.0, "inherited") in by:
            panels["all (inherited)"]["dense"] = by[("dense", 0.0, "inherited")]
        name = f"fig2_weight_histograms_p{int(round(100 * p))}.png"
        plotting.plot_histogram_overlay(panels, os.path.join(folder, name),
                                        title=f"non-zero kernel weights, p = {p:.0%} (seed {seed})")
        names.append(name)
    return [os.path.basename(n) for n in names]


def report_section(run_dirs):
    """The markdown of Wang Tables 1–2 and their figures from run directories (scripts/report.py).

    Runs of the same model, dataset and config variant are one table: their rows are pooled, so
    seeds run in separate directories (``--config.seeds='(1,)'``) aggregate to mean ± 95 % CI
    like the seeds of one run. The figures are (re)drawn from the rows into the first directory
    of each table and linked by their path as given. A seed found in two directories is refused
    (:func:`tfsparse.reporting.pooled_records`).
    """
    import json

    groups = {}
    for run_dir in run_dirs:
        with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as handle:
            state = json.load(handle)
        config_file = os.path.join(run_dir, "config.json")
        variant = None
        if os.path.isfile(config_file):
            with open(config_file, encoding="utf-8") as handle:
                variant = json.load(handle)["config"].get("variant")
        key = (state.get("model"), state.get("dataset"), variant)
        group = groups.setdefault(key, {"dirs": [], "state": dict(state, rows=[]), "runs": [], "status": []})
        group["dirs"].append(run_dir)
        group["runs"].append((run_dir, state.get("rows", [])))
        group["status"].append(f"`{run_dir}` ({state.get('status')})")
    parts = []
    for group in groups.values():
        rows = group["state"]["rows"] = reporting.pooled_records(group["runs"])
        if not rows:
            parts.append(f"{', '.join(group['status'])}: no rows yet\n")
            continue
        parts.append(render(group["state"]) + f"\nRun directories: {', '.join(group['status'])}.\n")
        figures = write_figures(rows, group["dirs"][0])
        parts.append("\n".join(f"![{name}]({os.path.join(group['dirs'][0], name)})" for name in figures) + "\n")
    return "## Wang et al.: adversarial pruning\n\n" + "\n".join(parts)
