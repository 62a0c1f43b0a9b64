"""Property tests of the attacks on tiny hand-set or briefly trained models (STYLE §3 item 13)."""

import gc

import numpy as np
import pytest

from tfsparse.attacks import ATTACKS
from tfsparse.attacks import AttackResult
from tfsparse.attacks import EOTPGD
from tfsparse.attacks import ZOO
from tfsparse.attacks import CarliniWagnerL2
from tfsparse.attacks import TransferAttack
from tfsparse.attacks import PGD
from tfsparse.attacks import RFGSM
from tfsparse.attacks import DeepFool
from tfsparse.attacks import FGSM
from tfsparse.attacks import pgd_perturb
from tfsparse.attacks import lp
from tfsparse.compat import keras
from tfsparse.compat import tf

SHAPE = (4, 4, 1)
N_FEATURES = 16


def linear_model(kernel, bias, input_shape=SHAPE):
    """flatten -> dense with the given weights: binary if ``kernel`` has one column."""
    kernel = np.asarray(kernel, np.float32).reshape(int(np.prod(input_shape)), -1)
    model = keras.Sequential(
        [
            keras.layers.Input(input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(kernel.shape[1]),
        ]
    )
    model.set_weights([kernel, np.asarray(bias, np.float32).reshape(-1)])
    return model


@pytest.fixture
def binary_linear():
    """Random w; the hyperplane passes through the image centre so both classes live in [0, 1]."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=N_FEATURES)
    b = -0.5 * w.sum()
    x = rng.uniform(size=(64,) + SHAPE).astype(np.float32)
    score = x.reshape(len(x), -1).astype(np.float64) @ w + b
    return linear_model(w, b), w, b, x, (score > 0).astype(np.int32), score


@pytest.fixture
def multiclass_linear():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(N_FEATURES, 5))
    b = rng.normal(size=5) * 0.5
    x = rng.uniform(size=(64,) + SHAPE).astype(np.float32)
    logits = x.reshape(len(x), -1).astype(np.float64) @ w + b
    return linear_model(w, b), w, b, x, np.argmax(logits, axis=1).astype(np.int32), logits


@pytest.fixture(scope="module")
def trained_mlp():
    """An undefended 3-class MLP trained for a few steps on separable synthetic images."""
    tf.random.set_seed(0)
    rng = np.random.default_rng(3)
    prototypes = rng.uniform(0.2, 0.8, size=(3,) + SHAPE)
    y = rng.integers(0, 3, size=600)
    x = np.clip(prototypes[y] + rng.normal(0, 0.1, size=(600,) + SHAPE), 0, 1).astype(np.float32)
    model = keras.Sequential(
        [
            keras.layers.Input(SHAPE),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(3),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(True))
    model.fit(x, y, batch_size=64, epochs=5, verbose=0)
    return model, x[:200], y[:200].astype(np.int32)


ATTACK_CASES = [
    FGSM(eps=0.1),
    RFGSM(eps=0.1),
    PGD(eps=0.1, step_size=0.02, steps=10),
    PGD(eps=1.0, step_size=0.2, steps=5, norm="l2", restarts=2, targeted=True),
    EOTPGD(eps=0.1, step_size=0.02, steps=3, samples=2),
    DeepFool(),
    DeepFool(overshoot=0.0, max_iter=5, top_k=3, box=False),
    CarliniWagnerL2(binary_search_steps=2, steps=20, initial_const=1.0, learning_rate=0.05),
    ZOO(coords=4, max_queries=200, learning_rate=0.05),
]


@pytest.mark.parametrize("attack", ATTACK_CASES, ids=repr)
def test_repr_params_and_frozen(attack):
    for key, value in attack.params.items():
        if key != "name":
            assert f"{key}={value!r}" in repr(attack)
    params = attack.params
    rebuilt = ATTACKS[params.pop("name")](**params)
    assert repr(rebuilt) == repr(attack)
    with pytest.raises(AttributeError, match="frozen"):
        attack.eps = 0.5
    with pytest.raises(TypeError):
        type(attack)(0.1)  # keyword-only


@pytest.mark.parametrize("attack", ATTACK_CASES, ids=repr)
def test_result_fields_and_no_success_on_misclassified(attack, trained_mlp):
    model, x, y = trained_mlp
    y = y.copy()
    y[:20] = (y[:20] + 1) % 3  # wrong labels: these inputs are misclassified before the attack
    result = attack(model, x, y, seed=0)
    assert isinstance(result, AttackResult)
    assert result.x_adv.shape == x.shape and result.x_adv.dtype == np.float32
    assert not result.clean_correct[:20].any() and not result.success[:20].any()
    np.testing.assert_array_equal(result.success, result.clean_correct & ~result.adv_correct)
    delta = (result.x_adv - x).reshape(len(x), -1)
    np.testing.assert_allclose(result.l2, np.linalg.norm(delta, axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.linf, np.abs(delta).max(axis=1), rtol=1e-6)
    assert result.params == attack.params
    assert 0 <= result.success_rate <= 1
    assert result.failures == int(np.sum(result.clean_correct & ~result.success))


# --- FGSM -------------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.03, 0.1, 0.3])
def test_fgsm_inside_eps_ball_and_box(eps, trained_mlp):
    model, x, y = trained_mlp
    result = FGSM(eps=eps)(model, x, y)
    assert result.x_adv.min() >= 0.0 and result.x_adv.max() <= 1.0
    assert result.linf.max() <= eps + 1e-6


def test_fgsm_eps_zero_is_identity(trained_mlp):
    model, x, y = trained_mlp
    result = FGSM(eps=0.0)(model, x, y)
    np.testing.assert_array_equal(result.x_adv, x)
    assert not result.success.any()


def test_fgsm_accuracy_decreases_with_eps_and_reaches_zero(trained_mlp):
    model, x, y = trained_mlp
    accuracies = [FGSM(eps=eps).run(model, x, y).adv_accuracy for eps in (0, 0.05, 0.1, 0.2, 1.0)]
    assert accuracies[0] > 0.9
    assert all(a >= b for a, b in zip(accuracies, accuracies[1:]))
    assert accuracies[-1] == 0.0


def test_fgsm_binary_is_guo_closed_form(binary_linear):
    # Guo eq. (1): x̌ = x - ε·s·sign(w), s = ±1 the label; then clipped to [0, 1].
    model, w, _, x, y, _ = binary_linear
    eps = 0.1
    result = FGSM(eps=eps)(model, x, y)
    sign_y = (2 * y - 1).reshape(-1, 1, 1, 1)
    expected = np.clip(x - eps * sign_y * np.sign(w).reshape(SHAPE), 0, 1)
    np.testing.assert_allclose(result.x_adv, expected, atol=1e-6)
    assert result.adv_accuracy < result.clean_accuracy


@pytest.mark.parametrize("eps", [-0.1, "big", None])
def test_fgsm_rejects_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        FGSM(eps=eps)


def test_lp_project_l2_and_normalize():
    x = tf.zeros((2, 3))
    x_adv = tf.constant([[3.0, 4.0, 0.0], [0.1, 0.0, 0.0]])
    projected = lp.project(x_adv, x, 1.0, "l2").numpy()
    np.testing.assert_allclose(projected, [[0.6, 0.8, 0.0], [0.1, 0.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(lp.normalize(x_adv, "l2").numpy()[0], [0.6, 0.8, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(lp.normalize(tf.zeros((1, 3)), "l2").numpy(), 0.0)
    with pytest.raises(ValueError, match="norm"):
        lp.normalize(x_adv, "l1")


# --- DeepFool ---------------------------------------------------------------------------------


def test_deepfool_binary_linear_is_exact_in_one_step(binary_linear):
    model, w, _, x, y, score = binary_linear
    result = DeepFool(box=False, max_iter=1)(model, x, y)
    margin = np.abs(score) / np.linalg.norm(w)
    assert result.success.all()
    # float32 logits carry ~1e-8 absolute error, which dominates only for near-zero margins.
    np.testing.assert_allclose(result.l2, margin * 1.02, rtol=1e-5, atol=1e-6)


def test_deepfool_multiclass_linear_is_exact_in_one_step(multiclass_linear):
    model, w, b, x, y, logits = multiclass_linear
    result = DeepFool(box=False, max_iter=1)(model, x, y)
    rows = np.arange(len(x))
    dw_norm = np.linalg.norm(w.T[None, :, :] - w.T[y][:, None, :], axis=2)  # ‖w_k - w_ŷ‖, (N, C)
    distance = np.abs(logits - logits[rows, y][:, None]) / np.where(dw_norm > 0, dw_norm, 1)
    distance[rows, y] = np.inf
    assert result.success.all()
    np.testing.assert_allclose(result.l2, distance.min(axis=1) * 1.02, rtol=1e-5)


@pytest.mark.parametrize("rule", ["accumulate", "mask"])
@pytest.mark.parametrize("which", ["binary", "multiclass"])
def test_deepfool_box_stays_in_domain_and_costs_more(which, rule, binary_linear, multiclass_linear):
    model, *_, x, y, _ = binary_linear if which == "binary" else multiclass_linear
    free = DeepFool(box=False)(model, x, y)
    exact = DeepFool(box=False, overshoot=0.0, max_iter=1)(model, x, y)  # the minimal distance
    boxed = DeepFool(box_rule=rule)(model, x, y)
    assert boxed.x_adv.min() >= 0.0 and boxed.x_adv.max() <= 1.0
    assert boxed.success.all()
    flat = free.x_adv.reshape(len(x), -1)
    binds = (flat.min(axis=1) < 0) | (flat.max(axis=1) > 1)
    assert binds.any() and (~binds).any()
    # Where the box binds, the boxed attack lands farther than the unconstrained one; clipping
    # may trim part of the 2% overshoot, so per sample the bound is the exact distance.
    assert np.all(boxed.l2 >= exact.l2 * (1 - 1e-5))
    assert boxed.l2[binds].mean() > free.l2[binds].mean()
    # Where it does not bind, one step lands as without the box (plus, for "accumulate", the
    # reference code's 1e-4 l2 margin times the overshoot).
    margin = 1.02e-4 if rule == "accumulate" else 0.0
    np.testing.assert_allclose(boxed.l2[~binds], free.l2[~binds] + margin, rtol=1e-5, atol=1e-6)


def test_deepfool_nonlinear_flips_labels(trained_mlp):
    model, x, y = trained_mlp
    result = DeepFool().run(model, x, y, batch_size=64)
    assert result.success_rate > 0.95
    assert result.x_adv.min() >= 0.0 and result.x_adv.max() <= 1.0
    predicted = np.argmax(model.predict(result.x_adv, verbose=0), axis=1)
    np.testing.assert_array_equal(predicted[result.success] != y[result.success], True)
    # Samples DeepFool did not attack keep their input.
    np.testing.assert_array_equal(result.x_adv[~result.clean_correct], x[~result.clean_correct])


def test_deepfool_xla_matches_graph(multiclass_linear):
    model, *_, x, y, _ = multiclass_linear
    plain = DeepFool(jit_compile=False)(model, x[:16], y[:16])
    xla = DeepFool(jit_compile=True)(model, x[:16], y[:16])
    np.testing.assert_allclose(xla.l2, plain.l2, rtol=1e-4)
    np.testing.assert_array_equal(xla.success, plain.success)


@pytest.mark.parametrize(
    "kwargs",
    [{"overshoot": -0.1}, {"max_iter": 0}, {"max_iter": 2.5}, {"top_k": 1}, {"box": "yes"}],
    ids=str,
)
def test_deepfool_rejects_bad_params(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DeepFool(**kwargs)


def test_bad_jit_compile_and_inputs(trained_mlp):
    model, x, y = trained_mlp
    with pytest.raises(ValueError, match="jit_compile"):
        FGSM(eps=0.1, jit_compile="yes")
    with pytest.raises(ValueError, match="shape"):
        FGSM(eps=0.1)(model, x, y[:-1])
    with pytest.raises(ValueError, match="labels"):
        FGSM(eps=0.1)(model, x, y - 1)


# --- batching and tracing ---------------------------------------------------------------------


@pytest.mark.parametrize("attack", [FGSM(eps=0.1), DeepFool()], ids=repr)
def test_run_in_batches_equals_one_call_without_retracing(attack, trained_mlp):
    model, x, y = trained_mlp
    whole = attack(model, x, y, seed=0)
    batched = attack.run(model, x, y, batch_size=45, seed=0)  # 5 batches, the last one short
    for name in ("x_adv", "l2", "linf"):
        np.testing.assert_allclose(getattr(batched, name), getattr(whole, name), atol=1e-5)
    for name in ("success", "clean_correct", "adv_correct"):
        np.testing.assert_array_equal(getattr(batched, name), getattr(whole, name))
    assert attack.graph_function(model, SHAPE).experimental_get_tracing_count() == 1


def test_run_progress_bar(trained_mlp, capsys):
    model, x, y = trained_mlp
    result = FGSM(eps=0.1).run(model, x, y, batch_size=100, progress=True)
    assert result.n == len(x)
    assert "FGSM(eps=0.1" in capsys.readouterr().err


def test_cached_function_does_not_keep_model_alive():
    attack = FGSM(eps=0.1)
    model = linear_model(np.ones(N_FEATURES), 0.0)
    attack(model, np.zeros((2,) + SHAPE), np.zeros(2, np.int32))
    assert len(attack._functions) == 1
    del model
    gc.collect()
    assert len(attack._functions) == 0


# --- rFGS, PGD, EOT-PGD -----------------------------------------------------------------------


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("linf", 0.3), ("l2", 0.5), ("l2", 2.0)])
def test_pgd_perturb_inside_ball_and_box_eagerly_and_traced(norm, eps, trained_mlp):
    model, x, y = trained_mlp

    def model_fn(z):
        return model(z, training=False)

    kwargs = dict(eps=eps, step_size=eps / 4, steps=6, norm=norm, seed=tf.constant([1, 2]))
    eager = pgd_perturb(model_fn, x, y, **kwargs).numpy()
    traced = tf.function(lambda a, b: pgd_perturb(model_fn, a, b, **kwargs))(x, y).numpy()
    np.testing.assert_allclose(traced, eager, atol=1e-5)  # same stateless seed, same iterate
    assert eager.min() >= 0.0 and eager.max() <= 1.0
    norms = lp.per_sample_norm(tf.constant(eager - x), norm).numpy()
    assert norms.max() <= eps * (1 + 1e-5)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_is_inside_the_ball_and_seeded(norm):
    x = tf.fill((300, 3, 3, 1), 0.5)
    start = lp.random_start(x, 0.2, norm, tf.constant([3, 4]))
    norms = lp.per_sample_norm(start - x, norm).numpy()
    assert norms.max() <= 0.2 * (1 + 1e-6) and norms.min() > 0
    np.testing.assert_array_equal(start, lp.random_start(x, 0.2, norm, tf.constant([3, 4])))
    if norm == "l2":  # uniform in the 9-ball: P(r <= 0.9ε) = 0.9⁹ ≈ 0.39
        assert 0.3 < np.mean(norms <= 0.18) < 0.48


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.3])
@pytest.mark.parametrize("attack_cls", [RFGSM, PGD], ids=lambda c: c.__name__)
def test_rfgsm_and_pgd_inside_eps_ball_and_box(attack_cls, eps, trained_mlp):
    model, x, y = trained_mlp
    kwargs = {"step_size": eps / 4, "steps": 10} if attack_cls is PGD else {}
    result = attack_cls(eps=eps, **kwargs)(model, x, y, seed=1)
    assert result.x_adv.min() >= 0.0 and result.x_adv.max() <= 1.0
    assert result.linf.max() <= eps + 1e-6


def test_pgd_eps_zero_and_rfgsm_alpha_zero(trained_mlp):
    model, x, y = trained_mlp
    np.testing.assert_array_equal(PGD(eps=0.0, step_size=0.1, steps=3)(model, x, y).x_adv, x)
    fgsm = FGSM(eps=0.1)(model, x, y).x_adv
    np.testing.assert_allclose(RFGSM(eps=0.1, alpha=0.0)(model, x, y).x_adv, fgsm, atol=1e-6)
    assert RFGSM(eps=0.1).alpha == 0.05


def test_pgd_at_most_fgsm_accuracy_and_reaches_zero(trained_mlp):
    model, x, y = trained_mlp
    eps = 0.05
    fgsm = FGSM(eps=eps).run(model, x, y).adv_accuracy
    pgd = PGD(eps=eps, step_size=eps / 4, steps=20).run(model, x, y).adv_accuracy
    assert pgd <= fgsm
    assert PGD(eps=0.5, step_size=0.05, steps=20).run(model, x, y).adv_accuracy == 0.0
    assert PGD(eps=3.0, step_size=0.5, steps=20, norm="l2").run(model, x, y).adv_accuracy == 0.0


def test_more_pgd_steps_never_weaker(trained_mlp):
    model, x, y = trained_mlp
    accuracies = [
        PGD(eps=0.05, step_size=0.01, steps=steps).run(model, x, y, seed=7).adv_accuracy
        for steps in (1, 3, 10, 30)
    ]
    assert all(a >= b for a, b in zip(accuracies, accuracies[1:])), accuracies
    assert accuracies[0] > accuracies[-1]


def test_pgd_restarts_keep_the_worst_case_per_sample(trained_mlp):
    model, x, y = trained_mlp
    one = PGD(eps=0.04, step_size=0.01, steps=5)(model, x, y, seed=3)
    three = PGD(eps=0.04, step_size=0.01, steps=5, restarts=3)(model, x, y, seed=3)
    # Restart 0 uses the same seed as the single run: anything it fooled stays fooled.
    assert not (one.success & ~three.success).any()
    assert three.success.sum() >= one.success.sum()


def test_targeted_pgd_reaches_its_targets(multiclass_linear):
    model, _, _, x, y, _ = multiclass_linear
    targets = (y + 1) % 5

    def model_fn(z):
        return model(z, training=False)

    x_adv = pgd_perturb(model_fn, x, targets, eps=1.0, step_size=0.05, steps=40, targeted=True)
    predicted = np.argmax(model.predict(x_adv.numpy(), verbose=0), axis=1)
    assert np.mean(predicted == targets) > 0.9
    result = PGD(eps=1.0, step_size=0.05, steps=40, targeted=True)(model, x, y, seed=0)
    assert result.success_rate > 0.9


def test_pgd_rejects_bad_params():
    for kwargs, match in [
        ({"step_size": 0.0}, "step_size"),
        ({"steps": 0}, "steps"),
        ({"restarts": 0}, "restarts"),
        ({"norm": "l1"}, "norm"),
        ({"random_start": 1}, "random_start"),
        ({"restarts": 2, "random_start": False}, "random_start"),
        ({"eps": -0.1}, "eps"),
    ]:
        with pytest.raises(ValueError, match=match):
            PGD(**{"eps": 0.1, "step_size": 0.01, "steps": 2, **kwargs})
    with pytest.raises(ValueError, match="samples"):
        EOTPGD(eps=0.1, step_size=0.01, steps=2, samples=0)
    with pytest.raises(ValueError, match="alpha"):
        RFGSM(eps=0.1, alpha=0.2)


class LogitNoise(keras.layers.Layer):
    """Adds N(0, σ²) to its input on every call, in inference too (a stand-in for CNI noise)."""

    inference_noise = True

    def __init__(self, stddev, **kwargs):
        super().__init__(**kwargs)
        self.stddev = stddev

    def call(self, inputs, training=None):
        return inputs + tf.random.normal(tf.shape(inputs), stddev=self.stddev)


def test_eot_changes_the_result_only_on_a_noisy_model(multiclass_linear):
    model, w, b, x, y, _ = multiclass_linear
    noisy = keras.Sequential([model, LogitNoise(20.0)])
    params = dict(eps=0.1, step_size=0.02, steps=5, random_start=False)
    plain, eot = PGD(**params), EOTPGD(**params, samples=8)
    np.testing.assert_allclose(eot(model, x, y, seed=0).x_adv, plain(model, x, y, seed=0).x_adv)
    # One noisy gradient points anywhere; the EOT mean follows the true (linear) gradient.
    true_step = PGD(**params)(model, x, y, seed=0).x_adv
    tf.random.set_seed(1)
    noisy_plain = plain(noisy, x, y, seed=0).x_adv
    noisy_eot = eot(noisy, x, y, seed=0).x_adv
    assert not np.allclose(noisy_eot, noisy_plain)
    agree_eot = np.mean(np.sign(noisy_eot - x) == np.sign(true_step - x))
    agree_plain = np.mean(np.sign(noisy_plain - x) == np.sign(true_step - x))
    assert agree_eot > agree_plain


# --- C&W, ZOO, transfer -----------------------------------------------------------------------


def test_carlini_wagner_no_larger_than_deepfool_on_average(trained_mlp):
    model, x, y = trained_mlp
    x, y = x[:100], y[:100]
    deepfool = DeepFool()(model, x, y)
    cw = CarliniWagnerL2(steps=100, binary_search_steps=6, initial_const=1.0)(model, x, y)
    assert cw.success_rate == 1.0 and deepfool.success_rate == 1.0
    assert cw.l2[cw.success].mean() <= deepfool.l2[deepfool.success].mean()
    assert cw.x_adv.min() >= 0.0 and cw.x_adv.max() <= 1.0


def test_carlini_wagner_confidence_and_failures_are_unchanged(multiclass_linear):
    model, _, _, x, y, _ = multiclass_linear
    kwargs = dict(binary_search_steps=4, steps=60, initial_const=1.0, learning_rate=0.05)
    plain = CarliniWagnerL2(**kwargs)(model, x, y)
    confident = CarliniWagnerL2(confidence=2.0, **kwargs)(model, x, y)
    both = plain.success & confident.success
    assert both.sum() > 10 and np.all(confident.l2[both] >= plain.l2[both] - 1e-4)
    short = CarliniWagnerL2(binary_search_steps=1, steps=1, initial_const=1e-6)(model, x, y)
    np.testing.assert_array_equal(short.x_adv[~short.success], x[~short.success])


def test_zoo_gradient_estimate_matches_the_true_gradient():
    from tfsparse.attacks.zoo import coordinate_gradients

    rng = np.random.default_rng(8)
    w1, w2 = rng.normal(size=(16, 8)), rng.normal(size=(8,))

    def smooth(flat):
        return tf.reduce_sum(tf.tanh(tf.matmul(tf.cast(flat, tf.float64), w1)) * w2, axis=1)

    x = tf.constant(rng.uniform(size=(5, 16)))
    coords = tf.constant(rng.permuted(np.tile(np.arange(16), (5, 1)), axis=1)[:, :6])
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(smooth(x))
    true = tf.gather(tape.gradient(total, x), coords, batch_dims=1).numpy()
    estimate = coordinate_gradients(smooth, x, coords, 1e-4).numpy()
    np.testing.assert_allclose(estimate, true, rtol=1e-5, atol=1e-7)


def test_zoo_black_box_flips_and_counts_queries(multiclass_linear):
    model, _, _, x, y, _ = multiclass_linear
    attack = ZOO(coords=8, max_queries=2000, learning_rate=0.05)
    result = attack.run(model, x[:32], y[:32], batch_size=16, seed=0)
    assert result.success_rate > 0.8
    assert attack.iterations == (2000 - 2) // 17 and attack.queries_per_sample <= 2000
    np.testing.assert_array_equal(result.queries, attack.queries_per_sample)
    assert FGSM(eps=0.1)(model, x, y).queries is None
    with pytest.raises(ValueError, match="max_queries"):
        ZOO(coords=8, max_queries=18)
    with pytest.raises(ValueError, match="coords"):
        ZOO(coords=32, max_queries=100)(model, x, y)


def test_transfer_crafts_on_the_source_and_scores_on_the_target(trained_mlp, multiclass_linear):
    model, x, y = trained_mlp
    inner = PGD(eps=0.1, step_size=0.02, steps=5)
    transfer = TransferAttack(source_model=model, attack=inner)
    # Source = target: the same examples as the white-box attack.
    np.testing.assert_allclose(transfer(model, x, y, seed=2).x_adv, inner(model, x, y, seed=2).x_adv)
    # A constant target ignores the examples: they are still the source model's.
    constant = keras.Sequential([keras.layers.Input(SHAPE), keras.layers.Flatten(),
                                 keras.layers.Dense(3, kernel_initializer="zeros")])
    result = transfer(constant, x, y, seed=2)
    np.testing.assert_allclose(result.x_adv, inner(model, x, y, seed=2).x_adv)
    assert result.linf.max() <= 0.1 + 1e-6
    assert repr(transfer).startswith("TransferAttack(source_model=")
    assert transfer.params["attack"] == inner.params
    with pytest.raises(ValueError, match="attack"):
        TransferAttack(source_model=model, attack="pgd")
