"""FAB-T (Croce & Hein, ICML 2020): the hyperplane-∩-box projection and the attack.

References: a NumPy bisection over the dual variable of the projection (the paper's §3.2
problem, solved independently of the sort-based TF code), closed-form distances
``|Δwᵀx + Δb| / ‖Δw‖_q`` (q = 2 for l2, q = 1 for l∞) to the boundaries of linear models, and
DeepFool (l2) on the same points.
"""

import numpy as np
import pytest

from tfsparse.attacks import DeepFool
from tfsparse.attacks.fab import FABT
from tfsparse.attacks.fab import fab_perturb
from tfsparse.attacks.fab import project_onto_hyperplane_box
from tfsparse.compat import keras
from tfsparse.compat import tf

SHAPE = (4, 4, 1)
N_FEATURES = 16
DUAL = {"l2": 2, "linf": 1}  # the dual norm q of the distance to a hyperplane


def linear_model(kernel, bias):
    """flatten -> dense with the given weights (one column: a binary single-logit model)."""
    kernel = np.asarray(kernel, np.float32).reshape(N_FEATURES, -1)
    model = keras.Sequential(
        [keras.layers.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(kernel.shape[1])]
    )
    model.set_weights([kernel, np.asarray(bias, np.float32).reshape(-1)])
    return model


def norms(result, norm):
    return result.l2 if norm == "l2" else result.linf


def margins(w, b, x, y):
    """Per sample and class k: |(w_y - w_k)ᵀx + b_y - b_k| and w_y - w_k (float64)."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    z = flat @ w + b
    gap = z[np.arange(len(x)), y][:, None] - z
    diff = w.T[y][:, None, :] - w.T[None, :, :]  # (batch, C, d)
    return gap, diff


@pytest.fixture(scope="module")
def two_class():
    """A 2-logit linear model on interior points (x ∈ [0.3, 0.7]), exact distances per norm."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(N_FEATURES, 2))
    b = -0.5 * w.sum(0) + rng.normal(size=2) * 0.2
    x = rng.uniform(0.3, 0.7, size=(48,) + SHAPE).astype(np.float32)
    y = np.argmax(x.reshape(len(x), -1) @ w + b, 1).astype(np.int32)
    dw = w[:, 0] - w[:, 1]
    gap = np.abs((x.reshape(len(x), -1).astype(np.float64) @ dw) + b[0] - b[1])
    dist = {norm: gap / np.linalg.norm(dw, q) for norm, q in DUAL.items()}
    return linear_model(w, b), x, y, dist


@pytest.fixture(scope="module")
def linear5():
    """A 5-class linear model on interior points; per norm the distance to every boundary."""
    rng = np.random.default_rng(7)
    w = rng.normal(size=(N_FEATURES, 5))
    b = -0.5 * w.sum(0) + rng.normal(size=5) * 0.2
    x = rng.uniform(0.3, 0.7, size=(64,) + SHAPE).astype(np.float32)
    logits = x.reshape(len(x), -1).astype(np.float64) @ w + b
    y = np.argmax(logits, 1).astype(np.int32)
    gap, diff = margins(w, b, x, y)
    dist = {}
    for norm, q in DUAL.items():
        length = np.linalg.norm(diff, q, axis=2)
        d = np.where(length > 0, gap / np.where(length > 0, length, 1), np.inf)  # class y: inf
        dist[norm] = d
    return linear_model(w, b), x, y, logits, dist


# --- projection onto hyperplane ∩ box -----------------------------------------------------------


