"""tfsparse.metrics.lipschitz for convolutional networks (Wang Thm 2): conv operator norms against the
dense matrix of the convolution, and the network bound against the slopes a network really has."""

import numpy as np
import pytest

from tfsparse import models
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.metrics import lipschitz_bound
from tfsparse.metrics.lipschitz import conv_operator_norm


def _conv_matrix(kernel, shape, strides, padding):
    """The convolution as a dense matrix, column i = conv(e_i)."""
    n = int(np.prod(shape))
    columns = []
    for i in range(n):
        e = np.zeros(n, np.float64)
        e[i] = 1.0
        columns.append(tf.nn.conv2d(e.reshape((1,) + shape), kernel.astype(np.float64), strides=list(strides),
                                    padding=padding.upper()).numpy().ravel())
    return np.stack(columns, axis=1)


@pytest.mark.parametrize("strides, padding", [((1, 1), "same"), ((2, 2), "same"), ((2, 1), "valid")])
def test_conv_operator_norm_equals_the_norms_of_the_dense_matrix(strides, padding):
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(3, 3, 2, 3))
    shape = (5, 6, 2)
    matrix = _conv_matrix(kernel, shape, strides, padding)
    spectral = conv_operator_norm(kernel, shape, strides=strides, padding=padding, norm="l2")
    assert spectral == pytest.approx(np.linalg.norm(matrix, 2), rel=1e-6)
    # l∞ → l∞: the largest row sum of |A| (exact, padding rows included).
    row_sum = conv_operator_norm(kernel, shape, strides=strides, padding=padding, norm="linf")
    assert row_sum == pytest.approx(np.abs(matrix).sum(axis=1).max(), rel=1e-9)
    # Not the kernel tensor's own norm: the operator depends on the image size and the stride.
    assert spectral != pytest.approx(np.linalg.norm(kernel.reshape(-1, 3), 2), rel=1e-3)


def _tiny_resnet(seed):
    """Normalize → conv-BN-ReLU → residual block (conv-BN-ReLU-conv-BN + identity) → maxpool → GAP → logits,
    with random BN statistics so BN folding and the residual sum both matter."""
    from tfsparse.layers import Normalize

    inputs = keras.layers.Input((8, 8, 2))
    x = Normalize(mean=[0.5, 0.4], std=[0.3, 0.2])(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    y = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Conv2D(4, 3, padding="same")(y)
    x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3)(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 2.0, 4), rng.normal(size=4), rng.normal(size=4) * 0.1,
                               rng.uniform(0.2, 2.0, 4)])
    return model


@pytest.mark.parametrize("norm, q", [("l2", 2), ("linf", 1)])
def test_conv_network_bound_exceeds_every_slope_seen_on_random_pairs(norm, q):
    model = _tiny_resnet(5)
    bound = lipschitz_bound(model, norm)
    assert bound.shape == (3, 3) and np.all(np.diag(bound) == 0)
    rng = np.random.default_rng(6)
    x = rng.uniform(size=(200, 8, 8, 2)).astype(np.float32)
    d = rng.normal(size=x.shape).astype(np.float32) * rng.uniform(1e-3, 0.3, size=(200, 1, 1, 1)).astype(np.float32)
    z1, z2 = model(x, training=False).numpy(), model(x + d, training=False).numpy()
    dual = {2: 2, 1: np.inf}[q]
    distance = np.linalg.norm(d.reshape(200, -1).astype(np.float64), ord=dual, axis=1)
    worst = np.zeros((3, 3))
    for c in range(3):
        for k in range(3):
            if c != k:
                change = np.abs((z1[:, c] - z1[:, k]) - (z2[:, c] - z2[:, k]))
                worst[c, k] = np.max(change / distance)
    assert np.all(worst <= bound * (1 + 1e-6))
    # Gradient norms of the margins (the local constants of Thm 1) stay below too.
    xt = tf.constant(x[:50])
    for c, k in ((0, 1), (2, 0)):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            logits = model(xt, training=False)
            margin = logits[:, c] - logits[:, k]
        grad = tape.gradient(margin, xt).numpy().reshape(50, -1).astype(np.float64)
        assert np.linalg.norm(grad, ord=q, axis=1).max() <= bound[c, k] * (1 + 1e-6)
        assert np.linalg.norm(grad, ord=q, axis=1).max() > 0


def test_bn_folding_and_residual_sums_tighten_but_never_break_the_bound():
    # A conv followed by BN with a tiny and a huge channel scale: folded, the huge scale only
    # multiplies its own channel's weights; unfolded, it would multiply the whole conv norm.
    inputs = keras.layers.Input((6, 6, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(epsilon=0.0)(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    kernel = np.zeros((3, 3, 1, 2), np.float32)
    kernel[1, 1, 0, 0] = 1.0   # channel 0: identity
    kernel[:, :, 0, 1] = 0.01  # channel 1: small box filter
    model.layers[1].set_weights([kernel])
    model.layers[2].set_weights([np.ones(2), np.zeros(2), np.zeros(2), np.array([1.0, 1e-4])])
    dense = np.zeros((72, 2), np.float32)
    dense[0::2, 0] = 1.0  # logit 0 reads channel 0 only
    model.layers[-1].set_weights([dense, np.zeros(2)])
    bound = lipschitz_bound(model, "linf")
    # Folded: max(1·1, 9·0.01·100) = 9 per output, × ‖w_0 − w_1‖₁ = 36.
    assert bound[0, 1] == pytest.approx(9.0 * 36, rel=1e-5)
    unfolded = 1.0 * 100.0 * 36  # ‖conv‖∞ · max BN scale · ‖Δw‖₁ without folding
    assert bound[0, 1] < unfolded


@pytest.mark.parametrize("name, shape, width", [("lenet5_bn", (28, 28, 1), 0.5), ("vgg16", (32, 32, 3), 0.125),
                                                 ("resnet18", (32, 32, 3), 0.125),
                                                 ("densenet_bc40", (16, 16, 3), 0.25)])
def test_bound_exists_for_zoo_conv_networks_and_holds_at_random_points(name, shape, width):
    model = models.get(name)(4, shape, 0.5, 0.25, width=width)
    bound = lipschitz_bound(model, "linf", iterations=50)
    assert np.all(np.isfinite(bound)) and np.all(bound[~np.eye(4, dtype=bool)] > 0)
    x = tf.constant(np.random.default_rng(1).uniform(size=(4,) + shape).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model(x, training=False)
        margin = logits[:, 1] - logits[:, 0]
    grad = tape.gradient(margin, x).numpy().reshape(4, -1)
    assert np.abs(grad).sum(axis=1).max() <= bound[1, 0] * (1 + 1e-6)


def test_unsupported_layers_are_named():
    inputs = keras.layers.Input((4, 4, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(3, activation="sigmoid")(x)
    with pytest.raises(ValueError, match="sigmoid"):
        lipschitz_bound(keras.Model(inputs, keras.layers.Dense(2)(x)))
    x = keras.layers.LayerNormalization()(keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match="LayerNormalization"):
        lipschitz_bound(keras.Model(inputs, keras.layers.Dense(2)(x)))
