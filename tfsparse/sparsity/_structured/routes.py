"""Route analysis: which layers' output channels can be removed, and what consumes them.

**Which channels can be removed** is read from the functional graph, not from layer
names. A layer's output channels are removable when, following its output, the tensor
passes only through channel-wise layers (BatchNormalization on the last axis, ReLU and
other element-wise activations, dropout, pooling, zero padding, at most one Flatten)
and ends in exactly one Conv2D or Dense layer, whose input channels are then sliced to
match. A route that reaches an ``Add``/``Concatenate``, a shortcut layer, a fan-out, a
shared layer, a model output or any other layer is not removable. In a ResNet this
leaves exactly the FIRST conv of each basic block (its output feeds only the block's
second conv) and never the convs whose output enters the residual sum (the stem, the
block's second conv, projection shortcuts): Li et al. 2017, "Pruning Filters for
Efficient ConvNets", §4.2 prune only the first layer of each residual block for this
reason, and Wang et al. 2020 follow Luo et al. 2017 ("every two consecutive
convolutional layers, skip the shortcuts"). For network slimming (Liu et al. 2017,
"Learning Efficient Convolutional Networks through Network Slimming") the prunable BNs
are likewise only those on such routes (inside blocks, after the first conv). In a
DenseNet-BC only the 1×1 bottleneck conv of each dense layer qualifies (its output feeds
only the 3×3 conv); the 3×3 outputs, concatenated into every later input, never do.
Wang et al. did not run FP on DenseNet for that reason ("not available on DenseNet");
pruning the bottlenecks is the caller's choice.

A route records the BNs it passes and, through a Flatten, how many spatial positions
each channel occupies at the consumer's input (NHWC: see ``rebuild``).

This is the lowest module of the ``structured`` package; ``plans``, ``rebuild`` and
``summary`` import from it, never the other way round.
"""

import collections

import numpy as np

from tfsparse.compat import keras
from tfsparse.sparsity.prune import PruneLowMagnitude
from tfsparse.sparsity.prune import has_pruning_wrappers

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


def _leaf_layers(model, unwrap=True):
    # Used by ``plans`` (BN scales) and ``summary`` (parameter and FLOP counts).
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer, unwrap)
        elif unwrap and isinstance(layer, PruneLowMagnitude):
            yield layer.layer
        else:
            yield layer
