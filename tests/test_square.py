"""Tests of the Square Attack (Andriushchenko, Croce, Flammarion, Hein, ECCV 2020) on tiny models.

Queries are checked from OUTSIDE the attack: :class:`Probe` wraps the model and, for every row it
is asked to evaluate, reads the sample's id from tag pixels (bits in ``x[:, 0, :6, 0]``, which
any perturbation below 0.5 per pixel leaves decodable) and counts the row for that sample, also
recording how far the row is from the sample's clean input. The attack's definition: ``queries[i]``
= rows of sample ``i`` the search sent to the model (init included); the base class's clean and
final evaluations add exactly one row each, so ``probe.rows == queries + 2``.
"""

import numpy as np
import pytest

from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.square import SCHEDULE_ITERATIONS
from tfsparse.attacks.square import Square
from tfsparse.attacks.square import p_schedule
from tfsparse.attacks.square import pseudo_gaussian
from tfsparse.attacks.square import square_side
from tfsparse.compat import keras
from tfsparse.compat import tf

SHAPE = (6, 6, 1)
TAG_BITS = 6  # ids 0..63 in x[:, 0, :6, 0]; the linear models below give those pixels weight 0


def tag(x):
    """``x`` with sample ``i``'s id written as bits into ``x[i, 0, :6, 0]``."""
    x = np.array(x, np.float32)
    assert len(x) <= 2**TAG_BITS
    bits = (np.arange(len(x))[:, None] >> np.arange(TAG_BITS)) & 1
    x[:, 0, :TAG_BITS, 0] = bits
    return x


class Probe(keras.Model):
    """``inner`` plus per-sample counters of evaluated rows, kept in variables (works traced/XLA).

    ``rows[i]``: rows of sample ``i`` evaluated; ``linf[i]`` / ``l2[i]``: largest distance of such
    a row to ``x_clean[i]``; ``low`` / ``high``: smallest / largest value of any row.
    """

    def __init__(self, inner, x_clean):
        super().__init__()
        self.inner = inner
        self.n = len(x_clean)
        self.reference = tf.constant(x_clean, tf.float32)
        self.rows = tf.Variable(tf.zeros([self.n], tf.int64), trainable=False)
        self.linf = tf.Variable(tf.zeros([self.n]), trainable=False)
        self.l2 = tf.Variable(tf.zeros([self.n]), trainable=False)
        self.low = tf.Variable(np.inf, dtype=tf.float32, trainable=False)
        self.high = tf.Variable(-np.inf, dtype=tf.float32, trainable=False)

    def call(self, x, training=False):
        bits = tf.cast(tf.round(x[:, 0, :TAG_BITS, 0]), tf.int32)
        ids = tf.reduce_sum(bits * (2 ** tf.range(TAG_BITS)), axis=1)
        owner = tf.one_hot(ids, self.n, dtype=tf.int64)  # (rows, n); an id >= n would count nowhere
        self.rows.assign_add(tf.reduce_sum(owner, axis=0))
        delta = tf.reshape(x - tf.gather(self.reference, ids), [tf.shape(x)[0], -1])
        for var, dist in (
            (self.linf, tf.reduce_max(tf.abs(delta), axis=1)),
            (self.l2, tf.norm(delta, axis=1)),
        ):
            per_sample = tf.reduce_max(tf.where(owner > 0, dist[:, None], -np.inf), axis=0)
            var.assign(tf.maximum(var, per_sample))
        self.low.assign(tf.minimum(self.low, tf.reduce_min(x)))
        self.high.assign(tf.maximum(self.high, tf.reduce_max(x)))
        return self.inner(x, training=training)


def linear_model(kernel, bias, shape=SHAPE):
    """flatten -> dense with the given weights (binary if ``kernel`` has one column)."""
    kernel = np.asarray(kernel, np.float32).reshape(int(np.prod(shape)), -1)
    model = keras.Sequential(
        [keras.layers.Input(shape), keras.layers.Flatten(), keras.layers.Dense(kernel.shape[1])]
    )
    model.set_weights([kernel, np.asarray(bias, np.float32).reshape(-1)])
    return model


