"""Building blocks shared by the zoo builders.

``Layers`` is the one place where zoo builders create layers that own weights
(conv and dense kernels, batch normalisation). A later change that swaps in
noise-injection layers (CNI, SPEC §5) or new weight options subclasses ``Layers``
or extends it here, and every architecture follows without being edited.

The helpers below it validate the arguments every builder shares and create the
model input followed by the ``Normalize`` layer (normalisation inside the model
keeps attack budgets in [0, 1] pixel units).
"""

import math

from tfsparse.compat import keras
from tfsparse.layers.noise import SIGMA_RULES
from tfsparse.layers.noise import NoisyConv2D
from tfsparse.layers.noise import NoisyDense
from tfsparse.layers.normalization import Normalize

NOISE_MODES = (None, "channel", "layer")


class Layers:
    """Factory for the weight-owning layers of the zoo models.

    Every kernel gets the same initializer and the same L2 penalty; biases and
    batch-normalisation parameters get neither.

    Args:
      weight_decay: SGD-style weight decay ``wd`` (as in PyTorch's ``SGD(weight_decay=wd)``):
        the loss gains ``(wd / 2) * sum(kernel ** 2)`` per kernel, whose gradient is
        ``wd * kernel``. So ``weight_decay=5e-4`` reproduces the CIFAR recipes of
        SPEC §8. ``0.0`` (default) adds no regulariser.
      kernel_initializer: Keras initializer (name, instance or config) for every
        conv and dense kernel. Default ``"he_normal"`` (He et al. 2015).
      bn_momentum: moving-statistics momentum of ``BatchNormalization``. Default 0.9,
        which equals PyTorch's ``momentum=0.1`` used by the papers' reference code.
      bn_epsilon: ``BatchNormalization`` epsilon. Default 1e-5 (PyTorch's default).
      noise: ``None`` (plain ``Conv2D``/``Dense``, default), ``"channel"`` (CNI, RSR
        eq. 4: ``NoisyConv2D``/``NoisyDense`` with one trainable α per output channel)
        or ``"layer"`` (PNI: one α per layer).
      noise_alpha: initial α of the noise layers (RSR/PNI: 0.25).
      inference_noise: initial inference-noise switch of the noise layers (SPEC §5).
      noise_sigma_rule: how the noise layers measure σ (RSR eq. 4): ``"full"`` (default,
        variance of the whole kernel) or ``"nonzero"`` (of its non-zero entries;
        ``tfsparse.layers.SIGMA_RULES``).

    Raises:
      ValueError: if ``weight_decay`` < 0, ``bn_momentum`` is outside [0, 1),
        ``bn_epsilon`` <= 0, ``noise`` or ``noise_sigma_rule`` is unknown or ``noise_alpha`` < 0.

    Example:

    >>> from tfsparse import models
    >>> model = models.get("resnet20")(layers=models.Layers(weight_decay=5e-4))
    """

    def __init__(
        self,
        weight_decay=0.0,
        kernel_initializer="he_normal",
        bn_momentum=0.9,
        bn_epsilon=1e-5,
        noise=None,
        noise_alpha=0.25,
        inference_noise=False,
        noise_sigma_rule="full",
    ):
        if not weight_decay >= 0:
            raise ValueError(f"Layers: weight_decay must be >= 0, got {weight_decay!r}")
        if not 0 <= bn_momentum < 1:
            raise ValueError(f"Layers: bn_momentum must be in [0, 1), got {bn_momentum!r}")
        if not bn_epsilon > 0:
            raise ValueError(f"Layers: bn_epsilon must be > 0, got {bn_epsilon!r}")
        if noise not in NOISE_MODES:
            raise ValueError(f"Layers: noise must be one of {NOISE_MODES}, got {noise!r}")
        if not noise_alpha >= 0:
            raise ValueError(f"Layers: noise_alpha must be >= 0, got {noise_alpha!r}")
        if noise_sigma_rule not in SIGMA_RULES:
            raise ValueError(f"Layers: noise_sigma_rule must be one of {SIGMA_RULES}, got {noise_sigma_rule!r}")
        self.noise_sigma_rule = noise_sigma_rule
        self.noise = noise
        self.noise_alpha = float(noise_alpha)
        self.inference_noise = bool(inference_noise)
        self.weight_decay = float(weight_decay)
        self.kernel_initializer = kernel_initializer
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)

    def __repr__(self):
        return (
            f"Layers(weight_decay={self.weight_decay!r}, "
            f"kernel_initializer={self.kernel_initializer!r}, "
            f"bn_momentum={self.bn_momentum!r}, bn_epsilon={self.bn_epsilon!r}, "
            f"noise={self.noise!r}, noise_alpha={self.noise_alpha!r}, "
            f"inference_noise={self.inference_noise!r}, noise_sigma_rule={self.noise_sigma_rule!r})"
        )

    def _noise_options(self):
        return {
            "mode": self.noise,
            "alpha_initializer": self.noise_alpha,
            "inference_noise": self.inference_noise,
            "sigma_rule": self.noise_sigma_rule,
        }

    def _kernel_options(self):
        # A fresh initializer/regulariser per layer: Keras warns when one
        # initializer instance is shared, and each layer must own its config.
        regularizer = (
            keras.regularizers.L2(self.weight_decay / 2) if self.weight_decay > 0 else None
        )
        return {
            "kernel_initializer": keras.initializers.get(self.kernel_initializer),
            "kernel_regularizer": regularizer,
        }

    def conv(self, filters, kernel_size, strides=1, padding="same", use_bias=True, name=None):
        """A ``Conv2D`` (or ``NoisyConv2D`` when ``noise`` is set) without activation (NHWC)."""
        if self.noise:
            return NoisyConv2D(
                filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias,
                name=name, **self._noise_options(), **self._kernel_options(),
            )
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=use_bias,
            name=name,
            **self._kernel_options(),
        )

    def dense(self, units, use_bias=True, name=None):
        """A ``Dense`` (or ``NoisyDense`` when ``noise`` is set) layer without activation."""
        if self.noise:
            return NoisyDense(
                units, use_bias=use_bias, name=name, **self._noise_options(),
                **self._kernel_options(),
            )
        return keras.layers.Dense(units, use_bias=use_bias, name=name, **self._kernel_options())

    def bn(self, name=None):
        """A ``BatchNormalization`` over the channel (last) axis."""
        return keras.layers.BatchNormalization(
            momentum=self.bn_momentum, epsilon=self.bn_epsilon, name=name
        )


