"""CLEVER scores: Weng, Zhang, Chen, Yi, Su, Gao, Hsieh, Daniel, ICLR 2018 (Alg. 1 and 2).

For a sample ``x₀`` predicted as class ``c`` and another class ``j``, ``g_j(x) = Z_c(x) − Z_j(x)``.
The local Lipschitz constant of ``g_j`` in the ball ``B_p(x₀, R)`` (in the dual norm ``q`` of the
gradient, ``1/p + 1/q = 1``) is estimated by extreme value theory: ``N_b`` batches of ``N_s``
points uniform in the ball give batch maxima of ``‖∇g_j‖_q``, whose reverse-Weibull fit has its
location parameter as the estimate ``L̂_j``. The targeted score is ``min(g_j(x₀)/L̂_j, R)`` and the
untargeted score the minimum over ``j ≠ c`` (Alg. 2). Guo et al. 2018 report CLEVER beside r2 in
their supplementary Table 3.
"""

import numbers

import numpy as np
from scipy import optimize

from tfsparse.attacks import lp
from tfsparse.attacks.base import as_batch
from tfsparse.compat import tf

_DUAL = {"l2": 2, "linf": 1}


# Offsets ``(end point − sample max) / range`` searched by the profile likelihood: from "at the
# maximum" (1e-9) to far beyond it (1e2, a near-Gumbel tail), 56 log-spaced points, then refined.
_LOG_OFFSETS = np.linspace(np.log(1e-9), np.log(1e2), 56)
_LOG_SHAPE = (np.log(1e-2), np.log(1e4))  # bracket of the Weibull shape c


