"""Keras callbacks of tfsparse training."""

import math

from tfsparse.compat import keras


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
