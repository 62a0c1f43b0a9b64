"""EOT-PGD: PGD on a stochastic model with Expectation over Transformation gradients.

Athalye, Engstrom, Ilyas, Kwok, "Synthesizing Robust Adversarial Examples", ICML 2018, and
Athalye, Carlini, Wagner, "Obfuscated Gradients Give a False Sense of Security", ICML 2018 §4.2:
a model with random inference noise (RSR's channel-wise noise injection, Rakin et al. 2019) must
be attacked with the gradient of the *expected* loss, estimated by averaging the gradients of
``samples`` independent forward passes at every PGD step.
"""

import numbers

from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.pgd import PGD


class EOTPGD(PGD):
    """PGD whose every step averages the loss gradient over ``samples`` forward passes.

    On a deterministic model it equals :class:`PGD` (every sample gives the same gradient) at
    ``samples`` times the cost. Noise must be on during the attack, i.e. in the model's
    ``training=False`` call (the noise layer's own inference switch).

    Example::

        EOTPGD(eps=8 / 255, step_size=2 / 255, steps=20, samples=10).run(noisy_model, x, y)

    Args:
      eps, step_size, steps, norm, random_start, restarts, targeted, jit_compile: as in
        :class:`PGD`.
      samples: forward/backward passes averaged per step (≥ 1).

    Raises:
      ValueError: if ``samples < 1`` or on any :class:`PGD` argument error.
    """

    name = "eot_pgd"

    def __init__(
        self,
        *,
        eps,
        step_size,
        steps,
        samples=10,
        norm="linf",
        random_start=True,
        restarts=1,
        targeted=False,
        jit_compile="auto",
    ):
        if not (isinstance(samples, numbers.Integral) and samples >= 1):
            raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
        FixedEpsilonAttack.__init__(
            self,
            eps=eps,
            **self._check(step_size, steps, norm, random_start, restarts, targeted),
            samples=int(samples),
            jit_compile=jit_compile,
        )

    @property
    def grad_samples(self) -> int:
        return self.samples
