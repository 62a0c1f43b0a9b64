"""Rebuilding a physically narrower model from a plan, and copying the weights into it.

``remove_channels`` clones a functional model with fewer filters/units in the planned
layers and copies every weight, sliced to the kept channels. ``filter_prune`` (Li et al.
2017, "Pruning Filters for Efficient ConvNets") is ``remove_channels(model,
filter_prune_plan(...))`` and ``network_slim`` (Liu et al. 2017, "Learning Efficient
Convolutional Networks through Network Slimming") is ``remove_channels(model,
slimming_plan(...))``; the plans are in ``plans``, the routes they act on in ``routes``.

Channel indices follow NHWC through a Flatten: channel ``c`` of an ``(H, W, C)`` map is
flattened to the positions ``s · C + c`` for every spatial position ``s``, and those
rows of the next Dense kernel are kept.

**Exactness.** Before any retraining, the narrow model computes the same function as
the *masked wide model*, defined as the wide model whose consumer layer (the Conv2D or
Dense reading the pruned channels) has the input weights of the removed channels set
to zero. The removed channels then contribute nothing downstream, and every kept
channel goes through the same per-channel arithmetic in both models, so the outputs
agree to float rounding (in inference and in training mode alike: BN normalises each
channel with that channel's own statistics).
"""

import numpy as np

from tfsparse.compat import keras
from tfsparse.sparsity.prune import scope
from tfsparse.sparsity._structured.plans import filter_prune_plan
from tfsparse.sparsity._structured.plans import slimming_plan
from tfsparse.sparsity._structured.routes import _check_removable
from tfsparse.sparsity._structured.routes import _functional
from tfsparse.sparsity._structured.routes import _routes


def filter_prune(model, ratio, *, layers=None, keep=("last",)):
    """Filter pruning (Li et al. 2017): removes the smallest-L1 filters, model rebuilt narrower.

    Wang et al. 2020 (Table 1, "FP") prune p ∈ {30, 60, 90}% of the filters of every
    layer this way, then retrain adversarially. In ResNets only the first conv of each
    basic block is pruned and the convs feeding the residual sum never are (``routes``
    module docstring). Before retraining the result equals the wide model with the
    removed filters masked out at the next layer's input (module docstring, "Exactness").

    Example:

    >>> narrow = filter_prune(model, 0.6)          # 60% of each layer's filters
    >>> structure_summary(narrow)["flops"] < structure_summary(model)["flops"]
    True

    Args:
      model: the trained wide model; left unchanged.
      ratio, layers, keep: as for ``filter_prune_plan``.

    Returns:
      A new functional model, same layer names, with fewer filters in the pruned layers,
      the matching channels of the following BN, and the matching input channels of the
      next Conv2D/Dense; every other weight copied.

    Raises:
      ValueError: as ``filter_prune_plan``.
    """
    return remove_channels(model, filter_prune_plan(model, ratio, layers=layers, keep=keep))


def network_slim(model, ratio, *, max_per_layer=0.9):
    """Network slimming (Liu et al. 2017): removes the globally smallest-|γ| channels.

    Wang et al. 2020 (Table 1, "NS") train with the γ penalty (``bn_gamma_l1``), prune
    p% of the channels globally, then retrain adversarially. Before retraining the
    result equals the masked wide model (module docstring, "Exactness").

    Args:
      model: the trained wide model; left unchanged.
      ratio, max_per_layer: as for ``slimming_plan``.

    Returns:
      A new, physically narrower functional model (same layer names).

    Raises:
      ValueError: as ``slimming_plan`` (e.g. for a model without BatchNormalization).
    """
    return remove_channels(model, slimming_plan(model, ratio, max_per_layer=max_per_layer))


def remove_channels(model, plan):
    """Rebuilds ``model`` keeping only the planned output channels of each layer.

    The model is cloned with ``filters``/``units`` reduced in the planned layers and the
    weights are copied, sliced: the pruned layer's kernel and bias on the output axis,
    each BN on the route on its channels (γ, β, moving mean and variance), the consumer
    Conv2D/Dense kernel on its input axis (through a Flatten: every flattened position
    of a kept channel).

    Args:
      model: functional or sequential model without pruning wrappers; left unchanged.
      plan: ``{layer_name: kept output indices}`` for removable layers.

    Returns:
      A new functional model with the same layer names.

    Raises:
      ValueError: if a name is unknown or not removable, or a layer's kept indices are
        empty, repeated or out of range.
    """
    model = _functional(model)
    routes, blocked = _routes(model)
    sliced = {}  # layer name -> {"out": indices, "in": indices}
    for name, kept in plan.items():
        _check_removable(model, routes, blocked, name)
        route = routes[name]
        kept = np.asarray(kept, dtype=np.int64)
        if (kept.ndim != 1 or kept.size == 0 or np.unique(kept).size != kept.size
                or kept.min() < 0 or kept.max() >= route.channels):
            raise ValueError(
                f"remove_channels: kept indices of {name!r} must be distinct, non-empty and "
                f"in [0, {route.channels}), got {kept.tolist()}"
            )
        kept = np.sort(kept)
        sliced.setdefault(name, {})["out"] = kept
        for bn, positions in route.bns:
            sliced[bn] = {"out": _flattened(kept, positions, route.channels)}
        sliced.setdefault(route.consumer, {})["in"] = _flattened(
            kept, route.positions, route.channels
        )

    def clone(layer):
        config = layer.get_config()
        if layer.name in plan:
            key = "filters" if isinstance(layer, keras.layers.Conv2D) else "units"
            config[key] = int(sliced[layer.name]["out"].size)
        return layer.__class__.from_config(config)

    with scope():
        narrow = keras.models.clone_model(model, clone_function=clone)
    for layer in narrow.layers:
        weights = model.get_layer(layer.name).get_weights()
        cut = sliced.get(layer.name, {})
        if "in" in cut:
            # Conv2D kernel (kh, kw, in, out) and Dense kernel (in, out): input axis -2.
            weights[0] = np.take(weights[0], cut["in"], axis=-2)
        if "out" in cut:
            weights = [np.take(w, cut["out"], axis=-1) for w in weights]
        layer.set_weights(weights)
    return narrow


def _flattened(kept, positions, channels):
    # NHWC flatten: channel c at spatial position s lands at index s * C + c.
    return (np.arange(positions)[:, None] * channels + kept[None, :]).ravel()
