"""Adversarial attacks (SPEC §6): batched, in-graph, clipped to [0, 1] by the base class.

``ATTACKS`` maps each attack's ``name`` to its class, so ``ATTACKS[p.pop("name")](**p)`` rebuilds
an attack from a results record's ``params``.

White-box: FGSM, RFGSM (l∞, one step); PGD and EOTPGD (l∞ / l2, iterative, EOT for random
models); APGD (CE / DLR loss) and APGDT (targeted DLR), Croce & Hein 2020; FABT (targeted
minimum-norm); DeepFool and CarliniWagnerL2 (minimal l2). AutoAttack: the standard and
``rand`` ensembles with a per-sample worst case. Black-box: ZOO (queries counted) and
TransferAttack (crafted on a source model); Square (score-based random search, queries counted).
"""

from tfsparse.attacks import lp
from tfsparse.attacks.apgd import APGD
from tfsparse.attacks.apgd import APGDT
from tfsparse.attacks.autoattack import AutoAttack
from tfsparse.attacks.base import Attack
from tfsparse.attacks.base import AttackResult
from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.attacks.base import labels_from_logits
from tfsparse.attacks.base import loss_per_sample
from tfsparse.attacks.carlini_wagner import CarliniWagnerL2
from tfsparse.attacks.deepfool import DeepFool
from tfsparse.attacks.eot import EOTPGD
from tfsparse.attacks.fab import FABT
from tfsparse.attacks.fgsm import FGSM
from tfsparse.attacks.fgsm import fgsm_step
from tfsparse.attacks.fgsm import loss_gradient
from tfsparse.attacks.pgd import PGD
from tfsparse.attacks.pgd import pgd_perturb
from tfsparse.attacks.rfgsm import RFGSM
from tfsparse.attacks.square import Square
from tfsparse.attacks.transfer import TransferAttack
from tfsparse.attacks.zoo import ZOO

# TransferAttack is left out: its source model cannot be rebuilt from a results record.
ATTACKS = {cls.name: cls for cls in (FGSM, RFGSM, PGD, EOTPGD, APGD, APGDT, FABT, DeepFool, CarliniWagnerL2, ZOO,
                                     Square, AutoAttack)}
# Attacks that only query the model (or a source model): no gradient of the attacked model.
BLACK_BOX = (ZOO, Square, TransferAttack)

__all__ = [
    "APGD",
    "APGDT",
    "ATTACKS",
    "AutoAttack",
    "BLACK_BOX",
    "Attack",
    "AttackResult",
    "CarliniWagnerL2",
    "DeepFool",
    "EOTPGD",
    "FABT",
    "FGSM",
    "FixedEpsilonAttack",
    "PGD",
    "RFGSM",
    "Square",
    "TransferAttack",
    "ZOO",
    "fgsm_step",
    "labels_from_logits",
    "loss_gradient",
    "loss_per_sample",
    "lp",
    "pgd_perturb",
]
