"""The Keras 3 bridge (issue 31 item 4): Keras 3 models in, pruned here, Keras 3 files out.

Keras 3 (``import keras``) plays the user's side only: it builds, saves and reads back the
models. tfsparse's side goes through ``import tfsparse``. Both run in this process, as they
do for a user: tfsparse selects tf_keras for ``tf.keras`` and tfmot, and Keras 3 stays the
separate ``keras`` package.
"""

import os
import subprocess
import sys

import keras as keras3
import numpy as np
import pytest

import tfsparse
from tfsparse import model_io
from tfsparse.compat import keras
from tfsparse.errors import ConfigError

L3 = keras3.layers


@pytest.fixture(scope="module")
def mnist():
    return tfsparse.load_data("mnist", num_train=256, num_test=64)


def keras3_sequential():
    keras3.utils.set_random_seed(0)
    return keras3.Sequential([
        keras3.Input((28, 28, 1)),
        L3.Conv2D(8, 3, activation="relu"),
        L3.BatchNormalization(),
        L3.MaxPooling2D(),
        L3.Flatten(),
        L3.Dropout(0.2),
        L3.Dense(32, activation="relu"),
        L3.Dense(10),
    ], name="k3_sequential")


def keras3_functional():
    """A small residual net: Conv2D + DepthwiseConv2D branches joined by a skip (Add)."""
    keras3.utils.set_random_seed(1)
    inputs = keras3.Input((28, 28, 1), name="images")
    x = L3.Rescaling(2.0, offset=-1.0)(inputs)
    x = L3.ZeroPadding2D(1)(x)
    x = L3.Conv2D(8, 3, strides=2)(x)
    x = L3.ReLU()(L3.BatchNormalization()(x))
    branch = L3.DepthwiseConv2D(3, padding="same")(x)
    branch = L3.Conv2D(8, 1, activation="relu")(branch)
    x = L3.Add()([x, branch])  # the skip connection
    x = L3.Concatenate()([L3.GlobalAveragePooling2D()(x), L3.Flatten()(L3.AveragePooling2D(7)(x))])
    outputs = L3.Dense(10)(L3.Activation("relu")(L3.Dense(16)(x)))
    return keras3.Model(inputs, outputs, name="k3_residual")


def kernel_zeros(model):
    """``{layer name: zeros in its kernel}`` for the Dense / Conv2D / DepthwiseConv2D layers."""
    counts = {}
    for layer in model.layers:
        if type(layer).__name__ in ("Dense", "Conv2D", "DepthwiseConv2D"):
            counts[layer.name] = int(np.sum(layer.get_weights()[0] == 0))
    return counts


def half_of_each_pruned_kernel(model):
    """What 50 % leaves: half of each Dense / Conv2D kernel zero (tfmot's registry prunes no
    DepthwiseConv2D kernel, so that one keeps its zeros, none)."""
    return {layer.name: round(0.5 * layer.get_weights()[0].size) if type(layer).__name__ != "DepthwiseConv2D" else 0
            for layer in model.layers if type(layer).__name__ in ("Dense", "Conv2D", "DepthwiseConv2D")}


def test_keras3_sequential_loads_prunes_to_half_and_goes_back_to_keras3(mnist, tmp_path):
    source = keras3_sequential()
    path = str(tmp_path / "seq.keras")
    source.save(path)
    x = mnist.x_test[:32]

    loaded = model_io.load_model(path)
    assert isinstance(loaded, keras.Sequential)  # tf_keras: prunable, not the evaluate-only callable
    assert isinstance(model_io.load_keras_model(path), keras.Sequential)  # the pipelines' loader too
    np.testing.assert_allclose(loaded.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-5)

    pruned = tfsparse.prune(loaded, 0.5)
    # Two eager steps: the pruning step, then one of training under the mask (tracing would
    # cost ten times the steps here).
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
    pruned.fit(mnist.x_train[:128], mnist.y_train[:128], batch_size=64, epochs=1, verbose=0,
               callbacks=[tfsparse.sparsity.UpdatePruningStep()])
    stripped = tfsparse.strip(pruned)
    zeros = kernel_zeros(stripped)
    assert zeros == half_of_each_pruned_kernel(stripped)

    out = str(tmp_path / "seq_pruned.keras")
    model_io.to_keras3(stripped, out)
    back = keras3.saving.load_model(out)  # Keras 3 itself reads the file
    assert type(back).__name__ == "Sequential" and type(back).__module__.startswith("keras.")
    assert kernel_zeros(back) == zeros and sum(zeros.values()) > 0
    np.testing.assert_allclose(back.predict(x, verbose=0), stripped.predict(x, verbose=0), atol=1e-5)


def test_keras3_functional_with_a_skip_is_pruned_directly_and_written_back(mnist, tmp_path):
    source = keras3_functional()
    path = str(tmp_path / "res.keras")
    source.save(path)
    user_model = keras3.saving.load_model(path)  # a Keras 3 model object, as a user holds it
    x = mnist.x_test[:32]

    pruned = tfsparse.prune(user_model, 0.5)  # bridged by prune itself
    assert isinstance(pruned, keras.Model) and tfsparse.sparsity.has_pruning_wrappers(pruned)
    tfsparse.sparsity.apply_masks(pruned)  # pruning without retraining
    stripped = tfsparse.strip(pruned)
    assert [type(layer).__name__ for layer in stripped.layers].count("Add") == 1
    zeros = kernel_zeros(stripped)
    assert zeros == half_of_each_pruned_kernel(stripped)

    out = tmp_path / "res_pruned.keras"
    returned = model_io.to_keras3(stripped, out)
    back = keras3.saving.load_model(str(out))
    assert kernel_zeros(back) == kernel_zeros(returned) == zeros
    np.testing.assert_allclose(back.predict(x, verbose=0), stripped.predict(x, verbose=0), atol=1e-5)
    # Pruning changed the logits; the round trip did not.
    assert np.max(np.abs(back.predict(x, verbose=0) - source.predict(x, verbose=0))) > 1e-3


