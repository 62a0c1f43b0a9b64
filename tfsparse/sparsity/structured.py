"""Structured pruning: filter pruning and network slimming (Wang et al. 2020, Table 1).

Both methods remove whole output channels (conv filters, or dense units) and
rebuild a *physically narrower* functional model, unlike the zero masks of
unstructured pruning:

* **Filter pruning (FP)**, Li et al. 2017, "Pruning Filters for Efficient ConvNets":
  in each chosen layer remove the ``round(ratio · filters)`` filters whose kernels have
  the smallest L1 norm Σ|W[..., j]| (layer-wise, a *predefined* structure).
* **Network slimming (NS)**, Liu et al. 2017, "Learning Efficient Convolutional
  Networks through Network Slimming": train with λ·Σ|γ| on the batch-normalisation
  scales (``bn_gamma_l1``), then rank every prunable BN channel *globally* by |γ| and
  remove the smallest fraction (an *automatic* structure), with a per-layer cap so that
  no layer vanishes (Wang et al.: "the highest pruning ratio is selected ... to avoid
  the removal of layers").

**Which channels can be removed** is read from the functional graph, not from layer
names. A layer's output channels are removable when, following its output, the tensor
passes only through channel-wise layers (BatchNormalization on the last axis, ReLU and
other element-wise activations, dropout, pooling, zero padding, at most one Flatten)
and ends in exactly one Conv2D or Dense layer, whose input channels are then sliced to
match. A route that reaches an ``Add``/``Concatenate``, a shortcut layer, a fan-out, a
shared layer, a model output or any other layer is not removable. In a ResNet this
leaves exactly the FIRST conv of each basic block (its output feeds only the block's
second conv) and never the convs whose output enters the residual sum (the stem, the
block's second conv, projection shortcuts): Li et al. 2017 §4.2 prune only the first
layer of each residual block for this reason, and Wang et al. follow Luo et al. 2017
("every two consecutive convolutional layers, skip the shortcuts"). For network
slimming the prunable BNs are likewise only those on such routes (inside blocks, after
the first conv). In a DenseNet-BC only the 1×1 bottleneck conv of each dense layer
qualifies (its output feeds only the 3×3 conv); the 3×3 outputs, concatenated into
every later input, never do. Wang et al. did not run FP on DenseNet for that reason
("not available on DenseNet"); pruning the bottlenecks is the caller's choice.

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

The per-layer kept channels are exposed as a *plan* (``{layer_name: kept indices}``),
so a structure can be inspected, stored, or re-applied: ``filter_prune`` is
``remove_channels(model, filter_prune_plan(...))`` and ``network_slim`` is
``remove_channels(model, slimming_plan(...))``.
"""

import collections
import math

import numpy as np

from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.sparsity.prune import PruneLowMagnitude
from tfsparse.sparsity.prune import has_pruning_wrappers
from tfsparse.sparsity.prune import resolve_keep_dense
from tfsparse.sparsity.prune import scope

# Layers that act on each channel (last axis) separately and keep the channel count.
_CHANNELWISE = (
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.ZeroPadding2D,
)
# Activations that mix channels and so block a route.
_MIXING_ACTIVATIONS = {"softmax", "log_softmax"}

# A removable layer: its output passes through ``bns`` (name, spatial positions
# multiplied in by a Flatten before it) and reaches ``consumer``'s kernel input axis,
# where each channel occupies ``positions`` flattened places.
_Route = collections.namedtuple("_Route", "source channels bns consumer positions")


def removable_layers(model):
    """Names of the layers of ``model`` whose output channels/units can be removed.

    See the module docstring for the rule (a route of channel-wise layers ending in one
    Conv2D or Dense). In a CIFAR ResNet these are the ``stage*_block*_conv1`` layers;
    in a plain conv net or MLP every hidden conv/dense layer; never ``logits``.

    Args:
      model: a functional or sequential ``tf_keras`` model without pruning wrappers.

    Returns:
      Layer names in model order.

    Raises:
      ValueError: if ``model`` is subclassed or still wrapped for pruning.
    """
    return list(_routes(_functional(model))[0])


