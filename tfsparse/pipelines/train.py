"""``train_and_evaluate(config, workdir)``: one model trained, evaluated and exported (scripts/train.py).

``config.training`` picks the objective (SPEC §8): ``clean`` (the ``train`` section's SGD
policy), ``pgd`` (Madry PGD adversarial training), ``rsr`` (Robust Sparse
Regularization, then threshold pruning), ``ibp`` or ``crown_ibp`` (certified training,
Gowal et al. 2018 / Zhang et al. 2020) or ``gaussian`` (noise augmentation for randomized
smoothing, Cohen et al. 2019) — all but the first through the one recipe in
:mod:`tfsparse.pipelines.rsr`. The run directory receives:

* ``config.json`` — the resolved config and metadata (version, git commit);
* ``results.json`` — ``status``, ``last_completed`` (``epoch N``, then ``evaluation``) and,
  when complete: clean accuracy, steps, seconds, ``distribute`` and its replica count, the
  precision policy; for pgd/rsr also ε, PGD accuracy on
  ``pgd.eval_examples`` test images (by :func:`tfsparse.evaluation.measure`), sparsity, γ;
  for ibp/crown_ibp also ``certified_ibp`` / ``certified_crown`` on the same images; for
  gaussian the smoothed classifier's ``smoothed_certified`` accuracy per l2 radius and
  ``smoothed_abstain`` (:func:`tfsparse.pipelines.rsr.smoothed_measures`);
* ``history.csv`` — one row per completed epoch (loss, accuracy, adv_accuracy,
  weight_sparsity, the epoch-end robustness ``robust_*``);
* ``tensorboard/`` — the same curves as TensorBoard event files;
* ``checkpoints/`` — model + optimizer at every epoch end (``--resume`` continues there);
* ``saved_model/`` — serving signature: [0, 1] images → logits.

Under ``distribute=multi_worker`` (``scripts/launch_local.py`` or a cluster's TF_CONFIG) only
the chief writes these files (:mod:`tfsparse.training.distribute`).
"""

import contextlib
import csv
import os
import shutil
import time

from tfsparse import attacks
from tfsparse import export
from tfsparse import metrics
from tfsparse import results
from tfsparse import sanity
from tfsparse.compat import keras
from tfsparse.data.checks import check_batch_size
from tfsparse.compat import xla_setting
from tfsparse.layers import has_inference_noise
from tfsparse.pipelines import rsr as robust
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._build import num_outputs
from tfsparse.pipelines._build import single_device_copy
from tfsparse.pipelines._build import train_section
from tfsparse.pipelines._run import Run
from tfsparse.sparsity import weight_sparsity
from tfsparse.training import RobustnessEval
from tfsparse.training import SparsityMonitor
from tfsparse.training import float32_logits
from tfsparse.training import is_chief
from tfsparse.training import per_replica_batch
from tfsparse.training import policy_name
from tfsparse.training import precision_policy
from tfsparse.training import strategy_from_config
from tfsparse.training import train

# Per-run figures that differ between an uninterrupted and a resumed run of the same config.
TIMING_KEYS = ("train_seconds", "resumed", "metadata")


class RunProgress(keras.callbacks.Callback):
    """Writes ``history.csv`` and the run's ``last_completed`` epoch at every epoch end.

    On resume the rows of the epochs being redone are dropped first, so the history
    matches the checkpoint it continues from. Runs before the checkpoint callback: a kill
    between the two costs one epoch, never a missing row.
    """

    def __init__(self, run):
        super().__init__()
        self.run = run
        self.path = run.file("history.csv")
        self.rows = []
        if os.path.exists(self.path):
            with open(self.path, newline="", encoding="utf-8") as handle:
                self.rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]

    def on_epoch_end(self, epoch, logs=None):
        self.rows = [row for row in self.rows if row["epoch"] <= epoch]
        self.rows.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})
        results.write_csv(self.path, self.rows)
        self.run.update(last_completed=f"epoch {epoch + 1}", epochs_completed=epoch + 1)


def epoch_end_attack(config, jit):
    """The attack logged at every epoch end: PGD at the training ε for pgd/rsr, FGS otherwise."""
    if config.training == "clean":
        return attacks.FGSM(eps=config.eval.fgs_eps, jit_compile=jit)
    return attacks.PGD(eps=config.pgd.eps, step_size=config.pgd.step_size,
                       steps=max(1, config.pgd.eval_steps), jit_compile=jit)


def train_clean(config, dataset, callbacks, checkpoint_dir, strategy=None):
    """Clean training of the ``train`` section, under ``strategy`` and its mixed-precision policy.

    Returns:
      ``(model, steps)``: the trained model (a float32 single-device copy when a strategy or
      mixed precision was used) and the optimizer steps taken.
    """
    train_cfg = train_section(config)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope, precision_policy(train_cfg.mixed_precision):
        model = float32_logits(build_model(config.model, dataset, config.seed))
        train(model, dataset.x_train, dataset.y_train, train_cfg, seed=config.seed,
              verbose=config.verbose, callbacks=callbacks, checkpoint_dir=checkpoint_dir)
    steps = int(model.optimizer.iterations.numpy())
    if strategy is not None or train_cfg.mixed_precision:
        model = single_device_copy(model, config.model, dataset, config.seed)
    return model, steps


