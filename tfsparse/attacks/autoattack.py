"""AutoAttack (Croce & Hein, ICML 2020 §4): a parameter-free ensemble, per-sample worst case.

Each component attacks only the points every earlier component left robust, and a point
counts as robust only if none of them fooled it inside the ε-ball — the robust accuracy
RobustBench requires. Two versions, as in the reference ``autoattack.py``:

* ``standard`` — APGD-CE (no restarts), APGD-T (targeted DLR over the top
  ``n_target_classes`` classes), FAB-T (minimum-norm, targeted) and Square
  (``square_queries`` queries, p_init 0.8), each with ``steps`` iterations;
* ``rand`` — for models random at inference: APGD-CE and APGD-DLR with EOT over
  ``eot_samples`` draws per gradient.

The components run batch by batch like every attack (each one a single traced loop); only
the bookkeeping of which points are still robust happens between components, in NumPy.
"""

import numpy as np

from tfsparse.attacks import lp
from tfsparse.attacks.apgd import APGD
from tfsparse.attacks.apgd import APGDT
from tfsparse.attacks.base import AttackResult
from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.base import positive_int
from tfsparse.attacks.fab import FABT
from tfsparse.attacks.square import Square

VERSIONS = ("standard", "rand")


class AutoAttack(FixedEpsilonAttack):
    """AutoAttack's standard or ``rand`` ensemble at budget ``eps`` in ``norm``.

    Example::

        result = AutoAttack(eps=0.3).run(model, x_test[:1000], y_test[:1000])
        result.adv_accuracy  # robust accuracy under the whole ensemble

    Args:
      eps: the budget (pixel units), ≥ 0.
      norm: ``"linf"`` or ``"l2"``.
      version: ``"standard"`` or ``"rand"`` (see the module docstring).
      steps: iterations of APGD / APGD-T / FAB-T (AutoAttack: 100).
      n_target_classes: target classes of APGD-T and FAB-T (AutoAttack: 9).
      square_queries: query budget of Square (AutoAttack: 5,000).
      eot_samples: gradient draws of the ``rand`` version (AutoAttack: 20).
      jit_compile: XLA switch handed to every component.

    Raises:
      ValueError: on an unknown version or norm, or a bad count.
    """

    name = "autoattack"

    def __init__(self, *, eps, norm="linf", version="standard", steps=100, n_target_classes=9,
                 square_queries=5000, eot_samples=20, jit_compile="auto"):
        lp.check_norm(norm)
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
        super().__init__(eps=eps, norm=norm, version=version, steps=positive_int(steps, "steps"),
                         n_target_classes=positive_int(n_target_classes, "n_target_classes"),
                         square_queries=positive_int(square_queries, "square_queries"),
                         eot_samples=positive_int(eot_samples, "eot_samples"), jit_compile=jit_compile)
        # Built once: each component caches its traced function per model, so run() over many
        # batches (and repeated calls) traces every component once, not once per batch.
        object.__setattr__(self, "_components", tuple(self._build_components()))

    @property
    def eps_ball(self):
        return (self.params["norm"], self.eps)

    def components(self):
        """The component attacks, in the order they run."""
        return list(self._components)

    def _build_components(self):
        common = {"eps": self.eps, "norm": self.params["norm"], "jit_compile": self.jit_compile}
        if self.version == "rand":
            return [APGD(loss="ce", steps=self.steps, eot_samples=self.eot_samples, **common),
                    APGD(loss="dlr", steps=self.steps, eot_samples=self.eot_samples, **common)]
        return [APGD(loss="ce", steps=self.steps, **common),
                APGDT(steps=self.steps, n_target_classes=self.n_target_classes, **common),
                FABT(steps=self.steps, n_target_classes=self.n_target_classes, **common),
                Square(max_queries=self.square_queries, p_init=0.8, **common)]

    def _attack(self, model_fn, x, y, logits, seed):
        raise TypeError("AutoAttack runs its components one after another; call it or use run()")

    def _attack_batch(self, model, x, y, seed_pair):
        x_adv = x.copy()
        robust = None
        clean_correct = None
        for index, attack in enumerate(self.components()):
            todo = np.arange(len(x)) if robust is None else np.flatnonzero(robust)
            if todo.size == 0:
                break
            result = attack._attack_batch(model, x[todo], y[todo], (seed_pair[0], seed_pair[1] * 16 + index))
            if robust is None:
                clean_correct = result.clean_correct
                robust = clean_correct.copy()
            fooled = todo[result.success]
            x_adv[fooled] = result.x_adv[result.success]
            robust[fooled] = False
        delta = (x_adv - x).reshape(len(x), -1)
        return AttackResult(
            x_adv=x_adv,
            success=clean_correct & ~robust,
            clean_correct=clean_correct,
            adv_correct=robust,
            l2=np.linalg.norm(delta, axis=1).astype(np.float32),
            linf=np.abs(delta).max(axis=1).astype(np.float32),
            params=self.params,
        )
