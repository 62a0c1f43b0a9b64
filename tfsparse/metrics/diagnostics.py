"""Gradient-masking and evaluation sanity checks (Athalye, Carlini, Wagner, ICML 2018 §3.1).

Each check is a small function returning a list of warning strings (empty when the check
passes), so an evaluation report can carry them; none raises on a suspicious result. Following
AutoAttack's ``checks.py``, each documents when it warns and why that matters.
"""

import numpy as np

from tfsparse.layers import has_inference_noise


def check_multi_step_not_weaker(single_step_accuracy, multi_step_accuracy, *, tol=0.0) -> list:
    """Warns if an iterative attack (PGD) leaves higher accuracy than a single step (FGS).

    Raised if: ``multi_step_accuracy > single_step_accuracy + tol`` at the same budget.
    Explanation: PGD started at FGS's point can only do better on a smooth loss; the reverse means
    the gradients do not point towards adversarial examples (masked / shattered gradients), so
    white-box numbers overstate robustness (Athalye et al. §3.1, "iterative attacks should be
    stronger than single-step").
    """
    if multi_step_accuracy > single_step_accuracy + tol:
        return [
            f"multi-step attack accuracy {multi_step_accuracy:.4f} exceeds single-step "
            f"{single_step_accuracy:.4f} at the same budget: possible gradient masking"
        ]
    return []


def check_white_box_beats_black_box(white_box_accuracy, black_box_accuracy, *, tol=0.0) -> list:
    """Warns if a black-box or transfer attack beats the white-box attack.

    Raised if: ``black_box_accuracy < white_box_accuracy − tol`` (same budget).
    Explanation: a black-box attack uses strictly less information; when it is stronger, the
    white-box gradients are uninformative (masking), and the white-box accuracy is not a
    robustness claim (Athalye et al. §3.1).
    """
    if black_box_accuracy < white_box_accuracy - tol:
        return [
            f"black-box/transfer accuracy {black_box_accuracy:.4f} is below white-box "
            f"{white_box_accuracy:.4f}: the white-box attack is not reliable (gradient masking)"
        ]
    return []


def check_ensemble_not_weaker(ensemble_accuracy, other_accuracy, *, tol=0.0) -> list:
    """Warns if an ensemble (AutoAttack) leaves higher accuracy than a single attack it should
    subsume.

    Raised if: ``ensemble_accuracy > other_accuracy + tol`` at the same budget.
    Explanation: AutoAttack's APGD components are at least as strong as PGD of the same budget;
    when the ensemble comes out weaker, its budget (iterations, EOT draws for a random model) is
    too small for this model, and its number is not the worst case it is read as (Croce & Hein
    2020 §5 run it at 100 iterations and 20 draws).
    """
    if ensemble_accuracy > other_accuracy + tol:
        return [
            f"ensemble accuracy {ensemble_accuracy:.4f} exceeds {other_accuracy:.4f} of a single "
            "attack at the same budget: raise the ensemble's steps / eot_samples"
        ]
    return []


def check_accuracy_reaches_zero(eps_values, accuracies, *, tol=0.0) -> list:
    """Warns if accuracy does not fall to 0 at the largest budget of an accuracy-vs-ε curve.

    Raised if: the accuracy at ``max(eps_values)`` is above ``tol``, or the curve rises with ε.
    Explanation: with an unbounded budget any input can be turned into any image; an attack that
    still fails there is not following the model (Athalye et al. §3.1, "unbounded attacks must
    reach 100 % success"). Pass a curve whose largest ε is large (e.g. 1 for l∞ on [0, 1]).
    """
    order = np.argsort(eps_values)
    eps = np.asarray(eps_values, float)[order]
    acc = np.asarray(accuracies, float)[order]
    warnings = []
    if acc[-1] > tol:
        warnings.append(
            f"accuracy {acc[-1]:.4f} at the largest eps {eps[-1]:g} is not 0: attack too weak "
            "or gradients masked"
        )
    if np.any(np.diff(acc) > tol):
        warnings.append("accuracy increases with eps somewhere on the curve: attack unreliable")
    return warnings


def check_eot_for_stochastic_model(model, attacks, *, stochastic=False) -> list:
    """Warns if a model with inference noise was attacked without EOT.

    Raised if: ``stochastic`` is True or :func:`tfsparse.layers.has_inference_noise` finds a noisy layer, and no
    attack in ``attacks`` averages gradients over several forward passes (``grad_samples > 1``,
    i.e. :class:`~tfsparse.attacks.EOTPGD`).
    Explanation: one noisy gradient is a poor direction, so plain attacks underestimate the
    attack surface of a randomised model (Athalye et al. §4.2, "stochastic gradients"); RSR's
    noise-injected networks must be evaluated with EOT.
    """
    if not (stochastic or has_inference_noise(model)):
        return []
    if any(getattr(attack, "grad_samples", 1) > 1 for attack in attacks):
        return []
    return [
        "the model is random at inference (inference noise) but no attack used EOT: "
        "add EOTPGD for an honest evaluation"
    ]
