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
from scipy import stats

from tfsparse.attacks import lp
from tfsparse.attacks.base import as_batch
from tfsparse.compat import tf

_DUAL = {"l2": 2, "linf": 1}


def fit_reverse_weibull(maxima) -> float:
    """Location (the finite right end point) of a reverse-Weibull fit of ``maxima``.

    ``scipy.stats.weibull_max`` MLE, started at the sample maximum (Weng et al. fit the same
    three-parameter family). If the maxima are (nearly) all equal, as for a linear model whose
    gradient is constant, the end point is that value. A fit below the largest observed maximum
    is impossible for this support and is replaced by that maximum.

    Args:
      maxima: 1-D array of batch maxima (≥ 2 values).

    Returns:
      The estimated maximum of the sampled quantity.
    """
    maxima = np.asarray(maxima, np.float64)
    top = float(maxima.max())
    if np.ptp(maxima) <= 1e-6 * max(abs(top), 1e-12):
        return top
    _, loc, _ = stats.weibull_max.fit(maxima, 1.0, loc=top, scale=float(np.ptp(maxima)))
    return max(float(loc), top) if np.isfinite(loc) else top


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
