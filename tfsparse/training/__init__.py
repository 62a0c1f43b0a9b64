"""Training recipes and callbacks (SPEC §8)."""

from tfsparse.sparsity import UpdatePruningStep
from tfsparse.training.adversarial import PGD_SETTINGS
from tfsparse.training.adversarial import AdversarialModel
from tfsparse.training.adversarial import PGDSettings
from tfsparse.training.callbacks import NaNGuard
from tfsparse.training.callbacks import SparsityMonitor
from tfsparse.training.callbacks import StopC
from tfsparse.training.callbacks import StopE
from tfsparse.training.callbacks import backup_and_restore
from tfsparse.training.clean import compile_model
from tfsparse.training.clean import is_binary
from tfsparse.training.clean import loss_for
from tfsparse.training.clean import make_optimizer
from tfsparse.training.clean import steps_for
from tfsparse.training.clean import train
from tfsparse.training.losses import add_lasso
from tfsparse.training.losses import ensemble_loss
from tfsparse.training.losses import ensemble_sample_weights
from tfsparse.training.losses import lasso_penalty
from tfsparse.training.recipes import train_and_evaluate
from tfsparse.training.robustness_eval import RobustnessEval
from tfsparse.training.schedules import CaffeInvDecay
from tfsparse.training.schedules import make_schedule
