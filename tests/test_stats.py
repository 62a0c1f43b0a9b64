"""Weight norms, histograms (Wang Thm 2, Fig. 2–4); activation sparsity, ActivationL1 (Guo T. 1)."""

import math

import numpy as np
import pytest

from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.layers.normalization import Normalize
from tfsparse.layers.regularization import ActivationL1
from tfsparse.layers.regularization import insert_activation_l1
from tfsparse.plotting import plot_weight_histograms
from tfsparse.sparsity import prune
from tfsparse.sparsity._activations import activation_sparsity
from tfsparse.sparsity.prune import PruneLowMagnitude
from tfsparse.sparsity._stats import norm_products
from tfsparse.sparsity._stats import weight_histogram_data
from tfsparse.sparsity._stats import weight_norms


def hand_model():
    """fc1 = ReLU(x·W1), W1 = [[1, -1, 0], [0, 2, -3]], no bias; logits = h·W2, W2 = 0.5·1."""
    inputs = keras.Input((2,))
    h = keras.layers.Dense(3, activation="relu", use_bias=False, name="fc1")(inputs)
    outputs = keras.layers.Dense(2, use_bias=False, name="logits")(h)
    model = keras.Model(inputs, outputs)
    model.get_layer("fc1").set_weights([np.array([[1.0, -1.0, 0.0], [0.0, 2.0, -3.0]], "float32")])
    model.get_layer("logits").set_weights([np.full((3, 2), 0.5, "float32")])
    return model


def test_weight_norms_and_products_on_hand_set_kernels():
    norms = weight_norms(hand_model())
    assert norms["fc1"] == {"l0": 4, "l1": 7.0, "l2": pytest.approx(math.sqrt(15.0))}
    assert norms["logits"] == {"l0": 6, "l1": 3.0, "l2": pytest.approx(math.sqrt(1.5))}
    products = norm_products(hand_model())
    assert products["l1"] == pytest.approx(21.0)
    assert products["l2"] == pytest.approx(math.sqrt(15.0 * 1.5))
    assert products["log_l1"] == pytest.approx(math.log(21.0))


def test_weight_norms_read_wrapped_kernels_through_their_masks():
    wrapped = prune(hand_model(), 0.5)
    layer = next(layer for layer in wrapped.layers if isinstance(layer, PruneLowMagnitude))
    layer.pruning_vars[0][1].assign(np.array([[1, 0, 0], [0, 1, 0]], "float32"))
    assert weight_norms(wrapped)["fc1"] == {"l0": 2, "l1": 3.0, "l2": pytest.approx(math.sqrt(5.0))}


def test_histogram_data_counts_nonzero_weights_per_layer_and_pooled():
    data = weight_histogram_data(hand_model(), layer="fc1", bins=[-3.5, -0.5, 0.5, 3.5])
    np.testing.assert_array_equal(data["counts"], [2, 0, 2])
    assert (data["zeros"], data["size"]) == (2, 6)
    pooled = weight_histogram_data(hand_model(), bins=4)
    assert pooled["counts"].sum() == 10 and pooled["size"] == 12
    with pytest.raises(ValueError, match="no prunable layer"):
        weight_histogram_data(hand_model(), layer="nope")


def test_plot_weight_histograms_writes_a_png(tmp_path):
    path = plot_weight_histograms(hand_model(), str(tmp_path / "hist.png"))
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    path = plot_weight_histograms({"a": np.arange(-5.0, 5.0)}, str(tmp_path / "d.png"), log_y=False,
                                  per_layer=False)
    assert (tmp_path / "d.png").stat().st_size > 0


def test_activation_sparsity_defaults_to_the_input_of_the_last_dense_layer():
    # x = (1, 1): pre-activation (1, 1, -3) -> (1, 1, 0); x = (-1, 1): (-1, 3, -3) -> (0, 3, 0).
    x = np.array([[1.0, 1.0], [-1.0, 1.0]], "float32")
    assert activation_sparsity(hand_model(), x) == pytest.approx(3 / 6)
    assert activation_sparsity(hand_model(), x, batch_size=1) == pytest.approx(3 / 6)
    assert activation_sparsity(hand_model(), x, layer_name="logits") == 0.0
    wrapped = prune(hand_model(), 0.5)
    assert activation_sparsity(wrapped, x, layer_name="fc1") == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="no layer"):
        activation_sparsity(hand_model(), x, layer_name="nope")


def test_activation_l1_adds_strength_times_batch_mean_of_per_example_l1():
    layer = ActivationL1(0.1)
    a = tf.constant([[1.0, -2.0, 0.0], [3.0, 0.0, -4.0]])
    out = layer(a)
    np.testing.assert_array_equal(out.numpy(), a.numpy())
    # per-example L1: 3 and 7; batch mean 5; times 0.1 -> 0.5 (not summed over the batch).
    assert float(layer.losses[0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="strength"):
        ActivationL1(-1.0)


def test_activation_l1_serialises_and_is_skipped_by_prune():
    layer = ActivationL1(0.25, name="reg")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, ActivationL1) and clone.strength == 0.25 and clone.name == "reg"
    assert layer.get_prunable_weights() == []
    model = insert_activation_l1(hand_model(), "fc1", 0.1)
    assert [layer.name for layer in model.layers][1:] == ["fc1", "fc1_act_l1", "logits"]
    wrapped = prune(model, 0.5)
    assert [type(layer).__name__ for layer in wrapped.layers][1:] == [
        "PruneLowMagnitude", "ActivationL1", "PruneLowMagnitude"
    ]


def test_insert_activation_l1_keeps_outputs_and_adds_the_hand_loss():
    base = hand_model()
    model = insert_activation_l1(base, "fc1", 0.1)
    x = np.array([[1.0, 1.0], [-1.0, 1.0]], "float32")
    np.testing.assert_array_equal(model(x).numpy(), base(x).numpy())
    # fc1 activations (1, 1, 0) and (0, 3, 0): per-example L1 2 and 3, mean 2.5 -> 0.25.
    assert float(model.losses[0]) == pytest.approx(0.25)
    reloaded = keras.Model.from_config(model.get_config())
    assert isinstance(reloaded.get_layer("fc1_act_l1"), ActivationL1)
    # The activation being measured is the regulariser's output, the input of "logits".
    assert activation_sparsity(model, x) == pytest.approx(3 / 6)


def test_insert_activation_l1_into_a_sequential_model_with_custom_layers():
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((4,)), Normalize(0.5, 0.25, name="norm"),
                             keras.layers.Dense(3, activation="relu", name="fc1"),
                             keras.layers.Dense(2, name="logits")])
    model = insert_activation_l1(base, "fc1", 0.2)
    assert [layer.name for layer in model.layers] == ["norm", "fc1", "fc1_act_l1", "logits"]
    x = np.random.default_rng(0).uniform(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(model(x).numpy(), base(x).numpy())
    with pytest.raises(ValueError, match="no layer"):
        insert_activation_l1(base, "nope", 0.1)