def random_linear(classes, seed=0):
    """Random weights, zero on the tag pixels; binary (one logit) for ``classes == 1``."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(int(np.prod(SHAPE)), classes))
    w[:TAG_BITS] = 0.0  # x[:, 0, :6, 0] flattened (c = 1)
    b = -0.5 * w.sum(axis=0) + (0 if classes == 1 else rng.normal(size=classes) * 0.3)
    return w, b


def distances(x, w, b, y, norm):
    """``z``, labels and each point's ``norm``-distance to every other class's boundary (float64).

    A linear model's boundary ``z_y = z_j`` is at distance ``(z_y − z_j) / ‖w_y − w_j‖_q``
    (``q`` dual of ``norm``: 1 for l∞, 2 for l2); the box can only make it larger.
    """
    flat = np.asarray(x, np.float64).reshape(len(x), -1)
    z = flat @ w + b
    dual = 1 if norm == "linf" else 2
    if w.shape[1] == 1:  # binary: s·z with s = 2y − 1
        return z, (z[:, 0] > 0).astype(np.int32), np.abs(z[:, 0]) / np.linalg.norm(w[:, 0], dual)
    own = z[np.arange(len(z)), y]
    diff = w[:, y].T[:, :, None] - w[None]  # (n, d, C)
    with np.errstate(invalid="ignore"):  # the own class: 0 / 0, set to inf below
        dist = (own[:, None] - z) / np.linalg.norm(diff, dual, axis=1)
    dist[np.arange(len(z)), y] = np.inf
    return z, np.argmax(z, axis=1).astype(np.int32), dist


def near_boundary(w, b, norm, eps, count, seed=0, ratio=0.02):
    """Points at ``norm``-distance < ``ratio·eps`` of the nearest other class, box not binding.

    Each starts near the image centre and moves straight towards its nearest boundary (along
    ``−sign(Δw)`` in l∞, ``−Δw/‖Δw‖₂`` in l2) until ``ratio/2·eps`` from it.
    """
    rng = np.random.default_rng(seed)
    x = 0.5 + rng.uniform(-0.1, 0.1, size=(8 * count, int(np.prod(SHAPE))))
    y0 = distances(x, w, b, None if w.shape[1] == 1 else np.argmax(x @ w + b, 1), norm)[1]
    _, _, dist = distances(x, w, b, y0, norm)
    if w.shape[1] == 1:
        j = np.zeros(len(x), int)
        dw = (2 * y0 - 1)[:, None] * w[:, 0][None]
        near = dist
    else:
        j = np.argmin(dist, axis=1)
        dw = (w[:, y0] - w[:, j]).T
        near = dist[np.arange(len(x)), j]
    direction = -np.sign(dw) if norm == "linf" else -dw / np.linalg.norm(dw, axis=1, keepdims=True)
    x = x + (near - 0.5 * ratio * eps)[:, None] * direction
    y = distances(x, w, b, y0, norm)[1]
    dist = distances(x, w, b, y0, norm)[2].reshape(len(x), -1).min(axis=1)
    keep = (y == y0) & (dist < ratio * eps) & (x.min(1) > eps) & (x.max(1) < 1 - eps)
    assert keep.sum() >= count
    return x[keep][:count].reshape((-1,) + SHAPE).astype(np.float32), y[keep][:count]


def far_from_boundary(w, b, norm, eps, count, seed=1):
    """Random points whose ``norm``-distance to every other class's boundary is > 1.05·ε."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(400 * count, int(np.prod(SHAPE))))
    y = distances(x, w, b, None if w.shape[1] == 1 else np.argmax(x @ w + b, 1), norm)[1]
    dist = distances(x, w, b, y, norm)[2].reshape(len(x), -1).min(axis=1)
    keep = dist > 1.05 * eps
    assert keep.sum() >= count
    return x[keep][:count].reshape((-1,) + SHAPE).astype(np.float32), y[keep][:count]


def mixed_batch(classes, norm, eps, seed=0):
    """Tagged batch: 12 near-boundary points, 6 far ones, 2 far ones with a wrong label."""
    w, b = random_linear(classes, seed)
    x_near, y_near = near_boundary(w, b, norm, eps, 12, seed)
    x_far, y_far = far_from_boundary(w, b, norm, eps, 8, seed + 1)
    y_far[6:] = 1 - y_far[6:] if classes == 1 else (y_far[6:] + 1) % classes
    x = tag(np.concatenate([x_near, x_far]))
    y = np.concatenate([y_near, y_far]).astype(np.int32)
    kinds = np.array(["near"] * 12 + ["far"] * 6 + ["wrong"] * 2)
    return linear_model(w, b), x, y, kinds


NORM_EPS = [("linf", 0.05), ("l2", 0.2)]


# --- parameters ----------------------------------------------------------------------------------


