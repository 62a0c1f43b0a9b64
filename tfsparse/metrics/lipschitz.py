"""Global Lipschitz upper bound of margin functions (Wang et al. Thm 2; Guo et al. Lemma 3.1), for MLPs
and convolutional networks (LeNet-5, VGG, ResNets, DenseNets).

For a feed-forward ReLU network ``Z(x) = W_dᵀ σ(… σ(W_1ᵀ x + b_1) …) + b_d`` and the margin
``g_k = Z_ŷ − Z_k``, ``∇g_k = W_1 D_1 W_2 … D_{d−1} (w_ŷ − w_k)`` with diagonal ``0 ≤ D ≤ I``, so

    ‖∇g_k‖_q ≤ ‖w_ŷ − w_k‖_q · ∏_{j<d} ‖W_j‖_{p→p}         (Wang eq. 3, 1/p + 1/q = 1)

bounds the Lipschitz constant of ``g_k`` in the perturbation norm ``p`` everywhere: the minimal
perturbation is at least ``g_k(x) / bound`` (Guo eq. 6). Sparser, smaller weights shrink the
norms — the papers' argument for robustness through sparsity.

Here every layer contributes its *forward* Lipschitz constant in the perturbation norm
(``l2``: spectral norm; ``linf``: the ∞→∞ norm, the largest l1 norm of the weights feeding one
output), which for a chain is exactly the product above (``‖Wᵀ‖_{∞→∞} = ‖W‖_{1→1}``):

* **Dense** kernels: exact (SVD / column sums).
* **Conv2D** (strides, padding, dilation as the layer has them): the operator norm of the
  convolution itself, not of its kernel tensor. ``linf``: exact, ``max(conv(1, |K|))``, the
  largest row sum of the operator. ``l2``: power iteration on ``AᵀA`` with ``A`` =
  ``tf.nn.conv2d`` at the layer's input shape and ``Aᵀ`` its gradient (the transposed
  convolution); it converges to σ_max from below, so iterations run until the estimate changes
  by less than ``tol`` relative (checked against the dense matrix of small convolutions in
  tests/test_lipschitz.py).
* **BatchNormalization** (inference mode): the diagonal scaling ``γ / √(var + ε)``; when it
  directly follows a conv/dense layer that feeds only it, the scale is folded into that
  layer's kernel (the bound of the product is then far tighter than the product of bounds),
  otherwise it is a factor ``max |γ / √(var + ε)|`` of its own (DenseNet's pre-activation BN).
* **Residual additions** (ResNets): the constant of a sum is at most the sum of the branch
  constants (triangle inequality), so the bound follows the graph, not a chain.
  **Concatenation** (DenseNet): ``max`` of the branch constants in l∞, the root of the sum of
  squares in l2.
* Pooling: max pooling is 1-Lipschitz in l∞ and ``√c`` in l2 with ``c = ∏ ceil(k/s)`` the
  windows one input can fall in; average pooling 1 in l∞ and ``√(c / ∏k)`` in l2 (Hölder:
  ``‖A‖₂ ≤ √(‖A‖₁‖A‖_∞)``); global average pooling 1 and ``1/√(H·W)``.
* ReLU, Flatten, Dropout, the zero-padding shortcut of ResNet-20/32: 1. The input
  :class:`~tfsparse.layers.Normalize` layer: ``1 / min(std)``.

Biases do not change Lipschitz constants. Pruning wrappers are read through their masks.
CNI/PNI layers are bounded by their deterministic kernels (noise off).
"""

import math

import numpy as np

from tfsparse.attacks import lp
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.layers import Normalize
from tfsparse.layers.regularization import ActivationL1

_DUAL = {"l2": 2, "linf": 1}
_ONE = (keras.layers.InputLayer, keras.layers.Flatten, keras.layers.Dropout, keras.layers.ReLU, ActivationL1)
_ONE_NAMES = ("ZeroPadShortcut",)  # subsampling + zero channels: 1-Lipschitz in every norm
_ONE_LIPSCHITZ = ("linear", "relu")


