"""Projected gradient descent (PGD), Madry, Makelov, Schmidt, Tsipras, Vladu, ICLR 2018 (eq. 2).

``x⁰ = x + U(ball)``; ``x^{t+1} = Π_{B_ε(x) ∩ [0,1]}(x^t + a · normalize(∇ L(x^t, y)))``. The per-norm
pieces (random start, normalisation, projection) come from :mod:`tfsparse.attacks.lp` and the step
from :func:`tfsparse.attacks.fgsm.fgsm_step`, so FGSM is PGD with one step of size ε from ``x``.
"""

import numbers

from tfsparse.attacks import lp
from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.base import is_binary
from tfsparse.attacks.base import labels_from_logits
from tfsparse.attacks.base import loss_per_sample
from tfsparse.attacks.fgsm import fgsm_step
from tfsparse.compat import tf


def pgd_perturb(
    model_fn,
    x,
    y,
    *,
    eps,
    step_size,
    steps,
    norm="linf",
    random_start=True,
    seed=None,
    targeted=False,
    loss_fn=None,
    grad_samples=1,
):
    """The PGD iterate after ``steps`` steps, in pure TensorFlow (Madry et al. 2018 eq. 2).

    No ``tf.function`` of its own: it is traced inside whatever calls it (an attack core, a
    Keras ``train_step``), and the steps run in a ``tf.while_loop``, never unrolled.

    Example (inside an adversarial ``train_step``)::

        x_adv = pgd_perturb(lambda z: inner(z, training=False), x, y,
                            eps=0.3, step_size=0.01, steps=40)

    Args:
      model_fn: ``x -> logits``, called as given (pass ``training=False`` yourself).
      x: float32 inputs ``(batch, ...)`` in [0, 1].
      y: int labels ``(batch,)``; the target labels if ``targeted``.
      eps: radius of the ball (pixel units), ≥ 0: a number, or a tensor broadcasting against
        ``x`` (per-sample radii shaped ``(batch, 1, ..., 1)``, as the distortion bound uses).
      step_size: step length ``a`` in ``norm``; a number or, like ``eps``, per sample.
      steps: number of steps (Python int ≥ 0).
      norm: ``"linf"`` or ``"l2"``.
      random_start: start from a uniform point of the ball (clipped to [0, 1]) instead of ``x``.
      seed: ``None`` or a shape-``(2,)`` integer seed for the stateless random start.
      targeted: minimise the loss of ``y`` (the targets) instead of maximising it.
      loss_fn: ``(logits, y) -> (batch,)``; default softmax cross-entropy (binary: sigmoid).
      grad_samples: gradients averaged per step (EOT, for models with random forward passes).

    Returns:
      ``x_adv`` inside the ``eps`` ball around ``x`` and inside [0, 1].

    Raises:
      ValueError: on an unknown norm, ``steps < 0`` or ``grad_samples < 1``.
    """
    lp.check_norm(norm)
    if not (isinstance(steps, numbers.Integral) and steps >= 0):
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if not (isinstance(grad_samples, numbers.Integral) and grad_samples >= 1):
        raise ValueError(f"grad_samples must be an integer >= 1, got {grad_samples!r}")
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.convert_to_tensor(y, tf.int32)
    x_adv = x
    if random_start:
        if seed is None:
            seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        x_adv = lp.clip_to_box(lp.random_start(x, eps, norm, seed))

    def body(i, x_cur):
        x_new = fgsm_step(
            model_fn,
            x_cur,
            y,
            step_size,
            norm=norm,
            targeted=targeted,
            loss_fn=loss_fn,
            grad_samples=grad_samples,
        )
        return i + 1, lp.clip_to_box(lp.project(x_new, x, eps, norm))

    return tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), x_adv))[1]


def random_targets(logits, y, seed):
    """A uniformly random class other than ``y`` per sample (the other class for a binary logit)."""
    if is_binary(logits):
        return 1 - y
    num_classes = logits.shape[-1]
    shift = tf.random.stateless_uniform(tf.shape(y), seed, 1, num_classes, dtype=tf.int32)
    return (y + shift) % num_classes


