"""Keras callbacks of tfsparse training."""

import math
import os
import time

from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.training.distribute import remove_scratch
from tfsparse.training.distribute import write_dir


class Persistent:
    """A callback attribute kept in a ``tf.Variable``, so that :class:`EpochCheckpoint` saves it.

    Declared on a :class:`CheckpointedCallback` subclass (``wait = Persistent(tf.int64, 0)``)
    and used as a plain attribute: reads give Python scalars, and ``None`` is stored as a
    sentinel (-1 for integers, NaN for floats), values that the attribute cannot hold.
    """

    def __init__(self, dtype, initial):
        self.dtype, self.initial = dtype, initial

    def __set_name__(self, owner, name):
        self.name = name

    def _none(self):
        return float("nan") if self.dtype.is_floating else -1

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        value = obj._persistent[self.name].numpy().item()
        if self.dtype.is_floating:
            return None if math.isnan(value) else value
        return None if value == -1 else value

    def __set__(self, obj, value):
        obj._persistent[self.name].assign(self._none() if value is None else value)


class CheckpointedCallback(keras.callbacks.Callback):
    """A callback whose state survives a resumed fit (:func:`tfsparse.training.fit_arrays`).

    Its :class:`Persistent` attributes (and whatever :meth:`checkpoint_state` adds) go into
    the epoch checkpoint beside the model and the optimizer, so a fit killed after epoch k
    and resumed continues with the callback's counters where the killed one left them
    (Stop-C's patience and decays, the best epoch so far), not from scratch.
    """

    def __init__(self):
        super().__init__()
        self._persistent = {}
        for cls in reversed(type(self).__mro__):
            for name, attr in vars(cls).items():
                if isinstance(attr, Persistent):
                    initial = attr._none() if attr.initial is None else attr.initial
                    self._persistent[name] = tf.Variable(initial, dtype=attr.dtype, trainable=False, name=name)

    def checkpoint_state(self):
        """The trackable that the epoch checkpoint saves and restores for this callback."""
        return tf.train.Checkpoint(**self._persistent)


class TrainingClock(CheckpointedCallback):
    """The epochs trained and their wall-clock seconds, summed over the fits of a resumed run.

    Place it last among a fit's callbacks so that its seconds include theirs (validation at
    epoch ends). A fit resumed from an epoch checkpoint starts from the saved figures, so a
    row's budget reads the same whether or not its training was interrupted (the epoch cut
    short by the kill is not counted).
    """

    epochs = Persistent(tf.int64, 0)
    seconds = Persistent(tf.float64, 0.0)

    def on_train_begin(self, logs=None):
        self._started, self._before = time.perf_counter(), self.seconds

    def on_epoch_end(self, epoch, logs=None):
        self.epochs = epoch + 1
        self.seconds = self._before + time.perf_counter() - self._started


