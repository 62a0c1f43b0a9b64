"""R+FGSM (rFGS), Tramèr, Kurakin, Papernot, Goodfellow, Boneh, McDaniel, ICLR 2018 (eq. 6)."""

import numbers

from tfsparse.attacks import lp
from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.fgsm import fgsm_step
from tfsparse.compat import tf


class RFGSM(FixedEpsilonAttack):
    """FGS after a random sign step: ``x' = x + α·sign(N(0, I))``, ``x̌ = x' + (ε − α)·sign(∇x' L)``.

    The random step escapes the sharp curvature at the data point that makes single-step FGS
    weak against models trained on it (gradient masking); Guo et al. 2018 report r∞ with both FGS
    and rFGS. ``x'`` is clipped to [0, 1] before the gradient; the base class clips the result to
    the ε-ball and the box. ``alpha=0`` is FGSM.

    Example::

        RFGSM(eps=0.1).run(model, x_test, y_test).adv_accuracy

    Args:
      eps: l∞ budget (pixel units).
      alpha: size of the random step, in ``[0, eps]``; ``None`` means ``eps / 2`` (Tramèr et al.).
      jit_compile: ``True``, ``False`` or ``"auto"`` (XLA on GPU only).

    Raises:
      ValueError: if ``eps`` is negative or ``alpha`` is outside ``[0, eps]``.
    """

    name = "rfgsm"
    norm = "linf"

    def __init__(self, *, eps, alpha=None, jit_compile="auto"):
        if not (isinstance(eps, numbers.Real) and eps >= 0):
            raise ValueError(f"eps must be a number >= 0, got {eps!r}")
        if alpha is None:
            alpha = eps / 2.0
        if not (isinstance(alpha, numbers.Real) and 0 <= alpha <= eps):
            raise ValueError(f"alpha must be a number in [0, eps={eps!r}], got {alpha!r}")
        super().__init__(eps=eps, alpha=float(alpha), jit_compile=jit_compile)

    def _attack(self, model_fn, x, y, logits, seed):
        noise = tf.random.stateless_normal(tf.shape(x), seed, dtype=x.dtype)
        x_start = lp.clip_to_box(x + self.alpha * tf.sign(noise))
        return fgsm_step(model_fn, x_start, y, self.eps - self.alpha)
