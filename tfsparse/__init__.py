"""tfsparse: sparse and adversarially robust neural networks on TensorFlow/Keras.

Importing tfsparse selects Keras 2 (``tf_keras``) before TensorFlow loads, because
tensorflow-model-optimization does not support Keras 3 (SPEC §1). The subpackages:

* ``tfsparse.data``: embedded MNIST sample, local/TFDS readers, tf.data pipelines.
* ``tfsparse.models``: the model zoo (``models.get(name)``).
* ``tfsparse.layers``: input normalisation, CNI/PNI noise injection, activation L1.
* ``tfsparse.sparsity``: tfmot pruning (progressive, GUP/LUP, FP/NS, γ, lottery, IWI), stats.
* ``tfsparse.attacks``: FGS, rFGS, PGD, EOT-PGD, DeepFool, C&W L2, ZOO, transfer.
* ``tfsparse.metrics``: r∞, r2, PGD accuracy, distortion bound, CLEVER, theory, diagnostics.
* ``tfsparse.training``: clean and PGD adversarial training, RSR loss, callbacks.
* ``tfsparse.experiments``: the papers' pipelines behind ``scripts/``.
"""

from tfsparse._keras_guard import select_legacy_keras

select_legacy_keras()

__version__ = "0.1.0"

# Curated re-exports, grouped like the subpackages above.
from tfsparse import attacks  # noqa: E402
from tfsparse import data  # noqa: E402
from tfsparse import layers  # noqa: E402
from tfsparse import metrics  # noqa: E402
from tfsparse import models  # noqa: E402
from tfsparse import sparsity  # noqa: E402
from tfsparse import training  # noqa: E402
from tfsparse.attacks import EOTPGD  # noqa: E402
from tfsparse.attacks import FGSM  # noqa: E402
from tfsparse.attacks import PGD  # noqa: E402
from tfsparse.attacks import RFGSM  # noqa: E402
from tfsparse.attacks import ZOO  # noqa: E402
from tfsparse.attacks import CarliniWagnerL2  # noqa: E402
from tfsparse.attacks import DeepFool  # noqa: E402
from tfsparse.attacks import TransferAttack  # noqa: E402
from tfsparse.data import load as load_data  # noqa: E402
from tfsparse.evaluation import evaluate  # noqa: E402
from tfsparse.export import save_saved_model  # noqa: E402
from tfsparse.layers import NoisyConv2D  # noqa: E402
from tfsparse.layers import NoisyDense  # noqa: E402
from tfsparse.metrics import clever  # noqa: E402
from tfsparse.metrics import distortion_lower_bound  # noqa: E402
from tfsparse.metrics import pgd_accuracy  # noqa: E402
from tfsparse.metrics import r2  # noqa: E402
from tfsparse.metrics import r_inf  # noqa: E402
from tfsparse.sparsity import prune  # noqa: E402
from tfsparse.sparsity import strip  # noqa: E402
from tfsparse.sparsity import weight_sparsity  # noqa: E402
from tfsparse.training import AdversarialModel  # noqa: E402
from tfsparse.training import RobustnessEval  # noqa: E402
