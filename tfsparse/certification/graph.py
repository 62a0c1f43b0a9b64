"""A Keras model as the graph bound propagation walks: affine maps, ReLUs, sums, max pools.

Bound propagation needs more of a layer than its forward pass: an affine layer ``z ↦ Wz + b``
also gives ``z ↦ Wz`` (whose vector-Jacobian product carries CROWN's linear bounds backwards)
and ``z ↦ |W|z`` (which carries an interval's radius forwards, IBP). :func:`model_graph`
reads a tf_keras Sequential or functional model into :class:`Node` s in topological order,
with those three maps built from the layer's own variables and TensorFlow ops (read when the
bound runs, so a traced bound follows training and is differentiable in the weights, which
certified training needs). Layers that are
the identity at inference (Dropout, the activation-L1 regulariser, the noise layers with
their noise off) become nothing; a layer that is neither affine nor one of the non-linear
kinds below is refused with its name, so no bound is ever computed for an unknown function.

A pruned layer (tfmot's wrapper) is read through its mask: every kernel is ``kernel · mask``
when the bound runs, so a pruned model is bounded exactly as the dense model with those zeros
written in, and certified training of a pruned model moves the wrapped model's own weights.
"""

import dataclasses
from typing import Callable
from typing import Optional

import numpy as np

from tfsparse.sparsity.prune import unwrap
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.errors import ConfigError
from tfsparse.layers import Normalize
from tfsparse.layers import has_inference_noise
from tfsparse.layers.regularization import ActivationL1

INPUT, AFFINE, RELU, ADD, MAXPOOL = "input", "affine", "relu", "add", "maxpool"
_IDENTITY_AT_INFERENCE = (keras.layers.Dropout, keras.layers.SpatialDropout2D, keras.layers.GaussianNoise,
                          keras.layers.GaussianDropout, keras.layers.AlphaDropout, ActivationL1)


@dataclasses.dataclass
class Node:
    """One step of the graph: ``kind`` of what it computes from the outputs of ``inputs``.

    ``apply`` is the forward map (for every kind); an :data:`AFFINE` node also has
    ``linear`` (``z ↦ Wz``) and ``abs_linear`` (``z ↦ |W|z``), on batches of shape
    ``(batch, *input_shape)``. ``shape`` is the output's shape without the batch axis.
    """

    name: str
    kind: str
    inputs: tuple
    shape: tuple
    apply: Callable
    linear: Optional[Callable] = None
    abs_linear: Optional[Callable] = None
    monomial: bool = False  # affine with one input per output (a scaling, reshape or padding)


def model_graph(model):
    """The nodes of ``model`` in topological order; the last one computes its output.

    Raises:
      tfsparse.errors.ConfigError: for a layer that has no sound bound here (named), a shared
        layer, a nested model, inference noise left on, or several inputs or outputs.
    """
    model = unwrap(model)
    if has_inference_noise(model):
        raise ConfigError("certify: the model's noise layers are on at inference; bounds hold for a fixed "
                          "function only: call tfsparse.layers.set_inference_noise(model, False) first")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConfigError(f"certify: {model.name} has {len(model.inputs)} inputs and {len(model.outputs)} "
                          f"outputs; bounds need one image input and one logits output")
    nodes, index_of = [Node("input", INPUT, (), tuple(model.inputs[0].shape[1:]), lambda z: z)], {}
    source = model.inputs[0]
    index_of[_tensor_key(source)] = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        own = [node for node in layer._inbound_nodes if _belongs(node, index_of)]
        if len(own) != 1:
            raise ConfigError(f"certify: layer {layer.name} ({type(layer).__name__}) is used {len(own)} times; "
                              f"bounds need each layer once")
        inbound = own[0]
        inputs = tuple(index_of[_tensor_key(t)] for t in tf.nest.flatten(inbound.input_tensors))
        last = _append_layer(nodes, layer, inputs)
        for tensor in tf.nest.flatten(inbound.output_tensors):
            index_of[_tensor_key(tensor)] = last
    output = index_of.get(_tensor_key(model.outputs[0]))
    if output != len(nodes) - 1:
        raise ConfigError(f"certify: {model.name}'s output is not its last layer's; bounds need a chain or DAG "
                          f"that ends in the logits")
    return nodes


