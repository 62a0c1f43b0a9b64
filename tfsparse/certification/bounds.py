"""Sound bounds on a network's outputs over an input ball: IBP, CROWN and CROWN-IBP.

For inputs ``x'`` in the l∞ ball ``‖x' − x‖∞ ≤ ε`` (or the l2 ball), intersected with the
image box [0, 1], every function here returns bounds ``lower ≤ C·f(x') ≤ upper`` that hold for
*all* such ``x'``: a specification ``C`` (rows of output weights; for certification the
margins ``e_y − e_j`` of the true class over every other class) applied to the logits.

* **IBP** (interval bound propagation; Gowal et al. 2018, "On the effectiveness of interval
  bound propagation", Eq. 6): an interval per neuron, pushed forward in centre/radius form —
  an affine layer maps centre ``c`` to ``Wc + b`` and radius ``r`` to ``|W|r``; ReLU and max
  pooling are monotone, so they map the ends. The last affine layers are folded into ``C``
  (the "elision" of the final layer in Gowal et al., §3), which is exact for a linear model.
* **CROWN** (Zhang et al. 2018, "Efficient neural network robustness certification with
  general activation functions", Theorem 3.2): a linear lower and upper bound of ``C·f``
  in terms of the input, carried backwards from the output. An affine layer multiplies the
  coefficients by ``W`` (its vector-Jacobian product) and adds ``Λ·b``; an unstable ReLU with
  pre-activation bounds ``l < 0 < u`` is bounded above by the chord ``u(z − l)/(u − l)`` and
  below by ``αz`` with CROWN's adaptive slope ``α = 1`` if ``u ≥ −l`` else 0, each side chosen
  by the sign of the coefficient. The pre-activation bounds of every ReLU are themselves
  computed by CROWN (an identity specification over that layer's neurons, in chunks).
* **CROWN-IBP** (Zhang et al. 2020, "Towards stable and efficient training of verifiably
  robust neural networks", §3): the same backward pass with the ReLUs' pre-activation bounds
  taken from IBP — one backward pass, the bound certified training uses.

The linear bound ``Λx' + d`` is concretised over the input set in closed form: over the box
``[max(x − ε, 0), min(x + ε, 1)]`` for l∞; for l2 the tighter of the l2 ball (``Λx − ε‖Λ‖₂``,
dual norm) and the box [0, 1], each a superset of the intersection, so both are sound.
Every step is a TensorFlow op, so a call on a batch traces to one graph (:func:`margin_bounds`
runs it inside one ``tf.function``).
"""

import numpy as np

from tfsparse.certification.graph import ADD
from tfsparse.certification.graph import AFFINE
from tfsparse.certification.graph import INPUT
from tfsparse.certification.graph import MAXPOOL
from tfsparse.certification.graph import RELU
from tfsparse.compat import tf
from tfsparse.errors import ConfigError

METHODS = ("ibp", "crown", "crown_ibp")
NORMS = ("linf", "l2")
_CHUNK = 1024  # neurons per backward pass when CROWN bounds an intermediate layer


def input_box(x, eps, norm):
    """The interval hull of the input set: the ε-ball (l∞, or the l2 ball's box) within [0, 1]."""
    return tf.clip_by_value(x - eps, 0.0, 1.0), tf.clip_by_value(x + eps, 0.0, 1.0)


def ibp(nodes, lower, upper, upto=None):
    """Interval bounds ``[(lower, upper)]`` of every node's output from an input interval.

    ``upto``: stop after this node index (default: all). Max pooling and ReLU map the ends
    (monotone); an affine node maps centre and radius.
    """
    bounds = [(lower, upper)]
    for node in nodes[1:len(nodes) if upto is None else upto + 1]:
        ins = [bounds[i] for i in node.inputs]
        if node.kind == AFFINE:
            (low, high), = ins
            centre, radius = node.apply((low + high) / 2), node.abs_linear((high - low) / 2)
            bounds.append((centre - radius, centre + radius))
        elif node.kind in (RELU, MAXPOOL):
            (low, high), = ins
            bounds.append((node.apply(low), node.apply(high)))
        elif node.kind == ADD:
            bounds.append((tf.add_n([b[0] for b in ins]), tf.add_n([b[1] for b in ins])))
        else:
            raise ConfigError(f"certify: no interval rule for node {node.name} ({node.kind})")
    return bounds


