"""CNI/PNI noise layers (SPEC §5, RSR eq. 4)."""

import numpy as np
import pytest

from tfsparse import layers
from tfsparse import models
from tfsparse import sparsity
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.layers import NoisyConv2D
from tfsparse.layers import NoisyDense
from tfsparse.layers import set_inference_noise
from tfsparse.training import lasso_penalty
from tfsparse.training.clean import add_weight_decay


def noisy_model(mode="channel", inference_noise=False):
    inputs = keras.Input((6, 6, 1))
    h = NoisyConv2D(4, 3, mode=mode, seed=1, inference_noise=inference_noise, name="conv")(inputs)
    h = keras.layers.Flatten()(h)
    outputs = NoisyDense(3, mode=mode, seed=2, inference_noise=inference_noise, name="fc")(h)
    return keras.Model(inputs, outputs)


def images(n=8, seed=0):
    return np.random.default_rng(seed).random((n, 6, 6, 1), dtype=np.float32)


def noise_samples(layer, draws=400):
    kernel = layer.kernel.numpy()
    return np.stack([layer.noisy_kernel(training=True).numpy() - kernel for _ in range(draws)])


def test_channel_noise_has_alpha_times_sigma_scale_per_output_channel():
    layer = NoisyConv2D(3, 3, seed=0)
    layer.build((None, 8, 8, 2))
    layer.alpha.assign([0.0, 0.25, 1.0])
    noise = noise_samples(layer)
    sigma = layer.kernel.numpy().std()
    std = noise.std(axis=(0, 1, 2, 3))
    np.testing.assert_allclose(std, [0.0, 0.25 * sigma, sigma], rtol=0.06, atol=1e-7)


def test_layer_mode_has_one_alpha():
    layer = NoisyDense(5, mode="layer", seed=0)
    layer.build((None, 4))
    assert layer.alpha.shape == ()
    noise = noise_samples(layer)
    np.testing.assert_allclose(noise.std(), 0.25 * layer.kernel.numpy().std(), rtol=0.05)


@pytest.mark.parametrize("sigma_rule", ["full", "nonzero"])
def test_no_noise_on_pruned_weights_and_sigma_by_rule(sigma_rule):
    layer = NoisyDense(6, seed=0, sigma_rule=sigma_rule)
    layer.build((None, 10))
    kernel = layer.kernel.numpy()
    kernel[:, ::2] = 0.0
    kernel[:5] = 0.0
    layer.kernel.assign(kernel)
    noise = noise_samples(layer)
    assert np.all(noise[:, kernel == 0] == 0)
    # RSR eq. 4 ("full", default): σ is the std of the whole kernel, zeros included; "nonzero":
    # of the live entries. With 70 % of the entries zeroed the two differ by ~1.6x.
    sigma = kernel.std() if sigma_rule == "full" else kernel[kernel != 0].std()
    np.testing.assert_allclose(noise[:, kernel != 0].std(), 0.25 * sigma, rtol=0.06)


def test_inference_switch_changes_predictions_only_when_on():
    model = noisy_model()
    x = images()
    first, second = model(x).numpy(), model(x, training=False).numpy()
    np.testing.assert_array_equal(first, second)
    assert set_inference_noise(model, True) == 2
    assert not np.allclose(model(x).numpy(), first)
    assert not np.allclose(model(x).numpy(), model(x).numpy())
    set_inference_noise(model, False)
    np.testing.assert_array_equal(model(x).numpy(), first)
    assert not np.allclose(model(x, training=True).numpy(), first)


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_switch_survives_keras_save_load(tmp_path, fmt):
    model = noisy_model(mode="layer")
    set_inference_noise(model, True)
    path = str(tmp_path / f"m.{fmt}")
    model.save(path)
    with sparsity.scope():
        loaded = keras.models.load_model(path)
    assert layers.has_inference_noise(loaded)
    assert loaded.get_layer("conv").mode == "layer"
    np.testing.assert_array_equal(loaded.get_layer("fc").kernel.numpy(), model.get_layer("fc").kernel.numpy())
    set_inference_noise(loaded, False)
    set_inference_noise(model, False)
    np.testing.assert_allclose(loaded(images()).numpy(), model(images()).numpy(), atol=1e-6)


