"""Tests of Guo et al. 2018 Theorem 3.2 (multi-class linear bounds) and ``linear_model_bounds``.

Theorem 3.1 (binary) is tested in tests/test_metrics.py; here the multi-class closed forms
are checked against a hand-computed case, against DeepFool's exact minimal distance on linear
models (an equality for c = 2, an upper bound for c > 2), and the model reader against the
zoo's ``linear`` / ``linear_binary`` models with a non-trivial input normalisation folded in.
"""

import numpy as np
import pytest

from tfsparse import models
from tfsparse.attacks import DeepFool
from tfsparse.compat import keras
from tfsparse.metrics import linear_binary_r2
from tfsparse.metrics import linear_binary_r_inf_bound
from tfsparse.metrics import linear_model_bounds
from tfsparse.metrics import linear_multiclass_r2_bound
from tfsparse.metrics import linear_multiclass_r_inf_bound
from tfsparse.metrics import r2
from tfsparse.metrics import r_inf

# 3 channels with per-channel mean/std: the bounds must be in pixel units, so a reader that
# ignores the normalisation (or broadcasts it over the wrong axis) gives different numbers.
SHAPE = (2, 2, 3)
MEAN, STD = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)


def test_theorem_3_2_on_a_hand_computed_case():
    # n = 2 features, c = 3 classes: w_0 = (3, 0), w_1 = (0, 3), w_2 = (0, 0), b = (0, 0, 3).
    # w̄ = (1, 1), b̄ = 1: w_k − w̄ = (2, −1), (−1, 2), (−1, −1); b_k − b̄ = −1, −1, 2;
    # ‖w_k − w̄‖₂ = √5, √5, √2 and ‖w_k − w̄‖₁ = 3, 3, 2. Scores s = (3x₀, 3x₁, 3).
    W = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    b = np.array([0.0, 0.0, 3.0])
    x = np.array([[2, 0], [2, 1], [0, 2], [0, 0], [0, 0], [3, 1]], np.float64)
    y = np.array([0, 0, 1, 1, 2, 2])
    # Predictions 0, 0, 1, 2, 2, 0: samples 3 and 5 are wrong, t = 4/6, t/c = 2/9.
    # μ_0 = (2, 0.5), μ_1 = (0, 2), μ_2 = (0, 0); numerators (w_k − w̄)ᵀμ_k + b_k − b̄:
    # 4 − 0.5 − 1 = 2.5, 4 − 1 = 3, 0 + 2 = 2.
    r2_hand = 2 / 9 * (2.5 / np.sqrt(5) + 3 / np.sqrt(5) + 2 / np.sqrt(2))  # = 0.8610
    r_inf_hand = 2 / 9 * (2.5 / (0.5 * 3) + 3 / (0.5 * 3) + 2 / (0.5 * 2))  # = 34/27 at ε = 0.5
    assert linear_multiclass_r2_bound(W, b, x, y) == pytest.approx(r2_hand, rel=1e-12)
    assert linear_multiclass_r_inf_bound(W, b, x, y, 0.5) == pytest.approx(34 / 27, rel=1e-12)
    assert r_inf_hand == pytest.approx(34 / 27)
    # The classifier is unchanged by adding one vector to every w_k (the theorem's w̄ argument).
    shifted = W + np.array([[0.7], [-0.4]])
    assert linear_multiclass_r2_bound(shifted, b, x, y) == pytest.approx(r2_hand, rel=1e-12)


def test_theorem_3_2_rejects_bad_input_and_handles_an_empty_class():
    W, b, x = np.eye(2), np.zeros(2), np.array([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="label in"):
        linear_multiclass_r2_bound(W, b, x, np.array([0, 2]))
    with pytest.raises(ValueError, match="features"):
        linear_multiclass_r2_bound(np.eye(3)[:, :2], b, x, np.array([0, 1]))
    with pytest.raises(ValueError, match="c entries"):
        linear_multiclass_r2_bound(W, np.zeros(3), x, np.array([0, 1]))
    with pytest.raises(ValueError, match="eps"):
        linear_multiclass_r_inf_bound(W, b, x, np.array([0, 1]), 0.0)
    assert np.isnan(linear_multiclass_r2_bound(W, b, x, np.array([0, 0])))  # class 1: no correct sample


def zoo_linear(num_classes, seed):
    keras.utils.set_random_seed(seed)
    name = "linear_binary" if num_classes == 1 else "linear"
    model = models.get(name)(num_classes, SHAPE, MEAN, STD)
    kernel, bias = model.get_weights()
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=kernel.shape).astype(np.float32)
    model.set_weights([kernel, np.zeros_like(bias)])
    # Bias: all logits tie at the centre of the data box (plus a little noise), so that every
    # class is predicted on part of [0.3, 0.7]^n.
    centre = model.predict(np.full((1,) + SHAPE, 0.5, np.float32), verbose=0)[0]
    model.set_weights([kernel, (rng.normal(scale=0.1, size=bias.shape) - centre).astype(np.float32)])
    return model