def backward(nodes, start, spec, relu_bounds, concretise, stop_at=None):
    """CROWN's backward pass: bounds of ``spec · (output of node start)``, shape (batch, specs) each.

    ``spec``: (batch, specs, *shape of node start). ``relu_bounds[i]``: the pre-activation
    (lower, upper) of ReLU node ``i``. ``concretise(index, coeff_low, coeff_high, const_low,
    const_high)`` turns the linear bounds that reach node ``index`` into numbers: the input
    (always), or, with ``stop_at``, the first node not in ``stop_at`` (IBP's elision).
    """
    coeffs = {start: (spec, spec)}
    const_low = const_high = tf.zeros(tf.shape(spec)[:2], spec.dtype)
    total_low, total_high = const_low, const_high
    for index in range(start, -1, -1):
        if index not in coeffs:
            continue
        node, (a_low, a_high) = nodes[index], coeffs.pop(index)
        if node.kind == INPUT or (stop_at is not None and index not in stop_at):
            low, high = concretise(index, a_low, a_high)
            total_low, total_high = total_low + low, total_high + high
            continue
        if node.kind == AFFINE:
            bias = node.apply(tf.zeros((1, *nodes[node.inputs[0]].shape)))  # W·0 + b: the bias map
            total_low += _inner(a_low, bias)
            total_high += _inner(a_high, bias)
            a_low, a_high = _transpose(node, a_low, nodes), _transpose(node, a_high, nodes)
        elif node.kind == RELU:
            a_low, a_high, add_low, add_high = _relu_backward(a_low, a_high, *relu_bounds[index])
            total_low += add_low
            total_high += add_high
        elif node.kind == MAXPOOL:
            raise ConfigError(f"certify: CROWN has no linear relaxation of max pooling ({node.name}); use "
                              f"method='ibp', or average pooling / strided convolutions in the model")
        elif node.kind != ADD:
            raise ConfigError(f"certify: no backward rule for node {node.name} ({node.kind})")
        for source in node.inputs:
            if source in coeffs:
                previous_low, previous_high = coeffs[source]
                coeffs[source] = (previous_low + a_low, previous_high + a_high)
            else:
                coeffs[source] = (a_low, a_high)
    return total_low, total_high


def _inner(coeff, value):
    """Σ over a node's shape of coeff · value: (batch, specs, *shape) · (1 | batch, *shape) → (batch, specs)."""
    rank = len(coeff.shape)
    return tf.reduce_sum(coeff * value[:, None], axis=list(range(2, rank)))


def _transpose(node, coeff, nodes):
    """Λ ↦ ΛW for an affine node: the vector-Jacobian product of ``z ↦ Wz`` with cotangent Λ."""
    batch, specs = tf.shape(coeff)[0], tf.shape(coeff)[1]
    in_shape = nodes[node.inputs[0]].shape
    flat = tf.reshape(coeff, (-1, *node.shape))
    zeros = tf.zeros((tf.shape(flat)[0], *in_shape), coeff.dtype)
    with tf.GradientTape() as tape:
        tape.watch(zeros)
        out = node.linear(zeros)
    back = tape.gradient(out, zeros, output_gradients=flat)
    return tf.reshape(back, tf.concat([[batch, specs], in_shape], 0))


def relu_relaxation(low, high):
    """CROWN's linear bounds of ReLU on [low, high]: (lower slope, upper slope, upper intercept).

    Active (``low ≥ 0``): identity; inactive (``high ≤ 0``): zero; unstable: the chord above,
    ``αz`` below with α = 1 when ``high ≥ −low`` (Zhang et al. 2018, §3.2's adaptive choice).
    """
    unstable = tf.logical_and(low < 0, high > 0)
    active = low >= 0
    safe = tf.where(unstable, high - low, tf.ones_like(high))
    up_slope = tf.where(unstable, high / safe, tf.cast(active, low.dtype))
    up_intercept = tf.where(unstable, -up_slope * low, tf.zeros_like(low))
    low_slope = tf.where(unstable, tf.cast(high >= -low, low.dtype), tf.cast(active, low.dtype))
    return low_slope, up_slope, up_intercept


