"""Robustness metrics (SPEC §7): Guo's r∞ / r2, PGD accuracy, the distortion lower bound, CLEVER,
the Lipschitz upper bound, confidence intervals, the linear-model theory and gradient-masking diagnostics."""

from tfsparse.metrics.clever import clever
from tfsparse.metrics.diagnostics import check_accuracy_reaches_zero
from tfsparse.metrics.diagnostics import check_eot_for_stochastic_model
from tfsparse.metrics.diagnostics import check_multi_step_not_weaker
from tfsparse.metrics.diagnostics import check_white_box_beats_black_box
# The one declared-randomness detector lives with the noise layers; this is its name here.
from tfsparse.layers import has_inference_noise as has_random_inference
from tfsparse.metrics.intervals import mean_interval
from tfsparse.metrics.intervals import wilson_interval
from tfsparse.metrics.lipschitz import lipschitz_bound
from tfsparse.metrics.robustness import clean_accuracy
from tfsparse.metrics.robustness import distortion_lower_bound
from tfsparse.metrics.robustness import pgd_accuracy
from tfsparse.metrics.robustness import predict_labels
from tfsparse.metrics.robustness import r2
from tfsparse.metrics.robustness import r_inf
from tfsparse.metrics.theory import linear_binary_margins
from tfsparse.metrics.theory import linear_binary_r2
from tfsparse.metrics.theory import linear_binary_r_inf_bound
from tfsparse.metrics.theory import linear_model_bounds
from tfsparse.metrics.theory import linear_multiclass_r2_bound
from tfsparse.metrics.theory import linear_multiclass_r_inf_bound

__all__ = [
    "check_accuracy_reaches_zero",
    "check_eot_for_stochastic_model",
    "check_multi_step_not_weaker",
    "check_white_box_beats_black_box",
    "clean_accuracy",
    "clever",
    "distortion_lower_bound",
    "has_random_inference",
    "linear_binary_margins",
    "linear_binary_r2",
    "linear_binary_r_inf_bound",
    "linear_model_bounds",
    "linear_multiclass_r2_bound",
    "linear_multiclass_r_inf_bound",
    "lipschitz_bound",
    "mean_interval",
    "pgd_accuracy",
    "predict_labels",
    "r2",
    "r_inf",
    "wilson_interval",
]
