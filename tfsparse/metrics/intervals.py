"""Confidence intervals for the numbers tfsparse reports.

An accuracy measured on N test images is a binomial proportion; its interval is the Wilson
score interval (Wilson 1927; Brown, Cai & DasGupta 2001 recommend it over the normal
approximation, which collapses to a point at 0 % and 100 % and undercovers near them).
A number repeated over a few seeds (independent trainings) is reported as its mean ± the
half-width of Student's t interval, which is exact for normal errors and the usual choice
for 3–10 seeds (the normal z would undercover: t(0.975, 2) = 4.30 against z = 1.96).
"""

import math

import numpy as np

from scipy import stats


def wilson_interval(accuracy, n, confidence=0.95):
    """The Wilson score interval ``(low, high)`` of a proportion ``accuracy`` over ``n`` trials.

    Args:
      accuracy: observed proportion in [0, 1].
      n: number of trials (> 0).
      confidence: two-sided coverage in (0, 1), e.g. 0.95.

    Raises:
      ValueError: on ``n`` < 1, ``accuracy`` outside [0, 1] or ``confidence`` outside (0, 1).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must lie in [0, 1], got {accuracy}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    z = stats.norm.ppf(0.5 + confidence / 2)
    denominator = 1 + z * z / n
    centre = (accuracy + z * z / (2 * n)) / denominator
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def mean_interval(values, confidence=0.95):
    """The mean of ``values`` and the half-width of its Student t confidence interval.

    ``mean ± half`` covers the true mean with probability ``confidence`` when the values
    are independent draws of a normal variable (seeds of a training run).

    Args:
      values: the per-seed numbers (None entries are not allowed; drop them first).
      confidence: two-sided coverage in (0, 1).

    Returns:
      ``(mean, half_width)``; ``half_width`` is None for fewer than two values (no
      interval can be estimated from one), and ``(None, None)`` for none.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    values = np.asarray(list(values), dtype=np.float64)
    if values.size == 0:
        return None, None
    mean = float(values.mean())
    if values.size < 2:
        return mean, None
    sem = values.std(ddof=1) / math.sqrt(values.size)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, values.size - 1) * sem)