def reverse_weibull_mle(maxima):
    """Maximum-likelihood three-parameter reverse-Weibull fit of ``maxima``.

    Weng et al. 2018 (ICLR), Alg. 1 (CLEVER-t): the ``N_b`` batch maxima of the gradient norm
    (each over ``N_s`` points of the ball) are fitted by a reverse Weibull by maximum likelihood
    (``scipy.stats.weibull_max``; their code fits ``weibull_min`` to the negated maxima), and its
    location, the finite right end point ``â_W``, is the estimate of the maximum local Lipschitz
    constant (their Section 4: by the Fisher–Tippett–Gnedenko theorem the maxima of a bounded
    quantity are reverse-Weibull distributed, with the bound as the location). Their reference
    code restarts scipy's optimiser from several initial shapes and keeps the best fit: a single
    start (ours used to start at the sample maximum, where the density is 0 or ∞) stalls
    hundreds of nats below the optimum and reports the sample maximum.

    Here the likelihood is maximised exactly over shape and scale for each candidate end point
    ``θ > max(maxima)`` (with ``y = θ − x``, the shape ``c`` solves
    ``Σ yᶜ log y / Σ yᶜ − 1/c − mean(log y) = 0``, monotone in ``c``, by vectorised safeguarded
    Newton steps, and ``scaleᶜ = mean(yᶜ)``), and this profile likelihood of ``θ`` is searched on
    a log grid of ``θ − max`` from 1e-9 to 1e2 times the range of the data, then refined between
    the grid neighbours of its best point: a global search, not one local start. The likelihood
    is unbounded as ``θ`` approaches the sample maximum with ``c < 1`` (a known property of the
    three-parameter Weibull); the search stops 1e-9 ranges above the maximum, which wins only when
    the data's shape is ≤ 1 or ``N_b`` is small (about 10): the estimate is then the sample
    maximum, as a multi-start scipy fit also finds. A profile still rising at 1e2 ranges (maxima
    that look unbounded, the Gumbel limit ``c → ∞``, e.g. a plateau of tied maxima of a ReLU net
    with a few values above it) gives no finite end point: only interior local maxima and the
    sample maximum are candidates, so the estimate is never that arbitrary search edge.

    Args:
      maxima: 1-D array of finite batch maxima (≥ 2 values, not all equal).

    Returns:
      ``(shape, location, scale, loglik)``: ``weibull_max`` parameters and the log-likelihood of
      ``maxima`` under them.

    Raises:
      ValueError: on fewer than 2 values, non-finite values, or values that are all equal.
    """
    x = np.asarray(maxima, np.float64).ravel()
    if x.size < 2:
        raise ValueError(f"a reverse-Weibull fit needs >= 2 batch maxima, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError("batch maxima must be finite (NaN or Inf gradient norms?)")
    top, spread = float(x.max()), float(np.ptp(x))
    if spread <= 0:
        raise ValueError("batch maxima are all equal: no reverse-Weibull fit (the end point is "
                         "that value)")
    gaps = (top - x) / spread  # in [0, 1]; the fit is done in these units

    def profile(log_offsets):
        log_offsets = np.atleast_1d(np.asarray(log_offsets, np.float64))
        return _profile_loglik(np.log(np.exp(log_offsets)[:, None] + gaps[None, :]))

    loglik = profile(_LOG_OFFSETS)[0]
    # Candidates: the lower end (the sample maximum) and the interior local maxima of the profile.
    # Not the upper end: a likelihood still rising there runs off to the Gumbel limit (no finite
    # end point; e.g. a plateau of tied maxima with a few values above it).
    inner = np.flatnonzero((loglik[1:-1] >= loglik[:-2]) & (loglik[1:-1] >= loglik[2:])) + 1
    candidates = np.concatenate([[0], inner])
    k = int(candidates[np.argmax(loglik[candidates])])
    best = _LOG_OFFSETS[k]
    if 0 < k < len(_LOG_OFFSETS) - 1:
        refined = optimize.minimize_scalar(
            lambda t: -profile(t)[0][0], bounds=(_LOG_OFFSETS[k - 1], _LOG_OFFSETS[k + 1]),
            method="bounded", options={"xatol": 1e-9})
        if np.isfinite(refined.fun) and -refined.fun >= loglik[k]:
            best = float(refined.x)
    loglik, shape, log_scale = (float(v[0]) for v in profile(best))
    return (shape, top + float(np.exp(best)) * spread, float(np.exp(log_scale)) * spread,
            loglik - x.size * np.log(spread))


def _profile_loglik(log_y):
    """``(K, n)`` logs of ``y = θ_k − x_i`` → the two-parameter Weibull MLE of each row.

    Returns ``(loglik (K,), shape (K,), log scale (K,))``. The shape equation
    ``h(t) = E_w[log y] − e^(−t) − mean(log y) = 0`` in ``t = log c`` (weights ``w ∝ yᶜ``,
    ``h' = c·(Var_w[log y] + 1/c²) > 0``) is solved by Newton steps kept inside a bisection
    bracket, started from the moment estimate ``c ≈ π / (√6 · std(log y))``.
    """
    n = log_y.shape[1]
    mean_log = log_y.mean(axis=1)
    low = np.full(len(log_y), _LOG_SHAPE[0])
    high = np.full(len(log_y), _LOG_SHAPE[1])
    spread = np.maximum(log_y.std(axis=1), 1e-300)
    t = np.clip(np.log(np.pi / np.sqrt(6) / spread), *_LOG_SHAPE)
    for _ in range(100):
        c = np.exp(t)
        a = c[:, None] * log_y
        w = np.exp(a - a.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        mean_w = (w * log_y).sum(axis=1)
        var_w = (w * (log_y - mean_w[:, None]) ** 2).sum(axis=1)
        h = mean_w - 1 / c - mean_log
        low = np.where(h < 0, t, low)
        high = np.where(h > 0, t, high)
        step = t - h / (c * var_w + 1 / c)
        step = np.where((step < low) | (step > high), 0.5 * (low + high), step)
        done = np.all(np.abs(step - t) <= 1e-10)
        t = step
        if done:
            break
    c = np.exp(t)
    a = c[:, None] * log_y
    top = a.max(axis=1)
    log_mean = top + np.log(np.exp(a - top[:, None]).mean(axis=1))  # log mean(yᶜ) = c log scale
    loglik = n * (np.log(c) - log_mean + (c - 1) * mean_log - 1)
    return loglik, c, log_mean / c


def fit_reverse_weibull(maxima) -> float:
    """Location (the finite right end point) of a reverse-Weibull fit of ``maxima``.

    The CLEVER Lipschitz estimate ``L̂_j`` of Weng et al. 2018, Alg. 1 (batch maxima → reverse
    Weibull MLE → location ``â_W`` = Lipschitz estimate, score ``min(g(x₀)/â_W, R)``): the
    location of the maximum-likelihood reverse-Weibull fit of the batch maxima (see
    ``reverse_weibull_mle``; it is at least the largest maximum). If the maxima are (nearly) all
    equal, as for a linear model whose gradient is constant, the end point is that value.

    Args:
      maxima: 1-D array of finite batch maxima (≥ 2 values).

    Returns:
      The estimated maximum of the sampled quantity.

    Raises:
      ValueError: on fewer than 2 values or non-finite values.
    """
    maxima = np.asarray(maxima, np.float64)
    if maxima.size >= 2 and np.all(np.isfinite(maxima)):
        top = float(maxima.max())
        if np.ptp(maxima) <= 1e-6 * max(abs(top), 1e-12):
            return top
    return max(reverse_weibull_mle(maxima)[1], float(np.max(maxima)))


def clever(
    model, x, *, norm="l2", radius, batches=10, samples=100, seed=0, return_lipschitz=False
) -> dict:
    """Untargeted CLEVER scores of ``x`` (Weng et al. 2018, Alg. 1 and 2).

    Points are drawn uniformly in the ``norm`` ball of ``radius`` (not clipped to [0, 1], as in the
    paper: the score describes the function around ``x₀``); the ``batches · samples`` points of one
    image and all its classes' gradients come from one traced call. ``norm="l2"`` estimates an
    l2 robustness radius from l2 gradient norms; ``norm="linf"`` an l∞ radius from l1 gradient
    norms (the dual norm).

    Example::

        scores = clever(model, x_test[:10], norm="l2", radius=2.0)["scores"]

    Args:
      model: Keras model returning multi-class logits ``(batch, C)``.
      x: inputs ``(N, ...)`` in [0, 1]; the class attacked away from is the predicted one.
      norm: perturbation norm, ``"l2"`` or ``"linf"``.
      radius: ball radius ``R`` (> 0), also the cap of the score.
      batches: ``N_b``, number of batch maxima fitted (≥ 2).
      samples: ``N_s``, points per batch (≥ 1).
      seed: integer seed of the sampling.
      return_lipschitz: also return the per-class estimates ``L̂_j``.

    Returns:
      ``{"scores", "mean", "norm", "radius", "batches", "samples"}`` with ``scores`` an ``(N,)``
      array and ``mean`` its mean; with ``return_lipschitz`` also ``"lipschitz"``, ``(N, C)`` with
      NaN at the predicted class, and ``"predicted"``.

    Raises:
      ValueError: on an unknown norm, ``radius <= 0``, ``batches < 2``, ``samples < 1``, or a
        single-logit model.
    """
    lp.check_norm(norm)
    if not (isinstance(radius, numbers.Real) and radius > 0):
        raise ValueError(f"radius must be a number > 0, got {radius!r}")
    if not (isinstance(batches, numbers.Integral) and batches >= 2):
        raise ValueError(f"batches must be an integer >= 2, got {batches!r}")
    if not (isinstance(samples, numbers.Integral) and samples >= 1):
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
    x, _ = as_batch(x, np.zeros(len(x), np.int32))
    fn = _gradient_norms_function(model, x.shape[1:], norm, radius, batches * samples)
    scores = np.empty(len(x))
    lipschitz = np.full((len(x), 0), np.nan)
    predicted = np.empty(len(x), np.int64)
    for i in range(len(x)):
        margins, norms = (t.numpy() for t in fn(x[i : i + 1], np.array([seed, i], np.int64)))
        if lipschitz.shape[1] == 0:
            lipschitz = np.full((len(x), len(margins)), np.nan)
            if len(margins) < 2:
                raise ValueError("CLEVER needs multi-class logits (batch, C) with C >= 2")
        c = int(np.argmax(margins == 0))  # g_c ≡ 0: the predicted class
        predicted[i] = c
        maxima = norms.reshape(batches, samples, -1).max(axis=1)  # (batches, C)
        per_class = []
        for j in range(len(margins)):
            if j != c:
                lipschitz[i, j] = fit_reverse_weibull(maxima[:, j])
                per_class.append(min(margins[j] / max(lipschitz[i, j], 1e-12), radius))
        scores[i] = min(per_class)
    result = {
        "scores": scores,
        "mean": float(scores.mean()),
        "norm": norm,
        "radius": float(radius),
        "batches": int(batches),
        "samples": int(samples),
    }
    if return_lipschitz:
        result.update(lipschitz=lipschitz, predicted=predicted)
    return result


def _gradient_norms_function(model, input_shape, norm, radius, points):
    """Traced ``(x0 (1, ...), seed) -> (g_j(x0) (C,), ‖∇g_j‖_q at the points (points, C))``."""
    order = _DUAL[norm]

    def model_fn(inputs):
        return model(inputs, training=False)

    def norms(x0, seed):
        z0 = model_fn(x0)[0]
        c = tf.argmax(z0, output_type=tf.int32)
        centre = tf.repeat(x0, points, axis=0)
        ball = lp.random_start(centre, radius, norm, seed)
        num_classes = z0.shape[-1]
        grads = tf.TensorArray(tf.float32, size=num_classes)
        for j in tf.range(num_classes):
            with tf.GradientTape() as tape:
                tape.watch(ball)
                z = model_fn(ball)
                g = tf.reduce_sum(z[:, c] - z[:, j])
            flat = tf.reshape(tape.gradient(g, ball), [points, -1])
            grads = grads.write(j, tf.norm(flat, ord=order, axis=1))
        return z0[c] - z0, tf.transpose(grads.stack())

    signature = [
        tf.TensorSpec((1,) + tuple(input_shape), tf.float32),
        tf.TensorSpec((2,), tf.int64),
    ]
    return tf.function(norms, input_signature=signature)
