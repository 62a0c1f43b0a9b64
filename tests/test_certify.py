"""tfsparse.certify: IBP / CROWN / CROWN-IBP bounds are sound, exact where a closed form exists,
and equal an independent NumPy implementation on the same weights (issue 34, item 1).

The NumPy reference works on explicit matrices: each affine layer's ``W`` is read off by
applying the Keras layer to the unit basis (so it is the model's own function), and the
classical chain formulation of Zhang et al. 2018 (Theorem 3.2) and Gowal et al. 2018 is then
written out with ``@`` — no code shared with ``tfsparse.certification.bounds``.
"""

import numpy as np
import pytest

import tfsparse
from tfsparse.compat import keras
from tfsparse.errors import ConfigError
from tfsparse.layers import Normalize

EPS = 0.03


def _set_bn_statistics(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, size), rng.normal(0, 0.1, size), rng.normal(0, 0.1, size),
                               rng.uniform(0.5, 1.5, size)])


def _residual_net():
    """Every supported layer kind: normalisation, conv, BN, residual Add, depthwise, pooling, dense."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 1))
    x = Normalize(0.1, 0.3)(inputs)
    x = keras.layers.ZeroPadding2D(1)(x)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    y = keras.layers.Conv2D(4, 3, padding="same")(x)
    y = keras.layers.BatchNormalization()(y)
    x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(12, activation="relu")(x)
    outputs = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, outputs)
    _set_bn_statistics(model)
    return model


def _chain_net(seed=2):
    """A chain (no Add) for the NumPy reference: conv, BN, ReLU, global pooling and dense layers."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((6, 6, 2)),
        Normalize(0.2, 0.5),
        keras.layers.Conv2D(3, 3, strides=2, padding="same"),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.Conv2D(4, 2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(7, activation="relu"),
        keras.layers.Dense(4),
    ])


def _images(n, shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, *shape)).astype(np.float32)


def _margins(logits, y):
    k = logits.shape[-1]
    others = np.array([[j for j in range(k) if j != label] for label in y])
    true = np.take_along_axis(logits, y[:, None], -1)
    return true - np.take_along_axis(logits, others, -1)


# ----------------------------------------------------------------------------- soundness


@pytest.mark.parametrize("method", ["ibp", "crown_ibp", "crown"])
def test_bounds_hold_for_random_points_and_pgds_worst_point(method):
    model = _residual_net()
    x = _images(4, (8, 8, 1))
    y = np.argmax(model(x).numpy(), 1)
    low, high = tfsparse.certification.output_bounds(model, x, EPS, method=method)
    margins = tfsparse.certify(model, x, y, EPS, method=method).margins
    rng = np.random.default_rng(3)
    points = np.clip(x[:, None] + rng.uniform(-EPS, EPS, (4, 2500, 8, 8, 1)), 0, 1).astype(np.float32)
    corners = np.clip(x[:, None] + EPS * rng.choice([-1.0, 1.0], (4, 200, 8, 8, 1)), 0, 1).astype(np.float32)
    sampled = np.concatenate([points, corners], 1)  # 2,700 per image, 10,800 in all
    logits = model(sampled.reshape(-1, 8, 8, 1)).numpy().reshape(4, -1, 5)
    assert np.all(logits >= low[:, None] - 1e-5) and np.all(logits <= high[:, None] + 1e-5)
    attacked = tfsparse.PGD(eps=EPS, steps=20, step_size=EPS / 4).run(model, x, y).x_adv
    assert np.max(np.abs(attacked - x)) <= EPS + 1e-6
    worst = _margins(model(attacked).numpy(), y)
    assert np.all(worst >= margins - 1e-5)
    every = np.stack([_margins(logits[:, i], y) for i in range(0, logits.shape[1], 50)], 1)
    assert np.all(every >= margins[:, None] - 1e-5)


