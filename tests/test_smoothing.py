"""Randomized smoothing (Cohen et al. 2019): the Clopper–Pearson bound, abstention, and the
certified radius of a linear classifier, whose smoothed form is known in closed form (issue 34, item 4)."""

import numpy as np
import pytest
from scipy import stats

from tfsparse.certification import smoothing
from tfsparse.compat import keras
from tfsparse.errors import ConfigError


def test_clopper_pearson_lower_bound_is_the_exact_binomial_tail():
    # p_L solves P(Binomial(n, p_L) >= k) = alpha (the one-sided exact interval), and is 0 for k = 0.
    for k, n, alpha in [(990, 1000, 0.001), (60, 100, 0.05), (1, 10, 0.01), (100, 100, 0.001)]:
        p = float(smoothing.clopper_pearson_lower(k, n, alpha))
        assert stats.binom.sf(k - 1, n, p) == pytest.approx(alpha, rel=1e-6)
    assert smoothing.clopper_pearson_lower(0, 50, 0.001) == 0.0


def _linear_binary(w, b):
    """Logits [0, w·x + b]: class 1 iff w·x + b > 0."""
    inputs = keras.Input((len(w),))
    score = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(np.asarray(w)[:, None]),
                               bias_initializer=keras.initializers.Constant(b))(inputs)
    logits = keras.layers.Concatenate()([keras.layers.Lambda(lambda s: s * 0)(score), score])
    return keras.Model(inputs, logits)


def test_a_linear_classifiers_certified_radius_is_its_distance_to_the_boundary():
    # g(x) = class of sign(w·x + b), p_A = Φ(|w·x + b| / (σ‖w‖)), so R = σΦ⁻¹(p_A) = |w·x + b| / ‖w‖
    # exactly; the Monte-Carlo radius falls below it by the confidence margin only.
    w, b, sigma = np.array([0.6, -0.8, 0.0]), 0.1, 0.5
    model = _linear_binary(w, b)
    x = np.array([[0.9, 0.1, 0.3], [0.1, 0.7, 0.5], [0.2, 0.6, 0.5]], np.float32)  # distances 0.56, 0.4, 0.26
    distance = np.abs(x @ w + b) / np.linalg.norm(w)
    found = smoothing.certify(model, x, sigma, n0=100, n=20_000, alpha=0.001, batch=4000, seed=1)
    assert list(found.prediction) == [1, 0, 0]
    assert np.all(found.radius <= distance + 1e-6)
    assert np.all(found.radius >= distance - 0.1 * sigma)
    assert found.certified_accuracy([1, 0, 0]) == 1.0
    assert found.curve([1, 0, 0], [0.0, 0.3, 10.0]) == [1.0, pytest.approx(2 / 3), 0.0]


def test_it_abstains_where_the_votes_are_even():
    model = _linear_binary(np.array([1.0, 0.0]), -0.5)
    on_boundary = np.array([[0.5, 0.2]], np.float32)  # w·x + b = 0: each class half the time
    found = smoothing.certify(model, on_boundary, 0.25, n0=50, n=2000, alpha=0.001, seed=2)
    assert found.prediction[0] == smoothing.ABSTAIN and found.radius[0] == -1.0
    assert smoothing.predict(model, on_boundary, 0.25, n=2000, alpha=0.001, seed=2)[0] == smoothing.ABSTAIN
    far = np.array([[0.95, 0.2]], np.float32)
    assert smoothing.predict(model, far, 0.25, n=2000, alpha=0.001, seed=2)[0] == 1


def test_the_same_seed_gives_the_same_answer():
    model = _linear_binary(np.array([0.3, 0.4]), -0.2)
    x = np.random.default_rng(0).uniform(0, 1, (5, 2)).astype(np.float32)
    first = smoothing.certify(model, x, 0.3, n0=20, n=500, seed=7)
    again = smoothing.certify(model, x, 0.3, n0=20, n=500, seed=7)
    np.testing.assert_array_equal(first.radius, again.radius)


@pytest.mark.parametrize("kwargs, message", [({"sigma": 0.0}, "sigma must be > 0"), ({"n": 0}, "n must be >= 1"),
                                             ({"alpha": 1.5}, "alpha must be in \\(0, 1\\)")])
def test_bad_arguments_are_refused(kwargs, message):
    model = _linear_binary(np.array([1.0]), 0.0)
    args = {"sigma": 0.5, **kwargs}
    with pytest.raises(ConfigError, match=message):
        smoothing.certify(model, np.zeros((1, 1), np.float32), args.pop("sigma"), **args)


class _Seen(keras.layers.Layer):
    """Keeps the last batch it saw in training mode (identity otherwise)."""

    def build(self, shape):
        self.seen = self.add_weight(name="seen", shape=(64,) + tuple(shape[1:]), initializer="zeros", trainable=False)

    def call(self, x, training=None):
        if training:
            self.seen.assign(x)
        return x


def _spied_net():
    inputs = keras.Input((4,))
    seen = _Seen()
    return keras.Model(inputs, keras.layers.Dense(2)(seen(inputs))), seen


def test_noise_augmented_training_sees_unclipped_gaussian_noise_of_sigma():
    # Cohen et al. 2019 §4: the base classifier trains on x + N(0, σ²I), not clipped to [0, 1].
    from tfsparse.training import NoiseAugmentedModel

    inner, seen = _spied_net()
    model = NoiseAugmentedModel(inner, sigma=0.4, seed=3)
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.full((64, 4), 0.5, np.float32)
    model.fit(x, np.zeros(64, np.int32), batch_size=64, epochs=1, verbose=0, shuffle=False)
    noise = seen.seen.numpy() - 0.5
    assert abs(noise.mean()) < 0.05 and noise.std() == pytest.approx(0.4, rel=0.1)
    assert (seen.seen.numpy() < 0).any() and (seen.seen.numpy() > 1).any()
    logits = inner(x, training=False).numpy()
    assert model.evaluate(x, np.zeros(64, np.int32), verbose=0) == pytest.approx(
        float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(np.zeros(64), logits)), rel=1e-5)


def test_noise_augmented_model_round_trips_and_refuses_a_bad_sigma(tmp_path):
    from tfsparse.training import NoiseAugmentedModel

    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="sigma must be > 0"):
        NoiseAugmentedModel(inner, sigma=0.0)
    model = NoiseAugmentedModel(inner, sigma=0.25, seed=5)
    model.save(tmp_path / "smoothed.keras")
    loaded = keras.models.load_model(tmp_path / "smoothed.keras")
    assert (type(loaded).__name__, loaded.sigma, loaded.seed) == ("NoiseAugmentedModel", 0.25, 5)
    x = np.random.default_rng(0).uniform(0, 1, (3, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded.inner(x).numpy(), inner(x).numpy(), rtol=1e-6)