def _activation_ok(layer):
    activation = getattr(layer, "activation", None)
    if activation is None:
        return
    name = keras.activations.serialize(activation)
    if name not in _ONE_LIPSCHITZ:
        raise ValueError(f"layer {layer.name}: activation {name!r} is not supported (linear or relu only)")


def _operator_norm(matrix, q):
    """Induced ``q→q`` norm of ``matrix`` acting on column vectors (spectral for q = 2)."""
    if q == 2:
        return float(np.linalg.norm(matrix, 2))
    return float(np.abs(matrix).sum(axis=0).max())  # q = 1: largest column sum


def dense_operator_norm(kernel, norm):
    """Forward Lipschitz constant of ``x ↦ Kᵀx`` (Keras kernel ``(in, out)``) in the ``norm`` norm.

    ``l2``: the spectral norm; ``linf``: ``max_j Σ_i |K_ij|`` (= ‖K‖_{1→1}, Wang Thm 2 with q = 1).
    """
    lp.check_norm(norm)
    kernel = np.asarray(kernel, np.float64)
    return float(np.linalg.norm(kernel, 2)) if norm == "l2" else float(np.abs(kernel).sum(axis=0).max())


def conv_operator_norm(kernel, input_shape, *, strides=(1, 1), padding="same", dilations=(1, 1), norm="l2",
                       iterations=1000, tol=1e-9, seed=0):
    """Operator norm of the convolution ``x ↦ conv2d(x, kernel)`` on ``input_shape`` images.

    Args:
      kernel: ``(kh, kw, c_in, c_out)``.
      input_shape: ``(height, width, c_in)`` of one input.
      strides, padding, dilations: as the Keras layer has them (``"same"`` / ``"valid"``).
      norm: ``"l2"`` (spectral norm by power iteration on ``AᵀA``, ``Aᵀ`` by the gradient of
        ``⟨A x, y⟩``) or ``"linf"`` (exact: the largest row sum of ``|A|``, ``max conv(1, |K|)``).
      iterations: most power iterations (l2).
      tol: stop when the estimate changes by less than this, relative (l2).
      seed: seed of the random start (l2).

    Returns:
      The norm as a float (for l2 a lower estimate that converges to σ_max).
    """
    lp.check_norm(norm)
    # float64: the estimate creeps up by less than float32's resolution per step long before
    # it has converged when the top singular values are close.
    kernel = tf.constant(np.asarray(kernel, np.float64))
    shape = (1,) + tuple(int(d) for d in input_shape)
    strides, dilations = list(_pair(strides)), list(_pair(dilations))
    padding = padding.upper()

    def conv(x, k=kernel):
        return tf.nn.conv2d(x, k, strides=strides, padding=padding, dilations=dilations)

    if norm == "linf":
        return float(tf.reduce_max(conv(tf.ones(shape, tf.float64), tf.abs(kernel))).numpy())

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = conv(x)
        back = tape.gradient(y, x, output_gradients=y)  # AᵀA x
        return back / tf.norm(back), tf.norm(y)

    x = tf.random.stateless_normal(shape, seed=[seed, 0], dtype=tf.float64)
    x = x / tf.norm(x)
    previous = 0.0
    for _ in range(int(iterations)):
        x, value = step(x)
        sigma = float(value.numpy())
        if sigma == 0.0 or abs(sigma - previous) <= tol * sigma:
            break
        previous = sigma
    return float(tf.norm(conv(x)).numpy())


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value), int(value))


def _unwrap(layer):
    """The layer a pruning wrapper holds, and its kernel read through the mask (or None)."""
    inner = getattr(layer, "layer", layer)
    kernel = getattr(inner, "kernel", None)
    if kernel is None:
        return inner, None
    value = np.asarray(kernel.numpy(), np.float64)
    pruning_vars = getattr(layer, "pruning_vars", None)
    if pruning_vars:
        value = value * np.asarray(pruning_vars[0][1].numpy(), np.float64)
    return inner, value