def _relu_backward(a_low, a_high, low, high):
    low_slope, up_slope, up_intercept = (v[:, None] for v in relu_relaxation(low, high))
    rank = len(a_low.shape)
    axes = list(range(2, rank))
    pos_low, neg_low = tf.maximum(a_low, 0.0), tf.minimum(a_low, 0.0)
    pos_high, neg_high = tf.maximum(a_high, 0.0), tf.minimum(a_high, 0.0)
    new_low = pos_low * low_slope + neg_low * up_slope
    new_high = pos_high * up_slope + neg_high * low_slope
    add_low = tf.reduce_sum(neg_low * up_intercept, axis=axes)
    add_high = tf.reduce_sum(pos_high * up_intercept, axis=axes)
    return new_low, new_high, add_low, add_high


def concretise_input(x, eps, norm):
    """The input-set concretisation of linear bounds (see the module docstring)."""
    box_low, box_high = input_box(x, eps, norm)

    def over_box(a_low, a_high, low, high):
        lo, hi = low[:, None], high[:, None]
        axes = list(range(2, len(a_low.shape)))
        lower = tf.reduce_sum(tf.maximum(a_low, 0.0) * lo + tf.minimum(a_low, 0.0) * hi, axis=axes)
        upper = tf.reduce_sum(tf.maximum(a_high, 0.0) * hi + tf.minimum(a_high, 0.0) * lo, axis=axes)
        return lower, upper

    def concretise(index, a_low, a_high):
        lower, upper = over_box(a_low, a_high, box_low, box_high)
        if norm == "l2":
            axes = list(range(2, len(a_low.shape)))
            centre_low = tf.reduce_sum(a_low * x[:, None], axis=axes)
            centre_high = tf.reduce_sum(a_high * x[:, None], axis=axes)
            ball_low = centre_low - eps * tf.norm(tf.reshape(a_low, tf.concat([tf.shape(a_low)[:2], [-1]], 0)), axis=-1)
            ball_high = centre_high + eps * tf.norm(tf.reshape(a_high, tf.concat([tf.shape(a_high)[:2], [-1]], 0)),
                                                    axis=-1)
            unit_low, unit_high = over_box(a_low, a_high, tf.zeros_like(x), tf.ones_like(x))
            lower = tf.maximum(ball_low, unit_low)
            upper = tf.minimum(ball_high, unit_high)
        return lower, upper

    return concretise


def check_method(method, norm):
    """Refuses an unknown method or norm with a one-line ConfigError."""
    if method not in METHODS:
        raise ConfigError(f"certify: method must be one of {METHODS}, got {method!r}")
    if norm not in NORMS:
        raise ConfigError(f"certify: norm must be one of {NORMS}, got {norm!r}")


def spec_bounds(nodes, x, spec, eps, method="crown", norm="linf"):
    """Bounds (lower, upper), each (batch, specs), of ``spec · f(x')`` over the input set of ``x``.

    ``spec``: (batch, specs, num_outputs). See the module docstring for the three methods.
    """
    check_method(method, norm)
    last = len(nodes) - 1
    if method == "ibp":
        return _ibp_spec(nodes, x, spec, eps, norm)
    relu_bounds = _relu_input_bounds(nodes, x, eps, norm, method)
    return backward(nodes, last, spec, relu_bounds, concretise_input(x, eps, norm))


