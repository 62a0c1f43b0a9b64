"""Extending the in-graph adversarial train step: a TRADES loss on ``AdversarialModel``.

    python examples/custom_attack_in_train_step.py

:class:`tfsparse.training.AdversarialModel` runs the whole attack inside its
``train_step`` (one ``tf.function``); it has two extension points a subclass overrides:

* ``perturb(x, y, counter, eps)`` — produces ``x_adv`` (default: PGD on the
  cross-entropy via :func:`tfsparse.attacks.pgd_perturb`, model in inference mode,
  random start seeded from ``(seed, counter)``). Replace it to plug in your own attack.
* ``train_step(data)`` — calls ``perturb``, makes one ``training=True`` pass and
  ``optimizer.minimize(compute_loss(...))``. Replace it to change the objective.

Here ``TradesModel`` overrides both to train with TRADES (Zhang et al. 2019):

    loss  = CE(f(x), y) + β · KL(f(x) ‖ f(x_adv))
    x_adv = argmax_{‖δ‖∞ ≤ ε} KL(f(x) ‖ f(x + δ))

with the inner maximisation done by ``pgd_perturb(..., loss_fn=<per-sample KL>)``. It is
trained with plain ``fit`` next to the stock ``AdversarialModel`` (Madry PGD training)
with the same model, data, optimizer and budget, and both are evaluated with
``tfsparse.attacks.PGD``.

Output: one ``name=value`` line per number, e.g. ``trades_clean_accuracy=0.9540``,
``trades_pgd_accuracy=...``, ``madry_clean_accuracy=...``, ``madry_pgd_accuracy=...``.

Set ``TFSPARSE_EXAMPLE_QUICK=1`` for a reduced run (fewer training/test images, one
epoch, fewer PGD steps; same code path) — used by ``tests/test_examples_extend.py``.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tfsparse  # noqa: E402
from tfsparse import attacks  # noqa: E402
from tfsparse import models  # noqa: E402
from tfsparse.attacks import pgd_perturb  # noqa: E402
from tfsparse.compat import keras  # noqa: E402
from tfsparse.compat import tf  # noqa: E402
from tfsparse.training import AdversarialModel  # noqa: E402

QUICK = os.environ.get("TFSPARSE_EXAMPLE_QUICK", "") not in ("", "0")

# Sizes: the full run and the quick (test) run share every line below except these.
NUM_TRAIN = 3000 if QUICK else 6000  # the embedded sample has 6,000
NUM_TEST = 200 if QUICK else 1000
EPOCHS = 2 if QUICK else 10
TRAIN_STEPS = 5 if QUICK else 10  # PGD steps inside train_step
EVAL_STEPS = 10 if QUICK else 20  # PGD steps of the final evaluation
EPS = 0.1  # l∞ radius (pixels in [0, 1]) for training and evaluation
# TRADES trade-off. Zhang et al. use 6 with long training; in this 10-epoch budget β = 6
# underfits (full run: clean 0.855 / PGD 0.664 vs 0.954 / 0.760 with β = 1).
BETA = 1.0


def kl_per_sample(p_clean, adv_logits):
    """KL(p_clean ‖ softmax(adv_logits)) per sample, shape (batch,)."""
    log_p_clean = tf.math.log(tf.clip_by_value(p_clean, 1e-12, 1.0))
    return tf.reduce_sum(p_clean * (log_p_clean - tf.nn.log_softmax(adv_logits)), axis=-1)


class TradesModel(AdversarialModel):
    """``AdversarialModel`` with TRADES's attack and loss (``beta``: weight of the KL term)."""

    def __init__(self, inner, *, beta=6.0, **kwargs):
        super().__init__(inner, **kwargs)
        self.beta = float(beta)

    # --- Extension point 1: the attack. ------------------------------------------------
    # Same signature as AdversarialModel.perturb, so test_step (validation/evaluate with
    # adversarial_eval=True) uses it too. Any in-graph function returning x_adv works here.
    def perturb(self, x, y, counter, eps=None):
        p_clean = tf.stop_gradient(tf.nn.softmax(self.inner(x, training=False)))
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(counter, tf.int64)])
        return pgd_perturb(
            lambda z: self.inner(z, training=False),  # inference mode, as the base class
            x,
            tf.reshape(tf.cast(y, tf.int32), [-1]),  # unused by the KL loss, but required
            eps=self.eps if eps is None else eps,
            step_size=self.step_size,
            steps=self.steps,
            norm=self.norm,
            random_start=self.random_start,
            seed=seed,
            # PGD ascends this per-sample loss instead of the cross-entropy:
            loss_fn=lambda logits, _y: kl_per_sample(p_clean, logits),
        )

    # --- Extension point 2: the objective. ---------------------------------------------
    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, tf.float32)
        # training_eps() honours eps_warmup; _train_counter seeds the random start.
        x_adv = tf.stop_gradient(self.perturb(x, y, self._train_counter, self.training_eps()))
        batch = tf.shape(x)[0]
        with tf.GradientTape() as tape:
            # One training-mode pass over clean + adversarial images (as the base class).
            logits = self.inner(tf.concat([x, x_adv], 0), training=True)
            clean_logits, adv_logits = logits[:batch], logits[batch:]
            # compute_loss = the compiled cross-entropy on clean images + inner.losses
            # (weight decay / lasso), so regularisers keep working.
            natural = self.compute_loss(x, y, clean_logits, sample_weight)
            robust = tf.reduce_mean(kl_per_sample(tf.nn.softmax(clean_logits), adv_logits))
            loss = natural + self.beta * robust
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        # Logged metrics as in the base class: `accuracy` (clean), `adv_accuracy`, and
        # `loss` (Keras's running mean of compute_loss, i.e. the CE part of the objective).
        self.compiled_metrics.update_state(y, clean_logits, sample_weight)
        self.adv_accuracy.update_state(y, adv_logits, sample_weight)
        return self.get_metrics_result()

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


