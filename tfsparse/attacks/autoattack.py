"""AutoAttack (Croce & Hein, ICML 2020 §4): a parameter-free ensemble, per-sample worst case.

Each component attacks only the points every earlier component left robust, and a point
counts as robust only if none of them fooled it inside the ε-ball — the robust accuracy
RobustBench requires. Two versions, as in the reference ``autoattack.py``:

* ``standard`` — APGD-CE (no restarts), APGD-T (targeted DLR over the top
  ``n_target_classes`` classes), FAB-T (minimum-norm, targeted; here it stops a point at its
  first misclassified point within ε, ``stop_when_fooled``) and Square
  (``square_queries`` queries, p_init 0.8), each with ``steps`` iterations;
* ``rand`` — for models random at inference: APGD-CE and APGD-DLR with EOT over
  ``eot_samples`` draws per gradient.

As the reference ``run_standard_evaluation`` does, the components run one after another over
the whole data set: stage ``k`` attacks, in batches, only the points every earlier stage left
robust (so its batches are full even when few points remain), and after each stage the robust
accuracy over all points and the stage's seconds are recorded (:class:`AutoAttackResult`
``stages``; with ``progress=True`` a bar per stage ticks per batch and a line reports the stage's
robust accuracy, as the reference prints it). Each component is a single traced loop per
batch; only the bookkeeping of which points are still robust happens between them, in NumPy.
"""

import dataclasses
import time

import numpy as np

from tfsparse.attacks import lp
from tfsparse.attacks.apgd import APGD
from tfsparse.attacks.apgd import APGDT
from tfsparse.attacks.base import AttackResult
from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.base import as_batch
from tfsparse.attacks.base import positive_int
from tfsparse.attacks.fab import FABT
from tfsparse.attacks.square import Square

VERSIONS = ("standard", "rand")

# The stages of each version, by the reference code's names, in the order they run.
STAGES = {"standard": ("APGD-CE", "APGD-T", "FAB-T", "Square"), "rand": ("APGD-CE", "APGD-DLR")}


@dataclasses.dataclass(frozen=True)
class AutoAttackResult(AttackResult):
    """An :class:`~tfsparse.attacks.base.AttackResult` with the ensemble's per-stage record.

    Attributes:
      stages: one dict per stage that ran, in order: ``name`` (:data:`STAGES`), ``attacked``
        (points handed to it: those still robust), ``robust_accuracy`` (over all points, after
        this stage: non-increasing, the last equals ``adv_accuracy``) and ``seconds`` (its wall
        time). Stages after the one that left no point robust do not run and are not listed.
    """

    stages: tuple = ()


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
                FABT(steps=self.steps, n_target_classes=self.n_target_classes, stop_when_fooled=True,
                     **common),
                Square(max_queries=self.square_queries, p_init=0.8, **common)]

    def _attack(self, model_fn, x, y, logits, seed):
        raise TypeError("AutoAttack runs its components one after another; call it or use run()")

    def stage_names(self):
        """The names of the stages (components), in the order they run: :data:`STAGES`."""
        return [_stage_name(attack) for attack in self.components()]

    def _attack_batch(self, model, x, y, seed_pair):
        return self._ensemble(model, x, y, seed_pair, batch_size=len(x), progress=False)

    def run(self, model, x, y, *, batch_size=500, seed=0, progress=False) -> AutoAttackResult:
        """The ensemble over a whole data set, stage by stage (reference ``run_standard_evaluation``).

        Stage ``k``, batch ``b`` (of the points still robust, in order) is seeded
        ``(seed, 16·b + k)``; a repeated run with the same seed gives the same result.

        Args:
          model: a Keras model returning logits, called with ``training=False``.
          x: inputs ``(N, ...)`` in [0, 1].
          y: integer labels ``(N,)``.
          batch_size: points per traced call of a component.
          seed: integer seed of the run.
          progress: a tqdm bar per stage (one tick per batch, the robust accuracy so far beside
            it) and a line after each stage with its robust accuracy and seconds.

        Returns:
          An :class:`AutoAttackResult` (``stages`` included).

        Raises:
          ValueError: on mismatched shapes, bad labels, or ``batch_size < 1``.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        x, y = as_batch(x, y)
        return self._ensemble(model, x, y, (seed, 0), batch_size=batch_size, progress=progress)

    def _ensemble(self, model, x, y, seed_pair, *, batch_size, progress):
        n = len(x)
        x_adv = x.copy()
        robust = clean_correct = None
        stages = []
        names = self.stage_names()
        for index, (name, attack) in enumerate(zip(names, self.components())):
            todo = np.arange(n) if robust is None else np.flatnonzero(robust)
            if todo.size == 0:
                break
            start = time.perf_counter()
            bar = _stage_bar(progress, f"AutoAttack {index + 1}/{len(names)} {name}", todo.size)
            for b, first in enumerate(range(0, todo.size, batch_size)):
                rows = todo[first:first + batch_size]
                result = attack._attack_batch(
                    model, x[rows], y[rows], (seed_pair[0], (seed_pair[1] + b) * 16 + index))
                if robust is None:  # the first stage sees every point: its clean check is ours
                    clean_correct = np.zeros(n, bool)
                    robust = np.zeros(n, bool)
                    clean_correct[rows] = result.clean_correct
                    robust[rows] = result.clean_correct
                fooled = rows[result.success]
                x_adv[fooled] = result.x_adv[result.success]
                robust[fooled] = False
                if bar is not None:
                    bar.update(rows.size)
                    bar.set_postfix(robust_accuracy=f"{robust.mean():.2%}")
            stages.append({"name": name, "attacked": int(todo.size),
                           "robust_accuracy": float(robust.mean()),
                           "seconds": time.perf_counter() - start})
            if bar is not None:
                bar.close()
                bar.write(f"robust accuracy after {name}: {robust.mean():.2%} "
                          f"({stages[-1]['seconds']:.1f} s)")
        delta = (x_adv - x).reshape(n, -1)
        return AutoAttackResult(
            x_adv=x_adv,
            success=clean_correct & ~robust,
            clean_correct=clean_correct,
            adv_correct=robust,
            l2=np.linalg.norm(delta, axis=1).astype(np.float32),
            linf=np.abs(delta).max(axis=1).astype(np.float32),
            params=self.params,
            stages=tuple(stages),
        )


def _stage_name(attack):
    """The reference code's name of a component: APGD-CE / APGD-DLR, APGD-T, FAB-T, Square."""
    if isinstance(attack, APGD):
        return f"APGD-{attack.loss.upper()}"
    return {APGDT: "APGD-T", FABT: "FAB-T", Square: "Square"}.get(type(attack), type(attack).__name__)


def _stage_bar(progress, description, total):
    """A tqdm bar over one stage's points, or None without ``progress``."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="img")