def numpy_projection(p, w, c, norm, iters=200):
    """Bisection on the dual variable λ of min ‖δ‖ s.t. wᵀδ = c, p + δ ∈ [0, 1] (float64)."""
    p, w, c = (np.asarray(v, np.float64) for v in (p, w, c))
    out = np.zeros_like(p)
    for i in range(len(p)):
        s = 1.0 if c[i] >= 0 else -1.0
        wi, ci = w[i] * s, c[i] * s
        room = np.where(wi > 0, 1 - p[i], np.where(wi < 0, p[i], 0.0))

        def delta(lam, wi=wi, room=room):
            move = np.minimum(lam * np.abs(wi), room) if norm == "l2" else np.minimum(lam, room)
            return np.sign(wi) * np.where(wi != 0, move, 0.0)

        lo, hi = 0.0, 1e12
        if wi @ delta(hi) < ci:  # the hyperplane misses the box: nearest corner
            out[i] = np.sign(wi) * room
            continue
        for _ in range(iters):
            mid = 0.5 * (lo + hi) if hi < 1e3 else np.sqrt(max(lo, 1e-12) * hi)
            lo, hi = (mid, hi) if wi @ delta(mid) < ci else (lo, mid)
        out[i] = delta(hi)
    return out


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_projection_matches_numpy_bisection(norm):
    rng = np.random.default_rng(0)
    n, d = 40, 12
    p = rng.uniform(0, 1, size=(n, d))
    p[:, :2] = rng.integers(0, 2, size=(n, 2))  # some coordinates on the box bounds
    w = rng.normal(size=(n, d))
    w[:, 2] = 0.0  # a coordinate that cannot move
    c = rng.normal(size=n) * np.linspace(0.05, 6.0, n)  # small (interior) to infeasible
    c[0] = 0.0
    got = project_onto_hyperplane_box(
        tf.constant(p, tf.float32), tf.constant(w, tf.float32), tf.constant(c, tf.float32), norm
    ).numpy()
    want = numpy_projection(p, w, c, norm)
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.all(p + got >= -1e-6) and np.all(p + got <= 1 + 1e-6)
    residual = np.abs((got * w).sum(1) - c)
    feasible = residual < 1e-4 * (1 + np.abs(c))
    assert feasible.sum() > n // 2 and (~feasible).sum() > 0  # both regimes are exercised
    # Without the box the l2 / l∞ solutions are the closed forms c·w/‖w‖₂² and c·sign(w)/‖w‖₁.
    interior = np.full((1, d), 0.5)
    w1 = rng.normal(size=(1, d))
    c1 = np.array([0.01])
    free = project_onto_hyperplane_box(
        tf.constant(interior, tf.float32), tf.constant(w1, tf.float32),
        tf.constant(c1, tf.float32), norm,
    ).numpy()
    closed = (c1[:, None] * w1 / (w1**2).sum() if norm == "l2"
              else c1[:, None] * np.sign(w1) / np.abs(w1).sum())
    np.testing.assert_allclose(free, closed, rtol=1e-4, atol=1e-7)


# --- the attack on linear models ----------------------------------------------------------------


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_two_class_linear_finds_the_exact_distance(norm, two_class):
    model, x, y, dist = two_class
    result = FABT(eps=10.0, norm=norm, steps=50).run(model, x, y, seed=0)
    assert result.success.all()
    ratio = norms(result, norm) / dist[norm]
    # η = 1.05 and β = 0.9 leave the best iterate within 0.6 % beyond the boundary.
    assert ratio.min() >= 1 - 1e-4 and ratio.max() <= 1.01, (ratio.min(), ratio.max())
    if norm == "l2":
        deepfool = DeepFool().run(model, x, y)
        assert deepfool.success.all()
        assert np.all(result.l2 <= deepfool.l2 * (1 + 1e-5))


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_binary_single_logit_model(norm):
    rng = np.random.default_rng(5)
    w = rng.normal(size=N_FEATURES)
    b = -0.5 * w.sum()
    x = rng.uniform(0.3, 0.7, size=(32,) + SHAPE).astype(np.float32)
    z = x.reshape(len(x), -1).astype(np.float64) @ w + b
    y = (z > 0).astype(np.int32)
    dist = np.abs(z) / np.linalg.norm(w, DUAL[norm])
    result = FABT(eps=10.0, norm=norm, steps=30).run(linear_model(w, b), x, y, seed=0)
    assert result.success.all()
    ratio = norms(result, norm) / dist
    assert ratio.min() >= 1 - 1e-4 and ratio.max() <= 1.01


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_box_constrained_distance_near_the_bounds(norm):
    """Points near the bounds: the minimum-norm point inside [0, 1] is the box projection."""
    rng = np.random.default_rng(11)
    w = rng.normal(size=(N_FEATURES, 2))
    b = -0.5 * w.sum(0)
    x = rng.choice([0.0, 0.02, 0.5, 0.98, 1.0], size=(32,) + SHAPE).astype(np.float32)
    flat = x.reshape(len(x), -1).astype(np.float64)
    y = np.argmax(flat @ w + b, 1).astype(np.int32)
    dw = w[:, 0] - w[:, 1]
    sign = np.where(y == 0, 1.0, -1.0)[:, None]  # w_y - w_t
    gap = (flat @ dw + b[0] - b[1]) * sign[:, 0]
    delta = numpy_projection(flat, np.repeat(dw[None], len(x), 0) * sign, -gap, norm)
    reach = np.abs((delta * dw * sign).sum(1) + gap) < 1e-6
    exact = np.linalg.norm(delta, 2 if norm == "l2" else np.inf, axis=1)
    free = np.abs(gap) / np.linalg.norm(dw, DUAL[norm])
    assert reach.sum() >= 20 and np.any(exact > free * 1.05)  # the box matters for some points
    result = FABT(eps=10.0, norm=norm, steps=100).run(linear_model(w, b), x, y, seed=0)
    assert np.all(result.success == reach)
    ratio = norms(result, norm)[reach] / exact[reach]
    assert ratio.min() >= 1 - 1e-4 and ratio.max() <= 1.01, (ratio.min(), ratio.max())


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("norm, eps", [("l2", 0.05), ("linf", 0.015)])
def test_multiclass_respects_the_ball_and_the_closed_form(norm, eps, jit_compile, linear5):
    model, x, y, logits, dist = linear5
    result = FABT(eps=eps, norm=norm, steps=40, n_target_classes=4,
                  jit_compile=jit_compile).run(model, x, y, seed=0)
    values = norms(result, norm)
    assert np.all(values <= eps * (1 + 1e-5))
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    nearest = dist[norm].min(1)  # no adversarial point (any class) is closer than this
    assert not np.any(result.success & (nearest > eps * (1 + 1e-5)))
    assert np.all(values[result.success] >= nearest[result.success] * (1 - 1e-4))
    # The top target alone is reached within the ball whenever its boundary is 1 % inside it.
    others = np.where(np.eye(5, dtype=bool)[y], -np.inf, logits)
    first = dist[norm][np.arange(len(y)), np.argmax(others, 1)]
    assert np.all(result.success[first * 1.01 < eps])
    assert result.success.sum() > 5 and (~result.success).sum() > 5
    unchanged = ~result.success
    np.testing.assert_array_equal(result.x_adv[unchanged], x[unchanged])


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_eps_zero_returns_x(norm, linear5):
    model, x, y, _, _ = linear5
    result = FABT(eps=0.0, norm=norm, steps=5).run(model, x, y)
    np.testing.assert_array_equal(result.x_adv, x)
    assert not result.success.any()