def train_and_evaluate(config, workdir, *, resume=False, log=print):
    """Trains the configured model, evaluates it, saves a SavedModel.

    Args:
      config: a validated ``configs/train.py`` config.
      workdir: the run directory (new, or with ``resume`` the one of an unfinished run).
      resume: continue the run in ``workdir`` from its last epoch checkpoint.
      log: progress sink.

    Returns:
      The ``results.json`` record.

    Raises:
      tfsparse.errors.UsageError: on a taken or unwritable workdir, bad data, or a global batch
        the replicas cannot share.

    Under ``distribute`` the model trains on every replica (global batch = the section's
    ``batch_size``, see :mod:`tfsparse.training.distribute`); in a multi-worker cluster only
    the chief writes the run directory, evaluates and exports, and returns the record; the
    other workers train, save their share of each checkpoint into scratch folders, and
    return a record holding only ``status``.
    """
    # The strategy first: MultiWorkerMirroredStrategy configures the process's collectives.
    strategy = strategy_from_config(config.distribute)
    section = "train" if config.training == "clean" else "adversarial_train"
    per_replica_batch(config[section].batch_size, strategy, f"{section}.batch_size")
    chief = is_chief(strategy)
    run = Run(workdir, config, "train", resume=resume, writer=chief).prepare()
    if run.already_complete:
        log(f"run {run.path} is already complete; nothing to resume")
        return run.previous
    dataset = load_data(config.data, log=log)
    num_outputs(config.model, dataset)  # e.g. linear_binary on 10 classes: refused before any work
    check_batch_size(config[section].batch_size, len(dataset.x_train), f"{section}.batch_size")
    note = sanity.step_note(config.pgd.eps, config.pgd.step_size, "pgd") if config.training != "clean" else None
    if note:
        log(note)
    if config.distribute != "none":
        log(f"distribute={config.distribute}: {strategy.num_replicas_in_sync} replicas, global batch "
            f"{config[section].batch_size}" + ("" if chief else " (worker: writes nothing to the run directory)"))
    with run.start(model=config.model.name, dataset=dataset.name, training=config.training):
        jit = xla_setting(config.xla)
        x_epoch, y_epoch = eval_subset(dataset, config.eval.epoch_examples)
        callbacks = [SparsityMonitor()]
        if config.eval.epoch_examples > 0:
            callbacks.append(RobustnessEval(epoch_end_attack(config, jit), x_epoch, y_epoch,
                                            batch_size=config.eval.batch_size))
        if chief:
            callbacks += [RunProgress(run), keras.callbacks.TensorBoard(run.file("tensorboard"), write_graph=False,
                                                                         profile_batch=0)]
        started = time.perf_counter()
        summary = {}
        distributed = None if config.distribute == "none" else strategy
        if config.training == "clean":
            model, steps_done = train_clean(config, dataset, callbacks, run.file("checkpoints"), distributed)
        else:
            model, adversarial, _, summary = robust.train_robust(
                config, dataset, config.seed, verbose=config.verbose, callbacks=callbacks,
                checkpoint_dir=run.file("checkpoints"), strategy=distributed,
            )
            steps_done = int(adversarial.optimizer.iterations.numpy())
        seconds = time.perf_counter() - started
        if not chief:
            log(f"worker done after {steps_done} steps ({seconds:.1f} s); the chief evaluates and exports")
            return run.state
        summary["clean_accuracy"] = metrics.clean_accuracy(model, dataset.x_test, dataset.y_test,
                                                           batch_size=config.eval.batch_size)
        if config.training != "clean":
            x, y = eval_subset(dataset, config.pgd.eval_examples)
            summary.update(robust.robust_measures(model, x, y, config, config.eval.batch_size))
            summary["weight_sparsity"] = weight_sparsity(model)["overall"]
        saved = run.file("saved_model")
        if os.path.exists(saved):  # a run killed while exporting left a partial copy
            shutil.rmtree(saved)
        stochastic = has_inference_noise(model)
        summary["saved_model"] = export.save_saved_model(
            model, saved, check_inputs=None if stochastic else dataset.x_test[:64]
        )
        summary.update({"train_steps": steps_done, "train_seconds": seconds, "distribute": config.distribute,
                        "replicas": strategy.num_replicas_in_sync,
                        "precision": policy_name(config[section].mixed_precision)})
        run.update(last_completed="evaluation", **summary)
    extra = f", PGD accuracy {summary['pgd_accuracy']:.4f} at eps {summary['eps']:.4g}" if "pgd_accuracy" in summary else ""
    if "certified_crown" in summary:
        extra += f", certified (IBP / CROWN) {summary['certified_ibp']:.4f} / {summary['certified_crown']:.4f}"
    if "smoothed_certified" in summary:
        extra += f", smoothed (σ {summary['sigma']:g}) certified l2 accuracy " + ", ".join(
            f"{value:.4f} at {radius}" for radius, value in summary["smoothed_certified"].items())
    log(f"clean accuracy {summary['clean_accuracy']:.4f}{extra} after {steps_done} steps ({seconds:.1f} s)")
    return run.state