def scaled(units, width):
    """``units`` scaled by the width multiplier, rounded, at least 1."""
    return max(1, int(round(units * width)))


def validate(arch, num_classes, input_shape, width, *, min_classes=2, min_size=1):
    """Checks the arguments every builder shares; returns ``input_shape`` as a tuple.

    ``min_size`` is the smallest height and width the architecture can process.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise ValueError(f"{arch}: num_classes must be an int, got {num_classes!r}")
    if num_classes < min_classes:
        raise ValueError(f"{arch}: num_classes must be >= {min_classes}, got {num_classes}")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"{arch}: width must be a number > 0, got {width!r}")
    if not math.isfinite(width):
        raise ValueError(f"{arch}: width must be finite, got {width!r}")
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"{arch}: input_shape must be (height, width, channels), got {input_shape!r}"
        ) from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"{arch}: input_shape must be (height, width, channels) with positive sizes, "
            f"got {input_shape!r}"
        )
    if shape[0] < min_size or shape[1] < min_size:
        raise ValueError(
            f"{arch}: input height and width must be >= {min_size}, got {shape[:2]}"
        )
    return shape


def normalized_input(arch, input_shape, mean, std):
    """Creates the model ``Input`` and applies ``Normalize(mean, std, name="normalize")``.

    Returns ``(inputs, normalized)``. ``mean`` and ``std`` are scalars or one value per
    channel of ``input_shape``.
    """
    channels = input_shape[-1]
    for label, value in (("mean", mean), ("std", std)):
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if len(values) not in (1, channels):
            raise ValueError(
                f"{arch}: {label} must be a scalar or have one value per channel "
                f"({channels}), got {value!r}"
            )
    inputs = keras.Input(shape=input_shape, name="image")
    try:
        normalized = Normalize(mean, std, name="normalize")(inputs)
    except ValueError as err:
        raise ValueError(f"{arch}: {err}") from None
    return inputs, normalized
