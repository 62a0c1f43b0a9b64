"""Closed forms of Guo et al. 2018 Theorems 3.1 (binary) and 3.2 (multi-class) for linear classifiers (SPEC §7).

Theorem 3.1 below; Theorem 3.2 (eq. 6) with :func:`linear_multiclass_r2_bound` and
:func:`linear_multiclass_r_inf_bound`; :func:`linear_model_bounds` evaluates the right one for a
``linear`` / ``linear_binary`` zoo model (the bounds Guo's Fig. 1 sets beside measured r2 / r∞).

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


def _flat_multiclass(W, b, x, y):
    W = np.asarray(W, np.float64)
    W = W.reshape(-1, W.shape[-1])
    b = np.asarray(b, np.float64).reshape(-1)
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    y = np.asarray(y).reshape(-1)
    c = W.shape[1]
    if c < 2 or b.size != c:
        raise ValueError(f"W must be (n, c) with c >= 2 classes and b must have c entries, got W {W.shape}, "
                         f"b {b.shape}")
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"x has {x.shape[1]} features per sample but W has {W.shape[0]} rows")
    if len(y) != len(x) or not np.all((y >= 0) & (y < c) & (y == np.round(y))):
        raise ValueError(f"y must hold one integer label in [0, {c}) per sample")
    return W, b, x, y.astype(np.int64)


def _multiclass_terms(W, b, x, y):
    """``t``, ``c`` and, per class k, ``(w_k − w̄)ᵀμ_k + (b_k − b̄)`` with ``‖w_k − w̄‖₂``, ``‖w_k − w̄‖₁``."""
    W, b, x, y = _flat_multiclass(W, b, x, y)
    c = W.shape[1]
    centred_w = W - W.mean(axis=1, keepdims=True)  # columns w_k − w̄
    centred_b = b - b.mean()
    correct = np.argmax(x @ W + b, axis=1) == y
    numerators = np.full(c, np.nan)
    for k in range(c):
        members = correct & (y == k)
        if members.any():
            numerators[k] = x[members].mean(axis=0) @ centred_w[:, k] + centred_b[k]
    norms2 = np.linalg.norm(centred_w, 2, axis=0)
    norms1 = np.abs(centred_w).sum(axis=0)
    return float(correct.mean()), c, numerators, norms2, norms1


def linear_multiclass_r2_bound(W, b, x, y) -> float:
    """Guo et al. 2018 Thm 3.2 (eq. 6): ``r2 ≤ (t/c) Σ_k ((w_k − w̄)ᵀμ_k + b_k − b̄) / ‖w_k − w̄‖₂``.

    For ``ŷ = argmax_k (w_kᵀx + b_k)`` with ``w̄ = Σ_k w_k / c`` (``b̄`` likewise), ``t`` the
    accuracy on ``(x, y)`` and ``μ_k`` the mean of the correctly classified samples of class k.
    Why it bounds r2 (the paper defers the proof to its supplement; this is the step used):
    where class k wins, ``s_k ≥ max_j s_j ≥ s̄`` with ``s_j = w_jᵀx + b_j``, so the region of
    class k lies inside the half-space ``(w_k − w̄)ᵀx + b_k − b̄ ≥ 0`` and DeepFool's minimal
    distance is at most the distance to that half-space's boundary,
    ``((w_k − w̄)ᵀx + b_k − b̄) / ‖w_k − w̄‖₂``. Averaging over the correctly classified samples
    of each class, each class weighted by ``P(y = k, ŷ = k) = t/c`` (the theorem's assumptions:
    balanced classes, the same accuracy ``t`` on every class), gives eq. 6. For ``c = 2`` the
    half-space is the decision region itself and the bound is an equality. On data where the
    assumptions fail (MNIST's classes differ in size and accuracy) this is the theorem's
    formula evaluated there, a close but not guaranteed bound on the measured r2.

    Bias: the paper folds ``b`` into the weights; here the attack cannot move the constant
    coordinate, so ``b_k − b̄`` stays in the numerator and the norms are those of ``w_k − w̄``
    alone (the unit of the measured DeepFool r2).

    Args:
      W: kernel ``(n, c)`` (a Dense kernel; any leading shape with ``n`` entries per class).
      b: bias ``(c,)``.
      x: samples ``(N, ...)`` with ``n`` values each, in the units the attack perturbs.
      y: integer labels in ``[0, c)``.

    Returns:
      The bound in the units of x; NaN if some class has no correctly classified sample
      (μ_k undefined).

    Raises:
      ValueError: on size mismatch or labels outside ``[0, c)``.
    """
    t, c, numerators, norms2, _ = _multiclass_terms(W, b, x, y)
    return float(t / c * np.sum(numerators / norms2))


def linear_multiclass_r_inf_bound(W, b, x, y, eps) -> float:
    """Guo et al. 2018 Thm 3.2 (eq. 6): ``r∞ ≤ (t/c) Σ_k ((w_k − w̄)ᵀμ_k + b_k − b̄) / (ε‖w_k − w̄‖₁)``.

    Under the theorem's two extra assumptions, (I) FGS fools at least as often per class as
    the weaker shift ``−ε·sgn(w_y − w̄)`` and (II) FGS corrects no misclassification, a
    correctly classified sample of class k survives only if ``(w_k − w̄)ᵀx + b_k − b̄ >
    ε‖w_k − w̄‖₁``; Markov's inequality on that non-negative score gives the bound (as for
    Thm 3.1, it can exceed 1 for small ε). Symbols and bias as in
    :func:`linear_multiclass_r2_bound`.

    Args:
      W: kernel ``(n, c)``.
      b: bias ``(c,)``.
      x: samples ``(N, ...)``.
      y: integer labels in ``[0, c)``.
      eps: the FGS l∞ budget, > 0.

    Returns:
      The upper bound on r∞; NaN if some class has no correctly classified sample.

    Raises:
      ValueError: if ``eps <= 0``, on size mismatch or labels outside ``[0, c)``.
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    t, c, numerators, _, norms1 = _multiclass_terms(W, b, x, y)
    return float(t / c * np.sum(numerators / (float(eps) * norms1)))


