"""Activation sparsity (Guo et al. 2018, Table 1): fraction of exact zeros in a layer's output.

Guo measures it at the input of the last fully connected layer, i.e. the output of the
layer that feeds the logits; that is the default here.
"""

import numpy as np

from tfsparse.compat import keras
from tfsparse.sparsity.prune import PruneLowMagnitude


def activation_sparsity(model, x, layer_name=None, batch_size=500):
    """Fraction of exactly-zero activations of one layer over a dataset, in inference mode.

    Args:
      model: a functional or sequential model (wrapped for pruning or not).
      x: input array (first axis = examples).
      layer_name: the layer whose *output* is measured (a pruning wrapper may be named
        by its inner layer's name). Default: the *input* of the last Dense layer
        (Guo Table 1).
      batch_size: examples per forward pass.

    Returns:
      zeros / entries over all examples and all activation units, a float in [0, 1].

    Raises:
      ValueError: if ``layer_name`` is unknown, the model has no Dense layer, or ``x``
        is empty.
    """
    if len(x) == 0:
        raise ValueError("activation_sparsity: x is empty")
    probe = keras.Model(model.inputs, activation_tensor(model, layer_name))
    zeros = total = 0
    for start in range(0, len(x), int(batch_size)):
        values = np.asarray(probe(x[start:start + int(batch_size)], training=False))
        zeros += int(np.count_nonzero(values == 0))
        total += values.size
    return zeros / total


def activation_tensor(model, layer_name=None):
    """The symbolic tensor :func:`activation_sparsity` measures (see there for the default).

    Raises:
      ValueError: if ``layer_name`` is unknown or the model has no Dense layer.
    """
    if layer_name is None:
        dense = [layer for layer in model.layers if isinstance(_inner(layer), keras.layers.Dense)]
        if not dense:
            raise ValueError("activation_sparsity: the model has no Dense layer; pass layer_name")
        return dense[-1].input
    for layer in model.layers:
        if layer_name in (layer.name, _inner(layer).name):
            return layer.output
    names = [layer.name for layer in model.layers]
    raise ValueError(f"activation_sparsity: no layer {layer_name!r}; choose from {names}")


def _inner(layer):
    return layer.layer if isinstance(layer, PruneLowMagnitude) else layer
