"""Loading users' models: Keras ``.h5`` / ``.keras`` files and SavedModel directories."""

import os

import numpy as np

from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.errors import ConfigError
from tfsparse.sparsity import scope

_KERAS_LOAD_ERRORS = (OSError, ValueError, ImportError, KeyError, TypeError, AttributeError)


class _SignatureModel:
    """A plain TF SavedModel's ``serving_default`` signature as a ``model(x, training=...)``."""

    def __init__(self, loaded):
        self._loaded = loaded  # keeps the signature's variables alive
        self._fn = loaded.signatures["serving_default"]
        inputs = self._fn.structured_input_signature[1]
        outputs = self._fn.structured_outputs
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError("serving_default must take one input and return one output (logits)")
        self._input = next(iter(inputs))
        self._output = next(iter(outputs))
        self.input_shape = tuple(inputs[self._input].shape.as_list())
        self.name = "serving_default"

    def __call__(self, x, training=False):
        return self._fn(**{self._input: x})[self._output]

    def predict(self, x, batch_size=500, verbose=0):
        return np.concatenate(
            [self(x[s : s + batch_size]).numpy() for s in range(0, len(x), batch_size)]
        )


def load_keras_model(path):
    """Loads a Keras model (``.h5``, ``.keras`` or a Keras SavedModel directory).

    tfsparse's custom layers and pruning wrappers are in scope, so models saved by
    tfsparse load without ``custom_objects``.

    Raises:
      ConfigError: if ``path`` does not exist or does not hold a Keras model (a plain TF
        SavedModel without Keras metadata cannot be pruned or retrained).
    """
    if not os.path.exists(path):
        raise ConfigError(f"model {path} does not exist; pass a .h5/.keras file or a SavedModel directory")
    try:
        with scope():
            model = keras.models.load_model(path, compile=False)
    except _KERAS_LOAD_ERRORS as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"could not load a Keras model from {path}: {first}") from None
    if not isinstance(model, keras.Model):
        # tf_keras falls back to tf.saved_model.load for a SavedModel without Keras metadata.
        raise ConfigError(f"{path} is a SavedModel without Keras metadata, not a Keras model")
    return model


def load_model(path):
    """Loads a Keras model, or else wraps a plain TF SavedModel's ``serving_default``.

    Evaluation needs only ``model(x, training=False)`` → logits, so any SavedModel whose
    ``serving_default`` signature takes one input ([0, 1] images) and returns one output
    (logits) can be attacked, whether or not it was made by Keras.

    Raises:
      ConfigError: if the path does not exist or holds no loadable model.
    """
    try:
        return load_keras_model(path)
    except ConfigError:
        if not os.path.isdir(path):
            raise
    try:
        return _SignatureModel(tf.saved_model.load(path))
    except (ValueError, OSError, KeyError) as error:
        raise ConfigError(f"{path}: neither a Keras model nor a serving SavedModel ({error})") from None