def test_l2_bounds_hold_inside_the_l2_ball():
    model = _chain_net()
    x = _images(3, (6, 6, 2), seed=5)
    eps = 0.2
    low, high = tfsparse.certification.output_bounds(model, x, eps, method="crown", norm="l2")
    rng = np.random.default_rng(4)
    direction = rng.normal(size=(3, 3000, 6, 6, 2))
    direction /= np.linalg.norm(direction.reshape(3, 3000, -1), axis=-1)[..., None, None, None]
    radius = eps * rng.uniform(0, 1, (3, 3000, 1, 1, 1)) ** (1 / 72)
    points = np.clip(x[:, None] + radius * direction, 0, 1).astype(np.float32)  # clipping stays in the set
    logits = model(points.reshape(-1, 6, 6, 2)).numpy().reshape(3, -1, 4)
    assert np.all(logits >= low[:, None] - 1e-5) and np.all(logits <= high[:, None] + 1e-5)


# ----------------------------------------------------------------------------- exactness


def test_a_linear_model_is_bounded_exactly_by_both_methods():
    # margin_j(x') = (w_y − w_j)·(x' − m)/s + b_y − b_j: its minimum over the box is in closed form.
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), Normalize(0.1, 0.3), keras.layers.Dense(3)])
    kernel, bias = (w.numpy() for w in model.layers[-1].weights)
    x = np.random.default_rng(0).uniform(0.2, 0.8, (6, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    for method in ("ibp", "crown", "crown_ibp"):
        margins = tfsparse.certify(model, x, y, 0.1, method=method).margins
        for i, label in enumerate(y):
            others = [j for j in range(3) if j != label]
            w = (kernel[:, label][:, None] - kernel[:, others]) / 0.3
            exact = ((x[i] - 0.1) / 0.3) @ (kernel[:, label][:, None] - kernel[:, others]) \
                + bias[label] - bias[others] - 0.1 * np.abs(w).sum(0)
            np.testing.assert_allclose(margins[i], exact, atol=1e-5)


def _matrices(model, x_shape):
    """The model as a chain of (kind, W, b) on flattened vectors, W read off each layer's map."""
    steps, shape = [], x_shape
    for layer in model.layers:
        if isinstance(layer, keras.layers.ReLU):
            steps.append(("relu", None, None))
            continue
        size = int(np.prod(shape))
        basis = np.eye(size, dtype=np.float32).reshape(size, *shape)
        zero = layer(np.zeros((1, *shape), np.float32)).numpy()
        mapped = layer(basis).numpy()
        out_shape = mapped.shape[1:]
        activation = getattr(layer, "activation", None)
        if activation is keras.activations.relu:  # undo the fused ReLU to read the affine part
            layer.activation = keras.activations.linear
            zero, mapped = layer(np.zeros((1, *shape), np.float32)).numpy(), layer(basis).numpy()
            layer.activation = keras.activations.relu
        b = zero.reshape(-1).astype(np.float64)
        w = (mapped.reshape(size, -1) - zero.reshape(1, -1)).T.astype(np.float64)
        steps.append(("affine", w, b))
        if activation is keras.activations.relu:
            steps.append(("relu", None, None))
        shape = out_shape
    return steps


def _reference_bounds(steps, x, eps, spec, method):
    """IBP / CROWN / CROWN-IBP in matrix form for one image (float64)."""
    lo0, hi0 = np.clip(x - eps, 0, 1), np.clip(x + eps, 0, 1)

    def concretise(a, c, lower):
        pos, neg = np.maximum(a, 0), np.minimum(a, 0)
        return (pos @ lo0 + neg @ hi0 + c) if lower else (pos @ hi0 + neg @ lo0 + c)

    intervals = [(lo0, hi0)]  # IBP, per step
    for kind, w, b in steps:
        lo, hi = intervals[-1]
        if kind == "relu":
            intervals.append((np.maximum(lo, 0), np.maximum(hi, 0)))
        else:
            c, r = w @ ((lo + hi) / 2) + b, np.abs(w) @ ((hi - lo) / 2)
            intervals.append((c - r, c + r))

    def relax(lo, hi):
        unstable = (lo < 0) & (hi > 0)
        up = np.where(unstable, hi / np.where(unstable, hi - lo, 1), (lo >= 0).astype(float))
        t = np.where(unstable, -up * lo, 0)
        alpha = np.where(unstable, (hi >= -lo).astype(float), (lo >= 0).astype(float))
        return alpha, up, t

    pre = {}

    def crown(end, a):
        """Bounds of a · (output of step end − 1), backwards to the input."""
        a_lo, a_hi, c_lo, c_hi = a.copy(), a.copy(), np.zeros(len(a)), np.zeros(len(a))
        for k in range(end - 1, -1, -1):
            kind, w, b = steps[k]
            if kind == "affine":
                c_lo, c_hi = c_lo + a_lo @ b, c_hi + a_hi @ b
                a_lo, a_hi = a_lo @ w, a_hi @ w
            else:
                alpha, up, t = relax(*pre[k])
                c_lo = c_lo + np.minimum(a_lo, 0) @ t
                c_hi = c_hi + np.maximum(a_hi, 0) @ t
                a_lo = np.maximum(a_lo, 0) * alpha + np.minimum(a_lo, 0) * up
                a_hi = np.maximum(a_hi, 0) * up + np.minimum(a_hi, 0) * alpha
        return concretise(a_lo, c_lo, True), concretise(a_hi, c_hi, False)

    if method == "ibp":
        end = len(steps)
        a, c = spec.copy(), np.zeros(len(spec))
        while end > 0 and steps[end - 1][0] == "affine":  # fold the last affine layers into the spec
            _, w, b = steps[end - 1]
            c, a, end = c + a @ b, a @ w, end - 1
        lo, hi = intervals[end]
        pos, neg = np.maximum(a, 0), np.minimum(a, 0)
        return pos @ lo + neg @ hi + c, pos @ hi + neg @ lo + c
    for k, (kind, _, _) in enumerate(steps):
        if kind == "relu":
            pre[k] = intervals[k] if method == "crown_ibp" else crown(k, np.eye(len(intervals[k][0])))
    return crown(len(steps), spec)


@pytest.mark.parametrize("method", ["ibp", "crown", "crown_ibp"])
def test_bounds_equal_an_independent_numpy_implementation(method):
    model = _chain_net()
    _set_bn_statistics(model, seed=1)
    x = _images(3, (6, 6, 2), seed=7)
    y = np.array([0, 2, 3])
    steps = _matrices(model, (6, 6, 2))
    margins = tfsparse.certify(model, x, y, EPS * 3, method=method).margins
    low, high = tfsparse.certification.output_bounds(model, x, EPS * 3, method=method)
    for i in range(3):
        spec = np.stack([np.eye(4)[y[i]] - np.eye(4)[j] for j in range(4) if j != y[i]])
        ref_margin, _ = _reference_bounds(steps, x[i].reshape(-1).astype(np.float64), EPS * 3, spec, method)
        ref_low, ref_high = _reference_bounds(steps, x[i].reshape(-1).astype(np.float64), EPS * 3, np.eye(4), method)
        np.testing.assert_allclose(margins[i], ref_margin, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(low[i], ref_low, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(high[i], ref_high, atol=1e-5, rtol=1e-5)


def test_crown_is_tighter_than_ibp_and_certifies_at_eps_zero():
    model = _residual_net()
    x = _images(4, (8, 8, 1), seed=2)
    ibp_low, ibp_high = tfsparse.certification.output_bounds(model, x, EPS, method="ibp")
    crown_low, crown_high = tfsparse.certification.output_bounds(model, x, EPS, method="crown")
    assert np.mean(crown_high - crown_low) < np.mean(ibp_high - ibp_low)
    y = np.argmax(model(x).numpy(), 1)
    assert tfsparse.certify(model, x, y, 0.0, method="crown").certified.all()  # ε = 0: the clean prediction


def test_a_pruned_model_is_bounded_as_its_dense_weights_with_the_zeros_written_in():
    model = _chain_net(seed=3)
    pruned = tfsparse.sparsity.prune_with("threshold", model, 0.6)
    stripped = tfsparse.strip(pruned)
    x = _images(3, (6, 6, 2), seed=8)
    y = np.array([1, 0, 3])
    for method in ("ibp", "crown"):
        wrapped = tfsparse.certify(pruned, x, y, EPS, method=method).margins
        plain = tfsparse.certify(stripped, x, y, EPS, method=method).margins
        np.testing.assert_allclose(wrapped, plain, atol=1e-6)


# ----------------------------------------------------------------------------- refusals


def test_a_layer_without_a_bound_rule_is_refused_by_name():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax", name="probs")])
    with pytest.raises(ConfigError, match="layer probs .*activation softmax"):
        tfsparse.certify(model, np.zeros((1, 4), np.float32), [0], 0.1)
    pooled = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.MaxPooling2D(2, name="pool"),
                               keras.layers.Flatten(), keras.layers.Dense(2)])
    x = np.zeros((1, 4, 4, 1), np.float32)
    assert tfsparse.certify(pooled, x, [0], 0.1, method="ibp").margins.shape == (1, 1)  # IBP bounds max pooling
    with pytest.raises(ConfigError, match="max pooling \\(pool\\); use method='ibp'"):
        tfsparse.certify(pooled, x, [0], 0.1, method="crown")


@pytest.mark.parametrize("kwargs, message", [({"eps": 5.0}, "eps must be in \\[0, 1\\]"),
                                             ({"method": "deeppoly"}, "method must be one of"),
                                             ({"norm": "l1"}, "norm must be one of"),
                                             ({"x": np.full((1, 5), 255.0)}, "divide 0-255 images by 255"),
                                             ({"y": [7]}, "labels must lie in \\[0, 2\\]")])
def test_bad_arguments_get_one_line_errors(kwargs, message):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    args = {"x": np.zeros((1, 5), np.float32), "y": [0], "eps": 0.1, **kwargs}
    with pytest.raises(ConfigError, match=message):
        tfsparse.certify(model, args.pop("x"), args.pop("y"), args.pop("eps"), **args)


def test_bounds_follow_the_weights_after_training():
    # The traced bound reads the variables at each call: a trained model is not bounded with stale weights.
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    x, y = np.full((1, 5), 0.5, np.float32), [0]
    before = tfsparse.certify(model, x, y, 0.1, method="crown").margins
    model.layers[0].kernel.assign(model.layers[0].kernel * 2)
    after = tfsparse.certify(model, x, y, 0.1, method="crown").margins
    np.testing.assert_allclose(after, 2 * before, atol=1e-5)  # zero bias: the margin doubles


# ----------------------------------------------------------------------------- the measure path


def test_certified_accuracy_is_a_measure_column_below_the_attacks():
    from tfsparse import evaluation
    from tfsparse.certification import Certificate

    model = _chain_net(seed=4)
    x = _images(12, (6, 6, 2), seed=9)
    y = np.argmax(model(x).numpy(), 1)
    y[:3] = (y[:3] + 1) % 4  # three misclassified clean: never certified
    pgd = tfsparse.PGD(eps=0.01, steps=10, step_size=0.003)
    ibp, crown = Certificate("ibp", 0.01), Certificate("crown", 0.01)
    record = evaluation.measure(model, x, y, [("clean", "clean"), ("pgd", pgd), ("certified_ibp", ibp),
                                               ("certified_crown", crown), ("violations", crown, "violations"),
                                               ("flags", "flags")])
    assert record["violations"] == 0 and "certified_but_attacked" not in record["flags"]
    assert record["certified_ibp"] <= record["certified_crown"] <= record["pgd"] <= record["clean"] <= 0.75
    assert record["certified_crown"] > 0  # small ε on an untrained net: something is proved


def test_a_certificate_contradicted_by_an_attack_is_not_reported():
    # A "certificate" that certifies everything stands in for a broken bound: the rule catches it.
    from tfsparse import evaluation
    from tfsparse.certification import Certificate
    from tfsparse.certification import Certified

    class Broken(Certificate):
        def run(self, model, x, y, batch_size=100):
            return Certified(np.ones(len(x), bool), np.ones((len(x), 3)), "crown", "linf", self.eps)

    model = _chain_net(seed=4)
    x = _images(6, (6, 6, 2), seed=9)
    y = (np.argmax(model(x).numpy(), 1) + 1) % 4  # all wrong clean
    report = evaluation.evaluate(model, x, y, [tfsparse.PGD(eps=0.01, steps=2, step_size=0.005)],
                                 certificates=[Broken("crown", 0.01)])
    entry = report["certified"]["certified_crown"]
    assert entry["accuracy"] is None and entry["violations"] == 6
    assert [f["flag"] for f in report["flags"]] == ["certified_but_attacked"]
