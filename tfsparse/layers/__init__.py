"""Custom Keras layers of tfsparse."""

from tfsparse.layers.noise import SIGMA_RULES
from tfsparse.layers.noise import NoisyConv2D
from tfsparse.layers.noise import NoisyDense
from tfsparse.layers.noise import has_inference_noise
from tfsparse.layers.noise import noisy_layers
from tfsparse.layers.noise import set_inference_noise
from tfsparse.layers.normalization import Normalize
from tfsparse.layers.regularization import ActivationL1
from tfsparse.layers.regularization import insert_activation_l1

__all__ = [
    "ActivationL1",
    "Normalize",
    "NoisyConv2D",
    "NoisyDense",
    "SIGMA_RULES",
    "has_inference_noise",
    "insert_activation_l1",
    "noisy_layers",
    "set_inference_noise",
]
