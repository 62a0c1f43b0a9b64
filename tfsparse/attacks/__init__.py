"""Adversarial attacks (SPEC §6): batched, in-graph, clipped to [0, 1] by the base class.

``ATTACKS`` maps each attack's ``name`` to its class, so ``ATTACKS[p.pop("name")](**p)`` rebuilds
an attack from a results record's ``params``.
"""

from tfsparse.attacks import lp
from tfsparse.attacks.base import Attack
from tfsparse.attacks.base import AttackResult
from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.base import labels_from_logits
from tfsparse.attacks.base import loss_per_sample
from tfsparse.attacks.deepfool import DeepFool
from tfsparse.attacks.fgsm import FGSM

ATTACKS = {cls.name: cls for cls in (FGSM, DeepFool)}

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackResult",
    "DeepFool",
    "FGSM",
    "FixedEpsilonAttack",
    "labels_from_logits",
    "loss_per_sample",
    "lp",
]
