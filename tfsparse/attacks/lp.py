"""Per-norm pieces shared by every attack: box clip, ε-ball projection, step normalisation, norms.

Keeping them in one module (as Foolbox's ``gradient_descent_base.py`` does) lets FGSM, PGD and the
base class agree on what "inside the l∞ / l2 ball" means. All functions work on batches whose first
axis is the sample axis and whose other axes are reduced per sample.
"""

from tfsparse.compat import tf

NORMS = ("linf", "l2")


def check_norm(norm: str) -> str:
    """Returns ``norm`` if it is one of :data:`NORMS`, else raises ValueError."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return norm


def _sample_axes(x):
    return list(range(1, len(x.shape)))


def per_sample(values, x):
    """Reshapes a ``(batch,)`` vector so it broadcasts against ``x``."""
    return tf.reshape(values, [-1] + [1] * (len(x.shape) - 1))


def per_sample_norm(delta, norm: str):
    """The l∞ or l2 norm of each sample of ``delta``, shape ``(batch,)``."""
    if check_norm(norm) == "linf":
        return tf.reduce_max(tf.abs(delta), axis=_sample_axes(delta))
    return tf.sqrt(tf.reduce_sum(tf.square(delta), axis=_sample_axes(delta)))


def clip_to_box(x, low=0.0, high=1.0):
    """Clips every value into ``[low, high]`` (the image domain is [0, 1], SPEC §1)."""
    return tf.clip_by_value(x, low, high)


def project(x_adv, x, eps, norm: str):
    """Projects ``x_adv`` onto the ``norm`` ball of radius ``eps`` around ``x``, per sample."""
    delta = x_adv - x
    if check_norm(norm) == "linf":
        return x + tf.clip_by_value(delta, -eps, eps)
    length = per_sample(per_sample_norm(delta, "l2"), delta)
    # Only samples outside the ball are rescaled; the where keeps 0/0 out of the graph.
    factor = tf.where(length > eps, eps / tf.maximum(length, 1e-12), tf.ones_like(length))
    return x + delta * factor


def normalize(grad, norm: str):
    """The steepest-ascent direction of unit ``norm`` for gradient ``grad``, per sample.

    l∞: ``sign(grad)`` (Goodfellow et al. 2015); l2: ``grad / ‖grad‖₂``, zero where the gradient
    is zero.
    """
    if check_norm(norm) == "linf":
        return tf.sign(grad)
    length = per_sample(per_sample_norm(grad, "l2"), grad)
    return tf.math.divide_no_nan(grad, length)


def random_start(x, eps, norm: str, seed):
    """A point drawn uniformly from the ``norm`` ball of radius ``eps`` around each sample.

    l∞: ``x + U(-ε, ε)`` per value (Madry et al. 2018). l2: a Gaussian direction scaled to radius
    ``ε · u^(1/d)``, ``u ~ U(0, 1)`` and ``d`` the values per sample, which is uniform in the
    ball (Foolbox's ``uniform_l2_n_balls``). Not clipped to the box.

    Args:
      x: float inputs ``(batch, ...)``.
      eps: ball radius: a number, or a tensor broadcasting against ``x`` (per-sample radii
        shaped ``(batch, 1, ..., 1)``).
      norm: ``"linf"`` or ``"l2"``.
      seed: shape ``(2,)`` integer seed of ``tf.random.stateless_*``.

    Returns:
      A tensor shaped like ``x``.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    if check_norm(norm) == "linf":
        return x + tf.random.stateless_uniform(tf.shape(x), seeds[0], -eps, eps, dtype=x.dtype)
    direction = normalize(tf.random.stateless_normal(tf.shape(x), seeds[0], dtype=x.dtype), "l2")
    dims = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), x.dtype)
    radius = tf.random.stateless_uniform(tf.shape(x)[:1], seeds[1], dtype=x.dtype) ** (1.0 / dims)
    return x + eps * per_sample(radius, x) * direction


def on_active_rows(active, fn, inputs, fills, xla):
    """``fn(*inputs)`` for the rows where ``active``; the other rows get ``fills``.

    Without XLA only the active rows are gathered and attacked (dynamic batch). XLA needs static
    shapes, so there the whole batch is attacked and the inactive rows are overwritten. Used by
    the attacks that stop per sample (APGD, FAB).
    """
    if xla:
        outputs = fn(*inputs)
        return tuple(
            tf.where(per_sample(active, out), out, fill) for out, fill in zip(outputs, fills)
        )
    rows = tf.where(active)
    outputs = fn(*(tf.gather_nd(t, rows) for t in inputs))
    return tuple(tf.tensor_scatter_nd_update(fill, rows, out) for out, fill in zip(outputs, fills))
