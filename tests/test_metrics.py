"""Tests of Guo's r∞ / r2 (eq. 1 / 5) and of the Theorem 3.1 closed forms."""

import numpy as np
import pytest

from tfsparse.attacks import DeepFool
from tfsparse.attacks import FGSM
from tfsparse.compat import keras
from tfsparse.metrics import clean_accuracy
from tfsparse.metrics import linear_binary_margins
from tfsparse.metrics import linear_binary_r2
from tfsparse.metrics import linear_binary_r_inf_bound
from tfsparse.metrics import predict_labels
from tfsparse.metrics import r2
from tfsparse.metrics import r_inf

SHAPE = (4, 4, 1)


def linear_model(kernel, bias):
    kernel = np.asarray(kernel, np.float32).reshape(int(np.prod(SHAPE)), -1)
    model = keras.Sequential(
        [keras.layers.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(kernel.shape[1])]
    )
    model.set_weights([kernel, np.asarray(bias, np.float32).reshape(-1)])
    return model


def mirrored_binary_data(w, b, n_pairs=40, n_wrong=6, seed=0):
    """Data meeting Thm 3.1's assumptions exactly: balanced classes, equal per-class accuracy.

    Points on the positive side of ``wᵀx + b = 0`` are reflected through the hyperplane with the
    opposite label, so each class has ``n_pairs`` samples with the same set of margins; the
    last ``n_wrong`` pairs carry the wrong label on both sides (accuracy t < 1 on each class).
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n_pairs, w.size))
    score = x @ w + b
    x = np.where((score < 0)[:, None], x - 2 * (score / (w @ w))[:, None] * w, x)  # positive side
    mirror = x - 2 * ((x @ w + b) / (w @ w))[:, None] * w
    y_pos = np.ones(n_pairs, np.int32)
    y_pos[n_pairs - n_wrong :] = 0
    x_all = np.concatenate([x, mirror]).reshape((-1,) + SHAPE).astype(np.float32)
    return x_all, np.concatenate([y_pos, 1 - y_pos])


def test_deepfool_r2_equals_theorem_3_1_on_linear_binary():
    rng = np.random.default_rng(4)
    w = rng.normal(size=16)
    b = 0.7  # non-zero: the closed form must handle the bias
    x, y = mirrored_binary_data(w, b)
    model = linear_model(w, b)
    kernel, bias = model.get_weights()
    attack = DeepFool(overshoot=0.0, box=False, max_iter=3)
    empirical = r2(model, x, y, attack=attack, batch_size=32)
    theory = linear_binary_r2(kernel, bias, x, 2 * y - 1)
    assert empirical["clean_accuracy"] == pytest.approx(34 / 40)
    np.testing.assert_allclose(empirical["r2"], theory, rtol=1e-5)


def test_r2_counts_misclassified_as_zero_and_divides_by_all():
    # w = e_0, b = -0.5: the distance of x to the boundary is |x_0 - 0.5|.
    w = np.zeros(16)
    w[0] = 1.0
    model = linear_model(w, -0.5)
    x = np.full((5,) + SHAPE, 0.5, np.float32)
    x[:, 0, 0, 0] = [0.9, 0.8, 0.1, 0.3, 0.6]
    y = np.array([1, 1, 0, 1, 0])  # the last two are misclassified
    result = r2(model, x, y, attack=DeepFool(box=False))
    margins = np.array([0.4, 0.3, 0.4]) * 1.02
    assert result["r2"] == pytest.approx(margins.sum() / 5, rel=1e-5)
    assert result["mean_l2_attacked"] == pytest.approx(margins.mean(), rel=1e-5)
    assert result["failures"] == 0 and result["n"] == 5
    assert result["clean_accuracy"] == pytest.approx(0.6)
    assert result["attack"] == repr(DeepFool(box=False))


def test_r2_counts_failures_with_the_norm_reached():
    w = np.zeros(16)
    w[0] = 1.0
    model = linear_model(w, -0.5)
    x = np.full((2,) + SHAPE, 0.5, np.float32)
    x[:, 0, 0, 0] = [0.75, 0.25]  # exact in float32: both land exactly on logit 0
    # overshoot 0 lands on the boundary; logit 0 counts as class 0, so only class 1 flips.
    result = r2(model, x, np.array([1, 0]), attack=DeepFool(overshoot=0.0, box=False, max_iter=1))
    assert result["failures"] == 1
    assert result["r2"] == pytest.approx(0.25, rel=1e-6)


def test_r_inf_is_accuracy_on_fgs_examples_of_guo_eq_1():
    rng = np.random.default_rng(5)
    w = rng.normal(size=16)
    b = -0.5 * w.sum()
    model = linear_model(w, b)
    x = rng.uniform(size=(200,) + SHAPE).astype(np.float32)
    y = (x.reshape(200, -1) @ w + b > 0).astype(np.int32)
    y[:10] = 1 - y[:10]
    eps = 0.05
    x_check = np.clip(x.reshape(200, -1) - eps * (2 * y - 1)[:, None] * np.sign(w), 0, 1)
    expected = np.mean((x_check @ w + b > 0) == y)
    result = r_inf(model, x, y, eps, batch_size=64)
    assert result["r_inf"] == pytest.approx(expected)
    assert result["eps"] == eps and result["attack"] == repr(FGSM(eps=eps))
    assert result["clean_accuracy"] == pytest.approx(0.95)
    assert r_inf(model, x, y, eps, attack=FGSM(eps=eps))["r_inf"] == result["r_inf"]
    with pytest.raises(ValueError, match="eps"):
        r_inf(model, x, y, 0.1, attack=FGSM(eps=0.2))


def test_r_inf_theorem_bound_holds_on_its_assumptions():
    rng = np.random.default_rng(6)
    w = rng.normal(size=16)
    b = 0.3
    x, y = mirrored_binary_data(w, b, n_pairs=200, n_wrong=20)
    y_pm1 = 2 * y - 1
    flat = x.reshape(len(x), -1).astype(np.float64)
    for eps in (0.01, 0.05, 0.2):
        # Guo eq. (1) without the box: x̌ = x - ε·y·sgn(w).
        fgs = flat - eps * y_pm1[:, None] * np.sign(w)
        empirical = np.mean(np.sign(fgs @ w + b) == y_pm1)
        assert empirical <= linear_binary_r_inf_bound(w, b, x, y_pm1, eps) + 1e-12


def test_theory_closed_forms_on_a_hand_example():
    w = np.array([3.0, 4.0])
    x = np.array([[1.0, 1.0], [-1.0, -1.0], [2.0, 0.0], [0.0, -1.0]])
    y = np.array([1, -1, -1, -1])  # sample 2 (score 6 - 1 = 5) is misclassified
    b = -1.0
    np.testing.assert_allclose(linear_binary_margins(w, b, x), [6 / 5, 8 / 5, 5 / 5, 5 / 5])
    t = 3 / 4
    mu_pos, mu_neg = x[0], (x[1] + x[3]) / 2
    assert linear_binary_r2(w, b, x, y) == pytest.approx(t / 2 * w @ (mu_pos - mu_neg) / 5)
    assert linear_binary_r_inf_bound(w, b, x, y, 0.1) == pytest.approx(
        t / 2 * w @ (mu_pos - mu_neg) / (0.1 * 7)
    )


def test_theory_rejects_bad_input_and_handles_an_empty_class():
    w, x = np.ones(2), np.array([[1.0, 1.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match="-1"):
        linear_binary_r2(w, 0.0, x, np.array([1, 0]))
    with pytest.raises(ValueError, match="features"):
        linear_binary_r2(np.ones(3), 0.0, x, np.array([1, -1]))
    with pytest.raises(ValueError, match="eps"):
        linear_binary_r_inf_bound(w, 0.0, x, np.array([1, -1]), 0.0)
    assert np.isnan(linear_binary_r2(w, 0.0, x, np.array([1, 1])))


def test_predict_labels_and_clean_accuracy_for_both_output_kinds():
    x = np.zeros((3,) + SHAPE, np.float32)
    x[:, 0, 0, 0] = [0.2, 0.6, 0.9]
    w = np.zeros(16)
    w[0] = 1.0
    binary = linear_model(w, -0.5)
    np.testing.assert_array_equal(predict_labels(binary, x), [0, 1, 1])
    multi = linear_model(np.stack([np.zeros(16), w, 2 * w], axis=1), [0.0, -0.5, -1.25])
    np.testing.assert_array_equal(predict_labels(multi, x, batch_size=2), [0, 1, 2])
    assert clean_accuracy(multi, x, np.array([0, 1, 1])) == pytest.approx(2 / 3)
