"""Loading users' models: Keras ``.h5`` / ``.keras`` files and SavedModel directories."""

import os

from tfsparse.compat import keras
from tfsparse.config import ConfigError
from tfsparse.sparsity import scope


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
            return keras.models.load_model(path, compile=False)
    except (OSError, ValueError, ImportError, KeyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"could not load a Keras model from {path}: {first}") from None