def filter_prune_plan(model, ratio, *, layers=None, keep=("last",)):
    """Kept filters per layer for filter pruning by kernel L1 norm (Li et al. 2017).

    In each chosen layer the ``round(ratio · n)`` output filters (dense: units) with the
    smallest L1 norm of their kernel slice ``W[..., j]`` are removed; ties go to the
    lower index. Biases are not part of the norm, as in Li et al. §3.1.

    Args:
      model: the trained wide model (functional or sequential, no pruning wrappers).
      ratio: fraction of filters removed in every chosen layer, in [0, 1); rounded half
        up per layer.
      layers: names of the layers to prune. Default: every removable Conv2D (see
        ``removable_layers``); for a model without removable convs (an MLP such as
        ``lenet300_100``) every removable Dense layer, its units taken as "filters".
      keep: layer names, or "first"/"last" (the model's first/last prunable layer, as
        in ``prune(keep_dense=...)``), left unpruned. The classifier is never pruned.

    Returns:
      ``{layer_name: int ndarray}`` of the kept output indices, sorted, for each
      chosen layer.

    Raises:
      ValueError: if ``ratio`` is outside [0, 1), a name is unknown or not removable,
        or the ratio would remove every filter of a layer.
    """
    _check_ratio(ratio)
    model = _functional(model)
    routes, blocked = _routes(model)
    excluded = resolve_keep_dense(model, keep)
    if layers is None:
        convs = [n for n in routes if isinstance(model.get_layer(n), keras.layers.Conv2D)]
        chosen = convs or list(routes)
    else:
        chosen = list(layers)
        for name in chosen:
            _check_removable(model, routes, blocked, name)
    plan = {}
    for name in chosen:
        if name in excluded:
            continue
        kernel = model.get_layer(name).get_weights()[0]
        norms = np.abs(kernel).sum(axis=tuple(range(kernel.ndim - 1)))
        remove = _rounded(ratio * norms.size)
        if remove >= norms.size:
            raise ValueError(
                f"filter_prune: ratio {ratio} would remove all {norms.size} filters of "
                f"{name!r}; use a smaller ratio"
            )
        removed = np.argsort(norms, kind="stable")[:remove]
        plan[name] = np.setdiff1d(np.arange(norms.size), removed)
    return plan