def _tensor_key(tensor):
    return id(getattr(tensor, "_keras_history", tensor).layer), getattr(tensor, "_keras_history", (0, 0, 0))[1:]


def _belongs(node, index_of):
    return all(_tensor_key(t) in index_of for t in tf.nest.flatten(node.input_tensors))


def _append_layer(nodes, layer, inputs):
    """Appends the node(s) of one layer; returns the index of the one that gives its output."""
    masks = {}
    if hasattr(layer, "pruning_vars") and hasattr(layer, "layer"):  # tfmot's pruning wrapper
        masks = {id(weight): mask for weight, mask, _ in layer.pruning_vars}
        layer = layer.layer
    name, kind = layer.name, type(layer).__name__
    if isinstance(layer, keras.Model):
        raise ConfigError(f"certify: layer {name} is a nested model ({kind}); build the model flat")
    if isinstance(layer, keras.layers.Add):
        shape = nodes[inputs[0]].shape
        nodes.append(Node(name, ADD, inputs, shape, lambda *zs: tf.add_n(list(zs))))
        return len(nodes) - 1
    if len(inputs) != 1:
        raise ConfigError(f"certify: layer {name} ({kind}) merges {len(inputs)} inputs; only Add is supported")
    (previous,) = inputs
    in_shape = nodes[previous].shape
    if isinstance(layer, _IDENTITY_AT_INFERENCE) or _is_linear_activation(layer):
        return previous
    if _is_relu(layer):
        nodes.append(Node(name, RELU, inputs, in_shape, tf.nn.relu))
        return len(nodes) - 1
    if isinstance(layer, keras.layers.MaxPooling2D):
        if layer.data_format != "channels_last":
            raise ConfigError(f"certify: layer {name} ({kind}) must be channels_last")
        window, strides, padding = (1, *layer.pool_size, 1), (1, *layer.strides, 1), layer.padding.upper()
        apply = lambda z: tf.nn.max_pool2d(z, window, strides, padding)  # noqa: E731
        nodes.append(Node(name, MAXPOOL, inputs, _out_shape(apply, in_shape), apply))
        return len(nodes) - 1
    maps = _affine_maps(layer, in_shape, lambda variable: _masked(variable, masks))
    if maps is None:
        raise ConfigError(f"certify: layer {name} ({kind}) has no bound propagation here; supported: Dense, "
                          f"Conv2D, DepthwiseConv2D, BatchNormalization, ReLU, Flatten, Reshape, ZeroPadding2D, "
                          f"AveragePooling2D, GlobalAveragePooling2D, Add, MaxPooling2D (IBP only), Dropout")
    linear, abs_linear, bias = maps
    apply = (lambda z: linear(z) + bias.read()) if bias is not None else linear
    monomial = isinstance(layer, (keras.layers.BatchNormalization, Normalize, keras.layers.Flatten,
                                  keras.layers.Reshape, keras.layers.ZeroPadding2D))
    nodes.append(Node(name, AFFINE, inputs, _out_shape(linear, in_shape), apply, linear, abs_linear, monomial))
    activation = getattr(layer, "activation", None)
    if activation is None or activation is keras.activations.linear:
        return len(nodes) - 1
    if activation is keras.activations.relu:
        nodes.append(Node(f"{name}/relu", RELU, (len(nodes) - 1,), nodes[-1].shape, tf.nn.relu))
        return len(nodes) - 1
    raise ConfigError(f"certify: layer {name} ({kind}) ends in activation {activation.__name__}; bounds need "
                      f"ReLU or linear (a model that returns logits, not probabilities)")


