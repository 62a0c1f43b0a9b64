"""Structure statistics: channels, parameters and FLOPs of a model, and their reduction.

Used to report what filter pruning (Li et al. 2017, "Pruning Filters for Efficient
ConvNets") and network slimming (Liu et al. 2017, "Learning Efficient Convolutional
Networks through Network Slimming") saved. FLOPs are counted as in Li et al. 2017
Table 2 and Liu et al. 2017 Table 1: multiply-accumulates of the conv and dense layers
only.
"""

import numpy as np

from tfsparse.compat import keras
from tfsparse.sparsity.prune import PruneLowMagnitude
from tfsparse.sparsity._structured.routes import _leaf_layers


def structure_summary(model):
    """Channels, parameters and FLOPs of a (possibly physically pruned) model.

    FLOPs are multiply-accumulates for one input image: a Conv2D costs
    ``H_out · W_out · kh · kw · (C_in / groups) · C_out``, a DepthwiseConv2D
    ``H_out · W_out · kh · kw · C_in · depth_multiplier``, a Dense ``in · units`` (times
    the positions when applied to a map); biases, BN, activations and pooling are not
    counted, as in Li et al. 2017 Table 2 and Liu et al. 2017 Table 1.

    Args:
      model: a built ``tf_keras`` model (pruning wrappers and nested models allowed).

    Returns:
      ``{"layers": {name: {"type", "channels", "params", "flops"}},
      "params": int, "nonzero_params": int, "trainable_params": int, "flops": int}`` where ``layers`` lists the
      conv and dense layers (``channels`` = filters or units, ``params`` = kernel and
      bias) and ``params`` counts every weight of the model, BN statistics included
      (``trainable_params`` without them); ``nonzero_params`` counts the entries of those
      weights that are not exactly zero, which is what unstructured pruning reduces (``params``
      is the dense shape's count, which only FP/NS reduce).
    """
    layers = {}
    for wrapper in _leaf_layers(model, unwrap=False):
        layer = wrapper.layer if isinstance(wrapper, PruneLowMagnitude) else wrapper
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                                  keras.layers.Dense)):
            continue
        in_shape = [int(d) for d in wrapper.input_shape[1:]]
        out_shape = [int(d) for d in wrapper.output_shape[1:]]
        positions = int(np.prod(out_shape[:-1]))
        if isinstance(layer, keras.layers.Dense):
            per_position = in_shape[-1] * layer.units
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            per_position = int(np.prod(layer.kernel_size)) * in_shape[-1] * layer.depth_multiplier
        else:
            per_position = (int(np.prod(layer.kernel_size)) * (in_shape[-1] // layer.groups)
                            * layer.filters)
        layers[layer.name] = {
            "type": type(layer).__name__,
            "channels": out_shape[-1],
            "params": int(sum(w.shape.num_elements() for w in layer.weights)),
            "flops": positions * per_position,
        }
    trainable = int(sum(w.shape.num_elements() for w in _unwrapped_weights(model, True)))
    every = _unwrapped_weights(model, False)
    return {
        "layers": layers,
        "params": int(sum(w.shape.num_elements() for w in every)),
        "nonzero_params": int(sum(np.count_nonzero(w.numpy()) for w in every)),
        "trainable_params": trainable,
        "flops": int(sum(v["flops"] for v in layers.values())),
    }


def structure_reduction(reference, pruned):
    """Fractions of parameters and FLOPs removed: ``1 − pruned / reference``.

    Args:
      reference, pruned: models (or ``structure_summary`` results) to compare, e.g. the
        dense model and its FP/NS version.

    Returns:
      ``{"params": float, "trainable_params": float, "flops": float}``.
    """
    ref = reference if isinstance(reference, dict) else structure_summary(reference)
    new = pruned if isinstance(pruned, dict) else structure_summary(pruned)
    return {key: 1.0 - new[key] / ref[key] if ref[key] else 0.0
            for key in ("params", "trainable_params", "flops")}


def _unwrapped_weights(model, trainable_only):
    # Pruning wrappers add mask/threshold variables that are not model parameters.
    weights = []
    for layer in _leaf_layers(model):
        weights.extend(layer.trainable_weights if trainable_only else layer.weights)
    return weights
