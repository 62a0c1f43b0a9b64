"""Fast gradient sign method (FGS / FGSM), Goodfellow, Shlens, Szegedy, ICLR 2015."""

from tfsparse.attacks import lp
from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.base import loss_per_sample
from tfsparse.compat import tf


def loss_gradient(model_fn, x, y, *, loss_fn=None, grad_samples=1):
    """``∇x Σ_i L(model_fn(x)_i, y_i)``, averaged over ``grad_samples`` calls of ``model_fn``.

    With ``grad_samples > 1`` this is the Expectation over Transformation gradient of Athalye,
    Engstrom, Ilyas, Kwok (ICML 2018) for a model whose forward pass is random (noise
    injection): each call draws new noise, and the mean of the gradients estimates the gradient of
    the expected loss. The samples run in a ``tf.while_loop`` with one tape each (memory of one
    pass).

    Args:
      model_fn: ``x -> logits``.
      x: float inputs ``(batch, ...)``.
      y: int labels ``(batch,)``.
      loss_fn: ``(logits, y) -> (batch,)`` loss; default :func:`loss_per_sample`.
      grad_samples: number of model calls averaged (Python int ≥ 1).

    Returns:
      The gradient, shaped like ``x``.
    """
    loss_fn = loss_per_sample if loss_fn is None else loss_fn

    def one_gradient():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(loss_fn(model_fn(x), y))
        return tape.gradient(loss, x)

    if grad_samples == 1:
        return one_gradient()
    total = tf.while_loop(
        lambda i, g: i < grad_samples,
        lambda i, g: (i + 1, g + one_gradient()),
        (tf.constant(0), tf.zeros_like(x)),
    )[1]
    return total / float(grad_samples)


def fgsm_step(model_fn, x, y, step, *, norm="linf", targeted=False, loss_fn=None, grad_samples=1):
    """``x ± step · normalize(∇x L(x, y))``: the one gradient step FGSM, rFGS and PGD share.

    Args:
      model_fn: ``x -> logits``.
      x: float inputs ``(batch, ...)``.
      y: int labels ``(batch,)`` (target labels if ``targeted``).
      step: step length in ``norm`` (``norm="linf"``: ``step · sign(∇)``, Goodfellow et al. 2015).
      norm: ``"linf"`` or ``"l2"`` (see :func:`tfsparse.attacks.lp.normalize`).
      targeted: descend the loss of ``y`` instead of ascending it.
      loss_fn: per-sample loss, default :func:`loss_per_sample`.
      grad_samples: EOT samples (see :func:`loss_gradient`).

    Returns:
      The stepped inputs, neither projected nor clipped.
    """
    grad = loss_gradient(model_fn, x, y, loss_fn=loss_fn, grad_samples=grad_samples)
    direction = lp.normalize(grad, norm)
    return x - step * direction if targeted else x + step * direction


class FGSM(FixedEpsilonAttack):
    """Untargeted l∞ fast gradient sign attack: ``x̌ = x + ε · sign(∇x L(x, y))``.

    ``L`` is the softmax cross-entropy for multi-class logits and ``softplus(-s·z)``
    (``s = 2y - 1``) for a single binary logit, the losses Guo et al. 2018 train with; on a linear
    binary model this gives their ``x̌ = x - ε·s·sign(w)`` (eq. 1). The result is clipped to
    [0, 1] and to the ε-ball by the base class. Guo's r∞ is the accuracy on these examples
    (see :func:`tfsparse.metrics.r_inf`).

    Example::

        result = FGSM(eps=0.1).run(model, x_test, y_test)
        print(result.adv_accuracy)

    Args:
      eps: l∞ budget in [0, 1] pixel units (Guo: 0.1 on MNIST).
      jit_compile: ``True``, ``False`` or ``"auto"`` (XLA on GPU only).

    Raises:
      ValueError: if ``eps`` is negative or not a number.
    """

    name = "fgsm"
    norm = "linf"

    def __init__(self, *, eps, jit_compile="auto"):
        super().__init__(eps=eps, jit_compile=jit_compile)

    def _attack(self, model_fn, x, y, logits, seed):
        return fgsm_step(model_fn, x, y, self.eps)
