"""Trainable weight-noise injection: CNI (channel-wise) and PNI (layer-wise) (SPEC §5).

RSR eq. 4 (Rakin et al. 2019) perturbs the weights, not the activations:

    W̃ = W + α ⊙ η,    η ~ N(0, σ²),

where σ² is the variance of ``W`` measured at run time (no gradient flows through σ),
and α is trainable: one coefficient per output channel (CNI, ``mode="channel"``,
α ∈ R^{q,1,1,1}) or one for the whole layer (PNI, He et al. 2019, ``mode="layer"``).

Decisions made once, here:
  * **Noise switch.** Keras's ``training`` flag already drives batch normalisation and
    tfmot's pruning step (every ``training=True`` call advances it, STYLE §4), so noise
    has its own switch: it is on when ``training=True`` OR when the persistent
    ``inference_noise`` flag is set. The flag is a non-trainable variable (so it is part
    of the weights, checkpoints and SavedModels and can be flipped on a live or exported
    graph) and is also written to ``get_config`` (so a reloaded ``.keras``/h5 model
    starts with the same setting). An attack can therefore call the model with
    ``training=False`` (BN in inference mode, pruning step untouched) and still face the
    noise when the recipe wants it; :func:`set_inference_noise` flips every layer.
  * **σ after pruning** (``sigma_rule``). RSR eq. 4 says σ² is the variance of ``W``:
    with ``sigma_rule="full"`` (default) it is the variance of the whole kernel, pruned
    zeros included, so pruning lowers σ with the weights' spread and the α learned on the
    dense tensor keeps its meaning. ``sigma_rule="nonzero"`` (tfsparse's earlier rule)
    measures the variance of the live (non-zero) entries only; after pruning a fraction
    ``s`` of a zero-mean kernel that raises σ by about ``1/√(1−s)`` (×1.41 at 50 %,
    ×2.58 at 85 %) against the full-tensor σ. Under both rules η is multiplied by
    ``W != 0``: pruned weights get no noise (RSR §3.4). The rule is part of ``get_config``;
    a layer saved before the option existed reloads with ``"nonzero"``, the rule it was
    trained with.
  * **α's name** is ``"alpha"``; it is not returned by ``get_prunable_weights()``, so
    tfsparse's weight decay, lasso and sparsity statistics (which act on prunable
    kernels only) never touch it.
  * **tfmot.** The layers do not subclass tfmot's ``PrunableLayer`` (``layers`` sits
    below ``sparsity``, the only package importing tfmot); they implement its one
    method, ``get_prunable_weights()``, and ``tfsparse.sparsity.prune`` registers them
    as virtual subclasses (``PrunableLayer.register``) when it is imported.

The random numbers come from the layer's seeded ``tf.random.Generator`` (tf-keras
``BaseRandomLayer``), which also works inside XLA and SavedModel functions.
"""

from tfsparse.compat import keras
from tfsparse.compat import tf

# tf-keras's seeded-RNG base (GaussianNoise, Dropout); not exported under keras.layers.
BaseRandomLayer = keras.src.engine.base_layer.BaseRandomLayer

_MODES = ("channel", "layer")
# How σ is measured (RSR eq. 4): the variance of the whole kernel ("full", the paper's rule)
# or of its non-zero entries ("nonzero").
SIGMA_RULES = ("full", "nonzero")


