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

# XLA is the GPU default (jit_compile="auto") and DeepFool's XLA path steps every sample under a
# mask instead of gathering the active ones, so the closed-form tests run both with and without
# XLA (on CPU XLA is only slower).
JIT = pytest.mark.parametrize("jit", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["graph", "xla"])
# The FGS closed form keeps one XLA case in the fast tier.
JIT_FAST = pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])


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


def binary_model(seed=11):
    """A hand-set one-logit linear model ``z = wᵀx + b`` whose boundary passes the image centre."""
    w = np.random.default_rng(seed).normal(size=N_FEATURES)
    b = -0.5 * w.sum()
    return linear_model(w, b), w, b


def binary_points(w, b, scores, *, along, seed=0, spread=0.05):
    """Inputs near the image centre with score ``wᵀx + b`` equal to ``scores``, one per score.

    Each starts at ``0.5 + U(±spread)`` per pixel and moves along ``along`` (``sign(w)`` keeps
    every pixel within ``spread + |score| / ‖w‖₁`` of 0.5) until its score is the requested one.
    Returns the float32 images and their scores recomputed in float64 from those images.
    """
    rng = np.random.default_rng(seed)
    flat = 0.5 + rng.uniform(-spread, spread, size=(len(scores), len(w)))
    flat += ((np.asarray(scores) - (flat @ w + b)) / (along @ w))[:, None] * along
    flat = flat.astype(np.float32)
    return flat.reshape((-1,) + SHAPE), flat.astype(np.float64) @ w + b


def linear_logits(x_adv, w, b):
    """Logits of a linear model ``xᵀW + b`` (any number of outputs) computed in NumPy."""
    return np.asarray(x_adv, np.float64).reshape(len(x_adv), -1) @ np.asarray(w) + b


def binary_scores(x_adv, w, b):
    """The binary model's logit ``wᵀx + b`` per sample, computed in NumPy (float64)."""
    return linear_logits(x_adv, w, b)


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


def guaranteed_linf_reach(attack):
    """The l∞ margin below which ``attack`` must flip a binary linear sample, from the closed form.

    On ``z = wᵀx + b`` the loss gradient's sign is ``-s·sign(w)`` everywhere, so (box not binding):
    FGSM moves every pixel by ε towards the boundary; rFGS by ``(ε - α)`` plus a random ``±α``,
    at worst ``ε - 2α``; untargeted l∞ PGD from a random start ``δ₀ ∈ [-ε, ε]`` moves every pixel by
    at least ``min(T·a - ε, ε)`` after ``T`` steps of ``a``; DeepFool (overshoot > 0) steps past
    the boundary in one step. ``None``: no flip is guaranteed (l2/targeted PGD, weak budgets).
    """
    if isinstance(attack, FGSM):
        return attack.eps
    if isinstance(attack, RFGSM):
        return attack.eps - 2 * attack.alpha
    if isinstance(attack, PGD) and attack.norm == "linf" and not attack.targeted:
        start = attack.eps if attack.random_start else 0.0
        return min(attack.steps * attack.step_size - start, attack.eps)
    if isinstance(attack, DeepFool) and attack.overshoot > 0:
        return np.inf
    return None


