"""Auto-PGD (Croce & Hein, ICML 2020): DLR losses, checkpoints, Algorithm 1 and the attack classes.

References: NumPy hand computations (DLR, checkpoint recursion, a NumPy transcription of
Algorithm 1 on a linear softmax model), closed-form distances to the decision boundary of a linear
model, and PGD with the same budget on a small MNIST net trained here.
"""

import math

import numpy as np
import pytest

import tfsparse
from tfsparse.attacks import PGD
from tfsparse.attacks.apgd import APGD
from tfsparse.attacks.apgd import APGDT
from tfsparse.attacks.apgd import apgd_perturb
from tfsparse.attacks.apgd import checkpoints
from tfsparse.attacks.apgd import dlr_loss
from tfsparse.attacks.apgd import targeted_dlr_loss
from tfsparse.compat import keras
from tfsparse.compat import tf

SHAPE = (4, 4, 1)
N_FEATURES = 16


def linear_model(kernel, bias):
    """flatten -> dense with the given weights (one column: a binary single-logit model)."""
    kernel = np.asarray(kernel, np.float32).reshape(N_FEATURES, -1)
    model = keras.Sequential(
        [keras.layers.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(kernel.shape[1])]
    )
    model.set_weights([kernel, np.asarray(bias, np.float32).reshape(-1)])
    return model


@pytest.fixture(scope="module")
def linear5():
    """A 5-class linear model on interior points (x ∈ [0.3, 0.7]: optimal steps stay in the box).

    Median distance to the boundary: 0.015 in l∞, 0.047 in l2.
    """
    rng = np.random.default_rng(7)
    w = rng.normal(size=(N_FEATURES, 5))
    b = -0.5 * w.sum(0) + rng.normal(size=5) * 0.2  # boundaries through the image centre
    x = rng.uniform(0.3, 0.7, size=(96,) + SHAPE).astype(np.float32)
    logits = x.reshape(len(x), -1).astype(np.float64) @ w + b
    return linear_model(w, b), w, b, x, np.argmax(logits, 1).astype(np.int32), logits


@pytest.fixture(scope="module")
def mnist_mlp():
    """A 784-32-10 ReLU net trained 2 epochs on 2,000 embedded MNIST images, 200 test images."""
    data = tfsparse.data.load("mnist", num_train=2000, num_test=200)
    tf.random.set_seed(0)
    model = keras.Sequential(
        [
            keras.layers.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(True))
    model.fit(data.x_train, data.y_train, batch_size=64, epochs=2, verbose=0)
    return model, data.x_test, data.y_test.astype(np.int32)


def predictions(model, x):
    logits = model(x, training=False).numpy()
    return (logits[:, 0] > 0).astype(np.int32) if logits.shape[1] == 1 else logits.argmax(1)


# --- DLR losses ---------------------------------------------------------------------------------


def numpy_dlr(z, y):
    """Croce & Hein eq. 5 by hand: sort each row descending, z_y minus the best other class."""
    out = []
    for row, label in zip(z, y):
        desc = np.sort(row)[::-1]
        best_other = max(v for i, v in enumerate(row) if i != label)
        out.append(-(row[label] - best_other) / (desc[0] - desc[2] + 1e-12))
    return np.array(out)


def numpy_targeted_dlr(z, y, t):
    """Eq. 6 by hand; with 3 classes z_π4 is taken as z_π3 (the module's documented choice)."""
    out = []
    for row, label, target in zip(z, y, t):
        desc = np.sort(row)[::-1]
        fourth = desc[3] if len(row) > 3 else desc[2]
        out.append(-(row[label] - row[target]) / (desc[0] - 0.5 * (desc[2] + fourth) + 1e-12))
    return np.array(out)


@pytest.mark.parametrize("num_classes", [3, 10])
def test_dlr_losses_match_numpy(num_classes):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(32, num_classes)) * 3
    y = rng.integers(0, num_classes, 32)
    t = (y + rng.integers(1, num_classes, 32)) % num_classes
    z[0, y[0]] = z[0].max() + 2.0  # a correctly classified row and a misclassified one
    z[1, (y[1] + 1) % num_classes] = z[1].max() + 2.0
    np.testing.assert_allclose(dlr_loss(z, y).numpy(), numpy_dlr(z, y), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        targeted_dlr_loss(z, y, t).numpy(), numpy_targeted_dlr(z, y, t), rtol=1e-5, atol=1e-6
    )
    # The sign says whether the label is beaten.
    np.testing.assert_array_equal(numpy_dlr(z, y) > 0, z.argmax(1) != y)