def _ibp_spec(nodes, x, spec, eps, norm):
    """IBP with the final affine chain folded into the specification (exact for a linear model)."""
    last = len(nodes) - 1
    tail = set()
    index = last
    while nodes[index].kind == AFFINE:  # the affine chain that ends the network
        tail.add(index)
        index = nodes[index].inputs[0]
    intervals = ibp(nodes, *input_box(x, eps, norm), upto=index)
    interval_of = {i: intervals[i] for i in range(index + 1)}
    to_input = concretise_input(x, eps, norm)

    def concretise(at, a_low, a_high):
        if nodes[at].kind == INPUT:
            return to_input(at, a_low, a_high)
        low, high = interval_of[at]
        lo, hi = low[:, None], high[:, None]
        axes = list(range(2, len(a_low.shape)))
        lower = tf.reduce_sum(tf.maximum(a_low, 0.0) * lo + tf.minimum(a_low, 0.0) * hi, axis=axes)
        upper = tf.reduce_sum(tf.maximum(a_high, 0.0) * hi + tf.minimum(a_high, 0.0) * lo, axis=axes)
        return lower, upper

    return backward(nodes, last, spec, {}, concretise, stop_at=tail)


def _relu_input_bounds(nodes, x, eps, norm, method):
    """Pre-activation bounds of every ReLU node: by IBP (CROWN-IBP) or by CROWN itself, in order."""
    relus = [i for i, node in enumerate(nodes) if node.kind == RELU]
    if method == "crown_ibp":
        intervals = ibp(nodes, *input_box(x, eps, norm))
        return {i: intervals[nodes[i].inputs[0]] for i in relus}
    bounds, concretise = {}, concretise_input(x, eps, norm)
    batch = tf.shape(x)[0]
    exact = _ibp_is_exact(nodes) if norm == "linf" else set()
    intervals = ibp(nodes, *input_box(x, eps, norm), upto=max(exact)) if exact else []
    for i in relus:
        source = nodes[i].inputs[0]
        if source in exact:  # the same numbers CROWN would give, without its backward passes
            bounds[i] = intervals[source]
            continue
        shape = nodes[source].shape
        size = int(np.prod(shape))
        lows, highs = [], []
        for begin in range(0, size, _CHUNK):
            count = min(_CHUNK, size - begin)
            eye = tf.one_hot(tf.range(begin, begin + count), size)  # (count, size)
            spec = tf.broadcast_to(tf.reshape(eye, (1, count, *shape)), tf.concat([[batch, count], shape], 0))
            low, high = backward(nodes, source, spec, bounds, concretise)
            lows.append(low)
            highs.append(high)
        bounds[i] = (tf.reshape(tf.concat(lows, 1), tf.concat([[batch], shape], 0)),
                     tf.reshape(tf.concat(highs, 1), tf.concat([[batch], shape], 0)))
    return bounds


def _ibp_is_exact(nodes):
    """Nodes whose IBP interval equals the exact range of the map from the input box (so CROWN's).

    The map from the input to such a node is affine — a chain of affine nodes with no ReLU,
    sum or pooling of maxima — in which at most one node mixes its inputs (Dense, Conv2D,
    DepthwiseConv2D, average pooling) and every other is monomial (each output one input times
    a constant: normalisation, BatchNormalization, Flatten, Reshape, ZeroPadding2D). Then
    ``|M| = |A_k|···|A_1|`` for the composed ``M = A_k···A_1`` (``|DW| = |D||W|`` for a monomial
    ``D``), so IBP's radius ``|M| r`` is the exact half-range over the box — the bound CROWN
    reaches by concretising ``M`` directly. Used for l∞ only (CROWN's l2 concretisation differs).
    """
    mixing = {0: 0}
    for index, node in enumerate(nodes[1:], start=1):
        if node.kind != AFFINE or node.inputs[0] not in mixing:
            continue
        count = mixing[node.inputs[0]] + (0 if node.monomial else 1)
        if count <= 1:
            mixing[index] = count
    return set(mixing) - {0}


def margin_spec(y, num_classes):
    """The margin specification: rows ``e_y − e_j`` for every class ``j ≠ y``; (batch, K − 1, K)."""
    y = tf.cast(y, tf.int32)
    others = tf.range(num_classes)[None, :] + tf.zeros_like(y)[:, None]
    others = tf.reshape(tf.boolean_mask(others, tf.not_equal(others, y[:, None])), (-1, num_classes - 1))
    return tf.one_hot(y, num_classes)[:, None, :] - tf.one_hot(others, num_classes)
