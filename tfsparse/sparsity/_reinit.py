"""Random re-initialisation of a pruned structure (Wang et al. 2020, Table 2).

Wang et al. ask whether a pruned network's *inherited* weights matter or only its
structure: "FP-rand" (and "scratch" for LUP/GUP/NS) trains a network "with the same
structure as the corresponding pruned network, only with the weights randomly
initialized". Here the structure is whatever the model already is: a physically
narrower FP/NS model keeps its widths, and an unstructured-pruned model keeps its zero
pattern when ``keep_mask`` is set (its fresh kernels are multiplied by the old
non-zero mask). Re-training with tfmot then needs the zeros held (e.g. ``prune`` at
the same sparsity, whose magnitude ranking keeps existing zeros first).
"""

import numpy as np

from tfsparse.compat import keras
from tfsparse.sparsity.prune import has_pruning_wrappers
from tfsparse.sparsity.prune import prunable_weights
from tfsparse.sparsity.prune import scope


def reinitialize(model, *, seed=0, keep_mask=True):
    """A copy of ``model`` with fresh weights drawn from each layer's own initializers.

    Every weight ``w`` of a layer is drawn from the layer's ``<w>_initializer``
    attribute (``kernel_initializer``, ``bias_initializer``, ``gamma_initializer``,
    ``moving_mean_initializer`` ...) re-seeded from ``(seed, layer index, weight
    index)``, so BN moving statistics are reset (mean 0, variance 1) and the result
    depends on ``seed`` alone.

    Example (Wang et al. Table 2, "FP-rand"):

    >>> narrow = filter_prune(robust_model, 0.6)
    >>> scratch = reinitialize(narrow, seed=1)   # same widths, random weights

    Args:
      model: a functional or sequential model without pruning wrappers (``strip`` it
        first); left unchanged.
      seed: integer seed of the new weights.
      keep_mask: if true, each prunable kernel (conv/dense kernels, as in ``prune``) is
        multiplied by the non-zero mask of the old kernel, so unstructured sparsity is
        kept: zeros where the old kernel had zeros, fresh values elsewhere.

    Returns:
      A new model of the same architecture (same configs and layer names).

    Raises:
      ValueError: if the model has pruning wrappers, or a weight has no matching
        ``<name>_initializer`` attribute on its layer.
    """
    if has_pruning_wrappers(model):
        raise ValueError(
            f"reinitialize: model {model.name!r} has pruning wrappers; strip() it first"
        )
    with scope():
        fresh = keras.models.clone_model(model)
    old_layers = dict(_named_leaves(model))
    for layer_index, (path, layer) in enumerate(_named_leaves(fresh)):
        kernels = {w.name for w in prunable_weights(layer)}
        old = old_layers[path]
        values = []
        for weight_index, (weight, old_value) in enumerate(zip(layer.weights, old.get_weights())):
            init = _seeded(layer, weight, [seed, layer_index, weight_index])
            value = np.asarray(init(weight.shape, dtype=weight.dtype))
            if keep_mask and weight.name in kernels:
                value = value * (old_value != 0)
            values.append(value)
        layer.set_weights(values)
    return fresh


def _named_leaves(model, prefix=""):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _named_leaves(layer, f"{prefix}{layer.name}/")
        else:
            yield f"{prefix}{layer.name}", layer


def _seeded(layer, weight, entropy):
    attribute = weight.name.split("/")[-1].split(":")[0]
    init = getattr(layer, f"{attribute}_initializer", None)
    if init is None:
        raise ValueError(
            f"reinitialize: layer {layer.name!r} has no '{attribute}_initializer' for its "
            f"weight {weight.name!r}"
        )
    config = init.get_config()
    if "seed" in config:
        config["seed"] = int(np.random.SeedSequence(entropy).generate_state(1)[0] % (2**31 - 1))
    return type(init).from_config(config)
