"""Keras callback measuring robustness on a fixed subset during training (SPEC §8), by the one evaluator."""

import numbers

from tfsparse.attacks.base import Attack
from tfsparse.attacks.base import as_batch
from tfsparse.compat import keras
from tfsparse.evaluation import measure


class RobustnessEval(keras.callbacks.Callback):
    """Runs ``attack`` on a fixed ``(x, y)`` at the end of every ``every``-th epoch and logs it.

    The values are written into the epoch's ``logs`` dict, so they reach ``History`` and
    ``TensorBoard`` (place this callback before them in the list) like Keras' own metrics.
    Fixed-budget attacks log ``{name}`` = robust accuracy on the subset; minimal-perturbation
    attacks (DeepFool, C&W) log ``{name}`` = Guo's r2 and ``{name}_mean_l2``. The attack runs on
    the model being trained in inference mode (``training=False``); its traced function is
    cached per model, so epochs do not retrace. Same seed every epoch: curves compare models,
    not random starts.

    Example::

        model.fit(x, y, epochs=10, callbacks=[
            RobustnessEval(PGD(eps=0.1, step_size=0.01, steps=10), x_val[:500], y_val[:500],
                           name="pgd10_acc"),
        ])

    Args:
      attack: a :class:`~tfsparse.attacks.Attack`.
      x: the fixed inputs in [0, 1].
      y: their integer labels.
      every: evaluate every this many epochs (≥ 1); other epochs log nothing.
      name: the log key; default ``"robust_" + attack.name``.
      batch_size: samples per attack batch.
      model: the model to attack; default the model ``fit`` trains (``self.model``), e.g. pass
        the inner functional model of an ``AdversarialModel``.
      seed: seed of the attack runs.

    Raises:
      ValueError: if ``attack`` is not an Attack, ``every < 1``, or on bad ``x``/``y``.
    """

    def __init__(self, attack, x, y, *, every=1, name=None, batch_size=500, model=None, seed=0):
        super().__init__()
        if not isinstance(attack, Attack):
            raise ValueError(f"attack must be a tfsparse Attack, got {attack!r}")
        if not (isinstance(every, numbers.Integral) and every >= 1):
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        self.attack = attack
        self.x, self.y = as_batch(x, y)
        self.every = int(every)
        self.name = name or f"robust_{attack.name}"
        self.batch_size = batch_size
        self.target = model
        self.seed = seed

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        model = self.target if self.target is not None else self.model
        if self.attack.eps_ball is not None:  # a fixed budget: robust accuracy
            columns = [(self.name, self.attack)]
        else:  # a minimal perturbation: Guo's r2 and the mean l2 over the flipped samples
            columns = [(self.name, self.attack, "r2"), (f"{self.name}_mean_l2", self.attack, "mean_l2")]
        values = measure(model, self.x, self.y, columns, batch_size=self.batch_size, seed=self.seed)
        if logs is not None:
            logs.update(values)