def filter_prune(model, ratio, *, layers=None, keep=("last",)):
    """Filter pruning (Li et al. 2017): removes the smallest-L1 filters, model rebuilt narrower.

    Wang et al. 2020 (Table 1, "FP") prune p ∈ {30, 60, 90}% of the filters of every
    layer this way, then retrain adversarially. In ResNets only the first conv of each
    basic block is pruned and the convs feeding the residual sum never are (module
    docstring). Before retraining the result equals the wide model with the removed
    filters masked out at the next layer's input (module docstring, "Exactness").

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


def bn_gamma_l1(model, strength):
    """The network-slimming sparsity penalty λ·Σ|γ| over all BN scales (Liu et al. 2017, eq. 1).

    The sum runs over every channel of every ``BatchNormalization`` layer with a scale
    (nested models included) and is not divided by the batch size; λ is a
    hyper-parameter (Liu et al. 2017 use values of 1e-5 to 1e-4). Add it while training:

    >>> model.add_loss(bn_gamma_l1(model, 1e-4))

    Args:
      model: a model containing BatchNormalization layers.
      strength: λ >= 0.

    Returns:
      A zero-argument callable returning the penalty as a scalar tensor, differentiable
      with respect to every γ (subgradient 0 at γ = 0).

    Raises:
      ValueError: if ``strength`` < 0 or ``model`` has no BN scale.
    """
    if not float(strength) >= 0:
        raise ValueError(f"bn_gamma_l1: strength must be >= 0, got {strength}")
    gammas = [layer.gamma for layer in _leaf_layers(model)
              if isinstance(layer, keras.layers.BatchNormalization) and layer.scale]
    if not gammas:
        raise ValueError(f"bn_gamma_l1: model {model.name!r} has no BatchNormalization scale γ")
    strength = float(strength)

    def penalty():
        return strength * tf.add_n([tf.reduce_sum(tf.abs(gamma)) for gamma in gammas])

    return penalty


def slimming_plan(model, ratio, *, max_per_layer=0.9):
    """Kept channels per layer for network slimming by global |γ| ranking (Liu et al. 2017).

    All channels of the prunable BNs (the first BN on each removable route, see the
    module docstring) are ranked together by |γ|; the ``round(ratio · total)`` smallest
    are removed, skipping a channel when its layer has already lost
    ``min(floor(max_per_layer · C), C − 1)`` channels, so no layer vanishes. The plan is
    keyed by the layer feeding the BN (the conv whose filters go).

    Args:
      model: wide model trained with ``bn_gamma_l1`` (no pruning wrappers).
      ratio: global fraction of prunable BN channels removed, in [0, 1).
      max_per_layer: the largest fraction of one layer's channels that may go, in (0, 1].

    Returns:
      ``{layer_name: int ndarray}`` of kept output indices, sorted, for every layer
      feeding a prunable BN.

    Raises:
      ValueError: on a bad ``ratio`` or ``max_per_layer``, a model without prunable
        BNs, or a ratio the per-layer cap makes unreachable (the message gives the
        largest reachable ratio).
    """
    _check_ratio(ratio)
    if not 0.0 < float(max_per_layer) <= 1.0:
        raise ValueError(f"network_slim: max_per_layer must be in (0, 1], got {max_per_layer}")
    model = _functional(model)
    routes, _ = _routes(model)
    gammas = {}
    for name, route in routes.items():
        scaled = [bn for bn, positions in route.bns
                  if positions == 1 and model.get_layer(bn).scale]
        if scaled:
            gammas[name] = np.abs(model.get_layer(scaled[0]).gamma.numpy())
    if not gammas:
        raise ValueError(
            f"network_slim: model {model.name!r} has no BatchNormalization after a removable layer"
        )
    caps = {name: min(int(math.floor(max_per_layer * g.size)), g.size - 1)
            for name, g in gammas.items()}
    total = sum(g.size for g in gammas.values())
    target = _rounded(ratio * total)
    reachable = sum(caps.values())
    if target > reachable:
        raise ValueError(
            f"network_slim: ratio {ratio} removes {target} of {total} channels, but "
            f"max_per_layer={max_per_layer} allows at most {reachable} "
            f"(ratio <= {reachable / total:.4f})"
        )
    names = list(gammas)
    values = np.concatenate([gammas[n] for n in names])
    owner = np.concatenate([np.full(gammas[n].size, i) for i, n in enumerate(names)])
    channel = np.concatenate([np.arange(gammas[n].size) for n in names])
    removed, count = {name: [] for name in names}, 0
    for index in np.argsort(values, kind="stable"):
        if count == target:
            break
        name = names[owner[index]]
        if len(removed[name]) < caps[name]:
            removed[name].append(channel[index])
            count += 1
    return {name: np.setdiff1d(np.arange(gammas[name].size), removed[name]) for name in names}


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
      ValueError: as ``slimming_plan``.
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
      "params": int, "trainable_params": int, "flops": int}`` where ``layers`` lists the
      conv and dense layers (``channels`` = filters or units, ``params`` = kernel and
      bias) and ``params`` counts every weight of the model, BN statistics included
      (``trainable_params`` without them).
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
    every = int(sum(w.shape.num_elements() for w in _unwrapped_weights(model, False)))
    return {
        "layers": layers,
        "params": every,
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


def _functional(model):
    if has_pruning_wrappers(model):
        raise ValueError(
            f"model {model.name!r} still has pruning wrappers; strip() it before structured pruning"
        )
    if isinstance(model, keras.Sequential):
        return keras.Model(model.inputs, model.outputs, name=model.name)
    if not getattr(model, "_is_graph_network", False):
        raise ValueError(
            f"model {model.name!r} is subclassed; structured pruning needs a functional model"
        )
    return model


def _routes(model):
    """``({name: _Route} of removable layers, {name: reason} of blocked candidates)``."""
    config = model.get_config()
    consumers = {entry["name"]: [] for entry in config["layers"]}
    shared = set()
    for entry in config["layers"]:
        if len(entry["inbound_nodes"]) > 1:
            shared.add(entry["name"])
        for node in entry["inbound_nodes"]:
            for inbound in node:
                consumers[inbound[0]].append(entry["name"])
    outputs = {item[0] for item in config["output_layers"]}
    routes, blocked = {}, {}
    for layer in model.layers:
        if not _is_plain(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            continue
        if layer.name in shared:
            blocked[layer.name] = "it is shared (called more than once)"
            continue
        route, reason = _trace(model, layer, consumers, shared, outputs)
        if route is None:
            blocked[layer.name] = reason
        else:
            routes[layer.name] = route
    return routes, blocked


def _trace(model, source, consumers, shared, outputs):
    channels = int(source.output_shape[-1])
    positions, bns, layer = 1, [], source
    while True:
        if layer.name in outputs:
            return None, f"{layer.name!r} is a model output"
        following = consumers[layer.name]
        if len(following) != 1:
            return None, f"the output of {layer.name!r} feeds {len(following)} layers"
        layer = model.get_layer(following[0])
        if layer.name in shared:
            return None, f"{layer.name!r} is shared (called more than once)"
        if _is_plain(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            return _Route(source.name, channels, tuple(bns), layer.name, positions), None
        if (type(layer) is keras.layers.BatchNormalization
                and list(layer.axis) == [len(layer.input_shape) - 1]):
            bns.append((layer.name, positions))
        elif type(layer) is keras.layers.Flatten and positions == 1:
            positions = int(np.prod(layer.input_shape[1:-1]))
        elif not _is_channelwise(layer):
            return None, f"it reaches {layer.name!r} ({type(layer).__name__})"


def _is_plain(layer, types):
    # Exact classes: a subclass (e.g. a noise-injection layer) may own per-channel
    # weights this module would not know how to slice.
    if type(layer) not in types or getattr(layer, "groups", 1) != 1:
        return False
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def _is_channelwise(layer):
    if type(layer) is keras.layers.Activation:
        return keras.activations.serialize(layer.activation) not in _MIXING_ACTIVATIONS
    return type(layer) in _CHANNELWISE and getattr(layer, "data_format", None) in (
        None, "channels_last")


def _check_removable(model, routes, blocked, name):
    if name in routes:
        return
    known = [layer.name for layer in model.layers]
    if name not in known:
        raise ValueError(f"unknown layer {name!r}; removable layers: {list(routes)}")
    why = blocked.get(name, "it is not a Conv2D or Dense layer")
    raise ValueError(
        f"cannot remove channels of {name!r}: {why}; removable layers: {list(routes)}"
    )


def _flattened(kept, positions, channels):
    # NHWC flatten: channel c at spatial position s lands at index s * C + c.
    return (np.arange(positions)[:, None] * channels + kept[None, :]).ravel()


def _rounded(value):
    # Half up (Python's round() is half-to-even); rounding to 9 digits first absorbs
    # float noise such as 0.3 * 10 = 3.0000000000000004.
    return int(math.floor(round(value, 9) + 0.5))


def _check_ratio(ratio):
    if not 0.0 <= float(ratio) < 1.0:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")


def _leaf_layers(model, unwrap=True):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer, unwrap)
        elif unwrap and isinstance(layer, PruneLowMagnitude):
            yield layer.layer
        else:
            yield layer


def _unwrapped_weights(model, trainable_only):
    # Pruning wrappers add mask/threshold variables that are not model parameters.
    weights = []
    for layer in _leaf_layers(model):
        weights.extend(layer.trainable_weights if trainable_only else layer.weights)
    return weights