def train(wrapper_cls, dataset, **extra):
    """Builds LeNet-300-100, wraps it, compiles and fits with plain ``fit``; returns the wrapper."""
    keras.utils.set_random_seed(0)  # same initial weights and shuffling for both models
    inner = models.get("lenet300_100")(
        num_classes=dataset.num_classes, input_shape=dataset.input_shape,
        mean=dataset.mean, std=dataset.std,
    )
    model = wrapper_cls(inner, eps=EPS, step_size=2.5 * EPS / TRAIN_STEPS, steps=TRAIN_STEPS,
                        seed=0, **extra)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(dataset.x_train, dataset.y_train, batch_size=64, epochs=EPOCHS, verbose=0)
    return model


def evaluate(model, x, y):
    """Clean and PGD accuracy of the functional ``inner`` model."""
    predictions = tf.argmax(model.inner(x, training=False), -1)
    clean = float(tf.reduce_mean(tf.cast(predictions == y, tf.float32)))
    pgd = attacks.PGD(eps=EPS, step_size=2.5 * EPS / EVAL_STEPS, steps=EVAL_STEPS)
    return clean, pgd.run(model.inner, x, y).adv_accuracy


def main():
    start = time.time()
    dataset = tfsparse.data.load("mnist", num_train=NUM_TRAIN, num_test=NUM_TEST)  # embedded sample
    x_test, y_test = dataset.x_test, dataset.y_test
    print(f"quick={int(QUICK)} num_train={len(dataset.x_train)} num_test={len(x_test)} "
          f"epochs={EPOCHS} eps={EPS}")
    runs = (("trades", TradesModel, {"beta": BETA}), ("madry", AdversarialModel, {}))
    for name, cls, extra in runs:
        t0 = time.time()
        model = train(cls, dataset, **extra)
        clean, robust = evaluate(model, x_test, y_test)
        print(f"{name}_clean_accuracy={clean:.4f}")
        print(f"{name}_pgd_accuracy={robust:.4f}")
        print(f"{name}_seconds={time.time() - t0:.1f}")
    print(f"total_seconds={time.time() - start:.1f}")


if __name__ == "__main__":
    main()
