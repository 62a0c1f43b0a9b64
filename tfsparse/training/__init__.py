"""Training recipes and callbacks (SPEC §8)."""

from tfsparse.training.callbacks import NaNGuard
from tfsparse.training.clean import compile_model
from tfsparse.training.clean import is_binary
from tfsparse.training.clean import loss_for
from tfsparse.training.clean import steps_for
from tfsparse.training.clean import train
from tfsparse.training.schedules import CaffeInvDecay
from tfsparse.training.schedules import make_schedule
from tfsparse.training.recipes import train_and_evaluate
