"""Fast gradient sign method (FGS / FGSM), Goodfellow, Shlens, Szegedy, ICLR 2015."""

from tfsparse.attacks import lp
from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.base import loss_per_sample
from tfsparse.compat import tf


def fgsm_step(model_fn, x, y, step):
    """``x + step · sign(∇x L(x, y))``: the single signed-gradient step FGSM, rFGS and PGD share."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(loss_per_sample(model_fn(x), y))
    return x + step * lp.normalize(tape.gradient(loss, x), "linf")


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