def test_a_nested_keras3_model_and_adapted_normalization_cross_both_ways(mnist):
    keras3.utils.set_random_seed(2)
    norm = L3.Normalization()
    norm.adapt(mnist.x_train[:64].reshape(64, -1))
    inner = keras3.Sequential([keras3.Input((784,)), L3.Dense(16), L3.LeakyReLU(negative_slope=0.1)], name="inner")
    inputs = keras3.Input((28, 28, 1))
    outputs = L3.Dense(10)(inner(norm(L3.Reshape((784,))(inputs))))
    source = keras3.Model(inputs, outputs)
    rebuilt = model_io.from_keras3(source)
    x = mnist.x_test[:16]
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-5)
    back = model_io.to_keras3(rebuilt)
    np.testing.assert_allclose(back.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-5)


@keras3.saving.register_keras_serializable(package="test_bridge")
class Doubler(L3.Layer):
    def call(self, inputs):
        return 2.0 * inputs


def one_line(error):
    text = str(error.value)
    assert "\n" not in text
    return text


def test_a_layer_that_cannot_be_bridged_is_named_in_one_line(mnist, tmp_path):
    model = keras3.Sequential([keras3.Input((28, 28, 1)), L3.Flatten(), Doubler(name="twice"), L3.Dense(10)])
    with pytest.raises(ConfigError) as error:
        tfsparse.prune(model, 0.5)
    assert "layer 'twice' (test_keras3_bridge.Doubler) cannot be rebuilt in tf_keras" in one_line(error)

    # Saved, it still loads for evaluation (through Keras 3), and pruning it says the same line.
    path = str(tmp_path / "custom.keras")
    model.save(path)
    loaded = model_io.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(mnist.x_test[:4])), model.predict(mnist.x_test[:4], verbose=0),
                               atol=1e-5)
    with pytest.raises(ConfigError, match=r"layer 'twice' \(test_keras3_bridge.Doubler\)"):
        tfsparse.prune(loaded, 0.5)
    with pytest.raises(ConfigError, match=r"layer 'twice' \(test_keras3_bridge.Doubler\)"):
        model_io.load_keras_model(path)  # what the prune / export / train pipelines load with

    class Subclassed(keras3.Model):
        def call(self, inputs):
            return 2.0 * inputs

    with pytest.raises(ConfigError) as error:  # no graph to translate
        tfsparse.prune(Subclassed(name="mine"), 0.5)
    assert "layer 'mine' (test_keras3_bridge.Subclassed) cannot be rebuilt" in one_line(error)

    inputs = keras3.Input((4,))
    with pytest.raises(ConfigError) as error:  # an op on a tensor is not a layer tf_keras has
        model_io.from_keras3(keras3.Model(inputs, L3.Dense(2)(inputs + 1.0)))
    assert "(keras.src.ops.numpy.Add) cannot be rebuilt" in one_line(error)


def test_tfsparse_layers_have_no_keras3_equivalent():
    normalize = tfsparse.layers.Normalize(mean=0.1307, std=0.3081, name="normalize")
    model = keras.Sequential([keras.Input((28, 28, 1)), normalize, keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(ConfigError) as error:
        model_io.to_keras3(model)
    assert "layer 'normalize' (tfsparse.layers.normalization.Normalize) has no Keras 3 equivalent" in one_line(error)
    with pytest.raises(ConfigError, match="as a .keras file"):
        model_io.to_keras3(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), "model.h5")


def test_a_rebuild_with_other_logits_is_refused(monkeypatch):
    # Without the weight copy the rebuild keeps its fresh initial weights: the probe must see it.
    monkeypatch.setattr(tfsparse.keras3_bridge, "_copy_weights", lambda source, target: None)
    with pytest.raises(ConfigError, match="other logits on a probe batch"):
        model_io.from_keras3(keras3_sequential())


def run_python(code):
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                          timeout=300)


def test_tensorflow_imported_first_works_while_tf_keras_is_unused():
    result = run_python(
        "import tensorflow as tf\nimport tfsparse\nimport tf_keras\n"
        "from tensorflow.keras import layers\n"
        "model = tf.keras.Sequential([tf.keras.Input((4,)), layers.Dense(3)])\n"
        "pruned = tfsparse.prune(model, 0.5)\n"
        "print(tf.keras.Model is tf_keras.Model, layers.Dense is tf_keras.layers.Dense,"
        " tfsparse.sparsity.has_pruning_wrappers(pruned))"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "True", "True"]


@pytest.mark.slow  # the fast tier has test_compat's test of the same refusal
def test_tensorflow_imported_first_with_tf_keras_used_names_the_line_to_add():
    result = run_python("import tensorflow as tf\ntf.keras.layers.Dense\nimport tfsparse")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:") and "(tf.keras was used)" in last
    assert "Import tfsparse before tensorflow" in last and "TF_USE_LEGACY_KERAS=1" in last