def _bn_scale(bn):
    variance = np.asarray(bn.moving_variance.numpy(), np.float64)
    scale = 1.0 / np.sqrt(variance + bn.epsilon)
    if bn.gamma is not None:
        scale = scale * np.asarray(bn.gamma.numpy(), np.float64)
    return scale


def _graph(model):
    """``[(layer, [inbound layer names])]`` in topological order, and the output layer name."""
    if isinstance(model, keras.Sequential):
        layers = list(model.layers)
        pairs = [(layer, [layers[i - 1].name] if i else []) for i, layer in enumerate(layers)]
        return pairs, layers[-1].name
    config = model.get_config()
    pairs = []
    for entry in config["layers"]:
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise ValueError(f"lipschitz_bound: layer {entry['name']} is shared (called {len(nodes)} times)")
        names = [inbound[0] for inbound in nodes[0]] if nodes else []
        pairs.append((model.get_layer(entry["name"]), names))
    outputs = config["output_layers"]
    if len(outputs) != 1:
        raise ValueError(f"lipschitz_bound needs a single-output model, got {len(outputs)} outputs")
    return pairs, outputs[0][0]


def _layer_constant(layer, kernel, norm, inputs, options):
    """Forward Lipschitz constant of one layer with a single input (``inputs`` its constant)."""
    shape = layer.input_shape
    if isinstance(layer, keras.layers.Dense):
        _activation_ok(layer)
        return dense_operator_norm(kernel, norm) * inputs
    if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.Conv2DTranspose):
        _activation_ok(layer)
        if getattr(layer, "groups", 1) != 1:
            raise ValueError(f"layer {layer.name}: grouped convolutions are not supported")
        value = conv_operator_norm(kernel, shape[1:], strides=layer.strides, padding=layer.padding,
                                   dilations=layer.dilation_rate, norm=norm, **options)
        return value * inputs
    if isinstance(layer, keras.layers.BatchNormalization):
        return float(np.abs(_bn_scale(layer)).max()) * inputs
    if isinstance(layer, Normalize):
        return inputs / min(layer.std)
    if isinstance(layer, keras.layers.MaxPooling2D):
        covers = math.prod(math.ceil(k / s) for k, s in zip(layer.pool_size, layer.strides))
        return inputs * (1.0 if norm == "linf" else math.sqrt(covers))
    if isinstance(layer, keras.layers.AveragePooling2D):
        covers = math.prod(math.ceil(k / s) for k, s in zip(layer.pool_size, layer.strides))
        return inputs * (1.0 if norm == "linf" else math.sqrt(covers / math.prod(layer.pool_size)))
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        return inputs * (1.0 if norm == "linf" else 1.0 / math.sqrt(shape[1] * shape[2]))
    if isinstance(layer, keras.layers.Activation):
        _activation_ok(layer)
        return inputs
    if isinstance(layer, _ONE) or type(layer).__name__ in _ONE_NAMES:
        return inputs
    if isinstance(layer, keras.Model):
        return network_constant(layer, norm, **options) * inputs
    raise ValueError(f"lipschitz_bound: layer {layer.name} ({type(layer).__name__}) is not supported")


