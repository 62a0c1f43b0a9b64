"""Empirical robustness metrics of Guo et al. 2018 (eq. 1 binary, eq. 5 multi-class; SPEC §7).

* r∞: accuracy on FGS examples at budget ε.
* r2: ``(1/N) Σ_i 1[y_i = ŷ_i] · ‖x̃_i − x_i‖₂`` with x̃ from DeepFool (or C&W); clean
  misclassified samples count as zero and ``N`` is *all* samples.
* PGD accuracy (Wang et al.: PGD-100) and the distortion lower bound (per-sample bisection of
  the PGD budget, Wang et al. after Bastani et al.).

Both work for multi-class logits ``(batch, C)`` and for a single binary logit ``(batch, 1)``
with labels in ``{0, 1}`` (see :mod:`tfsparse.attacks.base`).
"""

import numpy as np

from tfsparse.attacks import PGD
from tfsparse.attacks import DeepFool
from tfsparse.attacks import FGSM
from tfsparse.attacks import labels_from_logits
from tfsparse.attacks import lp
from tfsparse.attacks import pgd_perturb
from tfsparse.attacks.base import as_batch
from tfsparse.compat import keras
from tfsparse.compat import tf


def predict_logits(model, x, batch_size=500) -> np.ndarray:
    """The outputs of ``model`` on ``x``, in inference mode (see :func:`predict_labels`)."""
    x = np.asarray(x, np.float32)
    if isinstance(model, keras.Model):
        return model.predict(x, batch_size=batch_size, verbose=0)
    # A SavedModel signature, a Keras 3 model, a wrapped model: call it batch by batch.
    return np.concatenate([np.asarray(model(x[s : s + batch_size], training=False))
                           for s in range(0, len(x), batch_size)])


def predict_labels(model, x, batch_size=500) -> np.ndarray:
    """Predicted labels of ``model`` on ``x``, in inference mode.

    Args:
      model: Keras model, or any callable ``model(x, training=False)``, returning logits
        ``(N, C)`` or a binary logit ``(N, 1)``.
      x: inputs ``(N, ...)`` in [0, 1].
      batch_size: samples per forward pass.

    Returns:
      int32 array ``(N,)``: argmax of the logits, or ``1[logit > 0]`` for a binary model.
    """
    return labels_from_logits(tf.convert_to_tensor(predict_logits(model, x, batch_size))).numpy()


def clean_accuracy(model, x, y, batch_size=500) -> float:
    """Fraction of ``x`` whose predicted label equals ``y`` (``{0, 1}`` labels for binary)."""
    return float(np.mean(predict_labels(model, x, batch_size) == np.asarray(y).reshape(-1)))


def r_inf(model, x, y, eps=0.1, *, attack=None, batch_size=500) -> dict:
    """Guo's r∞: accuracy on FGS adversarial examples (Guo et al. 2018 eq. 1 / eq. 5).

    Every sample is attacked and counted, as in the paper's expectation over (x, y): r∞ is the
    accuracy on ``x̌`` over all N samples, so a clean-misclassified sample counts unless the
    attack happens to make it correct.

    Example::

        r_inf(model, x_test[:1000], y_test[:1000], eps=0.1)["r_inf"]

    Args:
      model: Keras model returning logits.
      x: inputs ``(N, ...)`` in [0, 1].
      y: integer labels ``(N,)``.
      eps: l∞ budget in pixel units (Guo: 0.1 on MNIST).
      attack: the l∞ attack to use (e.g. rFGS); default ``FGSM(eps=eps)``. If it has an ``eps``
        it must equal ``eps``.
      batch_size: samples per attack batch.

    Returns:
      ``{"r_inf", "eps", "clean_accuracy", "attack"}`` with ``attack`` the attack's repr.

    Raises:
      ValueError: if ``attack`` has a budget different from ``eps``, or on bad inputs.
    """
    if attack is None:
        attack = FGSM(eps=eps)
    elif "eps" in attack.params and attack.params["eps"] != float(eps):
        raise ValueError(f"attack {attack!r} has a different budget than eps={eps}")
    result = attack.run(model, x, y, batch_size=batch_size)
    return {
        "r_inf": result.adv_accuracy,
        "eps": float(eps),
        "clean_accuracy": result.clean_accuracy,
        "attack": repr(attack),
    }


