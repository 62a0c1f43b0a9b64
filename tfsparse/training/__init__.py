"""Keras machinery of training (SPEC §8): fit, AdversarialModel, CertifiedModel (IBP / CROWN-IBP),
NoiseAugmentedModel (the base classifier of randomized smoothing), losses, callbacks, schedules, strategies (``distribute``) and mixed precision (``precision``).

Runs (config → data → model → fit → evaluation → files) live one floor up, in
:mod:`tfsparse.pipelines`.
"""

from tfsparse.sparsity import UpdatePruningStep
from tfsparse.training.adversarial import AdversarialModel
from tfsparse.training.adversarial import train_adversarial
from tfsparse.training.certified import CertifiedModel
from tfsparse.training.noise_augmented import NoiseAugmentedModel
from tfsparse.training.callbacks import CheckpointedCallback
from tfsparse.training.callbacks import EpochCheckpoint
from tfsparse.training.callbacks import NaNGuard
from tfsparse.training.callbacks import Persistent
from tfsparse.training.callbacks import SparsityMonitor
from tfsparse.training.callbacks import StopAtStep
from tfsparse.training.callbacks import StopC
from tfsparse.training.callbacks import StopE
from tfsparse.training.callbacks import TrainingClock
from tfsparse.training.callbacks import backup_and_restore
from tfsparse.training.callbacks import checkpointed_epochs
from tfsparse.training.clean import OPTIMIZERS
from tfsparse.training.clean import compile_model
from tfsparse.training.clean import fit_arrays
from tfsparse.training.clean import is_binary
from tfsparse.training.clean import loss_for
from tfsparse.training.clean import make_optimizer
from tfsparse.training.clean import steps_for
from tfsparse.training.clean import train
from tfsparse.training.distribute import STRATEGIES
from tfsparse.training.distribute import is_chief
from tfsparse.training.distribute import per_replica_batch
from tfsparse.training.distribute import strategy_from_config
from tfsparse.training.losses import add_lasso
from tfsparse.training.losses import ensemble_loss
from tfsparse.training.losses import ensemble_sample_weights
from tfsparse.training.losses import lasso_penalty
from tfsparse.training.precision import float32_logits
from tfsparse.training.precision import policy_name
from tfsparse.training.precision import precision_policy
from tfsparse.training.robustness_eval import RobustnessEval
from tfsparse.training.schedules import LR_SCHEDULES
from tfsparse.training.schedules import CaffeInvDecay
from tfsparse.training.schedules import make_schedule
