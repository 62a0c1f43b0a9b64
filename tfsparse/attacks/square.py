"""Square Attack, Andriushchenko, Croce, Flammarion, Hein, ECCV 2020 ("Square Attack: a
query-efficient black-box adversarial attack via random search").

Score-based black-box random search (Alg. 1): from a point on the boundary of the ε-ball, propose
a random square-shaped update, query the model once, keep it iff the margin loss
``z_y − max_{i≠y} z_i`` went down, and stop a sample as soon as it is misclassified. The proposal
is Alg. 2 in l∞ (one square per image, set to ``x ± ε`` with one random sign per channel) and
Alg. 3 in l2 (mass moved from a second square into the first, shaped by the pseudo-Gaussian η of
eq. 8). The square side follows the paper's piecewise-constant schedule of the fraction ``p``.
Only logits are read, never gradients.
"""

import numbers

import numpy as np

from tfsparse.attacks import lp
from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.base import positive_int
from tfsparse.attacks.base import labels_from_logits
from tfsparse.attacks.carlini_wagner import logit_margin
from tfsparse.compat import tf

# Iterations after which p is halved (paper §3 / reference code ``p_selection``; 10,000 queries).
SCHEDULE_ITERATIONS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(p_init, iteration, max_queries, rescale=False):
    """Fraction ``p`` of the pixels a square covers at 0-based search ``iteration`` (in-graph).

    ``p_init`` halved after each of :data:`SCHEDULE_ITERATIONS` (Andriushchenko et al. 2020 §3;
    ``p_selection`` of the reference code and of AutoAttack). With ``rescale`` the iteration is
    first mapped to a 10,000-query run, ``⌊iteration · 10000 / max_queries⌋``, as the reference
    code does; AutoAttack's standard setting does not rescale.

    Returns:
      float64 scalar tensor.
    """
    it = tf.cast(iteration, tf.int64)
    if rescale:
        it = it * 10000 // int(max_queries)
    halvings = tf.reduce_sum(tf.cast(it > tf.constant(SCHEDULE_ITERATIONS, tf.int64), tf.float64))
    return tf.constant(float(p_init), tf.float64) / tf.pow(tf.constant(2.0, tf.float64), halvings)


def square_side(p, height, width, norm):
    """Side of the square covering a fraction ``p`` of an ``height × width`` image (in-graph).

    ``round(√(p·h·w))`` clamped to ``[1, min(h, w) − 1]`` in l∞ (reference code); in l2 at least
    3 and odd (reference code / AutoAttack), then clamped to ``min(h, w) − 1`` as well.

    Returns:
      int32 scalar tensor.
    """
    side = tf.cast(tf.round(tf.sqrt(tf.cast(p, tf.float64) * height * width)), tf.int32)
    limit = max(min(height, width) - 1, 1)
    if lp.check_norm(norm) == "l2":
        side = tf.maximum(side, 3)
        side = side + 1 - side % 2
    return tf.clip_by_value(side, 1, limit)


def _square_sums(size):
    """``S[n] = Σ_{k=1}^{n} 1/k²`` for ``n = 0 … size`` (float32)."""
    return tf.constant(np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, size + 1) ** 2)]),
                       tf.float32)


