"""Empirical robustness metrics of Guo et al. 2018 (eq. 1 binary, eq. 5 multi-class; SPEC §7).

* r∞: accuracy on FGS examples at budget ε.
* r2: ``(1/N) Σ_i 1[y_i = ŷ_i] · ‖x̃_i − x_i‖₂`` with x̃ from DeepFool (or C&W); clean
  misclassified samples count as zero and ``N`` is *all* samples.

Both work for multi-class logits ``(batch, C)`` and for a single binary logit ``(batch, 1)``
with labels in ``{0, 1}`` (see :mod:`tfsparse.attacks.base`).
"""

import numpy as np

from tfsparse.attacks import DeepFool
from tfsparse.attacks import FGSM
from tfsparse.attacks import labels_from_logits


def predict_labels(model, x, batch_size=500) -> np.ndarray:
    """Predicted labels of ``model`` on ``x``, in inference mode.

    Args:
      model: Keras model returning logits ``(N, C)`` or a binary logit ``(N, 1)``.
      x: inputs ``(N, ...)`` in [0, 1].
      batch_size: samples per forward pass.

    Returns:
      int32 array ``(N,)``: argmax of the logits, or ``1[logit > 0]`` for a binary model.
    """
    logits = model.predict(np.asarray(x, np.float32), batch_size=batch_size, verbose=0)
    return labels_from_logits(logits).numpy()


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


def r2(model, x, y, *, attack=None, batch_size=500) -> dict:
    """Guo's r2: mean l2 norm of the minimal perturbation, zero for misclassified samples.

    ``r2 = (1/N) Σ_i 1[y_i = ŷ_i] · ‖x̃_i − x_i‖₂`` (Guo et al. 2018 eq. 1 / eq. 5) with ``N`` all
    samples and ``x̃`` from DeepFool (or C&W). Clean-correct samples the attack fails to flip
    (``failures``) contribute the norm of the perturbation the attack reached, so failures are
    reported beside r2 rather than silently dropped or counted as zero.

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
      ``mean_l2_attacked`` averages the norm over clean-correct samples only (NaN if none),
      ``failures`` counts clean-correct samples left correctly classified, ``attack`` is the
      attack's repr.

    Raises:
      ValueError: on bad inputs.
    """
    attack = DeepFool() if attack is None else attack
    result = attack.run(model, x, y, batch_size=batch_size)
    attacked = result.l2[result.clean_correct].astype(np.float64)
    return {
        "r2": float(np.sum(attacked) / result.n),
        "mean_l2_attacked": float(np.mean(attacked)) if attacked.size else float("nan"),
        "failures": result.failures,
        "n": result.n,
        "clean_accuracy": result.clean_accuracy,
        "attack": repr(attack),
    }
