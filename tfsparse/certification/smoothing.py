"""Randomized smoothing (Cohen, Rosenfeld & Kolter 2019, "Certified adversarial robustness via
randomized smoothing"): a certified l2 radius per image from Monte-Carlo votes under noise.

The smoothed classifier ``g(x) = argmax_c P(f(x + δ) = c)``, ``δ ~ N(0, σ²I)``, is robust at
``x`` within the l2 radius ``R = σ Φ⁻¹(p_A)`` when the top class has probability at least
``p_A`` (their Theorem 1, with ``p_B = 1 − p_A``). :func:`certify` is their CERTIFY
(Algorithm 1 / §3.2): ``n0`` draws pick the candidate class ``ĉ_A``, ``n`` fresh draws count
its votes, ``p_A`` is the one-sided Clopper–Pearson lower confidence bound at level
``1 − alpha``, and the image is certified with radius ``σ Φ⁻¹(p_A)`` if ``p_A > ½``, else
abstained (radius −1 and class −1 here). With probability at least ``1 − alpha`` over the
sampling, a non-abstained answer is right about ``g``. :func:`predict` is their PREDICT
(a two-sided binomial test between the top two classes).

Noise is added in input space and not clipped, as in the paper (the bound is about the
function ``g`` of the unclipped Gaussian). The votes are counted in-graph: one
``tf.function`` draws ``batch`` noisy copies of a group of images at a time.
"""

import dataclasses

import numpy as np
from scipy import stats

from tfsparse.compat import tf
from tfsparse.errors import ConfigError

ABSTAIN = -1


@dataclasses.dataclass
class Smoothed:
    """Per image: ``prediction`` (class or −1 = abstain) and certified l2 ``radius`` (−1 when abstaining)."""

    prediction: np.ndarray
    radius: np.ndarray
    p_lower: np.ndarray
    sigma: float
    n: int
    alpha: float

    def certified_accuracy(self, y, radius=0.0):
        """Fraction of images predicted right with certified radius ≥ ``radius`` (abstentions count wrong)."""
        y = np.asarray(y).reshape(-1)
        return float(np.mean((self.prediction == y) & (self.radius >= radius))) if len(y) else float("nan")

    def curve(self, y, radii):
        """Certified accuracy at each radius of ``radii``: the curve of Cohen et al.'s Figure 6."""
        return [self.certified_accuracy(y, r) for r in radii]


def clopper_pearson_lower(successes, trials, alpha):
    """One-sided (1 − alpha) lower confidence bound of a binomial proportion: Beta(α; k, n − k + 1)."""
    successes, trials = np.asarray(successes), np.asarray(trials)
    return np.where(successes > 0, stats.beta.ppf(alpha, np.maximum(successes, 1), trials - successes + 1), 0.0)


class Smoother:
    """Votes of ``model`` under Gaussian noise of scale ``sigma``, counted in one traced function."""

    def __init__(self, model, sigma, num_classes, batch=1000, seed=0):
        if not np.isfinite(sigma) or sigma <= 0:
            raise ConfigError(f"smoothing: sigma must be > 0 (pixel units), got {sigma}")
        if int(batch) < 1:
            raise ConfigError(f"smoothing: batch (noisy copies per model call) must be >= 1, got {batch}")
        self.model, self.sigma, self.num_classes, self.batch = model, float(sigma), int(num_classes), int(batch)
        self.generator = tf.random.Generator.from_seed(seed)
        self._count = tf.function(self._votes, reduce_retracing=True)

    def _votes(self, x, draws):
        """Class counts (images, classes) over ``draws`` noisy copies of each image in ``x``."""
        copies = max(1, self.batch // max(1, int(x.shape[0] or 1)))
        counts = tf.zeros((tf.shape(x)[0], self.num_classes), tf.int32)
        done = tf.constant(0)
        while done < draws:  # AutoGraph: a tf.while_loop, the whole count stays in the graph
            take = tf.minimum(copies, draws - done)
            noisy = x[:, None] + self.sigma * self.generator.normal(tf.concat([[tf.shape(x)[0], take], tf.shape(x)[1:]],
                                                                             0))
            flat = tf.reshape(noisy, tf.concat([[-1], tf.shape(x)[1:]], 0))
            labels = tf.reshape(tf.argmax(self.model(flat, training=False), -1, output_type=tf.int32), (-1, take))
            votes = tf.reduce_sum(tf.one_hot(labels, self.num_classes, dtype=tf.int32), axis=1)
            counts += tf.ensure_shape(votes, counts.shape)
            done += take
        return counts

    def votes(self, x, draws, group=16):
        """Class counts per image, ``group`` images per traced call."""
        x = np.asarray(x, np.float32)
        out = [self._count(tf.constant(x[i:i + group]), tf.constant(int(draws))).numpy()
               for i in range(0, len(x), group)]
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), np.int32)


def certify(model, x, sigma, *, n0=100, n=100_000, alpha=0.001, num_classes=None, batch=1000, seed=0):
    """Cohen et al.'s CERTIFY for every image of ``x``: :class:`Smoothed` (prediction, l2 radius).

    Args:
      model: the base classifier (logits), trained with Gaussian noise of about ``sigma``.
      x: images, (n, ...).
      sigma: the noise scale σ (pixel units).
      n0: draws that select the candidate class.
      n: draws that estimate its probability (the paper: 100,000).
      alpha: the failure probability (the paper: 0.001).
      num_classes: the model's outputs (read from the model when None).
      batch: noisy copies per model call.
      seed: seed of the noise generator (deterministic results).
    """
    if int(n0) < 1 or int(n) < 1:
        raise ConfigError(f"smoothing: n0 and n must be >= 1, got n0={n0}, n={n}")
    if not 0 < alpha < 1:
        raise ConfigError(f"smoothing: alpha must be in (0, 1), got {alpha}")
    num_classes = int(num_classes or model.output_shape[-1])
    smoother = Smoother(model, sigma, num_classes, batch, seed)
    candidate = np.argmax(smoother.votes(x, n0), axis=1)
    counts = smoother.votes(x, n)
    top = counts[np.arange(len(candidate)), candidate]
    p_lower = clopper_pearson_lower(top, int(n), alpha)
    certified = p_lower > 0.5
    radius = np.where(certified, sigma * stats.norm.ppf(np.clip(p_lower, 0.5, 1.0)), -1.0)
    return Smoothed(np.where(certified, candidate, ABSTAIN), radius, p_lower, float(sigma), int(n), float(alpha))


def predict(model, x, sigma, *, n=1000, alpha=0.001, num_classes=None, batch=1000, seed=0):
    """Cohen et al.'s PREDICT: the smoothed class, or −1 when the top two are not told apart at level alpha."""
    num_classes = int(num_classes or model.output_shape[-1])
    counts = Smoother(model, sigma, num_classes, batch, seed).votes(x, n)
    order = np.argsort(-counts, axis=1)
    first, second = counts[np.arange(len(x)), order[:, 0]], counts[np.arange(len(x)), order[:, 1]]
    p_values = np.array([stats.binomtest(int(a), int(a + b), 0.5).pvalue if a + b else 1.0
                         for a, b in zip(first, second)])
    return np.where(p_values <= alpha, order[:, 0], ABSTAIN)