def minimal_distances(result) -> dict:
    """Guo's r2 of a minimal-perturbation attack's result, under tfsparse's one failure rule.

    ``r2 = Σ_{flipped} ‖x̃_i − x_i‖₂ / (N − F)`` (Guo et al. 2018 eq. 1 / eq. 5:
    ``(1/N) Σ_i 1[y_i = ŷ_i]·‖x̃_i − x_i‖₂``, misclassified samples counting 0). A
    correctly classified sample the attack did not flip (one of the ``F`` failures) has no
    adversarial example, hence no distance: it is left out of numerator and denominator,
    whatever the attack returned for it (DeepFool its last iterate, C&W the input). With
    ``F = 0`` this is exactly Guo's formula. The rule assumes the failures are like the
    flipped samples; a sample an attack cannot flip is usually farther, so a large ``F``
    biases r2 low, which is why ``F`` is reported beside every r2.

    Returns:
      ``{"r2", "mean_l2", "failures"}``: ``mean_l2`` averages over the flipped samples only
      (NaN if none); ``r2`` is NaN only when every sample is a failure.
    """
    flipped = result.l2[result.success].astype(np.float64)
    kept = result.n - result.failures
    return {
        "r2": float(flipped.sum() / kept) if kept else float("nan"),
        "mean_l2": float(flipped.mean()) if flipped.size else float("nan"),
        "failures": int(result.failures),
    }


def r2(model, x, y, *, attack=None, batch_size=500) -> dict:
    """Guo's r2: mean l2 norm of the minimal perturbation, zero for misclassified samples.

    ``r2 = (1/N) Σ_i 1[y_i = ŷ_i] · ‖x̃_i − x_i‖₂`` (Guo et al. 2018 eq. 1 / eq. 5) with ``N`` all
    samples and ``x̃`` from DeepFool (or C&W); clean-correct samples the attack fails to flip
    (``failures``) are left out, as :func:`minimal_distances` states, and counted beside r2.

    Example::

        r2(model, x_test[:1000], y_test[:1000])["r2"]

    Args:
      model: Keras model returning logits.
      x: inputs ``(N, ...)`` in [0, 1].
      y: integer labels ``(N,)``.
      attack: a minimal-perturbation l2 attack; default ``DeepFool()`` (overshoot 0.02, 50
        iterations, top-10 classes, box on).
      batch_size: samples per attack batch.

    Returns:
      ``{"r2", "mean_l2_attacked", "failures", "n", "clean_accuracy", "attack"}``:
      ``mean_l2_attacked`` averages the norm over the flipped samples (NaN if none),
      ``failures`` counts clean-correct samples left correctly classified, ``attack`` is the
      attack's repr.

    Raises:
      ValueError: on bad inputs.
    """
    attack = DeepFool() if attack is None else attack
    result = attack.run(model, x, y, batch_size=batch_size)
    distances = minimal_distances(result)
    return {
        "r2": distances["r2"],
        "mean_l2_attacked": distances["mean_l2"],
        "failures": distances["failures"],
        "n": result.n,
        "clean_accuracy": result.clean_accuracy,
        "attack": repr(attack),
    }


def pgd_accuracy(
    model, x, y, *, eps, step_size, steps=100, norm="linf", restarts=1, batch_size=500, seed=0
) -> dict:
    """Accuracy under PGD (Wang et al.: PGD-100, ε = 8/255, step 2/255; RSR: PGD-7).

    Every sample is counted, as for r∞: a clean-misclassified sample counts as wrong unless the
    attack happens to correct it.

    Example::

        pgd_accuracy(model, x_test, y_test, eps=8 / 255, step_size=2 / 255)["pgd_accuracy"]

    Args:
      model: Keras model returning logits.
      x: inputs ``(N, ...)`` in [0, 1].
      y: integer labels ``(N,)``.
      eps: budget in ``norm`` (pixel units).
      step_size: PGD step length.
      steps: PGD iterations (default 100, Wang's evaluation).
      norm: ``"linf"`` or ``"l2"``.
      restarts: random restarts, worst case kept per sample.
      batch_size: samples per attack batch.
      seed: seed of the random starts.

    Returns:
      ``{"pgd_accuracy", "eps", "clean_accuracy", "attack"}`` with ``attack`` the attack's repr.

    Raises:
      ValueError: on bad PGD parameters or inputs.
    """
    attack = PGD(eps=eps, step_size=step_size, steps=steps, norm=norm, restarts=restarts)
    result = attack.run(model, x, y, batch_size=batch_size, seed=seed)
    return {
        "pgd_accuracy": result.adv_accuracy,
        "eps": float(eps),
        "clean_accuracy": result.clean_accuracy,
        "attack": repr(attack),
    }