def _constants(model, norm, options):
    """``({layer name: Lipschitz constant from the model input to that layer's output}, graph)``."""
    pairs, output = _graph(model)
    consumers = {}
    for layer, inbound in pairs:
        for name in inbound:
            consumers.setdefault(name, []).append(layer.name)
    by_name = {layer.name: layer for layer, _ in pairs}
    folded = {}  # conv/dense name -> its BN's per-channel scale
    for layer, inbound in pairs:
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, keras.layers.BatchNormalization) and len(inbound) == 1:
            source = getattr(by_name[inbound[0]], "layer", by_name[inbound[0]])
            linear = isinstance(source, (keras.layers.Conv2D, keras.layers.Dense)) and \
                keras.activations.serialize(source.activation) == "linear"
            if linear and consumers.get(inbound[0]) == [layer.name]:
                folded[inbound[0]] = _bn_scale(inner)
    constant = {}
    for layer, inbound in pairs:
        if not inbound:
            constant[layer.name] = 1.0
            if not isinstance(layer, keras.layers.InputLayer):  # the first layer of a Sequential
                inner, kernel = _unwrap(layer)
                if kernel is not None and layer.name in folded:
                    kernel = kernel * folded[layer.name]
                constant[layer.name] = _layer_constant(inner, kernel, norm, 1.0, options)
            continue
        values = [constant[name] for name in inbound]
        inner, kernel = _unwrap(layer)
        if isinstance(inner, keras.layers.Add):
            constant[layer.name] = float(sum(values))
        elif isinstance(inner, keras.layers.Concatenate):
            constant[layer.name] = max(values) if norm == "linf" else math.sqrt(sum(v * v for v in values))
        elif len(values) != 1:
            raise ValueError(f"lipschitz_bound: layer {layer.name} ({type(inner).__name__}) has several inputs")
        elif isinstance(inner, keras.layers.BatchNormalization) and inbound[0] in folded:
            constant[layer.name] = values[0]  # already inside the preceding kernel
        else:
            if kernel is not None and layer.name in folded:
                kernel = kernel * folded[layer.name]
            constant[layer.name] = _layer_constant(inner, kernel, norm, values[0], options)
    return constant, pairs, output


def network_constant(model, norm="l2", **options):
    """Lipschitz constant bound of the whole map ``input → output`` of ``model`` (no margin step)."""
    lp.check_norm(norm)
    constant, _, output = _constants(model, norm, options)
    return constant[output]


def lipschitz_bound(model, norm="l2", *, iterations=1000, tol=1e-9, seed=0) -> np.ndarray:
    """``‖w_c − w_k‖_q · L(input → logits layer input)`` for every class pair (Wang Thm 2, Guo Lemma 3.1).

    ``L`` follows the model's graph as the module docstring says (dense, conv, BN, pooling,
    residual additions, concatenations, nested models, pruning wrappers). ``norm`` is the
    *perturbation* norm: ``"l2"`` (q = 2, spectral norms) or ``"linf"`` (q = 1: ∞→∞ operator
    norms and the l1 norm of the last-layer differences).

    Example::

        bound = lipschitz_bound(model, "linf")   # (C, C), bound[c, k] for g = Z_c − Z_k
        print(bound[~np.eye(len(bound), dtype=bool)].max())

    Args:
      model: Keras model returning multi-class logits from a Dense layer (trailing linear
        activations allowed).
      norm: ``"l2"`` or ``"linf"``.
      iterations, tol, seed: power iteration of the l2 conv norms (:func:`conv_operator_norm`).

    Returns:
      float64 ``(C, C)`` array with zeros on the diagonal.

    Raises:
      ValueError: on an unknown norm, an unsupported layer or activation, or a model whose
        output is not a Dense layer.
    """
    q = _DUAL[lp.check_norm(norm)]
    options = {"iterations": iterations, "tol": tol, "seed": seed}
    constant, pairs, output = _constants(model, norm, options)
    inbound = dict((layer.name, names) for layer, names in pairs)
    by_name = {layer.name: layer for layer, _ in pairs}
    name = output
    while True:
        inner = getattr(by_name[name], "layer", by_name[name])
        if isinstance(inner, keras.layers.Dense):
            break
        passes = (isinstance(inner, keras.layers.Activation)
                  and keras.activations.serialize(inner.activation) == "linear")
        if not passes or len(inbound[name]) != 1:
            raise ValueError("lipschitz_bound: the last layer with weights must be the Dense logits layer")
        name = inbound[name][0]
    if keras.activations.serialize(inner.activation) != "linear":
        raise ValueError("lipschitz_bound: the Dense logits layer must have a linear activation")
    _, last = _unwrap(by_name[name])
    factor = constant[inbound[name][0]] if inbound[name] else 1.0
    differences = last[:, :, None] - last[:, None, :]  # (features, C, C)
    return np.linalg.norm(differences, ord=q, axis=0) * factor