class _NoiseMixin:
    """Shared CNI/PNI logic: α, the switch, σ and the noisy kernel."""

    def _init_noise(self, mode, alpha_initializer, inference_noise, sigma_rule):
        if mode not in _MODES:
            raise ValueError(f"{type(self).__name__}: mode must be one of {_MODES}, got {mode!r}")
        if sigma_rule not in SIGMA_RULES:
            raise ValueError(
                f"{type(self).__name__}: sigma_rule must be one of {SIGMA_RULES}, got {sigma_rule!r}"
            )
        if isinstance(alpha_initializer, (int, float)) and not alpha_initializer >= 0:
            raise ValueError(
                f"{type(self).__name__}: alpha_initializer must be >= 0, got {alpha_initializer!r}"
            )
        self.mode = mode
        self.sigma_rule = sigma_rule
        self.alpha_initializer = (
            keras.initializers.Constant(float(alpha_initializer))
            if isinstance(alpha_initializer, (int, float))
            else keras.initializers.get(alpha_initializer)
        )
        self._inference_noise_init = bool(inference_noise)

    def _build_noise(self, units):
        shape = (units,) if self.mode == "channel" else ()
        self.alpha = self.add_weight(
            name="alpha", shape=shape, initializer=self.alpha_initializer, trainable=True
        )
        self.noise_switch = self.add_weight(
            name="inference_noise",
            shape=(),
            initializer=keras.initializers.Constant(float(self._inference_noise_init)),
            trainable=False,
        )

    @property
    def inference_noise(self):
        """Whether noise stays on when the layer is called with ``training=False``."""
        if not self.built:
            return self._inference_noise_init
        return bool(self.noise_switch.numpy() > 0.5)

    @inference_noise.setter
    def inference_noise(self, on):
        self._inference_noise_init = bool(on)
        if self.built:
            self.noise_switch.assign(float(bool(on)))

    @classmethod
    def from_config(cls, config):
        # A layer saved before ``sigma_rule`` existed was trained with the non-zero rule, its
        # only rule then: it reloads with that rule, not with today's default.
        return super().from_config({"sigma_rule": "nonzero", **config})

    def get_prunable_weights(self):
        """The kernel only (α, bias and the switch are never pruned; tfmot PrunableLayer API)."""
        return [self.kernel]

    def noise_sigma(self):
        """σ of RSR eq. 4 for the current kernel, per :attr:`sigma_rule` (gradient stopped).

        ``"full"``: the standard deviation of every kernel entry (pruned zeros included);
        ``"nonzero"``: of the non-zero entries only (0 for an all-zero kernel, whose noise
        is masked away anyway).
        """
        kernel = self.kernel
        if self.sigma_rule == "full":
            return tf.stop_gradient(tf.math.reduce_std(kernel))
        live = tf.cast(tf.not_equal(kernel, 0), kernel.dtype)
        count = tf.maximum(tf.reduce_sum(live), 1.0)
        mean = tf.reduce_sum(kernel) / count
        variance = tf.reduce_sum(live * tf.square(kernel - mean)) / count
        return tf.stop_gradient(tf.sqrt(variance))

    def noisy_kernel(self, training=None):
        """``W + on · α ⊙ σ·η ⊙ 1[W ≠ 0]`` with ``on = training or inference_noise`` (RSR eq. 4).

        Args:
          training: Keras training flag (Python bool, tensor or None = learning phase).

        Returns:
          The kernel to use in this call, same shape and dtype as ``self.kernel``.
        """
        kernel = self.kernel
        if training is None:
            training = keras.backend.learning_phase()
        on = tf.logical_or(tf.cast(training, tf.bool), self.noise_switch > 0.5)
        live = tf.cast(tf.not_equal(kernel, 0), kernel.dtype)
        sigma = self.noise_sigma()
        eta = self._random_generator.random_normal(
            shape=tf.shape(kernel), mean=0.0, stddev=1.0, dtype=kernel.dtype
        )
        # α broadcasts over the last (output-channel) axis of conv and dense kernels.
        noise = tf.cast(self.alpha, kernel.dtype) * sigma * eta * live
        return kernel + tf.cast(on, kernel.dtype) * noise

    def _noise_config(self):
        return {
            "mode": self.mode,
            "alpha_initializer": keras.initializers.serialize(self.alpha_initializer),
            "inference_noise": self.inference_noise,
            "sigma_rule": self.sigma_rule,
        }


class NoisyConv2D(_NoiseMixin, keras.layers.Conv2D, BaseRandomLayer):
    """``Conv2D`` with trainable channel-wise (CNI) or layer-wise (PNI) weight noise.

    Implements RSR eq. 4: ``W̃ = W + α ⊙ η``, ``η ~ N(0, σ²)`` with σ² the run-time
    variance of the kernel (``sigma_rule``), gradient stopped through σ;
    α has one entry per output filter (``mode="channel"``) or is a scalar
    (``mode="layer"``). Pruned (zero) weights receive no noise.

    Args:
      filters, kernel_size: as ``Conv2D``; every other ``Conv2D`` argument is accepted.
      mode: ``"channel"`` (CNI, default) or ``"layer"`` (PNI).
      alpha_initializer: initial α (a number, default 0.25 as in PNI/RSR, or a Keras
        initializer).
      inference_noise: keep noise on when called with ``training=False`` (RSR Table 5
        "noise on"). Stored in a non-trainable variable and in ``get_config``.
      sigma_rule: ``"full"`` (default, RSR eq. 4: σ² = variance of the whole kernel, pruned
        zeros included) or ``"nonzero"`` (variance of the non-zero entries only). Stored in
        ``get_config``.
      seed: seed of the layer's noise generator.

    Call arguments:
      inputs: 4D NHWC tensor.
      training: noise is on when True, or when ``inference_noise`` is set.

    Input shape / Output shape: as ``Conv2D``.

    Raises:
      ValueError: on an unknown ``mode`` or ``sigma_rule``, or a negative α.

    References:
      Rakin et al. 2019, *Robust Sparse Regularization*, eq. 4 and §3.4;
      He, Rakin, Fan 2019, *Parametric Noise Injection* (PNI).

    Example:

    >>> layer = NoisyConv2D(8, 3, seed=1)
    >>> y = layer(tf.zeros([2, 6, 6, 3]), training=True)
    """

    def __init__(
        self, filters, kernel_size, *, mode="channel", alpha_initializer=0.25,
        inference_noise=False, sigma_rule="full", seed=None, **kwargs
    ):
        kwargs.pop("force_generator", None)
        super().__init__(filters, kernel_size, seed=seed, force_generator=True, **kwargs)
        if self.data_format != "channels_last" or self.groups != 1:
            raise ValueError("NoisyConv2D supports data_format='channels_last' and groups=1 only")
        self._init_noise(mode, alpha_initializer, inference_noise, sigma_rule)
        self.seed = seed

    def build(self, input_shape):
        super().build(input_shape)
        self._build_noise(self.filters)
        self._random_generator._maybe_init()

    def call(self, inputs, training=None):
        outputs = self.convolution_op(inputs, self.noisy_kernel(training))
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self):
        return {**super().get_config(), **self._noise_config(), "seed": self.seed}