def distortion_lower_bound(
    model,
    x,
    y,
    *,
    eps_max,
    norm="linf",
    steps=20,
    step_ratio=0.25,
    bisection_steps=8,
    batch_size=500,
    seed=0,
) -> dict:
    """Per-sample minimal PGD budget, found by bisection (Wang et al., after Bastani et al. 2016).

    For each clean-correct sample the interval ``[low, high]`` with PGD failing at ``low`` and
    succeeding at ``high`` is halved ``bisection_steps`` times, starting from ``[0, eps_max]``
    (PGD with ``steps`` steps of ``step_ratio · ε``, random start, the stateless seed fixed per
    sample and round so each round is reproducible). All samples of a batch are bisected at once
    with per-sample radii. ``high`` is an upper bound on the sample's true minimal distortion in
    ``norm`` that PGD certifies by example, and ``low`` the largest budget at which PGD failed,
    so the true minimum PGD can reach lies in ``[low, high]``; the width is
    ``eps_max / 2^bisection_steps``. Units: ε in the attack norm, in [0, 1] pixel units
    (multiply by 255 for grey levels); l2 is the Euclidean norm of the perturbation found at
    ``high``, in the same pixel units. Wang et al. do not state their unit; both are reported.

    Example::

        bound = distortion_lower_bound(model, x_test[:200], y_test[:200], eps_max=0.5)
        print(bound["mean_eps"], bound["mean_l2"], bound["not_found"])

    Args:
      model: Keras model returning logits.
      x: inputs ``(N, ...)`` in [0, 1].
      y: integer labels ``(N,)``.
      eps_max: upper end of the search (> 0); samples PGD cannot flip there are "not found".
      norm: ``"linf"`` or ``"l2"``.
      steps: PGD iterations per trial.
      step_ratio: PGD step length as a fraction of the trial ε.
      bisection_steps: halvings of the interval.
      batch_size: samples per traced call.
      seed: integer seed.

    Returns:
      ``{"mean_eps", "mean_l2", "eps_high", "eps_low", "l2", "found", "not_found",
      "misclassified", "norm", "units"}``: the means are over the samples found (NaN if none);
      ``eps_high`` / ``eps_low`` / ``l2`` are per-sample arrays with NaN where not found or
      clean-misclassified (their minimal distortion is 0 and they are excluded from the means).

    Raises:
      ValueError: if ``eps_max <= 0``, on bad PGD parameters or inputs.
    """
    if not eps_max > 0:
        raise ValueError(f"eps_max must be > 0, got {eps_max}")
    lp.check_norm(norm)
    x, y = as_batch(x, y)
    fn = _pgd_trial_function(model, x.shape[1:], norm, steps, step_ratio)
    n = len(x)
    low, high = np.zeros(n), np.full(n, float(eps_max))
    l2 = np.full(n, np.nan)
    correct = predict_labels(model, x, batch_size) == y

    def trial(eps, round_index):
        fooled, norms = [], []
        for i, s in enumerate(range(0, n, batch_size)):
            out = fn(
                x[s : s + batch_size],
                y[s : s + batch_size],
                np.asarray(eps[s : s + batch_size], np.float32),
                np.array([seed, round_index * 100_003 + i], np.int64),
            )
            fooled.append(out[0].numpy())
            norms.append(out[1].numpy())
        return np.concatenate(fooled), np.concatenate(norms)

    fooled, norms = trial(high, 0)
    found = correct & fooled
    l2[found] = norms[found]
    for r in range(1, bisection_steps + 1):
        mid = (low + high) / 2
        fooled, norms = trial(mid, r)
        success = found & fooled
        high = np.where(success, mid, high)
        l2 = np.where(success, norms, l2)
        low = np.where(found & ~fooled, mid, low)
    eps_high = np.where(found, high, np.nan)
    return {
        "mean_eps": float(np.mean(high[found])) if found.any() else float("nan"),
        "mean_l2": float(np.mean(l2[found])) if found.any() else float("nan"),
        "eps_high": eps_high,
        "eps_low": np.where(found, low, np.nan),
        "l2": np.where(found, l2, np.nan),
        "found": int(found.sum()),
        "not_found": int((correct & ~found).sum()),
        "misclassified": int((~correct).sum()),
        "norm": norm,
        "units": f"eps: {norm} norm, [0, 1] pixel units (x255 for grey levels); "
        "l2: Euclidean norm of the perturbation found, [0, 1] pixel units",
    }


def _pgd_trial_function(model, input_shape, norm, steps, step_ratio):
    """One traced PGD trial with per-sample ε: ``(x, y, eps, seed) -> (fooled, l2)``."""

    def model_fn(inputs):
        return model(inputs, training=False)

    def trial(x, y, eps, seed):
        radius = lp.per_sample(eps, x)
        x_adv = pgd_perturb(
            model_fn, x, y, eps=radius, step_size=step_ratio * radius, steps=steps, norm=norm,
            seed=seed,
        )
        fooled = tf.not_equal(labels_from_logits(model_fn(x_adv)), y)
        return fooled, lp.per_sample_norm(x_adv - x, "l2")

    signature = [
        tf.TensorSpec((None,) + tuple(input_shape), tf.float32),
        tf.TensorSpec((None,), tf.int32),
        tf.TensorSpec((None,), tf.float32),
        tf.TensorSpec((2,), tf.int64),
    ]
    return tf.function(trial, input_signature=signature)
