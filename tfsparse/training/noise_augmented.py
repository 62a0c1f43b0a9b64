"""Gaussian noise augmentation: the base classifier of randomized smoothing (issue 34, item 4).

Cohen, Rosenfeld & Kolter 2019 (§4, "Training the base classifier") train ``f`` on inputs
corrupted by ``δ ~ N(0, σ²I)`` at the σ the smoothed classifier ``g`` will use, so that ``f``
classifies noisy copies well and ``g``'s certified radius ``σ Φ⁻¹(p_A)`` is large
(:mod:`tfsparse.certification.smoothing`). As in the paper the noise is not clipped to [0, 1]:
``g`` is defined on the unclipped Gaussian.

:class:`NoiseAugmentedModel` wraps a functional ``inner`` model like
:class:`~tfsparse.training.AdversarialModel` (pruning wrappers inside keep working): each
training step draws fresh noise for the batch; evaluation is on clean inputs.
"""

from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.sparsity.prune import ModelWrapper
from tfsparse.training.wrapped import InnerModelWrapper


@ModelWrapper.register
@keras.utils.register_keras_serializable(package="tfsparse")
class NoiseAugmentedModel(InnerModelWrapper):
    """A Keras model that trains its functional ``inner`` model on ``x + σ·N(0, I)``.

    Example:

    >>> model = NoiseAugmentedModel(inner, sigma=0.25)
    >>> model.compile(keras.optimizers.Adam(1e-3),
    ...               keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    >>> model.fit(x, y, epochs=10)
    >>> certify(model.inner, x_test, sigma=0.25)   # tfsparse.certification.smoothing

    Args:
      inner: functional tf_keras model returning logits.
      sigma: the noise scale σ (pixel units of [0, 1] images), > 0.
      seed: seed of the noise generator.

    The logged ``accuracy`` is that of the noisy training batch (what the loss sees).
    """

    def __init__(self, inner, *, sigma, seed=0, **kwargs):
        super().__init__(inner, **kwargs)
        if not float(sigma) > 0:
            raise ValueError(f"NoiseAugmentedModel: sigma must be > 0 (pixel units), got {sigma!r}")
        self.sigma, self.seed = float(sigma), int(seed)
        self.noise = tf.random.Generator.from_seed(self.seed)

    def train_step(self, data):
        """One step on the cross-entropy of ``inner(x + σ·δ)``, δ ~ N(0, I) drawn for this batch."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, tf.float32)
        noisy = x + self.sigma * self.noise.normal(tf.shape(x))
        with tf.GradientTape() as tape:
            logits = self.inner(noisy, training=True)
            loss = self.compute_loss(noisy, y, logits, sample_weight)
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        self.compiled_metrics.update_state(y, logits, sample_weight)
        return self.get_metrics_result()

    def settings(self):
        return {"sigma": self.sigma, "seed": self.seed}
