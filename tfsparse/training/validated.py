"""Adversarial training with a validation split: per-epoch robustness, Wang's epoch selection and Stop-C.

Wang et al. 2020 (§4, §4.2) train every model of their Tables 1–2 with PGD and watch a held-out
validation split at every epoch end: its adversarial cross-entropy is Stop-C's validation loss
(:class:`~tfsparse.training.StopC`: LR ÷10 on a plateau, stop after ``max_decays`` decays), and
"we choose to report the performance where the sum of adversarial accuracy and clean accuracy
is the highest" — chosen here on the validation split (:class:`EpochValidation`,
``select="best_sum"``) rather than on the test set. :class:`Validation` gives the one adversarial fit
(:func:`tfsparse.pipelines.rsr.adversarial_fit`) these callbacks and reports what it used and
selected; every epoch can be checkpointed (model, optimizer, Stop-C's counters, the
selection), so a killed fit resumes to the result of an uninterrupted one.
"""

import math

import numpy as np

from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.evaluation import measure
from tfsparse.training.callbacks import CheckpointedCallback
from tfsparse.training.callbacks import Persistent
from tfsparse.training.callbacks import StopC
from tfsparse.training.callbacks import TrainingClock
from tfsparse.training.clean import steps_for

SELECTIONS = ("last", "best_sum")


class EpochValidation(CheckpointedCallback):
    """Robustness on the fixed validation split at every epoch end, and Wang's epoch selection.

    Attacks ``inner`` (in inference mode) with ``attack`` and logs ``val_clean_accuracy``,
    ``val_pgd_accuracy`` and ``val_loss`` (the mean cross-entropy on the PGD examples: the
    training objective, which Stop-C watches; place this callback before ``StopC``). With
    ``select="best_sum"`` it keeps the weights of the epoch with the highest clean + PGD
    accuracy and restores them when training ends (Wang §4.2). The selection is checkpointed
    state: a row resumed mid-training still selects among all its epochs.
    """

    best = Persistent(tf.float64, -math.inf)
    best_epoch = Persistent(tf.int64, None)
    best_clean_accuracy = Persistent(tf.float64, None)
    best_pgd_accuracy = Persistent(tf.float64, None)
    best_loss = Persistent(tf.float64, None)

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
        found = measure(self.inner, self.x, self.y, [("clean", "clean"), ("pgd", self.attack),
                                                     ("x_adv", self.attack, "x_adv")],
                        batch_size=self.batch_size, seed=self.seed, adversarial_examples=True)
        logits = self.inner.predict(found["x_adv"], batch_size=self.batch_size, verbose=0)
        loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(self.y, logits, from_logits=True)))
        if logs is not None:
            logs.update(val_clean_accuracy=found["clean"], val_pgd_accuracy=found["pgd"], val_loss=loss)
        score = found["clean"] + found["pgd"]
        if self.select == "last" or score > self.best:
            self.best, self.best_epoch = score, epoch
            self.best_clean_accuracy, self.best_pgd_accuracy, self.best_loss = found["clean"], found["pgd"], loss
            for variable, value in zip(self.best_weights, self.inner.get_weights()):
                variable.assign(value)

    def on_train_end(self, logs=None):
        if self.best_weights and self.best_epoch is not None:
            self.inner.set_weights([variable.numpy() for variable in self.best_weights])


class Validation:
    """The validation of one adversarial fit: :attr:`callbacks` to give it, :meth:`report` after it.

    Attacks the split ``(x_val, y_val)`` at every epoch end (:class:`EpochValidation`, seeded
    with ``attack_seed``) and, with a ``stop_c`` section (``patience``, ``min_delta``,
    ``factor``, ``max_decays``), trains until Stop-C stops (the policy's epochs are then the
    cap); without one the budget is the policy's (Stop-E). A :class:`TrainingClock` counts
    epochs and seconds across resumes.

    Args:
      model: the model being trained (``AdversarialModel.inner``).
      select: ``"best_sum"`` (Wang §4.2) or ``"last"``; ``batch_size``: of the validation.
    """

    def __init__(self, model, x_val, y_val, attack, *, select, batch_size, attack_seed=0, stop_c=None):
        self.monitor = EpochValidation(model, x_val, y_val, attack, select=select, batch_size=batch_size,
                                       seed=attack_seed)
        self.stopper = None if stop_c is None else StopC(
            patience=int(stop_c.patience), min_delta=stop_c.min_delta, factor=stop_c.factor,
            max_decays=int(stop_c.max_decays))
        self.clock = TrainingClock()
        self.callbacks = [self.monitor] + ([self.stopper] if self.stopper is not None else []) + [self.clock]

    def report(self, adversarial, train_cfg, num_train, log=print, name="train"):
        """What the fit used and selected: ``{"train_epochs", "train_steps", "stopped_by", "budget_epochs",
        "lr_decays", "selected_epoch", "val_clean_accuracy", "val_pgd_accuracy", "train_seconds"}``."""
        monitor, stopper = self.monitor, self.stopper
        budget = steps_for(train_cfg, num_train) / math.ceil(num_train / train_cfg.batch_size)
        stopped = "stop_c" if stopper is not None and stopper.stopped_epoch is not None else "budget"
        info = {"train_epochs": self.clock.epochs, "train_steps": int(adversarial.optimizer.iterations.numpy()),
                "stopped_by": stopped, "budget_epochs": float(budget),
                "lr_decays": stopper.decays if stopper is not None else None,
                "selected_epoch": (monitor.best_epoch + 1) if monitor.best_epoch is not None else None,
                "val_clean_accuracy": monitor.best_logs.get("val_clean_accuracy"),
                "val_pgd_accuracy": monitor.best_logs.get("val_pgd_accuracy"),
                "train_seconds": self.clock.seconds}
        log(f"  {name}: {info['train_epochs']} epochs ({info['train_steps']} steps, {stopped}), selected epoch "
            f"{info['selected_epoch']}: val clean {info['val_clean_accuracy']:.4f} PGD {info['val_pgd_accuracy']:.4f}")
        return info