def test_dlr_invariant_to_logit_shift_and_positive_scale():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(16, 10)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    t = (y + 1 + rng.integers(0, 9, 16)) % 10
    shift = rng.normal(size=(16, 1)).astype(np.float32) * 50
    for loss, args in ((dlr_loss, (y,)), (targeted_dlr_loss, (y, t))):
        base = loss(z, *args).numpy()
        np.testing.assert_allclose(loss(z + shift, *args).numpy(), base, rtol=1e-3, atol=1e-4)
        for scale in (0.01, 7.0, 1000.0):
            np.testing.assert_allclose(loss(scale * z, *args).numpy(), base, rtol=1e-4, atol=1e-5)


def test_dlr_needs_three_classes():
    z2, z1 = np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32)
    y = np.zeros(4, np.int32)
    for z in (z2, z1):
        with pytest.raises(ValueError, match="at least 3 classes"):
            dlr_loss(z, y)
        with pytest.raises(ValueError, match="at least 3 classes"):
            targeted_dlr_loss(z, y, y)


# --- checkpoints --------------------------------------------------------------------------------


def hand_checkpoints(n_iter):
    """p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), in integer percent."""
    percents, previous, current = [0], 0, 22
    while current <= 100:
        percents.append(current)
        previous, current = current, current + max(current - previous - 3, 6)
    return sorted({-(-p * n_iter // 100) for p in percents})  # ⌈p · N / 100⌉


def test_checkpoints_follow_the_paper_recursion():
    # By hand for N = 100: step lengths 22, 19, 16, 13, 10, 7, then 6 (the 0.06 floor).
    assert checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    for n in (1, 2, 10, 37, 100, 250, 1000):
        assert checkpoints(n) == hand_checkpoints(n), n
    for bad in (0, -3, 2.5, "100"):
        with pytest.raises(ValueError, match="n_iter"):
            checkpoints(bad)


# --- Algorithm 1 against a NumPy transcription --------------------------------------------------


def numpy_apgd_linear(w, b, x, y, x0, eps, steps, norm, rho=0.75):
    """Algorithm 1 of Croce & Hein 2020 for CE on a linear softmax model, in float64 NumPy.

    Same reading as the module: checkpoint at w_j after computing x^{w_j}; condition 1 counts the
    w_j - w_{j-1} steps before it; condition 2 = η not halved at w_{j-1} and f_max unchanged.
    """
    n = len(x)
    xf, x0f = x.reshape(n, -1).astype(np.float64), x0.reshape(n, -1).astype(np.float64)
    onehot = np.eye(w.shape[1])[y]

    def loss_grad(v):
        z = v @ w + b
        z = z - z.max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        return -np.log(p[np.arange(n), y]), (p - onehot) @ w.T, z.argmax(1) != y

    def proj(v):
        d = v - xf
        if norm == "linf":
            d = np.clip(d, -eps, eps)
        else:
            length = np.linalg.norm(d, axis=1, keepdims=True)
            d = np.where(length > eps, d * eps / np.maximum(length, 1e-12), d)
        return np.clip(xf + d, 0, 1)

    def direction(g):
        if norm == "linf":
            return np.sign(g)
        length = np.linalg.norm(g, axis=1, keepdims=True)
        return np.where(length > 0, g / np.where(length > 0, length, 1), 0)

    marks = checkpoints(steps)
    window = {after: after - before for before, after in zip(marks, marks[1:])}
    x_k, x_prev = x0f.copy(), x0f.copy()
    loss, grad, fooled = loss_grad(x_k)
    eta = np.full((n, 1), 2.0 * eps)
    x_max, g_max, f_max = x_k.copy(), grad.copy(), loss.copy()
    x_fool = x_k.copy()
    increases, f_check, halved = np.zeros(n), f_max.copy(), np.zeros(n, bool)
    for k in range(steps):
        z = proj(x_k + eta * direction(grad))
        a = 1.0 if k == 0 else 0.75
        x_new = proj(x_k + a * (z - x_k) + (1 - a) * (x_k - x_prev))
        loss_new, grad_new, fooled_new = loss_grad(x_new)
        increases += loss_new > loss
        better = loss_new > f_max
        x_max[better], g_max[better], f_max[better] = x_new[better], grad_new[better], loss_new[
            better
        ]
        x_fool[fooled_new] = x_new[fooled_new]
        fooled |= fooled_new
        x_prev, x_k, grad, loss = x_k, x_new, grad_new, loss_new
        if k + 1 in window and k + 1 < steps:
            halve = (increases < rho * window[k + 1]) | (~halved & (f_max <= f_check))
            eta[halve] /= 2
            x_k, grad, loss = x_k.copy(), grad.copy(), loss.copy()
            x_k[halve], grad[halve], loss[halve] = x_max[halve], g_max[halve], f_max[halve]
            increases[:], f_check, halved = 0, f_max.copy(), halve
    out = np.where(fooled[:, None], x_fool, x_max)
    return out.reshape(x.shape), fooled, f_max


@pytest.mark.parametrize("norm, eps", [("linf", 0.02), ("l2", 0.07)])
def test_apgd_perturb_matches_a_numpy_transcription_of_algorithm_1(norm, eps, linear5):
    model, w, b, x, y, _ = linear5
    rng = np.random.default_rng(3)
    x0 = np.clip(x + rng.uniform(-1, 1, size=x.shape) * eps / (4 if norm == "l2" else 1), 0, 1)
    x0 = x0.astype(np.float32)
    x_adv, fooled, f_max = apgd_perturb(
        lambda v: model(v, training=False), x, y, eps=eps, steps=30, norm=norm, x_init=x0
    )
    want_x, want_fooled, want_f = numpy_apgd_linear(w, b, x, y, x0, eps, 30, norm)
    assert 0 < want_fooled.sum() < len(y)  # both outcomes are exercised
    np.testing.assert_array_equal(fooled.numpy(), want_fooled)
    np.testing.assert_allclose(f_max.numpy(), want_f, rtol=1e-4, atol=1e-5)
    # float32 vs float64: l∞ iterates snap to the ball's faces, l2 ones accumulate rounding.
    np.testing.assert_allclose(x_adv.numpy(), want_x, atol=1e-5 if norm == "linf" else 3e-4)


@pytest.mark.parametrize("norm, eps", [("linf", 0.02), ("l2", 0.07)])
def test_dropping_fooled_samples_changes_the_cost_not_the_outcome(norm, eps, linear5):
    """drop_fooled: the same samples fooled, the same loss and point for the others, fewer rows.

    Traced in a tf.function (the graph path with dynamic loop shapes, as the attacks run it).
    """
    model, _, _, x, y, _ = linear5
    rng = np.random.default_rng(3)
    x0 = np.clip(x + rng.uniform(-1, 1, size=x.shape) * eps / (4 if norm == "l2" else 1), 0, 1)
    x0 = x0.astype(np.float32)
    rows = tf.Variable(0, dtype=tf.int64)

    def counting_model(v):
        rows.assign_add(tf.cast(tf.shape(v)[0], tf.int64))
        return model(v, training=False)

    def run(drop):
        rows.assign(0)
        fn = tf.function(lambda a, b, c: apgd_perturb(counting_model, a, b, eps=eps, steps=30,
                                                      norm=norm, x_init=c, drop_fooled=drop))
        out = [t.numpy() for t in fn(x, y, x0)]
        return out, int(rows.numpy())

    (x_all, fooled_all, f_all), rows_all = run(False)
    (x_drop, fooled_drop, f_drop), rows_drop = run(True)
    assert 0 < fooled_all.sum() < len(y)
    np.testing.assert_array_equal(fooled_drop, fooled_all)
    robust = ~fooled_all
    np.testing.assert_allclose(f_drop[robust], f_all[robust], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x_drop[robust], x_all[robust], atol=1e-6)
    assert np.all(predictions(model, x_drop)[fooled_all] != y[fooled_all])
    delta = (x_drop - x).reshape(len(x), -1)
    size = np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta, axis=1)
    assert np.all(size <= eps * (1 + 1e-5) + 1e-6) and x_drop.min() >= 0 and x_drop.max() <= 1
    assert rows_all == 31 * len(y)  # 30 forward+backward passes and the last forward
    assert rows_drop < rows_all - 10 * fooled_all.sum()  # fooled samples stop early


@pytest.mark.parametrize("conv", [False, True])
def test_dropping_every_sample_ends_the_loop(conv, linear5):
    """Every point fooled early: the loop stops and the model never sees an empty batch (a
    convolution on one fails under oneDNN)."""
    model, _, _, x, y, _ = linear5
    if conv:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.layers.Input(SHAPE), keras.layers.Reshape((4, 4, -1)),
                                  keras.layers.Conv2D(4, 3), keras.layers.Conv2D(4, 2),
                                  keras.layers.Flatten(), keras.layers.Dense(5)])
        y = predictions(model, x).astype(np.int32)
    x_adv, fooled, _ = tf.function(lambda a, b: apgd_perturb(
        lambda v: model(v, training=False), a, b, eps=1.0, steps=20, seed=tf.constant([1, 2]),
        drop_fooled=True))(x, y)
    assert fooled.numpy().all()
    assert np.all(predictions(model, x_adv.numpy()) != y)


