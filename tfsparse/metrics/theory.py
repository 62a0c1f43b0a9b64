"""Closed forms of Guo et al. 2018 Theorem 3.1 for binary linear classifiers (SPEC §7).

Setting: labels ``y ∈ {+1, −1}``, prediction ``ŷ = sgn(wᵀx + b)``, ``t`` the accuracy and
``μ_k = E(x | y = k, ŷ = k)`` the mean of the correctly classified samples of class k. Under the
theorem's assumptions (balanced classes, the same accuracy ``t`` on both classes)

    r2 = (t/2) · wᵀ(μ₊ − μ₋) / ‖w‖₂        and        r∞ ≤ (t/2) · wᵀ(μ₊ − μ₋) / (ε‖w‖₁)     (eq. 2)

Bias: the paper folds ``b`` into ``ẃ = [w; b]`` with ``x → [x; 1]``. In the numerator the two
appended entries of ``μ₊`` and ``μ₋`` are both 1, so ``ẃᵀ([μ₊; 1] − [μ₋; 1]) = wᵀ(μ₊ − μ₋)``:
the bias cancels. In the denominators the constant coordinate cannot be perturbed by an attack
on x, so the norms are those of ``w`` alone: the DeepFool distance is ``|wᵀx + b| / ‖w‖₂``
and FGS moves ``wᵀx`` by ``ε‖w‖₁``. With these, eq. (4) and the Markov step of eq. (3) hold
unchanged for ``b ≠ 0``, and the r2 value equals the empirical DeepFool r2 (no box) exactly
when the assumptions hold.
"""

import numpy as np


def _flat(w, b, x):
    w = np.asarray(w, np.float64).reshape(-1)
    b = float(np.asarray(b, np.float64).reshape(-1)[0])
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    if x.shape[1] != w.size:
        raise ValueError(f"x has {x.shape[1]} features per sample but w has {w.size}")
    return w, b, x


def _margin_numerator(w, b, x, y_pm1):
    """``(t/2) · wᵀ(μ₊ − μ₋)`` from data; NaN when a class has no correctly classified sample."""
    w, b, x = _flat(w, b, x)
    y = np.asarray(y_pm1).reshape(-1)
    if len(y) != len(x) or not np.all(np.isin(y, (-1, 1))):
        raise ValueError("y_pm1 must hold one label in {-1, +1} per sample")
    scores = x @ w + b
    correct = np.where(y > 0, scores > 0, scores < 0)
    pos, neg = correct & (y > 0), correct & (y < 0)
    if not (pos.any() and neg.any()):
        return w, float("nan")
    t = correct.mean()
    return w, t / 2.0 * float(w @ (x[pos].mean(axis=0) - x[neg].mean(axis=0)))


def linear_binary_margins(w, b, x) -> np.ndarray:
    """Distance of each sample to the hyperplane ``wᵀx + b = 0``: ``|wᵀx + b| / ‖w‖₂``.

    This is ``d(x, x̃)`` of Guo et al. 2018 eq. (1), the unconstrained DeepFool perturbation norm.

    Args:
      w: weights, any shape with ``n`` entries (e.g. a Dense kernel ``(n, 1)``).
      b: bias, scalar or one-element array.
      x: samples ``(N, ...)`` with ``n`` values each.

    Returns:
      float64 array ``(N,)``.

    Raises:
      ValueError: if the sizes of ``w`` and the samples differ.
    """
    w, b, x = _flat(w, b, x)
    return np.abs(x @ w + b) / np.linalg.norm(w)


def linear_binary_r2(w, b, x, y_pm1) -> float:
    """Guo et al. 2018 Thm 3.1 (eq. 2): ``r2 = (t/2) · wᵀ(μ₊ − μ₋) / ‖w‖₂``, from data.

    ``t`` is the accuracy of ``sgn(wᵀx + b)`` on ``(x, y_pm1)`` and ``μ_k`` the mean of the
    correctly classified samples of class k. It equals the empirical r2 (eq. 1, DeepFool without
    box) when the classes are balanced and both have accuracy ``t``; otherwise it is the
    theorem's formula evaluated on this data.

    Args:
      w: weights with ``n`` entries.
      b: bias (see the module docstring for why it cancels).
      x: samples ``(N, ...)``.
      y_pm1: labels in ``{-1, +1}``.

    Returns:
      r2 in the units of x; NaN if a class has no correctly classified sample (μ_k undefined).

    Raises:
      ValueError: on size mismatch or labels outside ``{-1, +1}``.
    """
    w, numerator = _margin_numerator(w, b, x, y_pm1)
    return numerator / float(np.linalg.norm(w, 2))


def linear_binary_r_inf_bound(w, b, x, y_pm1, eps) -> float:
    """Guo et al. 2018 Thm 3.1 (eq. 2): ``r∞ ≤ (t/2) · wᵀ(μ₊ − μ₋) / (ε‖w‖₁)``, from data.

    The bound comes from Markov's inequality on eq. (3) and can exceed 1 for small ε.

    Args:
      w: weights with ``n`` entries.
      b: bias (cancels, see the module docstring).
      x: samples ``(N, ...)``.
      y_pm1: labels in ``{-1, +1}``.
      eps: the FGS l∞ budget, > 0.

    Returns:
      The upper bound on r∞; NaN if a class has no correctly classified sample.

    Raises:
      ValueError: if ``eps <= 0``, on size mismatch or labels outside ``{-1, +1}``.
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    w, numerator = _margin_numerator(w, b, x, y_pm1)
    return numerator / (float(eps) * float(np.linalg.norm(w, 1)))
