"""SavedModel side of the export: serving signatures, the noise-free clone, the checked save.

The serving interface of every tfsparse artifact is ``images`` (float32, [0, 1], NHWC, any
batch size) → ``logits``. A model with CNI/PNI layers (RSR eq. 4) either loses its noise
(:func:`without_noise`: plain ``Conv2D``/``Dense`` with the same kernels, no random ops, so it
converts to TFLite) or keeps it, with a second, seeded signature for reproducible draws.
"""

import contextlib

import numpy as np

from tfsparse import results
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.layers.noise import NoisyConv2D
from tfsparse.layers.noise import NoisyDense
from tfsparse.layers.noise import noisy_layers
from tfsparse.sparsity import has_pruning_wrappers
from tfsparse.sparsity import strip
from tfsparse.sparsity.prune import unwrap

# Config keys a noise layer adds to its Conv2D/Dense base: its own (tfsparse.layers.noise)
# and tf-keras BaseRandomLayer's ``rng_type``.
_NOISE_KEYS = ("mode", "alpha_initializer", "inference_noise", "sigma_rule", "seed", "rng_type")


def serving_signatures(model, seeded=False):
    """``{"serving_default": f(images)}``, plus ``serving_seeded(images, seed)`` if ``seeded``.

    ``serving_default`` calls ``model(images, training=False)``: a noise layer whose switch is
    on draws fresh noise from its ``tf.random.Generator`` on every call. ``serving_seeded``
    draws the noise statelessly from ``(seed, layer index)`` instead
    (``tf.random.stateless_normal``), so equal seeds give equal logits and the generators'
    state is neither read nor advanced (concurrent calls cannot interfere).
    """
    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="images")

    @tf.function(input_signature=[spec])
    def serve(images):
        return {"logits": model(images, training=False)}

    signatures = {"serving_default": serve}
    if seeded:
        layers = noisy_layers(model)

        @tf.function(input_signature=[spec, tf.TensorSpec([], tf.int64, name="seed")])
        def serve_seeded(images, seed):
            with _stateless_noise(layers, seed):  # active while this body is traced
                return {"logits": model(images, training=False)}

        signatures["serving_seeded"] = serve_seeded
    return signatures


@contextlib.contextmanager
def _stateless_noise(layers, seed):
    # NoisyConv2D/NoisyDense draw η with ``self._random_generator.random_normal``; during
    # tracing it is replaced, per layer instance, by a stateless draw keyed by (seed, index).
    def stateless(index):
        def random_normal(shape, mean=0.0, stddev=1.0, dtype=tf.float32, nonce=None):
            key = tf.stack([seed, tf.constant(index, tf.int64)])
            return tf.random.stateless_normal(shape, key, mean=mean, stddev=stddev, dtype=dtype)
        return random_normal

    for index, layer in enumerate(layers):
        layer._random_generator.random_normal = stateless(index)
    try:
        yield
    finally:
        for layer in layers:
            del layer._random_generator.random_normal


def without_noise(model):
    """A functional clone of ``model`` whose CNI/PNI layers are plain ``Conv2D``/``Dense``.

    Each ``NoisyConv2D``/``NoisyDense`` becomes its base layer with the same config (minus
    ``mode``, ``alpha_initializer``, ``inference_noise``, ``seed``) and the same kernel and
    bias; α and the noise switch are dropped. The clone computes what ``model`` computes with
    the switch off and ``training=False``, without any random op, so it converts to TFLite.
    Every other layer is cloned with its weights; nested functional/Sequential models are
    cloned the same way. Pruning wrappers are stripped first (their zeros are kept).

    Args:
      model: a functional or Sequential tf_keras model, or an ``AdversarialModel`` (its
        ``inner`` is taken).

    Returns:
      ``model`` itself (stripped) if it has no noise layer, else the clone.

    Example:

    >>> clean = without_noise(rsr_model)
    >>> clean(x) == rsr_model(x, training=False)  # with set_inference_noise(rsr_model, False)
    """
    model = unwrap(model)
    if has_pruning_wrappers(model):
        model = strip(model)
    return _plain_clone(model) if noisy_layers(model) else model


def _plain_clone(model):
    copies = []

    def clone(layer):
        if isinstance(layer, keras.Model):
            return _plain_clone(layer)
        if isinstance(layer, (NoisyConv2D, NoisyDense)):
            base = keras.layers.Conv2D if isinstance(layer, NoisyConv2D) else keras.layers.Dense
            config = {k: v for k, v in layer.get_config().items() if k not in _NOISE_KEYS}
            weights = [layer.kernel] + ([layer.bias] if layer.use_bias else [])
            new = base.from_config(config)
        else:
            new, weights = type(layer).from_config(layer.get_config()), layer.weights
        copies.append((new, [w.numpy() for w in weights]))
        return new

    cloned = keras.models.clone_model(model, clone_function=clone)
    for layer, weights in copies:  # built once the clone is wired
        layer.set_weights(weights)
    return cloned


def write_saved_model(model, path, signatures):
    """``model.save(path)`` as a Keras SavedModel with ``signatures``, without the optimizer."""
    model.save(path, save_format="tf", signatures=signatures, include_optimizer=False)


def save_saved_model(model, path, *, check_inputs=None, atol=1e-5):
    """Saves ``model`` as a Keras SavedModel directory and verifies the round trip.

    Pruning wrappers are stripped first, so the saved kernels hold real zeros; an
    ``AdversarialModel`` is saved as the model it trains (``inner``). The
    ``serving_default`` signature takes ``images`` (float32, [0, 1], NHWC) and returns
    ``logits``. When ``check_inputs`` is given, the reloaded signature must reproduce the
    live model's logits on them within ``atol``.

    Returns:
      The path written.

    Raises:
      RuntimeError: if the reloaded model's predictions differ.
    """
    model = unwrap(model)
    if has_pruning_wrappers(model):
        model = strip(model)
    # A uniquely named folder of our own: a failed save or check leaves nothing half-written
    # behind and touches no folder of the user's (such as an existing <path>.partial).
    with results.atomic_dir(path) as tmp:
        write_saved_model(model, tmp, serving_signatures(model))
        if check_inputs is not None:
            reloaded = tf.saved_model.load(tmp).signatures["serving_default"]
            expected = model(check_inputs, training=False).numpy()
            got = reloaded(images=tf.constant(check_inputs, tf.float32))["logits"].numpy()
            if not np.allclose(expected, got, atol=atol):
                raise RuntimeError(f"SavedModel round trip changed predictions (max diff {np.abs(expected - got).max()})")
    return path