def _eta_raw(rows, cols, side, sums):
    """Unnormalised η (eq. 8) at local coordinates of a ``side × side`` window.

    The window is split into a top block of ``⌊side/2⌋`` rows and a bottom block of the rest;
    in each ``a × side`` block the reference code's ``pseudo_gaussian_pert_rectangles`` adds
    ``1/(k+1)²`` on the ``(2k+1)``-square around its centre ``(⌊a/2⌋, ⌊side/2⌋)``, so a value is
    ``Σ_{k=m}^{⌊side/2⌋} 1/(k+1)²`` with ``m`` its Chebyshev distance to the centre.

    Args:
      sums: :func:`_square_sums` of at least ``⌊side/2⌋ + 1``.

    Returns:
      ``(value, top, inside)``; ``value`` is 0 outside the window.
    """
    half = side // 2
    top = rows < half
    height = tf.where(top, half, side - half)
    local = tf.where(top, rows, rows - half)
    dist = tf.maximum(tf.abs(local - height // 2), tf.abs(cols - half))
    inside = (rows >= 0) & (rows < side) & (cols >= 0) & (cols < side)
    dist = tf.clip_by_value(dist, 0, half + 1)
    value = tf.gather(sums, half + 1) - tf.gather(sums, dist)
    return tf.where(inside, value, 0.0), top, inside


def pseudo_gaussian(rows, cols, side, max_side):
    """η of eq. 8 at local ``(rows, cols)`` of a ``side × side`` window; 0 outside it.

    As the reference ``meta_pseudo_gaussian_pert``: two pseudo-Gaussian blocks of unit l2 norm
    each, the bottom one negated, the whole normalised to unit l2 norm. ``rows``/``cols`` are
    int32 tensors that broadcast against each other (swap them for the transposed η); ``side`` is
    a scalar ≤ ``max_side`` (a Python int bounding it, for the normalising grid).
    """
    sums = _square_sums(max_side // 2 + 2)
    grid = tf.range(max_side)
    canon, canon_top, canon_in = _eta_raw(grid[:, None], grid[None, :], side, sums)
    sq = tf.square(canon)
    top_norm = tf.sqrt(tf.reduce_sum(tf.where(canon_top & canon_in, sq, 0.0)))
    bottom_norm = tf.sqrt(tf.reduce_sum(tf.where(~canon_top & canon_in, sq, 0.0)))
    blocks = tf.where(side // 2 > 0, 2.0, 1.0)
    value, top, _ = _eta_raw(rows, cols, side, sums)
    signed = tf.where(
        top, tf.math.divide_no_nan(value, top_norm), -tf.math.divide_no_nan(value, bottom_norm)
    )
    return signed / tf.sqrt(blocks)


def _window(top, left, side, height, width):
    """Boolean ``(n, h, w, 1)``: the ``side × side`` square at per-sample ``(top, left)``."""
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)
    return (in_rows[:, :, None] & in_cols[:, None, :])[..., None]


def _sum_hw(values):
    return tf.reduce_sum(values, axis=[1, 2], keepdims=True)


def _sum_all(values):
    return tf.reduce_sum(values, axis=[1, 2, 3], keepdims=True)


class Square(FixedEpsilonAttack):
    """Untargeted Square Attack in l∞ or l2 (Andriushchenko et al. 2020, Alg. 1–3).

    Per sample (all in one ``tf.function``; the query loop is a ``tf.while_loop``):

    * samples the model misclassifies on the clean input are not attacked (0 queries, returned
      unchanged), as in the reference code and AutoAttack;
    * initialisation on the ε-sphere (§3.1 / §3.2): l∞ vertical stripes ``x + ε·ρ_col,channel``,
      ``ρ = ±1``; l2 squares of side ``⌊min(h,w)/5⌋`` tiled from the reference code's offset (a
      5×5 grid for MNIST / CIFAR / ImageNet sizes), each filled with ±η (random sign per channel,
      random transpose), scaled to ‖δ‖₂ = ε. This first point costs one query;
    * then one query per iteration: a proposal from Alg. 2 (l∞) or Alg. 3 (l2) whose square side
      follows :func:`p_schedule` / :func:`square_side`, projected onto the ε-ball ∩ [0, 1] (the
      base class's constraint, applied to every queried point); accepted iff the margin
      ``z_y − max_{i≠y} z_i`` (``s·z``, ``s = 2y − 1``, for a single binary logit) decreases or the
      point is misclassified (AutoAttack's rule);
    * a sample stops as soon as it is misclassified (argmax ≠ y, the base class's criterion) or
      after ``max_queries`` queries in the current restart;
    * each further restart re-initialises from ``x`` the samples not yet misclassified and has its
      own ``max_queries``; per sample a misclassified point, else the lowest-margin one, is kept.

    Query accounting (``AttackResult.queries``): the number of points of that sample the model was
    asked to evaluate by the search, init included, summed over restarts: ``0`` for a clean
    misclassified sample, ``≤ max_queries`` per restart, ``< max_queries`` in a restart that
    succeeded unless on its last query. Only the still-active samples are passed to the model
    (the batch is gathered each iteration), so these counts are also the rows the model receives;
    the base class's clean and final evaluations (one row per sample each) are bookkeeping,
    as for white-box attacks, and not counted.

    Sampling details follow the paper where the reference code differs: square positions are
    uniform over all ``{0, …, h − side}`` (the code's ``randint(0, h − side)`` never moves the last
    row/column), and the l∞ proposal does not resample a sign that leaves the square unchanged
    (the code's ``while`` loop; AutoAttack does not either). Random draws are per sample
    (positions, signs, the η transpose), from the stateless seed.

    Defaults follow AutoAttack's standard Square (Croce & Hein, ICML 2020: ``p_init=0.8``,
    5,000 queries, 1 restart, no schedule rescaling), the usual setting for evaluating MNIST /
    CIFAR-scale models; the paper's ImageNet settings are ``p_init=0.05`` (l∞) / ``0.1`` (l2) with
    10,000 queries, its MNIST l∞ runs ``p_init=0.3``–``0.8``.

    Example::

        result = Square(eps=0.3, max_queries=1000).run(model, x_test, y_test)
        print(result.adv_accuracy, result.queries.mean())

    Args:
      eps: radius of the ball in ``norm`` (pixel units).
      norm: ``"linf"`` or ``"l2"``.
      max_queries: query budget per sample and restart (≥ 1), the init query included.
      p_init: initial fraction of pixels in the square, in (0, 1].
      restarts: independent runs for the samples not yet misclassified (≥ 1).
      rescale_schedule: map the iteration to a 10,000-query run before the schedule (reference
        code) instead of using it as is (AutoAttack).
      jit_compile: ``True``, ``False`` or ``"auto"`` (XLA on GPU only).

    Raises:
      ValueError: on a bad ``eps``, an unknown norm, or a parameter outside the ranges above; at
        the first call, on inputs that are not images ``(batch, h, w[, c])`` with ``h, w ≥ 2``.
    """

    name = "square"

    def __init__(
        self,
        *,
        eps,
        norm="linf",
        max_queries=5000,
        p_init=0.8,
        restarts=1,
        rescale_schedule=False,
        jit_compile="auto",
    ):
        max_queries = positive_int(max_queries, "max_queries")
        if not (isinstance(p_init, numbers.Real) and 0 < p_init <= 1):
            raise ValueError(f"p_init must be a number in (0, 1], got {p_init!r}")
        restarts = positive_int(restarts, "restarts")
        if not isinstance(rescale_schedule, bool):
            raise ValueError(f"rescale_schedule must be True or False, got {rescale_schedule!r}")
        super().__init__(
            eps=eps,
            norm=lp.check_norm(norm),
            max_queries=max_queries,
            p_init=float(p_init),
            restarts=restarts,
            rescale_schedule=rescale_schedule,
            jit_compile=jit_compile,
        )

    @property
    def norm(self):
        return self._params["norm"]

    counts_queries = True

    def _attack_and_queries(self, model_fn, x, y, logits, seed):
        x_adv, queries = self._search(model_fn, x, y, logits, seed)
        return x_adv, tf.cast(queries, tf.int32)

    def _attack(self, model_fn, x, y, logits, seed):
        return self._search(model_fn, x, y, logits, seed)[0]

    # --- the search ----------------------------------------------------------------------------

    def _search(self, model_fn, x, y, logits, seed):
        """``(x_adv, queries)``: Alg. 1 with restarts, in-graph; ``queries`` int32 ``(batch,)``."""
        rank = len(x.shape)
        if rank not in (3, 4) or any(d is None or d < 2 for d in x.shape[1:3]):
            raise ValueError(
                "Square needs image inputs (batch, h, w) or (batch, h, w, c) with h, w >= 2 "
                f"known when traced, got {tuple(x.shape)}"
            )
        if rank == 3:
            x_adv, queries = self._search(
                lambda z: model_fn(z[..., 0]), x[..., None], y, logits, seed
            )
            return x_adv[..., 0], queries
        n = tf.shape(x)[0]
        no_queries = tf.zeros([n], tf.int32)
        if self.eps == 0:
            return x, no_queries  # the ball is {x}: nothing to search
        attacked = tf.equal(labels_from_logits(logits), y)

        def body(restart, best_x, best_margin, fooled, queries):
            todo = attacked & ~fooled
            run_x, run_margin, run_fooled, run_queries = self._one_run(
                model_fn, x, y, todo, tf.random.experimental.stateless_fold_in(seed, restart)
            )
            better = todo & (run_fooled | (run_margin < best_margin))
            return (
                restart + 1,
                tf.where(lp.per_sample(better, x), run_x, best_x),
                tf.where(better, run_margin, best_margin),
                fooled | (todo & run_fooled),
                queries + run_queries,
            )

        state = (
            tf.constant(0),
            x,
            tf.fill([n], float("inf")),
            tf.zeros([n], tf.bool),
            no_queries,
        )
        _, x_adv, _, _, queries = tf.while_loop(
            lambda r, _x, _m, fooled, _q: (r < self.restarts) & tf.reduce_any(attacked & ~fooled),
            body,
            state,
        )
        return x_adv, queries

    def _one_run(self, model_fn, x, y, todo, seed):
        """One restart on the samples in ``todo`` (at least one).

        Returns:
          ``(x_best, margin, fooled, queries)`` over the whole batch; rows outside ``todo`` keep
          ``x``, margin +inf, not fooled, 0 queries.
        """
        n = tf.shape(x)[0]
        height, width, channels = (int(d) for d in x.shape[1:])

        def rows_of(mask):
            return tf.cast(tf.where(mask)[:, 0], tf.int32)

        def query(idx, points):
            """Margins and misclassification of ``points``, the rows ``idx`` of the batch: the
            model sees exactly these rows, one query each."""
            z = model_fn(points)
            labels = tf.gather(y, idx)
            return logit_margin(z, labels), tf.not_equal(labels_from_logits(z), labels)

        init_seed = tf.random.experimental.stateless_fold_in(seed, 0)
        x_init = self._constrain(x, self._init(x, init_seed))
        idx = rows_of(todo)
        margin, fooled = query(idx, tf.gather(x_init, idx))
        best_x = tf.where(lp.per_sample(todo, x), x_init, x)
        best_margin = tf.tensor_scatter_nd_update(tf.fill([n], float("inf")), idx[:, None], margin)
        best_fooled = tf.tensor_scatter_nd_update(tf.zeros([n], tf.bool), idx[:, None], fooled)
        queries = tf.cast(todo, tf.int32)

        def body(i, best_x, best_margin, best_fooled, queries):
            active = todo & ~best_fooled
            p = p_schedule(self.p_init, i - 1, self.max_queries, self.rescale_schedule)
            side = square_side(p, height, width, self.norm)
            step_seed = tf.random.experimental.stateless_fold_in(seed, i)
            draws = self._draws(step_seed, n, channels, height, width, side)
            idx = rows_of(active)
            x_act, best_act = tf.gather(x, idx), tf.gather(best_x, idx)
            draws = {key: tf.gather(value, idx) for key, value in draws.items()}
            cand = self._constrain(x_act, self._propose(x_act, best_act, side, draws))
            margin, fooled = query(idx, cand)
            old_margin = tf.gather(best_margin, idx)
            improved = fooled | (margin < old_margin)
            kept = tf.where(lp.per_sample(improved, cand), cand, best_act)
            rows = idx[:, None]
            return (
                i + 1,
                tf.tensor_scatter_nd_update(best_x, rows, kept),
                tf.tensor_scatter_nd_update(
                    best_margin, rows, tf.where(improved, margin, old_margin)
                ),
                tf.tensor_scatter_nd_update(best_fooled, rows, fooled),
                queries + tf.cast(active, tf.int32),
            )

        # ``i`` = queries spent so far by every still-active sample of this run (1: the init).
        return tf.while_loop(
            lambda i, _x, _m, fooled, _q: (i < self.max_queries) & tf.reduce_any(todo & ~fooled),
            body,
            (tf.constant(1), best_x, best_margin, best_fooled, queries),
        )[1:]

    def _draws(self, seed, n, channels, height, width, side):
        """Per-sample random draws of one iteration (whole batch, so a sample's draws do not
        depend on which other samples are still active)."""
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 6))

        def position(s, extent):
            return tf.random.stateless_uniform([n], s, 0, extent - side + 1, dtype=tf.int32)

        draws = {
            "top": position(seeds[0], height),
            "left": position(seeds[1], width),
            "sign": tf.where(
                tf.random.stateless_uniform([n, 1, 1, channels], seeds[2]) < 0.5, -1.0, 1.0
            ),
        }
        if self.norm == "l2":
            draws["top2"] = position(seeds[3], height)
            draws["left2"] = position(seeds[4], width)
            draws["transpose"] = tf.random.stateless_uniform([n], seeds[5]) < 0.5
        return draws

    def _init(self, x, seed):
        """The first point (paper §3.1 l∞ stripes, §3.2 l2 grid of η squares), not yet clipped."""
        n = tf.shape(x)[0]
        height, width, channels = (int(d) for d in x.shape[1:])
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        if self.norm == "linf":
            stripes = tf.random.stateless_uniform([n, 1, width, channels], seeds[0]) < 0.5
            return x + self.eps * tf.where(stripes, -1.0, 1.0)
        # l2: tiles of side s = ⌊min(h, w)/5⌋, a 5×5 grid centred as in the reference code.
        side = max(min(height, width) // 5, 1)
        tile_rows, local_rows = _tiling(height, side)
        tile_cols, local_cols = _tiling(width, side)
        per_row = int(tile_cols.max()) + 1
        tiles = (int(tile_rows.max()) + 1) * per_row
        tile = np.where(
            (tile_rows[:, None] >= 0) & (tile_cols[None, :] >= 0),
            tile_rows[:, None] * per_row + tile_cols[None, :],
            -1,
        )
        valid = tf.constant(tile >= 0)  # (h, w)
        tile = tf.constant(np.maximum(tile, 0), tf.int32)
        flip = tf.gather(
            tf.random.stateless_uniform([n, tiles], seeds[0]) < 0.5, tile, axis=1
        )  # (n, h, w)
        lr = tf.constant(np.broadcast_to(local_rows[:, None], (height, width)), tf.int32)
        lc = tf.constant(np.broadcast_to(local_cols[None, :], (height, width)), tf.int32)
        eta = pseudo_gaussian(
            tf.where(flip, lc, lr), tf.where(flip, lr, lc), side, max(height, width)
        )
        signs = tf.where(
            tf.random.stateless_uniform([n, tiles, channels], seeds[1]) < 0.5, -1.0, 1.0
        )
        delta = eta[..., None] * tf.gather(signs, tile, axis=1)
        delta = tf.where(valid[None, :, :, None], delta, 0.0)
        norm = tf.sqrt(_sum_all(tf.square(delta)))
        return x + self.eps * delta / (norm + 1e-12)

    def _propose(self, x, best, side, draws):
        """A candidate point (Alg. 2 in l∞, Alg. 3 in l2), before projection and clipping."""
        height, width, channels = (int(d) for d in x.shape[1:])
        window = _window(draws["top"], draws["left"], side, height, width)
        if self.norm == "linf":
            # Alg. 2: x̂ + 2ε·ρ on the square, projected onto the ball = x + ε·ρ there.
            return tf.where(window, x + self.eps * draws["sign"], best)
        # Alg. 3, per channel i: ν_W1 ← (ρ_i η* + ν_W1/‖ν_W1‖) rescaled to
        # √(‖ν_{W1∪W2}‖² + ε²_unused / c), ν_W2 ← 0 (W2 minus W1); then, as the reference code,
        # δ rescaled to ‖δ‖ = ε.
        second = _window(draws["top2"], draws["left2"], side, height, width)
        window_f = tf.cast(window, x.dtype)
        delta = best - x
        rows = tf.range(height)[None, :, None] - draws["top"][:, None, None]
        cols = tf.range(width)[None, None, :] - draws["left"][:, None, None]
        flip = draws["transpose"][:, None, None]
        eta = pseudo_gaussian(
            tf.where(flip, cols, rows), tf.where(flip, rows, cols), side, max(height, width)
        )[..., None]
        norm_w1 = tf.sqrt(_sum_hw(tf.square(delta * window_f)))
        norm_union = tf.sqrt(_sum_hw(tf.square(tf.where(window | second, delta, 0.0))))
        unused = tf.maximum(self.eps**2 - _sum_all(tf.square(delta)), 0.0)
        new = draws["sign"] * eta + delta * window_f / (norm_w1 + 1e-12)
        new = new / (tf.sqrt(_sum_hw(tf.square(new))) + 1e-12)
        new = new * tf.sqrt(unused / channels + tf.square(norm_union))
        delta = tf.where(window, new, tf.where(second, 0.0, delta))
        return x + self.eps * delta / (tf.sqrt(_sum_all(tf.square(delta))) + 1e-12)


def _tiling(extent, side):
    """Per position along one axis: its l2-init tile index (−1 outside) and local coordinate.

    Whole tiles of ``side`` from offset ``max((extent − 5·side) // 2, 0)`` (the reference code's
    ``sp_init``), as many as fit.
    """
    start = max((extent - 5 * side) // 2, 0)
    count = (extent - start) // side
    pos = np.arange(extent) - start
    index = np.where((pos >= 0) & (pos < count * side), pos // side, -1)
    return index, np.where(index >= 0, pos % side, 0)