class NaNGuard(keras.callbacks.Callback):
    """Stops training with a clear error when the loss becomes NaN or Inf (SPEC §11).

    Keras's ``TerminateOnNaN`` only stops quietly; a run that diverged must fail
    loudly, naming the step, so that no result is written from a broken model.
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0
        self._steps_per_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        self._steps_per_epoch = max(self._steps_per_epoch, batch + 1)
        if loss is not None and not math.isfinite(float(loss)):
            step = self._epoch * self._steps_per_epoch + batch + 1
            raise FloatingPointError(
                f"training loss became {float(loss)} at step {step} (epoch {self._epoch + 1}, "
                f"batch {batch + 1}); lower the learning rate or check the data"
            )


def _lr_variable(optimizer):
    # With a LearningRateSchedule the optimizer's `learning_rate` is a variable that it
    # overwrites from the schedule every step, so an assignment would be lost; tf-keras
    # keeps the schedule itself in `_learning_rate`.
    lr = optimizer.learning_rate
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule) or not isinstance(lr, tf.Variable):
        raise ValueError(
            "StopE/StopC set the learning rate themselves: compile with a constant learning "
            "rate, not a LearningRateSchedule"
        )
    return lr


def _set_lr(optimizer, value):
    _lr_variable(optimizer).assign(value)


def _get_lr(optimizer):
    return float(_lr_variable(optimizer).numpy())


class StopE(CheckpointedCallback):
    """Wang et al.'s Stop-E: a fixed number of epochs, learning rate ÷10 at each third.

    With ``E = epochs`` and base rate ``lr0`` (the optimizer's rate when training
    starts), epoch ``e`` (0-based) runs at ``lr0 · factor^k`` with ``k`` the number of
    boundaries ``round(E/3)``, ``round(2E/3)`` already reached, and training stops
    after ``E`` epochs (Wang §4 "Stopping Criteria"). ``lr0`` is kept in the epoch
    checkpoint, so a resumed fit does not take the already decayed rate for it.

    Args:
      epochs: total epochs E (≥ 1).
      factor: decay per third (default 0.1, i.e. ÷10).

    Raises:
      ValueError: on ``epochs`` < 1 or ``factor`` outside (0, 1]; at training start, if
        the optimizer's learning rate is a schedule.
    """

    base_lr = Persistent(tf.float64, None)

    def __init__(self, epochs, factor=0.1):
        super().__init__()
        if not (isinstance(epochs, int) and epochs >= 1):
            raise ValueError(f"StopE: epochs must be an integer >= 1, got {epochs!r}")
        if not 0 < factor <= 1:
            raise ValueError(f"StopE: factor must be in (0, 1], got {factor!r}")
        self.epochs = epochs
        self.factor = float(factor)
        self.boundaries = (round(epochs / 3), round(2 * epochs / 3))

    def on_train_begin(self, logs=None):
        if self.base_lr is None:
            self.base_lr = _get_lr(self.model.optimizer)

    def on_epoch_begin(self, epoch, logs=None):
        decays = sum(epoch >= b for b in self.boundaries)
        _set_lr(self.model.optimizer, self.base_lr * self.factor**decays)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = _get_lr(self.model.optimizer)
        if epoch + 1 >= self.epochs:
            self.model.stop_training = True


class StopC(CheckpointedCallback):
    """Wang et al.'s Stop-C: LR ÷10 on a validation-loss plateau, stop after 2 decays.

    After each epoch, ``monitor`` improves when it falls below ``best − min_delta·|best|``
    (a *relative* threshold: 1e-5 = 0.001 %). After ``patience`` consecutive epochs
    without improvement the learning rate is multiplied by ``factor`` and the count
    restarts; once ``max_decays`` decays have happened, the next plateau stops training
    instead of decaying again ("models stop training after 2 learning rate decays",
    Wang §4). ``decays`` and ``stopped_epoch`` record what happened; they and the
    plateau count are kept in the epoch checkpoint, so a resumed fit goes on counting.

    Args:
      patience: epochs without improvement before acting (default 10).
      min_delta: relative improvement threshold (default 1e-5).
      factor: learning-rate multiplier per decay (default 0.1).
      max_decays: decays before the stop (default 2).
      monitor: the logged quantity to minimise (default ``"val_loss"``).

    Raises:
      ValueError: on bad arguments; ``KeyError`` at an epoch end whose logs lack
        ``monitor`` (e.g. fit without validation data).
    """

    best = Persistent(tf.float64, math.inf)
    wait = Persistent(tf.int64, 0)
    decays = Persistent(tf.int64, 0)
    stopped_epoch = Persistent(tf.int64, None)

    def __init__(self, patience=10, min_delta=1e-5, factor=0.1, max_decays=2, monitor="val_loss"):
        super().__init__()
        if not (isinstance(patience, int) and patience >= 1):
            raise ValueError(f"StopC: patience must be an integer >= 1, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"StopC: min_delta must be >= 0, got {min_delta!r}")
        if not 0 < factor < 1:
            raise ValueError(f"StopC: factor must be in (0, 1), got {factor!r}")
        if not (isinstance(max_decays, int) and max_decays >= 0):
            raise ValueError(f"StopC: max_decays must be an integer >= 0, got {max_decays!r}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.factor = float(factor)
        self.max_decays = max_decays
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.monitor not in logs:
            raise KeyError(
                f"StopC monitors {self.monitor!r} but the epoch logs hold {sorted(logs)}; "
                "pass validation data to fit"
            )
        current = float(logs[self.monitor])
        if current < self.best - self.min_delta * abs(self.best) or not math.isfinite(self.best):
            self.best, self.wait = current, 0
        else:
            self.wait += 1
        if self.wait >= self.patience:
            self.wait = 0
            if self.decays >= self.max_decays:
                self.stopped_epoch = epoch
                self.model.stop_training = True
            else:
                self.decays += 1
                _set_lr(self.model.optimizer, _get_lr(self.model.optimizer) * self.factor)
        logs["lr"] = _get_lr(self.model.optimizer)


class SparsityMonitor(keras.callbacks.Callback):
    """Logs the weight sparsity (SPEC §4: exact zeros among prunable kernels) each epoch.

    Adds ``weight_sparsity`` to the epoch logs (hence to ``History`` and TensorBoard);
    pruning-wrapped kernels are read through their masks. Works on
    :class:`~tfsparse.training.adversarial.AdversarialModel` (the inner model is found
    recursively).
    """

    def on_epoch_end(self, epoch, logs=None):
        from tfsparse.sparsity import weight_sparsity

        if logs is not None:
            logs["weight_sparsity"] = weight_sparsity(self.model)["overall"]


def backup_and_restore(directory):
    """The checkpoint callback of a resumable ``fit`` (SPEC §11).

    Keras's ``BackupAndRestore`` checkpoints the model (weights, optimizer state, step
    counters) at every epoch end under ``directory``; calling ``fit`` again with the
    same directory after an interruption resumes from the last completed epoch. The
    backup is deleted when training finishes.

    Args:
      directory: folder for the backup (created if missing).

    Returns:
      A ``keras.callbacks.BackupAndRestore``.
    """
    return keras.callbacks.BackupAndRestore(backup_dir=str(directory), save_freq="epoch")


class StopAtStep(keras.callbacks.Callback):
    """Stops ``fit`` after exactly ``steps`` optimizer steps, mid-epoch if need be.

    ``done`` counts the steps already taken (e.g. by the epochs a resumed fit skips);
    Keras checks ``stop_training`` after every batch and still ends the epoch normally.
    """

    def __init__(self, steps, done=0):
        super().__init__()
        self.steps = int(steps)
        self.done = int(done)

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done >= self.steps:
            self.model.stop_training = True


class EpochCheckpoint(keras.callbacks.Callback):
    """Checkpoints model, optimizer and the epoch count at every epoch end, for exact resumption.

    Unlike Keras's ``BackupAndRestore`` it leaves the data position to the caller:
    :func:`tfsparse.training.fit_arrays` restores first (:meth:`restore` returns the
    completed epochs) and skips that many epochs of its seeded stream, so a run killed
    after epoch k and resumed sees the batches an uninterrupted run sees. Checkpoints go
    through ``tf.train.CheckpointManager``: the index file is replaced only after the data
    is written, so a kill during a save leaves the previous checkpoint usable. The
    checkpoints stay after training (they are the run's resumable state). Under a
    multi-worker strategy every worker saves (saving is collective) but only the chief
    into ``directory``; the others save into a scratch folder that is removed at once, and
    all restore from ``directory`` (:func:`tfsparse.training.distribute.write_dir`).

    With ``callbacks`` (the :class:`CheckpointedCallback` s of the fit) their state is saved
    too, with a flag that says whether a callback stopped training (Stop-C):
    :attr:`stopped` is then true after :meth:`restore`, and the resumed fit must not
    train on.

    Args:
      directory: folder of the checkpoints (created if missing).
      model: the model being fit (its optimizer must exist: restore after ``compile``).
      keep: checkpoints kept.
      callbacks: :class:`CheckpointedCallback` s whose state goes into the checkpoint.
    """

    def __init__(self, directory, model, keep=2, callbacks=()):
        super().__init__()
        self.directory = str(directory)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="completed_epochs")
        self.stopped = False
        parts = {"model": model, "optimizer": model.optimizer, "epoch": self.epoch}
        if callbacks:  # only then: checkpoints of fits without stateful callbacks keep their layout
            self._stopped = tf.Variable(False, trainable=False, name="stopped")
            parts["callbacks"] = tf.train.Checkpoint(
                stopped=self._stopped,
                **{f"{i}_{type(cb).__name__}": cb.checkpoint_state() for i, cb in enumerate(callbacks)})
        self.checkpoint = tf.train.Checkpoint(**parts)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=keep)

    def restore(self):
        """Loads the latest checkpoint, if any; returns the number of completed epochs."""
        latest = self.manager.latest_checkpoint
        if latest is None:
            return 0
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        self.stopped = bool(self._stopped.numpy()) if hasattr(self, "_stopped") else False
        return int(self.epoch.numpy())

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.assign(epoch + 1)
        if hasattr(self, "_stopped"):  # stopped before the fit's last epoch: by a callback, not the budget
            self._stopped.assign(bool(self.model.stop_training) and epoch + 1 < self.params["epochs"])
        target = write_dir(self.directory, self.model.distribute_strategy)
        if target == self.directory:
            self.manager.save(checkpoint_number=epoch + 1)
            return
        tf.train.CheckpointManager(self.checkpoint, target, max_to_keep=1).save(checkpoint_number=epoch + 1)
        remove_scratch(target, self.directory)


def checkpointed_epochs(directory):
    """The completed epochs of the latest :class:`EpochCheckpoint` in ``directory`` (0 if none).

    What a fit resumed from ``directory`` will skip; read from the checkpoint's name
    (``ckpt-<epochs>``) without loading it, for progress logs.
    """
    latest = tf.train.latest_checkpoint(str(directory)) if os.path.isdir(directory) else None
    return int(latest.rsplit("-", 1)[1]) if latest else 0