def test_repr_params_rebuild_and_frozen():
    attack = Square(eps=0.1, norm="l2", max_queries=100, p_init=0.1, restarts=2)
    assert isinstance(attack, FixedEpsilonAttack) and attack.eps_ball == ("l2", 0.1)
    assert repr(attack) == (
        "Square(eps=0.1, norm='l2', max_queries=100, p_init=0.1, restarts=2, "
        "rescale_schedule=False, jit_compile='auto')"
    )
    params = attack.params
    assert params.pop("name") == "square"
    assert repr(Square(**params)) == repr(attack)
    with pytest.raises(AttributeError, match="frozen"):
        attack.eps = 0.2
    with pytest.raises(TypeError):
        Square(0.1)  # keyword-only
    defaults = Square(eps=0.3)  # AutoAttack's standard Square
    assert (defaults.norm, defaults.max_queries, defaults.p_init, defaults.restarts) == (
        "linf", 5000, 0.8, 1
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"eps": -0.1}, "eps"),
        ({"norm": "l1"}, "norm"),
        ({"max_queries": 0}, "max_queries"),
        ({"max_queries": 10.0}, "max_queries"),
        ({"p_init": 0.0}, "p_init"),
        ({"p_init": 1.5}, "p_init"),
        ({"restarts": 0}, "restarts"),
        ({"rescale_schedule": 1}, "rescale_schedule"),
        ({"jit_compile": "yes"}, "jit_compile"),
    ],
)
def test_rejects_bad_params(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Square(**{"eps": 0.1, **kwargs})


def test_rejects_non_image_inputs():
    model = keras.Sequential([keras.layers.Input((16,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="image inputs"):
        Square(eps=0.1, max_queries=5)(model, np.zeros((2, 16)), np.zeros(2), seed=0)


# --- schedule and sampling pieces against the reference code -------------------------------------


def reference_p(p_init, it, n_iters, rescale):
    """``p_selection`` of the authors' code / AutoAttack (piecewise-constant halving)."""
    if rescale:
        it = int(it / n_iters * 10000)
    bounds = [0, *SCHEDULE_ITERATIONS]
    for k, (lo, hi) in enumerate(zip(bounds, bounds[1:] + [np.inf])):
        if lo < it <= hi and it > 10:
            return p_init / 2**k
    return p_init


@pytest.mark.parametrize("rescale", [False, True])
def test_p_schedule_matches_the_papers_piecewise_schedule(rescale):
    for it in [0, 1, 10, 11, 50, 51, 200, 201, 999, 1000, 1001, 2500, 4001, 6001, 8000, 8001, 9999]:
        got = float(p_schedule(0.8, it, 10000 if not rescale else 2500, rescale))
        assert got == pytest.approx(reference_p(0.8, it, 10000 if not rescale else 2500, rescale))
    # Without rescaling the last factor is reached only at 8,000 iterations (AutoAttack).
    assert float(p_schedule(0.8, 4999, 5000)) == pytest.approx(0.8 / 128)
    assert float(p_schedule(0.8, 4999, 5000, rescale=True)) == pytest.approx(0.8 / 512)


def test_square_side():
    # MNIST 28×28: √(p·784) rounded; l2 at least 3 and odd; both at most h − 1.
    assert [int(square_side(p, 28, 28, "linf")) for p in (0.8, 0.05, 0.8 / 512, 1.0)] == [
        25, 6, 1, 27
    ]
    assert [int(square_side(p, 28, 28, "l2")) for p in (0.8, 0.05, 0.8 / 512, 1.0)] == [
        25, 7, 3, 27
    ]
    assert int(square_side(0.8, 4, 4, "l2")) == 3 and int(square_side(0.8, 2, 9, "linf")) == 1


def reference_eta(s):
    """η of eq. 8 as the authors' ``meta_pseudo_gaussian_pert`` (before its random transpose)."""

    def rect(a, b):
        d = np.zeros([a, b])
        corner = [a // 2, b // 2]
        for k in range(max(a // 2 + 1, b // 2 + 1)):
            d[max(corner[0], 0) : min(corner[0] + 2 * k + 1, a),
              max(corner[1], 0) : min(corner[1] + 2 * k + 1, b)] += 1.0 / (k + 1) ** 2
            corner = [corner[0] - 1, corner[1] - 1]
        return d / np.sqrt(np.sum(d**2)) if d.size else d

    d = np.zeros([s, s])
    d[: s // 2] = rect(s // 2, s)
    d[s // 2 :] = -rect(s - s // 2, s)
    return d / np.sqrt(np.sum(d**2))


def test_pseudo_gaussian_matches_the_reference_eta():
    grid = tf.range(12)
    for s in range(1, 11):
        got = pseudo_gaussian(grid[:, None] - 1, grid[None, :] - 2, tf.constant(s), 12).numpy()
        expected = np.zeros((12, 12))
        expected[1 : 1 + s, 2 : 2 + s] = reference_eta(s)
        np.testing.assert_allclose(got, expected, atol=1e-6)
        transposed = pseudo_gaussian(grid[None, :] - 2, grid[:, None] - 1, tf.constant(s), 12)
        np.testing.assert_allclose(transposed.numpy()[1 : 1 + s, 2 : 2 + s], reference_eta(s).T,
                                   atol=1e-6)


# --- constraints ---------------------------------------------------------------------------------


@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 1.0)])
def test_every_query_inside_ball_and_box(norm, eps):
    """Every row the model sees (and x_adv) lies in the ε-ball ∩ [0, 1], pixels at 0/1 included."""
    rng = np.random.default_rng(5)
    shape = (6, 6, 3)
    inner = keras.Sequential(
        [keras.layers.Input(shape), keras.layers.Conv2D(4, 3, activation="relu"),
         keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    x = rng.uniform(size=(24,) + shape).astype(np.float32)
    x[:, 3:, 3:] = np.round(x[:, 3:, 3:])  # a quarter of every image at the box's faces
    x = tag(x)
    probe = Probe(inner, x)
    y = np.argmax(inner(x).numpy(), axis=1)
    result = Square(eps=eps, norm=norm, max_queries=60, p_init=0.3)(probe, x, y, seed=3)
    dist = probe.linf.numpy() if norm == "linf" else probe.l2.numpy()
    assert dist.max() <= eps * (1 + 1e-5) and dist.max() > 0.5 * eps
    assert probe.low.numpy() >= 0.0 and probe.high.numpy() <= 1.0
    delta = (result.x_adv - x).reshape(len(x), -1)
    np.testing.assert_allclose(result.linf, np.abs(delta).max(axis=1), atol=1e-6)
    np.testing.assert_allclose(result.l2, np.linalg.norm(delta, axis=1), rtol=1e-5, atol=1e-6)
    assert (result.linf if norm == "linf" else result.l2).max() <= eps * (1 + 1e-5)
    assert result.x_adv.min() >= 0.0 and result.x_adv.max() <= 1.0
    np.testing.assert_array_equal(probe.rows.numpy(), result.queries + 2)


def test_grayscale_inputs_without_channel_axis():
    rng = np.random.default_rng(6)
    model = keras.Sequential(
        [keras.layers.Input((6, 6)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    x = rng.uniform(size=(8, 6, 6)).astype(np.float32)
    y = np.argmax(model(x).numpy(), axis=1)
    result = Square(eps=0.2, max_queries=30)(model, x, y, seed=0)
    assert result.x_adv.shape == x.shape and result.linf.max() <= 0.2 + 1e-6


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_eps_zero_returns_x_and_spends_no_queries(norm):
    model, x, y, _ = mixed_batch(5, "linf", 0.05)
    probe = Probe(model, x)
    result = Square(eps=0.0, norm=norm, max_queries=50)(probe, x, y, seed=0)
    np.testing.assert_array_equal(result.x_adv, x)
    assert not result.success.any()
    np.testing.assert_array_equal(result.queries, 0)
    np.testing.assert_array_equal(probe.rows.numpy(), 2)  # only the base's clean + final rows


# --- exact query accounting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "norm,eps,jit",
    [("linf", 0.05, False), ("l2", 0.2, False), ("linf", 0.05, True)],
    ids=["linf", "l2", "linf-xla"],
)
def test_queries_counted_exactly_and_samples_stop_when_fooled(norm, eps, jit):
    """Counted from outside: rows of sample i the model evaluated = queries[i] + 2 (clean, final).

    Near-boundary points are fooled and stop before the budget, far ones spend exactly the
    budget, clean-misclassified ones are not attacked (0 queries).
    """
    model, x, y, kinds = mixed_batch(5, norm, eps)
    probe = Probe(model, x)
    budget = 150
    result = Square(eps=eps, norm=norm, max_queries=budget, p_init=0.1, jit_compile=jit)(
        probe, x, y, seed=7
    )
    np.testing.assert_array_equal(probe.rows.numpy(), result.queries + 2)
    assert result.queries.max() <= budget
    near, far, wrong = (kinds == k for k in ("near", "far", "wrong"))
    assert result.success[near].all() and not result.success[far | wrong].any()
    assert (result.queries[near] < budget).all() and (result.queries[near] >= 1).all()
    np.testing.assert_array_equal(result.queries[far], budget)
    np.testing.assert_array_equal(result.queries[wrong], 0)
    assert not result.clean_correct[wrong].any()
    np.testing.assert_array_equal(result.x_adv[wrong], x[wrong])
    if not jit:
        assert (result.queries[near] == 1).any()  # fooled by the initial point: one query


def test_budget_only_truncates_each_samples_search():
    """A smaller budget gives ``min(queries, budget)`` per sample: draws do not depend on it (no
    schedule rescaling) nor on which other samples are still active."""
    model, x, y, _ = mixed_batch(5, "linf", 0.05, seed=3)
    full = Square(eps=0.05, max_queries=150, p_init=0.1)(model, x, y, seed=2)
    for budget in (1, 2, 5):
        short = Square(eps=0.05, max_queries=budget, p_init=0.1)(model, x, y, seed=2)
        np.testing.assert_array_equal(short.queries, np.minimum(full.queries, budget))
        done = full.queries <= budget
        np.testing.assert_array_equal(short.x_adv[done], full.x_adv[done])


def test_restarts_spend_a_budget_each_only_on_unfooled_samples():
    model, x, y, kinds = mixed_batch(5, "linf", 0.05)
    probe = Probe(model, x)
    one = Square(eps=0.05, max_queries=40, p_init=0.1)(model, x, y, seed=1)
    three = Square(eps=0.05, max_queries=40, p_init=0.1, restarts=3)(probe, x, y, seed=1)
    np.testing.assert_array_equal(probe.rows.numpy(), three.queries + 2)
    # Restart 0 is the single run; later restarts only for the samples it did not fool.
    np.testing.assert_array_equal(three.queries[one.success], one.queries[one.success])
    np.testing.assert_array_equal(three.x_adv[one.success], one.x_adv[one.success])
    assert three.queries.max() <= 3 * 40
    np.testing.assert_array_equal(three.queries[kinds == "far"], 3 * 40)
    assert (three.success >= one.success).all()


# --- linear models: what can and cannot be flipped ------------------------------------------------


@pytest.mark.parametrize("norm,eps", NORM_EPS)
@pytest.mark.parametrize("classes", [5, 1], ids=["multiclass", "binary"])
def test_linear_model_flips_exactly_the_flippable_points(classes, norm, eps):
    """Far points (distance to every other boundary > ε) are never flipped; points within 0.02·ε
    of a boundary all are, within the budget; the one-logit model uses the signed logit s·z."""
    w, b = random_linear(classes, seed=4)
    x_near, y_near = near_boundary(w, b, norm, eps, 16, seed=4)
    x_far, y_far = far_from_boundary(w, b, norm, eps, 16, seed=5)
    model = linear_model(w, b)
    attack = Square(eps=eps, norm=norm, max_queries=300, p_init=0.1)
    near = attack(model, x_near, y_near, seed=0)
    assert near.clean_correct.all() and near.success.all()
    assert (near.queries < 300).all()
    far = attack(model, x_far, y_far, seed=0)
    assert far.clean_correct.all() and not far.success.any()
    np.testing.assert_array_equal(far.queries, 300)
    # The returned far points are still inside the ball and still classified as y (in float64).
    z, labels, _ = distances(far.x_adv, w, b, y_far, norm)
    np.testing.assert_array_equal(labels, y_far)
    if classes == 1:
        z_near = distances(near.x_adv, w, b, y_near, norm)[0][:, 0]
        assert ((2 * y_near - 1) * z_near <= 0).all()


# --- reproducibility -----------------------------------------------------------------------------


@pytest.mark.parametrize("norm,eps", NORM_EPS)
def test_deterministic_with_a_seed(norm, eps):
    model, x, y, _ = mixed_batch(5, norm, eps)
    attack = Square(eps=eps, norm=norm, max_queries=40, p_init=0.1, restarts=2)
    first = attack(model, x, y, seed=11)
    again = attack(model, x, y, seed=11)
    other = attack(model, x, y, seed=12)
    np.testing.assert_array_equal(first.x_adv, again.x_adv)
    np.testing.assert_array_equal(first.queries, again.queries)
    assert not np.array_equal(first.x_adv, other.x_adv)
    run = attack.run(model, x, y, batch_size=8, seed=3)
    rerun = attack.run(model, x, y, batch_size=8, seed=3)
    np.testing.assert_array_equal(run.x_adv, rerun.x_adv)
    np.testing.assert_array_equal(run.queries, rerun.queries)
    assert run.queries.shape == (len(x),)
