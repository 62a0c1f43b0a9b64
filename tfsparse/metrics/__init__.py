"""Robustness metrics (SPEC §7): Guo's empirical r∞ / r2 and the linear-model theory."""

from tfsparse.metrics.robustness import clean_accuracy
from tfsparse.metrics.robustness import predict_labels
from tfsparse.metrics.robustness import r2
from tfsparse.metrics.robustness import r_inf
from tfsparse.metrics.theory import linear_binary_margins
from tfsparse.metrics.theory import linear_binary_r2
from tfsparse.metrics.theory import linear_binary_r_inf_bound

__all__ = [
    "clean_accuracy",
    "linear_binary_margins",
    "linear_binary_r2",
    "linear_binary_r_inf_bound",
    "predict_labels",
    "r2",
    "r_inf",
]