def balanced_data(model, num_classes, n_correct=12, n_wrong=3, seed=0):
    """Data meeting Thm 3.2's assumptions: every class has ``n_correct`` correctly and ``n_wrong``
    wrongly classified samples (balanced classes, the same accuracy on each), inside [0.3, 0.7]."""
    rng = np.random.default_rng(seed)
    pool = rng.uniform(0.3, 0.7, size=(4000,) + SHAPE).astype(np.float32)
    pred = np.argmax(model.predict(pool, batch_size=1000, verbose=0), axis=1)
    xs, ys = [], []
    for k in range(num_classes):
        right = pool[pred == k][:n_correct]
        wrong = pool[pred == (k + 1) % num_classes][n_correct : n_correct + n_wrong]  # predicted k + 1
        assert len(right) == n_correct and len(wrong) == n_wrong
        xs += [right, wrong]
        ys += [np.full(n_correct + n_wrong, k)]
    return np.concatenate(xs), np.concatenate(ys).astype(np.int32)


def test_theorem_3_2_against_deepfool_exact_distance():
    # Overshoot 1e-4: every sample crosses its boundary in float32 (none is a failure, which r2
    # would leave out) and each distance grows by 1e-4 relative, inside the tolerance.
    exact = DeepFool(overshoot=1e-4, box=False, max_iter=3)
    # c = 2: the half-space (w_k − w̄)ᵀx + b_k − b̄ ≥ 0 is class k's decision region, so the
    # bound equals DeepFool's minimal distance on data meeting the assumptions.
    model = zoo_linear(2, seed=1)
    x, y = balanced_data(model, 2)
    measured = r2(model, x, y, attack=exact, batch_size=64)
    assert measured["clean_accuracy"] == pytest.approx(0.8) and measured["failures"] == 0
    bounds = linear_model_bounds(model, x, y, eps=0.05)
    assert set(bounds) == {"thm32_r2_bound", "thm32_r_inf_bound"}
    assert bounds["thm32_r2_bound"] == pytest.approx(measured["r2"] / (1 + 1e-4), rel=1e-5)
    # c = 4: an upper bound, strictly above the exact distance (the nearest boundary of a class
    # is closer than the one of its mean half-space).
    model = zoo_linear(4, seed=2)
    x, y = balanced_data(model, 4)
    measured = r2(model, x, y, attack=exact, batch_size=64)
    bound = linear_model_bounds(model, x, y, eps=0.05)["thm32_r2_bound"]
    assert measured["r2"] < bound < 3 * measured["r2"]


def test_theorem_3_2_r_inf_bound_holds_for_fgs_on_two_classes():
    # For c = 2, FGS on the cross-entropy shifts x by −ε·sgn(w_y − w̄) exactly (assumption I
    # with equality) and never corrects a mistake (II), so only Markov's step separates the two.
    model = zoo_linear(2, seed=3)
    x, y = balanced_data(model, 2, n_correct=40, n_wrong=10)
    at_one = linear_model_bounds(model, x, y, eps=1.0)["thm32_r_inf_bound"]
    eps = 1.25 * at_one  # the bound scales as 1/ε: 0.8 at this budget
    assert 0.3 - eps > 0 and 0.7 + eps < 1  # FGS never meets the [0, 1] box
    bound = linear_model_bounds(model, x, y, eps=eps)["thm32_r_inf_bound"]
    assert bound == pytest.approx(0.8)
    measured = r_inf(model, x, y, eps, batch_size=64)["r_inf"]
    assert 0 < measured <= bound


def test_linear_model_bounds_binary_reads_the_zoo_model_in_pixel_units():
    model = zoo_linear(1, seed=4)
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(50,) + SHAPE).astype(np.float32)
    y = rng.integers(0, 2, size=50)
    bounds = linear_model_bounds(model, x, y, eps=0.1)
    assert set(bounds) == {"thm31_r2", "thm31_r_inf_bound"}
    # The pixel-unit weights: logit = Σ (x − m_c)/s_c · k + b, i.e. w = k/s_c, b' = b − Σ m_c k/s_c.
    kernel, bias = (v.astype(np.float64) for v in model.get_weights())
    std, mean = np.tile(STD, 4), np.tile(MEAN, 4)
    w = kernel[:, 0] / std
    b = bias[0] - mean @ w
    np.testing.assert_allclose(x.reshape(50, -1) @ w + b, model.predict(x, verbose=0)[:, 0], rtol=1e-4, atol=1e-4)
    assert bounds["thm31_r2"] == pytest.approx(linear_binary_r2(w, b, x, 2 * y - 1), rel=1e-9)
    assert bounds["thm31_r_inf_bound"] == pytest.approx(linear_binary_r_inf_bound(w, b, x, 2 * y - 1, 0.1), rel=1e-9)
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        linear_model_bounds(model, x, 2 * y - 1, eps=0.1)


def test_linear_model_bounds_rejects_other_architectures():
    model = keras.Sequential([keras.layers.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(8),
                              keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="linear"):
        linear_model_bounds(model, np.zeros((1,) + SHAPE), np.zeros(1, int), eps=0.1)