class NoisyDense(_NoiseMixin, keras.layers.Dense, BaseRandomLayer):
    """``Dense`` with trainable per-unit (CNI) or layer-wise (PNI) weight noise.

    The dense analogue of :class:`NoisyConv2D` (RSR eq. 4 with one α per output unit).

    Args:
      units: as ``Dense``; every other ``Dense`` argument is accepted.
      mode: ``"channel"`` (one α per output unit, default) or ``"layer"`` (PNI).
      alpha_initializer: initial α (default 0.25) or a Keras initializer.
      inference_noise: keep noise on when called with ``training=False``.
      sigma_rule: ``"full"`` (default, RSR eq. 4) or ``"nonzero"``; see :class:`NoisyConv2D`.
      seed: seed of the layer's noise generator.

    Call arguments:
      inputs: tensor of shape ``(..., input_dim)``.
      training: noise is on when True, or when ``inference_noise`` is set.

    Input shape / Output shape: as ``Dense``.

    Raises:
      ValueError: on an unknown ``mode`` or ``sigma_rule``, or a negative α.

    References:
      Rakin et al. 2019, *Robust Sparse Regularization*, eq. 4.
    """

    def __init__(
        self, units, *, mode="channel", alpha_initializer=0.25, inference_noise=False,
        sigma_rule="full", seed=None, **kwargs
    ):
        kwargs.pop("force_generator", None)
        super().__init__(units, seed=seed, force_generator=True, **kwargs)
        self._init_noise(mode, alpha_initializer, inference_noise, sigma_rule)
        self.seed = seed

    def build(self, input_shape):
        super().build(input_shape)
        self._build_noise(self.units)
        self._random_generator._maybe_init()

    def call(self, inputs, training=None):
        kernel = self.noisy_kernel(training)
        if inputs.shape.rank == 2:
            outputs = tf.matmul(inputs, kernel)
        else:
            outputs = tf.tensordot(inputs, kernel, [[inputs.shape.rank - 1], [0]])
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self):
        return {**super().get_config(), **self._noise_config(), "seed": self.seed}


def noisy_layers(model):
    """The CNI/PNI layers of ``model`` (recursing into nested models and pruning wrappers)."""
    found = []
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if isinstance(layer, keras.Model):
            found.extend(noisy_layers(layer))
        elif isinstance(inner, _NoiseMixin):
            found.append(inner)
    return found


def set_inference_noise(model, on):
    """Turns inference-time noise on or off in every CNI/PNI layer of ``model``.

    The switch is a variable, so the change takes effect in already traced functions
    (``predict``, attacks, a SavedModel exported afterwards) without retracing.

    Args:
      model: a Keras model (nested models and pruning wrappers are searched).
      on: True for RSR Table 5 "noise on" at inference, False for a deterministic model.

    Returns:
      The number of layers switched.
    """
    layers = noisy_layers(model)
    for layer in layers:
        layer.inference_noise = bool(on)
    return len(layers)


def has_inference_noise(model):
    """True if ``model`` declares a random forward pass at inference: the one declared-randomness detector.

    Any layer (nested models and pruning wrappers included) with a truthy ``inference_noise``
    counts: a CNI/PNI layer keeping its noise on (RSR), or a user's layer following the same
    convention. A model without layers (a plain SavedModel signature) declares none; whether
    it is random all the same is found by running it (:func:`tfsparse.sanity.is_random_at_inference`).
    """
    for layer in getattr(model, "layers", []):
        inner = getattr(layer, "layer", layer)
        if bool(getattr(inner, "inference_noise", False)):
            return True
        if hasattr(inner, "layers") and has_inference_noise(inner):
            return True
    return False