def test_switch_survives_savedmodel_export(tmp_path):
    model = noisy_model()
    x = images()
    clean = model(x).numpy()
    for on, path in ((False, tmp_path / "off"), (True, tmp_path / "on")):
        set_inference_noise(model, on)
        model.save(str(path), save_format="tf")
        served = tf.saved_model.load(str(path))
        out = served(tf.constant(x), training=False).numpy()
        if on:
            assert not np.allclose(out, clean)
        else:
            np.testing.assert_allclose(out, clean, atol=1e-6)


def test_alpha_gets_gradients_and_is_excluded_from_decay_and_lasso():
    model = noisy_model()
    x = images()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=True) ** 2)
    alphas = [w for w in model.trainable_weights if "alpha" in w.name]
    grads = tape.gradient(loss, alphas)
    assert len(alphas) == 2 and all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)
    kernels = [model.get_layer("conv").kernel, model.get_layer("fc").kernel]
    expected = sum(float(tf.reduce_sum(tf.abs(k))) for k in kernels)
    np.testing.assert_allclose(float(lasso_penalty(model)), expected, rtol=1e-6)
    add_weight_decay(model, 1e-2)
    with tf.GradientTape() as tape:
        decay = tf.add_n(model.losses)
    assert all(g is None for g in tape.gradient(decay, alphas))


def test_noise_layers_prune_and_strip_with_tfmot():
    model = noisy_model()
    pruned = sparsity.prune(model, 0.5)
    pruned.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = images(16), np.arange(16) % 3
    pruned.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[sparsity.UpdatePruningStep()])
    stripped = sparsity.strip(pruned)
    conv = stripped.get_layer("conv")
    assert isinstance(conv, NoisyConv2D)
    assert sparsity.weight_sparsity(stripped)["overall"] == pytest.approx(0.5, abs=0.01)
    noise = noise_samples(conv, draws=20)
    assert np.all(noise[:, conv.kernel.numpy() == 0] == 0)


def test_config_round_trip_and_validation():
    layer = NoisyConv2D(2, 3, mode="layer", alpha_initializer=0.1, inference_noise=True, seed=3,
                        sigma_rule="nonzero")
    clone = NoisyConv2D.from_config(layer.get_config())
    assert (clone.mode, clone.inference_noise, clone.seed, clone.sigma_rule) == ("layer", True, 3, "nonzero")
    assert NoisyDense(2).sigma_rule == "full"
    # Saved before sigma_rule existed (no key): trained with, and reloaded with, the non-zero rule.
    legacy = {k: v for k, v in NoisyDense(2).get_config().items() if k != "sigma_rule"}
    assert NoisyDense.from_config(legacy).sigma_rule == "nonzero"
    with pytest.raises(ValueError, match="sigma_rule"):
        NoisyDense(2, sigma_rule="live")
    with pytest.raises(ValueError, match="mode"):
        NoisyDense(2, mode="pixel")
    with pytest.raises(ValueError, match="alpha"):
        NoisyDense(2, alpha_initializer=-1.0)


def test_layers_factory_builds_noisy_zoo_models():
    model = models.get("lenet5")(10, (28, 28, 1), 0.1307, 0.3081, layers=models.Layers(noise="channel"))
    noisy = layers.noisy_layers(model)
    assert len(noisy) == 4 and all(layer.mode == "channel" for layer in noisy)
    plain = models.get("lenet5")(10, (28, 28, 1), 0.1307, 0.3081)
    assert model.count_params() - plain.count_params() == 20 + 50 + 500 + 10 + 4
    with pytest.raises(ValueError, match="noise"):
        models.Layers(noise="gaussian")