def test_clean_misclassified_inputs_are_returned_unchanged(linear5):
    model, x, y, _, _ = linear5
    wrong = y.copy()
    wrong[::3] = (y[::3] + 1) % 5
    result = FABT(eps=1.0, norm="l2", steps=20).run(model, x, wrong, seed=0)
    np.testing.assert_array_equal(result.x_adv[::3], x[::3])
    assert not result.success[::3].any()
    assert result.success[~np.isin(np.arange(len(y)), np.arange(0, len(y), 3))].all()


def dead_relu_model():
    """Binary logit ``1 - 10·relu(Σx - 8.1)``: flat (zero gradient) at x = 0.5 (Σx = 8), the
    boundary at Σx = 8.2 (l∞ distance 0.2 / 16). FAB started at x cannot move; a random start
    with Σ(x⁰ - x) > 0.1 sees the gradient."""
    model = keras.Sequential(
        [
            keras.layers.Input(SHAPE),
            keras.layers.Flatten(),
            keras.layers.Dense(1, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.set_weights([np.ones((N_FEATURES, 1), np.float32), np.array([-8.1], np.float32),
                       np.array([[-10.0]], np.float32), np.array([1.0], np.float32)])
    return model


def test_random_restarts_are_seeded_and_only_add():
    model = dead_relu_model()
    x = np.full((24,) + SHAPE, 0.5, np.float32)
    y = np.ones(24, np.int32)
    single = FABT(eps=0.2, norm="linf", steps=10).run(model, x, y, seed=4)
    assert not single.success.any()  # stuck at x: zero gradient
    attack = FABT(eps=0.2, norm="linf", steps=10, restarts=8)
    first = attack.run(model, x, y, seed=4, batch_size=10)
    again = attack.run(model, x, y, seed=4, batch_size=10)
    other = attack.run(model, x, y, seed=5, batch_size=10)
    np.testing.assert_array_equal(first.x_adv, again.x_adv)
    assert first.success.sum() >= 12
    assert np.all(first.linf[first.success] <= 0.2 + 1e-6)
    assert np.abs(first.x_adv - other.x_adv).max() > 0  # the seed drives the random starts


def test_fab_perturb_without_the_attack_class(two_class):
    model, x, y, dist = two_class
    x_best, best = fab_perturb(lambda v: model(v, training=False), x, y, 1 - y, steps=20,
                               norm="l2")
    assert np.all(np.isfinite(best.numpy()))
    np.testing.assert_allclose(best.numpy(), dist["l2"], rtol=0.01)
    assert np.all(np.argmax(model(x_best).numpy(), 1) != y)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_stop_at_fools_the_same_samples_and_iterates_fewer(norm, linear5):
    """fab_perturb(stop_at=ε), what FABT runs without XLA: the same samples get within ε (each
    stopped one returns a misclassified point within ε), the others the same best norm, and the
    model sees fewer rows than in the full run."""
    model, x, y, logits, dist = linear5
    target = np.argsort(-np.where(np.eye(5, dtype=bool)[y], -np.inf, logits), 1)[:, 0].astype(np.int32)
    eps = float(np.median(np.min(dist[norm], 1)))  # about half of the points are within reach
    runs = {}
    for stop_at in (None, eps):
        rows = []

        def counted(v):
            rows.append(int(v.shape[0]))
            return model(v, training=False)

        x_best, best = fab_perturb(counted, x, y, target, steps=30, norm=norm, stop_at=stop_at)
        runs[stop_at] = (x_best.numpy(), best.numpy(), sum(rows))
    (_, full_norm, full_rows), (x_stop, stop_norm, stop_rows) = runs[None], runs[eps]
    reached = full_norm <= eps
    assert 0 < reached.sum() < len(x)
    np.testing.assert_array_equal(stop_norm <= eps, reached)
    np.testing.assert_allclose(stop_norm[~reached], full_norm[~reached], rtol=1e-5)
    assert np.all(np.argmax(model(x_stop[reached]).numpy(), 1) != y[reached])
    assert stop_rows < full_rows
    # The attack class with AutoAttack's setting: the same samples fooled.
    full, stopping = (FABT(eps=eps, norm=norm, steps=30, n_target_classes=2, stop_when_fooled=stop,
                           jit_compile=False).run(model, x, y, seed=0) for stop in (False, True))
    np.testing.assert_array_equal(stopping.success, full.success)
    assert 0 < full.success.sum() < len(x)
    with pytest.raises(ValueError, match="stop_when_fooled"):
        FABT(eps=eps, stop_when_fooled=1)


def test_repr_params_frozen_and_bad_arguments():
    attack = FABT(eps=0.1)
    assert repr(attack) == (
        "FABT(eps=0.1, norm='linf', steps=100, n_target_classes=9, restarts=1, eta=1.05, "
        "beta=0.9, alpha_max=0.1, stop_when_fooled=False, jit_compile='auto')"
    )
    params = attack.params
    assert params.pop("name") == "fab_t"
    assert repr(FABT(**params)) == repr(attack)
    with pytest.raises(AttributeError):
        attack.eps = 0.2
    for kwargs, match in [
        ({"eps": -1}, "eps"),
        ({"eps": 0.1, "norm": "l1"}, "norm"),
        ({"eps": 0.1, "steps": 0}, "steps"),
        ({"eps": 0.1, "n_target_classes": 0}, "n_target_classes"),
        ({"eps": 0.1, "restarts": 0}, "restarts"),
        ({"eps": 0.1, "eta": 0.9}, "eta"),
        ({"eps": 0.1, "beta": 0.0}, "beta"),
        ({"eps": 0.1, "alpha_max": 1.5}, "alpha_max"),
        ({"eps": 0.1, "jit_compile": "yes"}, "jit_compile"),
    ]:
        with pytest.raises(ValueError, match=match):
            FABT(**kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("norm, eps", [("linf", 0.05), ("l2", 0.75)])
def test_mnist_mlp_on_par_with_apgd_t(norm, eps):
    """On a small MNIST net both AutoAttack targeted components reach the same robust accuracy."""
    import tfsparse
    from tfsparse.attacks.apgd import APGDT

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
    x, y = data.x_test, data.y_test.astype(np.int32)
    fab = FABT(eps=eps, norm=norm).run(model, x, y, seed=0)
    apgd = APGDT(eps=eps, norm=norm).run(model, x, y, seed=0)
    assert fab.adv_accuracy <= fab.clean_accuracy - 0.1
    assert abs(fab.adv_accuracy - apgd.adv_accuracy) <= 0.05
    assert np.all(norms(fab, norm) <= eps * (1 + 1e-5))