# --- attack properties --------------------------------------------------------------------------


ATTACKS = {
    "apgd_ce": lambda **kw: APGD(loss="ce", **kw),
    "apgd_dlr": lambda **kw: APGD(loss="dlr", **kw),
    "apgd_t": lambda **kw: APGDT(n_target_classes=3, **kw),
}


BALLS = [("linf", 0.03), ("l2", 0.1)]


@pytest.mark.parametrize(
    "which, norm, eps, jit_compile",
    [(which, norm, eps, False) for which in ATTACKS for norm, eps in BALLS]
    # XLA compiles slowly on CPU: one case (slow tier) covers the whole-batch (static shape) path.
    + [pytest.param("apgd_ce", "linf", 0.03, True, marks=pytest.mark.slow)],
)
def test_inside_eps_ball_and_box(which, norm, eps, jit_compile, linear5):
    model, _, _, x, y, _ = linear5
    # Points near the box edges too, so clipping to [0, 1] matters.
    x = np.clip(x + np.where(x > 0.5, 0.3, -0.3), 0, 1).astype(np.float32)
    attack = ATTACKS[which](eps=eps, norm=norm, steps=10, restarts=2, jit_compile=jit_compile)
    result = attack(model, x, y, seed=1)
    assert result.x_adv.shape == x.shape
    assert result.x_adv.min() >= 0.0 and result.x_adv.max() <= 1.0
    assert np.all((result.linf if norm == "linf" else result.l2) <= eps * (1 + 1e-5) + 1e-6)
    assert result.success.sum() > 0
    np.testing.assert_array_equal(result.success, result.clean_correct & ~result.adv_correct)


