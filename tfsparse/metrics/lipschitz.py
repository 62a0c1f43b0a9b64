"""Global Lipschitz upper bound of margin functions (Wang et al. Thm 2; Guo et al. Lemma 3.1).

For a feed-forward ReLU network ``Z(x) = W_dᵀ σ(… σ(W_1ᵀ x + b_1) …) + b_d`` and the margin
``g_k = Z_ŷ − Z_k``, ``∇g_k = W_1 D_1 W_2 … D_{d−1} (w_ŷ − w_k)`` with diagonal ``0 ≤ D ≤ I``, so

    ‖∇g_k‖_q ≤ ‖w_ŷ − w_k‖_q · ∏_{j<d} ‖W_j‖_{q→q}

bounds the local Lipschitz constant of ``g_k`` everywhere: the minimal perturbation in the dual
norm ``p`` is at least ``g_k(x) / bound`` (Guo eq. 6). Sparser weights shrink the norms, the
papers' argument for robustness through sparsity.
"""

import numpy as np

from tfsparse.attacks import lp
from tfsparse.compat import keras
from tfsparse.layers import Normalize
from tfsparse.layers.regularization import ActivationL1

_DUAL = {"l2": 2, "linf": 1}
_PASS_THROUGH = (keras.layers.InputLayer, keras.layers.Flatten, keras.layers.Dropout, ActivationL1)
_ONE_LIPSCHITZ = ("linear", "relu")


def _operator_norm(matrix, q):
    """Induced ``q→q`` norm of ``matrix`` acting on column vectors (spectral for q = 2)."""
    if q == 2:
        return float(np.linalg.norm(matrix, 2))
    return float(np.abs(matrix).sum(axis=0).max())  # q = 1: largest column sum


def _dense_layers(model):
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # pruning wrappers
        if isinstance(inner, keras.Model):
            yield from _dense_layers(inner)
        elif isinstance(inner, keras.layers.Dense):
            activation = keras.activations.serialize(inner.activation)
            if activation not in _ONE_LIPSCHITZ:
                raise ValueError(f"layer {inner.name}: activation {activation!r} is not supported")
            yield inner
        elif isinstance(inner, Normalize):
            yield inner
        elif not isinstance(inner, _PASS_THROUGH):
            raise ValueError(
                f"lipschitz_bound supports dense/linear stacks only; layer {inner.name} is a "
                f"{type(inner).__name__}"
            )


def lipschitz_bound(model, norm="l2") -> np.ndarray:
    """``‖w_c − w_k‖_q ∏_j ‖W_j‖_{q→q}`` for every class pair (Wang Thm 2, Guo Lemma 3.1).

    Supports Flatten / Dropout / :class:`~tfsparse.layers.Normalize` / Dense (linear or ReLU)
    stacks, nested models and pruning wrappers. ``norm`` is the *perturbation* norm: ``"l2"``
    uses spectral norms, ``"linf"`` the l1 norm of the gradient (column-sum operator norms).
    A ``Normalize`` layer scales the gradient by ``1/std``: its factor is ``1 / min(std)``.

    Example::

        bound = lipschitz_bound(model, "l2")   # (C, C), bound[c, k] for g = Z_c − Z_k

    Args:
      model: Keras model returning multi-class logits.
      norm: ``"l2"`` or ``"linf"``.

    Returns:
      float64 ``(C, C)`` array with zeros on the diagonal.

    Raises:
      ValueError: on an unknown norm, an unsupported layer or activation, or no Dense layer.
    """
    q = _DUAL[lp.check_norm(norm)]
    layers = list(_dense_layers(model))
    dense = [layer for layer in layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise ValueError("lipschitz_bound needs at least one Dense layer")
    factor = 1.0
    for layer in layers[:-1]:
        if isinstance(layer, Normalize):
            factor /= min(layer.std)
        else:
            factor *= _operator_norm(layer.kernel.numpy(), q)
    last = dense[-1].kernel.numpy()  # (features, C): column k is w_k
    if layers[-1] is not dense[-1]:
        raise ValueError("the last layer with weights must be the Dense logits layer")
    differences = last[:, :, None] - last[:, None, :]  # (features, C, C)
    return np.linalg.norm(differences, ord=q, axis=0) * factor
