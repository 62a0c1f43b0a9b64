"""Custom Keras layers of tfsparse."""

from tfsparse.layers.noise import NoisyConv2D
from tfsparse.layers.noise import NoisyDense
from tfsparse.layers.noise import has_inference_noise
from tfsparse.layers.noise import noisy_layers
from tfsparse.layers.noise import set_inference_noise
from tfsparse.layers.normalization import Normalize

__all__ = ["Normalize", "NoisyConv2D", "NoisyDense", "has_inference_noise", "noisy_layers", "set_inference_noise"]