@pytest.mark.parametrize("which", list(ATTACKS))
@pytest.mark.parametrize("norm", ["linf", pytest.param("l2", marks=pytest.mark.slow)])
def test_eps_zero_returns_x(which, norm, linear5):
    model, _, _, x, y, _ = linear5
    result = ATTACKS[which](eps=0, norm=norm, steps=5)(model, x, y, seed=0)
    np.testing.assert_array_equal(result.x_adv, x)
    assert not result.success.any()


@pytest.mark.parametrize("norm, eps", [("linf", 0.02), ("l2", 0.07)])
@pytest.mark.parametrize("which", list(ATTACKS))
def test_linear_model_flips_exactly_what_the_closed_form_allows(which, norm, eps, linear5):
    """Distance of x to the boundary with class j: margin_j / ‖w_y - w_j‖_q (q = 1 for l∞, 2)."""
    model, w, _, x, y, logits = linear5
    dual = 1 if norm == "linf" else 2
    distance = np.full(len(y), np.inf)
    for j in range(w.shape[1]):
        diff = w[:, y] - w[:, [j]]  # (features, batch)
        margin = logits[np.arange(len(y)), y] - logits[:, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(y == j, np.inf, margin / np.linalg.norm(diff, ord=dual, axis=0))
        distance = np.minimum(distance, d)
    safe, easy = distance > eps, distance < 0.5 * eps
    assert safe.sum() >= 10 and easy.sum() >= 10
    result = ATTACKS[which](eps=eps, norm=norm, steps=30)(model, x, y, seed=0)
    flipped = predictions(model, result.x_adv) != y
    assert not flipped[safe].any()
    assert flipped[easy].all()
    np.testing.assert_array_equal(result.success, flipped)


def test_apgd_not_weaker_than_pgd_with_the_same_budget(mnist_mlp):
    model, x, y = mnist_mlp
    eps, steps = 0.06, 20
    pgd = PGD(eps=eps, step_size=2.5 * eps / steps, steps=steps, random_start=True)
    pgd_acc = pgd(model, x, y, seed=0).adv_accuracy
    clean = np.mean(predictions(model, x) == y)
    assert 0.2 < pgd_acc < clean - 0.2  # a budget where the comparison means something
    ce = APGD(eps=eps, steps=steps)(model, x, y, seed=0)
    dlr = APGD(eps=eps, steps=steps, loss="dlr")(model, x, y, seed=0)
    targeted = APGDT(eps=eps, steps=steps, n_target_classes=3)(model, x, y, seed=0)
    assert ce.adv_accuracy <= pgd_acc + 0.015
    assert dlr.adv_accuracy <= pgd_acc + 0.03
    assert targeted.adv_accuracy <= pgd_acc + 0.03
    # APGD-T: success is exactly "clean-correct and misclassified on x_adv" (any class).
    pred_adv = predictions(model, targeted.x_adv)
    assert targeted.success.sum() > 0
    assert np.all(pred_adv[targeted.success] != y[targeted.success])
    np.testing.assert_array_equal(
        targeted.success, (predictions(model, x) == y) & (pred_adv != y)
    )


def test_misclassified_inputs_are_returned_unchanged_and_restarts_only_add(linear5):
    model, _, _, x, y, _ = linear5
    y_wrong = y.copy()
    y_wrong[:10] = (y[:10] + 1) % 5
    one = APGD(eps=0.015, steps=10)(model, x, y_wrong, seed=3)
    three = APGD(eps=0.015, steps=10, restarts=3)(model, x, y_wrong, seed=3)
    np.testing.assert_array_equal(one.x_adv[:10], x[:10])
    assert not one.success[:10].any()
    # Run 0 of both is the same; later runs only attack what is still robust.
    assert np.all(three.success[one.success])
    assert three.success.sum() >= one.success.sum()
    np.testing.assert_array_equal(
        APGD(eps=0.015, steps=10).run(model, x, y_wrong, batch_size=40, seed=5).x_adv,
        APGD(eps=0.015, steps=10).run(model, x, y_wrong, batch_size=40, seed=5).x_adv,
    )


def test_binary_model_ce_works_and_dlr_is_refused():
    rng = np.random.default_rng(4)
    w = rng.normal(size=N_FEATURES)
    b = -0.5 * w.sum()
    model = linear_model(w, b)
    x = rng.uniform(0.3, 0.7, size=(64,) + SHAPE).astype(np.float32)
    score = x.reshape(len(x), -1) @ w + b
    y = (score > 0).astype(np.int32)
    eps = 0.05
    result = APGD(eps=eps, steps=10)(model, x, y, seed=0)
    # Guo et al. eq. 1: the l∞ distance to the hyperplane is |score| / ‖w‖₁.
    distance = np.abs(score) / np.abs(w).sum()
    assert np.all(result.success[distance < 0.5 * eps])
    assert not np.any(result.success[distance > eps])
    for attack in (APGD(eps=eps, loss="dlr", steps=5), APGDT(eps=eps, steps=5)):
        with pytest.raises(ValueError, match="at least 3 classes"):
            attack(model, x, y)
    two_class = linear_model(rng.normal(size=(N_FEATURES, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="at least 3 classes"):
        APGD(eps=eps, loss="dlr", steps=5)(two_class, x, y)
    # Three classes are enough; APGD-T then tries the 2 other classes, not the default 9.
    w3 = rng.normal(size=(N_FEATURES, 3))
    three_class = linear_model(w3, -0.5 * w3.sum(0))
    y3 = predictions(three_class, x)
    assert APGDT(eps=0.1, steps=5)(three_class, x, y3, seed=0).success.mean() > 0.5


class LogitNoise(keras.layers.Layer):
    """Adds N(0, σ²) to its input on every call, in inference too (like RSR's noise layers)."""

    def __init__(self, stddev, **kwargs):
        super().__init__(**kwargs)
        self.stddev = stddev

    def call(self, inputs, training=None):
        return inputs + tf.random.normal(tf.shape(inputs), stddev=self.stddev)


def test_eot_samples_on_deterministic_and_noisy_models(linear5):
    model, _, _, x, y, _ = linear5
    params = dict(eps=0.04, steps=10)
    plain = APGD(**params)(model, x, y, seed=0)
    eot = APGD(**params, eot_samples=4)(model, x, y, seed=0)
    np.testing.assert_allclose(eot.x_adv, plain.x_adv, atol=1e-6)  # same gradient, 4x cost
    noisy = keras.Sequential([model, LogitNoise(0.3)])  # logits spread ≈ 0.43
    flip_rates = {}
    for samples in (1, 8):
        tf.random.set_seed(1)
        result = APGD(**params, eot_samples=samples)(noisy, x, y, seed=0)
        assert np.all(result.linf <= params["eps"] + 1e-6)
        flip_rates[samples] = np.mean(predictions(model, result.x_adv) != y)
    # Averaged gradients (and mean-logit decisions) find more adversarial points of the
    # underlying linear model than single noisy passes do (measured: 0.61 vs 0.52).
    assert flip_rates[8] > flip_rates[1] and flip_rates[8] >= 0.5


def test_repr_params_frozen_and_bad_arguments():
    attack = APGD(eps=0.1, norm="l2", loss="dlr", steps=7, restarts=2, rho=0.5, eot_samples=3)
    assert repr(attack) == (
        "APGD(eps=0.1, norm='l2', loss='dlr', steps=7, restarts=2, rho=0.5, eot_samples=3, "
        "jit_compile='auto')"
    )
    params = attack.params
    assert params.pop("name") == "apgd"
    assert repr(APGD(**params)) == repr(attack)
    targeted = APGDT(eps=0.1)
    assert targeted.params["name"] == "apgd_t"
    assert targeted.steps == 100 and targeted.n_target_classes == 9 and targeted.restarts == 1
    assert APGD(eps=0.1).steps == 100 and APGD(eps=0.1).rho == 0.75
    with pytest.raises(AttributeError, match="frozen"):
        attack.eps = 0.2
    with pytest.raises(TypeError):
        APGD(0.1)
    for kwargs, match in [
        ({"loss": "hinge"}, "loss"),
        ({"norm": "l1"}, "norm"),
        ({"steps": 0}, "steps"),
        ({"restarts": 0}, "restarts"),
        ({"rho": 0}, "rho"),
        ({"rho": 1.5}, "rho"),
        ({"eot_samples": 0}, "eot_samples"),
        ({"eps": -0.1}, "eps"),
        ({"jit_compile": "yes"}, "jit_compile"),
    ]:
        with pytest.raises(ValueError, match=match):
            APGD(**{"eps": 0.1, **kwargs})
    with pytest.raises(ValueError, match="n_target_classes"):
        APGDT(eps=0.1, n_target_classes=0)
    assert math.isclose(APGDT(eps=0.1, rho=0.6).rho, 0.6)