def test_normalize_is_per_channel_standardisation():
    # Distinct mean and std per channel: returning the input, or pairing a channel with another
    # channel's constants, changes the result.
    mean, std = [0.1, 0.5, 0.8], [0.2, 0.5, 2.0]
    x = np.random.default_rng(3).random((2, 4, 5, 3), dtype=np.float32)
    out = layers.Normalize(mean, std)(x).numpy()
    expected = np.empty_like(x)
    for k in range(3):
        expected[..., k] = (x[..., k] - mean[k]) / std[k]
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    scalar = layers.Normalize(0.25, 0.5)(x).numpy()
    np.testing.assert_allclose(scalar, (x - 0.25) * 2.0, rtol=1e-6, atol=1e-6)


def _copy_weights(noisy, plain):
    """Gives ``plain`` the kernel (and bias) of ``noisy``; α and the switch have no counterpart."""
    plain.kernel.assign(noisy.kernel)
    if noisy.use_bias:
        plain.bias.assign(np.random.default_rng(4).normal(size=plain.bias.shape))
        noisy.bias.assign(plain.bias)


# "Noise off" is checked in both ways the layer allows: inference_noise=False with
# training=False (α = 0.25 left in place), and α = 0 with training=True (noise drawn, times 0).
NOISE_OFF = [pytest.param(0.25, False, id="switch-off"), pytest.param(0.0, True, id="alpha-0")]


@pytest.mark.parametrize("alpha,training", NOISE_OFF)
@pytest.mark.parametrize(
    "strides,padding,use_bias,activation",
    [(1, "valid", True, None), (2, "same", False, "relu"), ((2, 1), "same", True, "tanh"),
     (1, "same", True, "relu")],
)
def test_noisy_conv2d_without_noise_equals_conv2d(strides, padding, use_bias, activation, alpha,
                                                 training):
    kwargs = dict(strides=strides, padding=padding, use_bias=use_bias, activation=activation)
    noisy = NoisyConv2D(4, 3, alpha_initializer=alpha, seed=5, **kwargs)
    plain = keras.layers.Conv2D(4, 3, **kwargs)
    x = np.random.default_rng(6).normal(size=(3, 7, 8, 2)).astype(np.float32)
    noisy.build(x.shape)
    plain.build(x.shape)
    _copy_weights(noisy, plain)
    expected = plain(x).numpy()
    assert not np.allclose(expected, 0)
    np.testing.assert_allclose(noisy(x, training=training).numpy(), expected, rtol=1e-5,
                               atol=1e-5)
    if alpha > 0:  # the comparison can fail: the same layer with noise on differs
        assert not np.allclose(noisy(x, training=True).numpy(), expected, atol=1e-3)


@pytest.mark.parametrize("alpha,training", NOISE_OFF)
@pytest.mark.parametrize("use_bias,activation", [(True, None), (False, "relu"), (True, "tanh")])
@pytest.mark.parametrize("input_shape", [(5, 6), (2, 3, 6)])
def test_noisy_dense_without_noise_equals_dense(use_bias, activation, input_shape, alpha,
                                               training):
    noisy = NoisyDense(4, alpha_initializer=alpha, use_bias=use_bias, activation=activation,
                       seed=5)
    plain = keras.layers.Dense(4, use_bias=use_bias, activation=activation)
    x = np.random.default_rng(7).normal(size=input_shape).astype(np.float32)
    noisy.build(x.shape)
    plain.build(x.shape)
    _copy_weights(noisy, plain)
    expected = plain(x).numpy()
    assert not np.allclose(expected, 0)
    np.testing.assert_allclose(noisy(x, training=training).numpy(), expected, rtol=1e-5,
                               atol=1e-5)
    if alpha > 0:
        assert not np.allclose(noisy(x, training=True).numpy(), expected, atol=1e-3)