def _affine_weights(model):
    """``(W, b)`` in pixel units of a zoo linear model: input → normalize → flatten → logits.

    The ``Normalize`` layer computes ``(x − m) / s`` per channel, so the logits are
    ``(W / s)ᵀx + b − (W / s)ᵀm`` with ``m`` and ``s`` broadcast over the flattened NHWC input
    (the channel index runs fastest).
    """
    kinds = [type(layer).__name__ for layer in model.layers]
    if kinds != ["InputLayer", "Normalize", "Flatten", "Dense"]:
        raise ValueError(f"expected a tfsparse 'linear' / 'linear_binary' model (input, normalize, flatten, "
                         f"logits), got layers {kinds}; strip pruning wrappers first")
    normalize, dense = model.layers[1], model.layers[3]
    kernel, bias = (np.asarray(v, np.float64) for v in dense.get_weights())
    channels = int(model.input_shape[-1])
    mean = np.resize(np.asarray(normalize.mean, np.float64), channels)
    std = np.resize(np.asarray(normalize.std, np.float64), channels)
    repeats = kernel.shape[0] // channels
    W = kernel / np.tile(std, repeats)[:, None]
    return W, bias - np.tile(mean, repeats) @ W


def linear_model_bounds(model, x, y, eps) -> dict:
    """The Guo et al. 2018 closed forms of a linear model, next to its measured r2 / r∞ (Fig. 1).

    Reads the kernel and bias of a tfsparse ``linear`` or ``linear_binary`` zoo model (the
    input normalisation folded in, so x is in [0, 1] pixel units) and evaluates the theorem
    on ``(x, y)``:

    * ``linear_binary`` (one logit; ``y`` in {0, 1} mapped to −1 / +1), Thm 3.1 (eq. 2):
      ``thm31_r2`` = ``(t/2)·wᵀ(μ₊ − μ₋)/‖w‖₂`` (an equality under the theorem's
      assumptions: DeepFool's r2 without box) and ``thm31_r_inf_bound`` =
      ``(t/2)·wᵀ(μ₊ − μ₋)/(ε‖w‖₁)``, an upper bound on FGS's r∞.
    * ``linear`` (c ≥ 2 logits), Thm 3.2 (eq. 6): ``thm32_r2_bound`` and
      ``thm32_r_inf_bound``, upper bounds on r2 and r∞.

    Example::

        linear_model_bounds(model, x_test[:1000], y_test[:1000], eps=0.1)
        # -> {"thm32_r2_bound": <float>, "thm32_r_inf_bound": <float>} for a 10-class model

    Args:
      model: a stripped ``linear`` / ``linear_binary`` model (``tfsparse.models``).
      x: samples ``(N, H, W, C)`` in [0, 1].
      y: integer labels ``(N,)`` (0 / 1 for ``linear_binary``).
      eps: the FGS budget of the r∞ bound, > 0.

    Returns:
      A flat dict of floats (NaN where a class has no correctly classified sample).

    Raises:
      ValueError: for another architecture, bad labels or ``eps <= 0``.
    """
    W, b = _affine_weights(model)
    if W.shape[1] == 1:
        y = np.asarray(y).reshape(-1)
        if not np.all(np.isin(y, (0, 1))):
            raise ValueError("a linear_binary model needs labels in {0, 1}")
        y_pm1 = 2 * y.astype(np.int64) - 1
        return {"thm31_r2": linear_binary_r2(W, b, x, y_pm1),
                "thm31_r_inf_bound": linear_binary_r_inf_bound(W, b, x, y_pm1, eps)}
    return {"thm32_r2_bound": linear_multiclass_r2_bound(W, b, x, y),
            "thm32_r_inf_bound": linear_multiclass_r_inf_bound(W, b, x, y, eps)}