def _is_relu(layer):
    if isinstance(layer, keras.layers.ReLU):
        if layer.max_value is not None or float(layer.negative_slope) != 0 or float(layer.threshold) != 0:
            raise ConfigError(f"certify: layer {layer.name} is a clipped or leaky ReLU; only plain ReLU is supported")
        return True
    return isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.relu


def _is_linear_activation(layer):
    return isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.linear


def _out_shape(function, in_shape):
    return tuple(function(tf.zeros((1, *in_shape))).shape[1:])


def _masked(variable, masks):
    """A zero-argument reader of ``variable``, times its pruning mask if it has one."""
    mask = masks.get(id(variable))
    if mask is None:
        return lambda: variable
    return lambda: variable * tf.cast(mask, variable.dtype)


def _affine_maps(layer, in_shape, weight):
    """(linear, abs_linear, bias or None) of an affine layer, or None for a layer that is not one.

    ``weight(variable)`` gives a zero-argument reader of a kernel (masked if pruned).
    """
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # before Conv2D: it subclasses it
        _channels_last(layer)
        kernel, strides = weight(layer.depthwise_kernel), (1, *layer.strides, 1)
        dilations, padding = layer.dilation_rate, layer.padding.upper()

        def depthwise(weights):
            return lambda z: tf.nn.depthwise_conv2d(z, weights(), strides, padding, dilations=dilations)

        return depthwise(kernel), depthwise(lambda: tf.abs(kernel())), _bias(layer)
    if isinstance(layer, keras.layers.Conv2D):
        _channels_last(layer)
        if getattr(layer, "groups", 1) != 1:
            raise ConfigError(f"certify: layer {layer.name} is a grouped convolution; use groups=1")
        kernel, strides = weight(layer.kernel), layer.strides
        dilations, padding = layer.dilation_rate, layer.padding.upper()

        def conv(weights):
            return lambda z: tf.nn.conv2d(z, weights(), strides, padding, dilations=dilations)

        return conv(kernel), conv(lambda: tf.abs(kernel())), _bias(layer)
    if isinstance(layer, keras.layers.Dense):
        kernel = weight(layer.kernel)
        return (lambda z: tf.tensordot(z, kernel(), 1)), (lambda z: tf.tensordot(z, tf.abs(kernel()), 1)), _bias(layer)
    if isinstance(layer, keras.layers.BatchNormalization):
        axes = [a % (len(in_shape) + 1) for a in tf.nest.flatten(layer.axis)]
        if axes != [len(in_shape)]:
            raise ConfigError(f"certify: layer {layer.name} normalises axis {layer.axis}; only the last axis")
        def scale():
            inverse = tf.math.rsqrt(layer.moving_variance + layer.epsilon)
            return inverse * layer.gamma if layer.scale else inverse

        def shift():
            return -layer.moving_mean * scale() + (layer.beta if layer.center else 0.0)

        return (lambda z: z * scale()), (lambda z: z * tf.abs(scale())), _Bias(shift)
    if isinstance(layer, Normalize):
        std, mean = np.asarray(layer.std, np.float32), np.asarray(layer.mean, np.float32)
        return (lambda z: z / std), (lambda z: z / std), _Bias(lambda: tf.constant(-mean / std))
    if isinstance(layer, (keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D,
                          keras.layers.Flatten, keras.layers.Reshape, keras.layers.ZeroPadding2D)):
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise ConfigError(f"certify: layer {layer.name} must be channels_last")
        return layer.call, layer.call, None  # linear with non-negative weights: |W| = W
    return None


class _Bias:
    """A bias read when the bound is computed (so a traced bound follows training)."""

    def __init__(self, read):
        self.read = read


def _bias(layer):
    return _Bias(lambda: layer.bias) if getattr(layer, "use_bias", False) else None


def _channels_last(layer):
    if layer.data_format != "channels_last":
        raise ConfigError(f"certify: layer {layer.name} must be channels_last")
