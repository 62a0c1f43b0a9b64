"""Custom Keras layers of tfsparse."""

from tfsparse.layers.normalization import Normalize

__all__ = ["Normalize"]