class PGD(FixedEpsilonAttack):
    """Projected gradient descent in l∞ or l2 with random start and restarts (Madry et al. 2018).

    Each restart runs :func:`pgd_perturb` from its own random start (stateless seed folded with the
    restart index); per sample the worst case is kept: a misclassifying iterate beats a
    non-misclassifying one, and between equals the higher loss wins (Madry's restarts). Untargeted
    by default; with ``targeted=True`` each sample gets a random target class ≠ its label (drawn from
    the seed; the other class for a binary model) and the loss of that class is minimised; success
    is still counted against the true label. Wang et al. evaluate with PGD-100 (ε = 8/255, step
    2/255) and train with PGD-10; Madry's MNIST setting is 40 steps of 0.01 at ε = 0.3.

    ``PGD()`` is the attack ``scripts/evaluate.py --attacks=pgd`` runs by default (``configs/evaluate.py``,
    MNIST variant: ε 0.1, 40 steps of 0.01, random start). The numbers are repeated here, not read
    from there: ``configs/`` sits above the library (and is not installed with it), and
    ``tests/test_public_api.py`` holds the two equal.

    Example::

        result = PGD(eps=0.3, step_size=0.01, steps=40).run(model, x_test, y_test)
        print(result.adv_accuracy)

    Args:
      eps: radius of the ball in ``norm`` (pixel units); default 0.1 (the CLI's ``--eps``).
      step_size: step length per iteration in ``norm``; default 0.01.
      steps: iterations per restart (≥ 1); default 40.
      norm: ``"linf"`` or ``"l2"``.
      random_start: start from a uniform point of the ball; without it restarts are identical,
        so ``restarts`` must then be 1.
      restarts: independent runs per sample; the worst case is kept.
      targeted: random-target attack instead of untargeted.
      jit_compile: ``True``, ``False`` or ``"auto"`` (XLA on GPU only).

    Raises:
      ValueError: on a bad ``eps``, ``step_size <= 0``, ``steps < 1``, ``restarts < 1``, an unknown
        norm, non-bool flags, or ``restarts > 1`` without ``random_start``.
    """

    name = "pgd"

    def __init__(
        self,
        *,
        eps=0.1,
        step_size=0.01,
        steps=40,
        norm="linf",
        random_start=True,
        restarts=1,
        targeted=False,
        jit_compile="auto",
    ):
        super().__init__(
            eps=eps,
            **self._check(step_size, steps, norm, random_start, restarts, targeted),
            jit_compile=jit_compile,
        )

    @staticmethod
    def _check(step_size, steps, norm, random_start, restarts, targeted):
        """Validated PGD parameters (all but ``eps``), in ``repr`` order."""
        if not (isinstance(step_size, numbers.Real) and step_size > 0):
            raise ValueError(f"step_size must be a number > 0, got {step_size!r}")
        if not (isinstance(steps, numbers.Integral) and steps >= 1):
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if not (isinstance(restarts, numbers.Integral) and restarts >= 1):
            raise ValueError(f"restarts must be an integer >= 1, got {restarts!r}")
        for flag, value in (("random_start", random_start), ("targeted", targeted)):
            if not isinstance(value, bool):
                raise ValueError(f"{flag} must be True or False, got {value!r}")
        if restarts > 1 and not random_start:
            raise ValueError("restarts > 1 needs random_start=True (otherwise they are identical)")
        return {
            "step_size": float(step_size),
            "steps": int(steps),
            "norm": lp.check_norm(norm),
            "random_start": random_start,
            "restarts": int(restarts),
            "targeted": targeted,
        }

    @property
    def norm(self):
        return self._params["norm"]

    @property
    def grad_samples(self) -> int:
        """Gradients averaged per step: 1 here, ``samples`` for :class:`EOTPGD`."""
        return 1

    def _attack(self, model_fn, x, y, logits, seed):
        target_seed, start_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        labels = random_targets(logits, y, target_seed) if self.targeted else y

        def one_run(restart):
            x_adv = pgd_perturb(
                model_fn,
                x,
                labels,
                eps=self.eps,
                step_size=self.step_size,
                steps=self.steps,
                norm=self.norm,
                random_start=self.random_start,
                seed=tf.random.experimental.stateless_fold_in(start_seed, restart),
                targeted=self.targeted,
                grad_samples=self.grad_samples,
            )
            z = model_fn(x_adv)
            predicted = labels_from_logits(z)
            fooled = tf.equal(predicted, labels) if self.targeted else tf.not_equal(predicted, y)
            loss = loss_per_sample(z, labels)
            return x_adv, fooled, -loss if self.targeted else loss

        if self.restarts == 1:
            return one_run(0)[0]

        def body(restart, best_x, best_fooled, best_loss):
            x_new, fooled, loss = one_run(restart)
            better = (fooled & ~best_fooled) | (tf.equal(fooled, best_fooled) & (loss > best_loss))
            mask = lp.per_sample(better, x)
            return (
                restart + 1,
                tf.where(mask, x_new, best_x),
                best_fooled | fooled,
                tf.where(better, loss, best_loss),
            )

        first = one_run(0)
        return tf.while_loop(
            lambda restart, *_: restart < self.restarts, body, (tf.constant(1),) + first
        )[1]
