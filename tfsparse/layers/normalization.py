"""Fixed per-channel input normalisation, the first layer of every zoo model (SPEC §1).

Putting (x - mean) / std inside the model keeps every attack budget in pixel units:
attacks see [0, 1] images, the network sees normalised ones.
"""

from tfsparse.compat import keras
from tfsparse.compat import tf


@keras.utils.register_keras_serializable(package="tfsparse")
class Normalize(keras.layers.Layer):
    """Non-trainable ``(x - mean) / std`` with per-channel constants.

    Args:
      mean: scalar or per-channel sequence, in [0, 1] pixel units.
      std: scalar or per-channel sequence (all > 0).

    Input shape: ``(batch, ..., channels)``. Output shape: same as input.
    """

    def __init__(self, mean=0.0, std=1.0, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.mean = [float(m) for m in tf.nest.flatten(mean)]
        self.std = [float(s) for s in tf.nest.flatten(std)]
        if any(s <= 0 for s in self.std):
            raise ValueError(f"Normalize: every std must be > 0, got {self.std}")

    def call(self, inputs):
        mean = tf.constant(self.mean, dtype=inputs.dtype)
        std = tf.constant(self.std, dtype=inputs.dtype)
        return (inputs - mean) / std

    def get_prunable_weights(self):
        # Makes the layer explicitly "prunable with nothing to prune" for tfmot.
        return []

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}
