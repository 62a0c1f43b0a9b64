"""Confidence intervals for the numbers tfsparse reports.

An accuracy measured on N test images is a binomial proportion; its interval is the Wilson
score interval (Wilson 1927; Brown, Cai & DasGupta 2001 recommend it over the normal
approximation, which collapses to a point at 0 % and 100 % and undercovers near them).
"""

import math

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
