"""One-shot GUP / LUP (Wang et al. 2020) and threshold γ (RSR §3.4): real zeros that stay zero."""

import ml_collections
import numpy as np
import pytest

from tfsparse import training
from tfsparse.compat import keras
from tfsparse.sparsity import masks
from tfsparse.sparsity import strip
from tfsparse.sparsity import weight_sparsity
from tfsparse.sparsity._oneshot import gamma_for_sparsity
from tfsparse.sparsity._oneshot import global_sparsity_targets
from tfsparse.sparsity._oneshot import kernels
from tfsparse.sparsity._oneshot import gup
from tfsparse.sparsity._oneshot import lup
from tfsparse.sparsity._oneshot import one_shot
from tfsparse.sparsity._oneshot import select_layers
from tfsparse.sparsity._oneshot import threshold_masks
from tfsparse.sparsity._oneshot import threshold_prune
from tfsparse.sparsity._oneshot import wrap_with_masks
from tfsparse.sparsity.prune import PruneLowMagnitude


def tiny_cnn(seed=0, conv2_std=0.05):
    """Conv layers with different initial scales, so a global threshold treats them unequally."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2",
                            kernel_initializer=keras.initializers.RandomNormal(stddev=conv2_std))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu", name="fc1")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, outputs)


def tiny_data(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) * 3).astype("int64").clip(0, 2)
    return x, y


def train_cfg():
    return ml_collections.ConfigDict(
        {"optimizer": "sgd", "batch_size": 32, "learning_rate": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
         "lr_schedule": "constant", "steps": 5, "epochs": 0.0, "augment": False,
         "jit_compile": False}
    )


def retrain(model, steps=5):
    x, y = tiny_data()
    training.train(model, x, y, train_cfg(), steps=steps)


def test_select_layers_by_type_and_keep_dense():
    model = tiny_cnn()
    assert select_layers(model) == ["conv1", "conv2", "fc1", "logits"]
    assert select_layers(model, layer_types=("conv",)) == ["conv1", "conv2"]
    assert select_layers(model, keep_dense=("first", "last")) == ["conv2", "fc1"]
    with pytest.raises(ValueError, match="layer_types"):
        select_layers(model, layer_types=("lstm",))


def test_global_targets_are_unequal_and_meet_the_total():
    model = tiny_cnn()
    targets = global_sparsity_targets(model, 0.6)
    sizes = {name: kernel.size for name, kernel in kernels(model).items()}
    zeros = sum(targets[name] * sizes[name] for name in targets)
    assert abs(zeros - round(0.6 * sum(sizes.values()))) <= 1e-6 * sum(sizes.values())
    # conv2 has smaller weights (stddev 0.05): a global threshold prunes it hardest.
    assert targets["conv2"] == max(targets.values()) > 0.6 > min(targets.values())
    assert len({round(value, 3) for value in targets.values()}) == len(targets)


def test_global_targets_never_empty_a_layer():
    targets = global_sparsity_targets(tiny_cnn(conv2_std=1e-4), 0.6)
    assert targets["conv2"] == 287 / 288


def test_gup_zeros_stay_zero_through_retraining_and_strip():
    model = tiny_cnn()
    targets = global_sparsity_targets(model, 0.6)
    wrapped = gup(model, 0.6)
    retrain(wrapped, steps=2)
    first = masks(strip(wrapped))
    retrain(wrapped, steps=6)
    stripped = strip(wrapped)
    stats = weight_sparsity(stripped)
    for name, layer in stats["layers"].items():
        assert abs(layer["zeros"] - round(targets[name] * layer["size"])) <= 1, name
    assert abs(stats["zeros"] - round(0.6 * stats["size"])) <= len(stats["layers"])
    for name, mask in masks(stripped).items():
        assert not np.any(mask & ~first[name]), f"{name}: a pruned weight came back"
    # The global choice: kept magnitudes of every layer lie above pruned ones of every layer.
    original = {name: np.abs(kernel) for name, kernel in kernels(model).items()}
    kept = min(original[n][first[n]].min() for n in first)
    pruned = max(original[n][~first[n]].max() for n in first)
    assert pruned <= kept


def test_gup_on_conv_layers_only_leaves_dense_unwrapped():
    wrapped = gup(tiny_cnn(), 0.5, layer_types=("conv",))
    names = [layer.layer.name for layer in wrapped.layers if isinstance(layer, PruneLowMagnitude)]
    assert names == ["conv1", "conv2"]


def test_lup_gives_equal_layer_sparsity_and_honours_keep_dense():
    stripped = one_shot(tiny_cnn(), "lup", 0.5, retrain=retrain, keep_dense=("last",))
    stats = weight_sparsity(stripped)["layers"]
    for name in ("conv1", "conv2", "fc1"):
        assert abs(stats[name]["zeros"] - round(0.5 * stats[name]["size"])) <= 1, name
    assert stats["logits"]["zeros"] == 0
    wrapped = lup(tiny_cnn(), 0.3, keep_dense=("first",))
    assert not isinstance(wrapped.layers[1], PruneLowMagnitude)


def test_one_shot_gup_returns_a_stripped_sparse_model():
    stripped = one_shot(tiny_cnn(), "gup", 0.7, retrain=retrain)
    assert not any(isinstance(layer, PruneLowMagnitude) for layer in stripped.layers)
    stats = weight_sparsity(stripped)
    assert abs(stats["zeros"] - round(0.7 * stats["size"])) <= len(stats["layers"])
    with pytest.raises(ValueError, match="method"):
        one_shot(tiny_cnn(), "fp", 0.5, retrain=retrain)
    with pytest.raises(ValueError, match="sparsity"):
        gup(tiny_cnn(), 1.0)


@pytest.mark.parametrize("target", [0.0, 0.37, 0.9])
def test_gamma_for_sparsity_hits_the_target_within_one_weight(target):
    model = tiny_cnn()
    gamma = gamma_for_sparsity(model, target)
    pruned = threshold_prune(model, gamma)
    stats = weight_sparsity(pruned)
    assert abs(stats["zeros"] - round(target * stats["size"])) <= 1
    for layer, source in zip(pruned.layers, model.layers):
        if hasattr(layer, "kernel"):
            w, w0 = layer.kernel.numpy(), source.kernel.numpy()
            np.testing.assert_array_equal(w, np.where(np.abs(w0) < gamma, 0.0, w0))


def test_gamma_keeps_tied_weights_together_and_never_overshoots():
    model = tiny_cnn()
    for name, value in (("conv1", 0.5), ("conv2", 0.25)):
        kernel = model.get_layer(name).kernel
        kernel.assign(np.full(kernel.shape, value, dtype="float32"))
    # 288 conv2 weights tie at 0.25 across the 50% mark of the 324 conv weights: all are kept.
    gamma = gamma_for_sparsity(model, 0.5, layer_types=("conv",))
    assert gamma == 0.25
    kept = threshold_masks(model, gamma, layer_types=("conv",))
    assert all(mask.all() for mask in kept.values())
    # Past the tie: 90% of 324 -> round(291.6) = 292 > 288, so γ = 0.5 and the 288 go.
    gamma = gamma_for_sparsity(model, 0.9, layer_types=("conv",))
    kept = threshold_masks(model, gamma, layer_types=("conv",))
    assert gamma == 0.5 and int((~kept["conv2"]).sum()) == 288 and kept["conv1"].all()
    with pytest.raises(ValueError, match="gamma"):
        threshold_masks(model, -1.0)


def test_threshold_pattern_is_held_through_training_by_wrap_with_masks():
    model = tiny_cnn()
    gamma = gamma_for_sparsity(model, 0.5)
    kept = threshold_masks(model, gamma)
    wrapped = wrap_with_masks(threshold_prune(model, gamma), kept)
    retrain(wrapped, steps=4)
    for name, mask in masks(strip(wrapped)).items():
        np.testing.assert_array_equal(mask, kept[name], err_msg=name)