@pytest.mark.parametrize("attack", ATTACK_CASES, ids=repr)
def test_result_fields_and_no_success_on_misclassified(attack):
    # A hand-set binary linear model: the l∞ and l2 distances of every input to the boundary are
    # |z| / ‖w‖₁ and |z| / ‖w‖₂ (closed form), and the inputs stay inside [0.2, 0.8] so that
    # neither the clean input nor an ε = 0.1 step touches the box.
    model, w, b = binary_model()
    l1, l2 = np.abs(w).sum(), np.linalg.norm(w)
    n = 24
    linf_margin = np.repeat([0.02, 0.05, 0.08, 0.12, 0.15, 0.2], 4)
    sign = np.where(np.arange(n) % 2, 1.0, -1.0)  # both classes at every margin
    x, score = binary_points(w, b, sign * linf_margin * l1, along=np.sign(w))
    assert 0.2 < x.min() and x.max() < 0.8
    y = (score > 0).astype(np.int32)
    wrong = np.arange(n) % 4 < 2  # these labels are flipped: misclassified before the attack
    y[wrong] = 1 - y[wrong]
    correct = ~wrong
    linf_margin, l2_margin = np.abs(score) / l1, np.abs(score) / l2

    result = attack(model, x, y, seed=0)
    assert isinstance(result, AttackResult)
    assert result.x_adv.shape == x.shape and result.x_adv.dtype == np.float32
    assert result.params == attack.params
    np.testing.assert_array_equal(result.clean_correct, correct)
    assert not result.success[wrong].any()
    delta = (result.x_adv - x).reshape(n, -1).astype(np.float64)
    np.testing.assert_allclose(result.l2, np.linalg.norm(delta, axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.linf, np.abs(delta).max(axis=1), rtol=1e-6)
    # The predictions on x_adv, observed in NumPy; iterates left on the boundary (within float32
    # rounding of the logit) are undecided and not compared.
    score_adv = binary_scores(result.x_adv, w, b)
    decided = np.abs(score_adv) > 1e-4 * l1
    flipped = (score_adv > 0) != (score > 0)
    np.testing.assert_array_equal(result.adv_correct[decided], ((score_adv > 0) == y)[decided])
    np.testing.assert_array_equal(result.success[decided], (correct & flipped)[decided])
    if decided.all():
        assert result.failures == int(np.sum(correct & ~flipped))
        assert result.success_rate == np.sum(correct & flipped) / correct.sum()
    # Nothing crosses the boundary closer than the closed-form distance, in either norm ...
    tol = 1 + 1e-4
    assert np.all(result.linf[result.success] * tol >= linf_margin[result.success])
    assert np.all(result.l2[result.success] * tol >= l2_margin[result.success])
    # ... a fixed budget is respected (so no input farther than ε flips) ...
    if attack.eps_ball is not None:
        norm, eps = attack.eps_ball
        assert (result.linf if norm == "linf" else result.l2).max() <= eps * tol
        assert not result.success[(linf_margin if norm == "linf" else l2_margin) > eps * tol].any()
    # ... and what the closed form says the attack must reach, it flips.
    reach = guaranteed_linf_reach(attack)
    if reach is not None:
        must = correct & (linf_margin < reach * (1 - 1e-3))
        assert must.any() or reach <= 0
        assert result.success[must].all()
    if isinstance(attack, DeepFool):  # not attacked: returned unchanged
        np.testing.assert_array_equal(result.x_adv[wrong], x[wrong])


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


@JIT_FAST
def test_fgsm_binary_is_guo_closed_form(jit, binary_linear):
    # Guo eq. (1): x̌ = x - ε·s·sign(w), s = ±1 the label; then clipped to [0, 1].
    model, w, _, x, y, _ = binary_linear
    eps = 0.1
    result = FGSM(eps=eps, jit_compile=jit)(model, x, y)
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


@JIT
def test_deepfool_binary_linear_is_exact_in_one_step(jit, binary_linear):
    model, w, _, x, y, score = binary_linear
    result = DeepFool(box=False, max_iter=1, jit_compile=jit)(model, x, y)
    margin = np.abs(score) / np.linalg.norm(w)
    assert result.success.all()
    # float32 logits carry ~1e-8 absolute error, which dominates only for near-zero margins.
    np.testing.assert_allclose(result.l2, margin * 1.02, rtol=1e-5, atol=1e-6)


@JIT
def test_deepfool_multiclass_linear_is_exact_in_one_step(jit, multiclass_linear):
    model, w, b, x, y, logits = multiclass_linear
    result = DeepFool(box=False, max_iter=1, jit_compile=jit)(model, x, y)
    rows = np.arange(len(x))
    dw_norm = np.linalg.norm(w.T[None, :, :] - w.T[y][:, None, :], axis=2)  # ‖w_k - w_ŷ‖, (N, C)
    distance = np.abs(logits - logits[rows, y][:, None]) / np.where(dw_norm > 0, dw_norm, 1)
    distance[rows, y] = np.inf
    assert result.success.all()
    np.testing.assert_allclose(result.l2, distance.min(axis=1) * 1.02, rtol=1e-5)


@pytest.mark.parametrize("rule", ["accumulate", pytest.param("mask", marks=pytest.mark.slow)])
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


@JIT
def test_rfgsm_binary_linear_is_the_closed_form(jit):
    # Tramèr et al. 2018 eq. 6: x' = x + α·sign(N(0, I)), x̌ = x' + (ε - α)·sign(∇x' L). On
    # z = wᵀx + b with L = softplus(-s·z) the gradient is -s·σ(-s·z)·w, of sign -s·sign(w) at every
    # x'; all pixels are interior, so per pixel x̌ - x = ±α - (ε - α)·s·sign(w), i.e. |x̌ - x| is ε
    # where the random step goes the gradient's way and ε - 2α where it goes against it.
    model, w, b = binary_model()
    eps, alpha = 0.1, 0.03
    l1 = np.abs(w).sum()
    linf_margin = np.repeat([0.01, 0.03, 0.05, 0.08, 0.12, 0.2], 8)
    sign = np.where(np.arange(len(linf_margin)) % 2, 1.0, -1.0)
    x, score = binary_points(w, b, sign * linf_margin * l1, along=np.sign(w))
    assert eps < x.min() and x.max() < 1 - eps
    y = (score > 0).astype(np.int32)
    attack = RFGSM(eps=eps, alpha=alpha, jit_compile=jit)
    result = attack(model, x, y, seed=4)
    delta = (result.x_adv - x).reshape(len(x), -1).astype(np.float64)
    gradient_part = -(eps - alpha) * np.sign(score)[:, None] * np.sign(w)[None, :]
    random_part = delta - gradient_part
    np.testing.assert_allclose(np.abs(random_part), alpha, atol=1e-6)
    random_sign = np.sign(random_part)
    assert 0.35 < np.mean(random_sign > 0) < 0.65  # a fair coin per pixel, not a fixed direction
    with_gradient = random_sign == np.sign(gradient_part)
    np.testing.assert_allclose(np.abs(delta[with_gradient]), eps, atol=1e-6)
    np.testing.assert_allclose(np.abs(delta[~with_gradient]), eps - 2 * alpha, atol=1e-6)
    # Seeded: the same seed gives the same random step, another seed another one. (A seed's
    # stream differs with and without XLA, so the same compiled attack is reused.)
    np.testing.assert_array_equal(attack(model, x, y, seed=4).x_adv, result.x_adv)
    assert not np.array_equal(attack(model, x, y, seed=5).x_adv, result.x_adv)
    # Flips: the random part moves z by at most α·‖w‖₁ either way.
    assert result.success[linf_margin < eps - 2 * alpha].all()
    assert not result.success[linf_margin > eps].any()
    np.testing.assert_array_equal(result.success, (binary_scores(result.x_adv, w, b) > 0) != y)


BINARY_FIXED_EPS = {
    # From a random start δ₀ ∈ [-ε, ε], T·a ≥ 2ε takes every pixel to the ε bound.
    "pgd_linf": lambda jit: PGD(eps=0.1, step_size=0.025, steps=10, jit_compile=jit),
    "eot_pgd_linf": lambda jit: EOTPGD(eps=0.1, step_size=0.025, steps=10, samples=2,
                                       jit_compile=jit),
    # From x itself, T·a ≥ ε reaches the ε sphere along w.
    "pgd_l2": lambda jit: PGD(eps=0.3, step_size=0.1, steps=4, norm="l2", random_start=False,
                              jit_compile=jit),
}


@JIT
@pytest.mark.parametrize("which", list(BINARY_FIXED_EPS))
def test_fixed_eps_attacks_flip_exactly_the_binary_samples_within_eps(which, jit):
    # On z = wᵀx + b the worst case in the ε-ball is x - ε·s·sign(w) (l∞) or x - ε·s·w/‖w‖₂
    # (l2), which crosses the boundary iff the distance |z| / ‖w‖₁ (l∞) or |z| / ‖w‖₂ (l2) is < ε.
    attack = BINARY_FIXED_EPS[which](jit)
    model, w, b = binary_model()
    eps = attack.eps
    if attack.norm == "linf":
        direction, dual = np.sign(w), np.abs(w).sum()
    else:
        direction, dual = w / np.linalg.norm(w), np.linalg.norm(w)
    ratio = np.repeat([0.3, 0.6, 0.9, 1.1, 1.5, 2.0], 4)  # distance / ε
    sign = np.where(np.arange(len(ratio)) % 2, 1.0, -1.0)
    x, score = binary_points(w, b, sign * ratio * eps * dual, along=direction)
    y = (score > 0).astype(np.int32)
    result = attack(model, x, y, seed=0)
    np.testing.assert_array_equal(result.success, np.abs(score) / dual < eps)
    expected = x.reshape(len(x), -1) - eps * np.sign(score)[:, None] * direction[None, :]
    np.testing.assert_allclose(result.x_adv.reshape(len(x), -1), expected, atol=2e-6)
    np.testing.assert_array_equal(result.success, (binary_scores(result.x_adv, w, b) > 0) != y)


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


def three_class_model():
    """Class 0 around the image centre; class 1 needs ``m > 0.1``, class 2 ``m < -0.22``.

    ``z = (0, 10·m - 1, -10·m - 2.2)`` with ``m = mean(v·(x - 0.5))``, ``v = ±1`` per pixel. From
    ``|m| ≤ 0.02`` an l∞ step of 0.3 along ``±v`` reaches either class; the untargeted loss
    gradient points to class 1 (``z₁ > z₂`` while ``m > -0.06``), so class 2 is only reached when
    it is the target.
    """
    v = np.where(np.arange(N_FEATURES) % 3 == 0, -1.0, 1.0)
    c = 10.0 / N_FEATURES
    kernel = np.stack([np.zeros(N_FEATURES), c * v, -c * v], axis=1)
    bias = np.array([0.0, -1.0 - 0.5 * c * v.sum(), -2.2 + 0.5 * c * v.sum()])
    return linear_model(kernel, bias), kernel, bias


def test_targeted_pgd_reaches_its_targets():
    model, kernel, bias = three_class_model()
    rng = np.random.default_rng(4)
    x = rng.uniform(0.48, 0.52, size=(32,) + SHAPE).astype(np.float32)

    def predict(z):
        return np.argmax(np.asarray(z, np.float64).reshape(len(z), -1) @ kernel + bias, axis=1)

    y = predict(x)
    assert (y == 0).all()

    def model_fn(z):
        return model(z, training=False)

    kwargs = dict(eps=0.3, step_size=0.05, steps=20, random_start=False)
    untargeted = predict(pgd_perturb(model_fn, x, y, **kwargs).numpy())
    assert (untargeted == 1).all()  # the natural outcome
    targets = np.where(np.arange(32) % 2, 1, 2).astype(np.int32)
    x_adv = pgd_perturb(model_fn, x, targets, targeted=True, **kwargs).numpy()
    np.testing.assert_array_equal(predict(x_adv), targets)
    assert np.abs(x_adv - x).max() <= 0.3 + 1e-6
    # The attack class draws a random target ≠ y per sample: both other classes are reached,
    # class 2 only through its targets; success is still counted against the true label.
    result = PGD(eps=0.3, step_size=0.05, steps=20, targeted=True)(model, x, y, seed=0)
    reached = predict(result.x_adv)
    assert result.success.all() and np.isin(reached, [1, 2]).all()
    assert 0.25 < np.mean(reached == 2) < 0.75


def test_random_targets_differ_from_the_label():
    from tfsparse.attacks.pgd import random_targets

    y = np.arange(500) % 5
    seed = tf.constant([1, 2], tf.int64)
    targets = random_targets(tf.zeros((500, 5)), tf.constant(y, tf.int32), seed).numpy()
    assert (targets != y).all() and targets.min() >= 0 and targets.max() < 5
    for label in range(5):  # uniform over the four other classes: ~25 of 100 each
        counts = np.bincount(targets[y == label], minlength=5)
        assert counts[label] == 0 and np.all(np.delete(counts, label) >= 10), counts
    y_binary = np.array([0, 1, 1, 0, 1], np.int32)
    np.testing.assert_array_equal(
        random_targets(tf.zeros((5, 1)), tf.constant(y_binary), seed).numpy(), 1 - y_binary
    )


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


def near_boundary_binary():
    """The binary model and 16 inputs, both classes, at l2 distances 0.02 … 0.3 from its boundary
    (moved along w, so the box is far: every pixel stays in [0.3, 0.7])."""
    model, w, b = binary_model()
    distance = np.linspace(0.02, 0.3, 16)
    sign = np.where(np.arange(16) % 2, 1.0, -1.0)
    x, score = binary_points(w, b, sign * distance * np.linalg.norm(w), along=w)
    assert 0.3 < x.min() and x.max() < 0.7
    return model, w, b, x, (score > 0).astype(np.int32), np.abs(score) / np.linalg.norm(w)


@JIT
def test_carlini_wagner_binary_linear_reaches_the_closed_form_distance(jit):
    # For z = wᵀx + b the smallest l2 change that flips the sign of z is |z| / ‖w‖₂ (the box does
    # not bind here): C&W can never be below it and, converged, lands just beyond it.
    model, w, b, x, y, distance = near_boundary_binary()
    cw = CarliniWagnerL2(steps=100, binary_search_steps=6, initial_const=1.0, jit_compile=jit)
    result = cw(model, x, y)
    assert result.success.all()
    np.testing.assert_array_equal((binary_scores(result.x_adv, w, b) > 0), y == 0)
    assert np.all(result.l2 >= distance * (1 - 1e-4))
    assert np.all(result.l2 <= distance * 1.03 + 1e-3), result.l2 / distance
    assert result.x_adv.min() >= 0.0 and result.x_adv.max() <= 1.0


def other_minus_own(logits, y):
    """``max_{j≠y} z_j - z_y`` per sample, in NumPy: ≥ κ when the attack won by C&W's margin κ."""
    rows = np.arange(len(y))
    others = np.where(np.eye(logits.shape[1], dtype=bool)[y], -np.inf, logits)
    return others.max(axis=1) - logits[rows, y]


def test_carlini_wagner_confidence_and_failures_are_unchanged(multiclass_linear):
    model, w, b, x, y, logits = multiclass_linear
    x, y, logits = x[:32], y[:32], logits[:32]
    kwargs = dict(binary_search_steps=4, steps=60, initial_const=1.0, learning_rate=0.05)
    kappa = 2.0
    plain = CarliniWagnerL2(**kwargs)(model, x, y)
    confident = CarliniWagnerL2(confidence=kappa, **kwargs)(model, x, y)
    # Closed form: reaching z_j - z_y ≥ κ for some j needs an l2 change of at least
    # min_j (z_y - z_j + κ) / ‖w_j - w_y‖₂ (the distance to a union of half-spaces).
    dw = np.linalg.norm(w.T[None, :, :] - w.T[y][:, None, :], axis=2)  # (N, C)
    gap = logits[np.arange(len(y)), y][:, None] - logits
    for result, k in ((plain, 0.0), (confident, kappa)):
        assert result.success.sum() > 20
        won_by = other_minus_own(linear_logits(result.x_adv, w, b), y)
        assert np.all(won_by[result.success] >= k - 1e-4), won_by[result.success].min()
        bound = np.where(dw > 0, (gap + k) / np.where(dw > 0, dw, 1), np.inf)
        bound[np.arange(len(y)), y] = np.inf
        assert np.all(result.l2[result.success] >= bound.min(axis=1)[result.success] * (1 - 1e-4))
    both = plain.success & confident.success
    assert confident.l2[both].mean() > plain.l2[both].mean() + 0.1
    short = CarliniWagnerL2(binary_search_steps=1, steps=1, initial_const=1e-6)(model, x, y)
    assert (~short.success).any()
    np.testing.assert_array_equal(short.x_adv[~short.success], x[~short.success])


@pytest.mark.parametrize(
    "attack",
    [CarliniWagnerL2(steps=50, binary_search_steps=3, initial_const=1.0),
     ZOO(coords=8, max_queries=500, learning_rate=0.05)],
    ids=lambda a: type(a).__name__,
)
def test_minimal_attacks_fail_where_the_box_holds_no_boundary(attack):
    # z = wᵀx + ‖w‖₁ + 0.5 ≥ 0.5 on all of [0, 1]^d: no input in the box is class 0, so a
    # minimal-norm attack confined to the box must fail and return its input unchanged.
    w = np.random.default_rng(12).normal(size=N_FEATURES)
    model = linear_model(w, np.abs(w).sum() + 0.5)
    x = np.random.default_rng(13).uniform(size=(8,) + SHAPE).astype(np.float32)
    result = attack(model, x, np.ones(8, np.int32), seed=0)
    assert result.clean_correct.all() and not result.success.any()
    np.testing.assert_array_equal(result.x_adv, x)


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


class CountingModel:
    """Wraps a model and observes, from outside the attack, how it is used.

    ``rows`` adds up the batch rows of every forward call: each row is one input the attack asked
    the model to evaluate, i.e. one query. ``backward`` counts gradients taken through the model's
    output (a white-box attack takes some, a black-box one none). Both are variables, so calls
    inside the attack's traced loops are counted each time they run, not once per trace.
    """

    def __init__(self, model):
        self.model = model
        self.rows = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.backward = tf.Variable(0, dtype=tf.int64, trainable=False)

    def __call__(self, x, training=False):
        self.rows.assign_add(tf.cast(tf.shape(x)[0], tf.int64))

        @tf.custom_gradient
        def observed(z):
            def grad(upstream):
                self.backward.assign_add(1)
                return upstream

            return tf.identity(z), grad

        return observed(self.model(x, training=training))


def test_zoo_black_box_flips_and_counts_queries(multiclass_linear):
    model, _, _, x, y, _ = multiclass_linear
    counted = CountingModel(model)
    attack = ZOO(coords=8, max_queries=2000, learning_rate=0.05, binary_search_steps=1, initial_const=10.0)
    result = attack.run(counted, x[:32], y[:32], batch_size=16, seed=0)
    assert result.success_rate > 0.8
    # ZOO's query = one evaluation of one sample by the model, the clean and the final
    # evaluation of the base class included. Every sample costs the same, so the rows the model
    # saw, over the two batches, are 32 times the per-sample count the result reports.
    queries = result.queries
    assert queries is not None and (queries == queries[0]).all()
    assert int(counted.rows.numpy()) == 32 * int(queries[0])
    assert int(counted.backward.numpy()) == 0  # black box: never differentiated
    # Within the budget, and no whole iteration (2·coords probes and a check) left unspent.
    assert 2000 - (2 * 8 + 1) < queries[0] <= 2000
    # The instrument itself: a white-box attack does differentiate through the model.
    FGSM(eps=0.1)(counted, x[:4], y[:4])
    assert int(counted.backward.numpy()) > 0
    assert FGSM(eps=0.1)(model, x, y).queries is None
    with pytest.raises(ValueError, match="max_queries"):
        ZOO(coords=8, max_queries=18)
    with pytest.raises(ValueError, match="coords"):
        ZOO(coords=32, max_queries=100)(model, x, y)


@JIT
def test_zoo_flips_binary_linear_samples_no_closer_than_the_boundary(jit):
    # Black-box, so not minimal, but never closer than the closed-form |z| / ‖w‖₂ and, given
    # ~30 iterations of 8 coordinates, every one of these near-boundary inputs flips.
    model, w, b, x, y, distance = near_boundary_binary()
    attack = ZOO(coords=8, max_queries=1000, learning_rate=0.01, binary_search_steps=1, initial_const=10.0,
                 jit_compile=jit)
    result = attack(model, x, y, seed=0)
    assert result.success.all()
    np.testing.assert_array_equal((binary_scores(result.x_adv, w, b) > 0), y == 0)
    assert np.all(result.l2 >= distance * (1 - 1e-4))
    assert result.x_adv.min() >= 0.0 and result.x_adv.max() <= 1.0


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
