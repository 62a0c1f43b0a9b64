"""Pruning on tfmot: requested sparsity reached with real zeros that stay zero."""

import ml_collections
import numpy as np
import pytest

from tfsparse import sparsity
from tfsparse import training
from tfsparse.compat import keras
from tfsparse.layers import Normalize
from tfsparse.sparsity.prune import PruneLowMagnitude


def tiny_mlp(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = Normalize(0.5, 0.25, name="normalize")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(16, activation="relu", name="fc2")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, outputs)


def tiny_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) * 3).astype("int64").clip(0, 2)
    return x, y


def train_cfg(steps=20):
    return ml_collections.ConfigDict(
        {"optimizer": "sgd", "batch_size": 32, "learning_rate": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
         "lr_schedule": "constant", "steps": steps, "epochs": 0.0, "augment": False, "jit_compile": False}
    )


def test_progressive_targets_follow_the_rule():
    targets = sparsity.progressive_targets(16, 1 / 3)
    assert len(targets) == 16
    np.testing.assert_allclose(targets[0], 1 / 3)
    np.testing.assert_allclose(targets[-1], 1 - (2 / 3) ** 16)
    assert all(b > a for a, b in zip(targets, targets[1:]))
    with pytest.raises(ValueError, match="rate"):
        sparsity.progressive_targets(3, 1.0)
    with pytest.raises(ValueError, match="rounds"):
        sparsity.progressive_targets(0, 0.5)


def test_prune_only_wraps_kernels_and_leaves_the_original_untouched():
    model = tiny_mlp()
    before = [w.copy() for w in model.get_weights()]
    pruned = sparsity.prune(model, 0.5)
    wrapped = [layer.layer.name for layer in pruned.layers if isinstance(layer, PruneLowMagnitude)]
    assert wrapped == ["fc1", "fc2", "logits"]
    x, y = tiny_data()
    training.train(pruned, x, y, train_cfg(5))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("target", [0.3, 0.75])
def test_one_shot_reaches_target_and_zeros_stay_zero_through_training(target):
    x, y = tiny_data()
    pruned = sparsity.prune(tiny_mlp(), target)
    training.train(pruned, x, y, train_cfg(3))
    first = sparsity.masks(sparsity.strip(pruned))
    training.train(pruned, x, y, train_cfg(10))
    stripped = sparsity.strip(pruned)
    stats = sparsity.weight_sparsity(stripped)
    for name, layer in stats["layers"].items():
        # tfmot keeps round(size * (1 - s)) weights: the target is met within one weight.
        assert abs(layer["zeros"] - round(target * layer["size"])) <= 1, name
    for name, mask in sparsity.masks(stripped).items():
        assert not np.any(mask & ~first[name]), f"{name}: a pruned weight came back"


@pytest.mark.parametrize("method", ["gup", "lup"])
def test_strip_without_a_training_step_still_prunes(method):
    """Issue 30: tfmot sets masks only inside a training step, so 0 retraining steps exported
    the dense weights; strip computes the step-1 mask then, keeping the largest weights."""
    x, y = tiny_data()
    model = tiny_mlp()
    pruned = sparsity.prune_with(method, model, 0.5)
    training.train(pruned, x, y, train_cfg(0))
    stripped = sparsity.strip(pruned)
    stats = sparsity.weight_sparsity(stripped)
    assert stats["overall"] == pytest.approx(0.5, abs=1e-3)
    if method == "lup":
        for name, layer in stats["layers"].items():
            assert abs(layer["zeros"] - round(0.5 * layer["size"])) <= 1, name
    for name, mask in sparsity.masks(stripped).items():  # magnitude pruning: no kept weight below a pruned one
        kernel = np.abs(model.get_layer(name).kernel.numpy())
        assert kernel[mask].min() >= kernel[~mask].max(), name
    assert {int(layer.pruning_step.numpy()) for layer in sparsity.prunable_layers(pruned)} == {-1}


def test_pruning_step_counts_optimizer_steps():
    x, y = tiny_data()
    pruned = sparsity.prune(tiny_mlp(), 0.5)
    training.train(pruned, x, y, train_cfg(16))
    steps = {int(layer.pruning_step.numpy()) for layer in sparsity.prunable_layers(pruned)}
    assert steps == {16}


def test_keep_dense_first_and_last():
    x, y = tiny_data()
    pruned = sparsity.prune(tiny_mlp(), 0.6, keep_dense=("first", "last"))
    training.train(pruned, x, y, train_cfg(3))
    layers = sparsity.weight_sparsity(sparsity.strip(pruned))["layers"]
    assert layers["fc1"]["zeros"] == 0 and layers["logits"]["zeros"] == 0
    assert layers["fc2"]["sparsity"] == pytest.approx(0.6, abs=1 / 512)
    with pytest.raises(ValueError, match="not a prunable layer"):
        sparsity.prune(tiny_mlp(), 0.5, keep_dense=("normalize",))


def test_bad_sparsity_is_rejected():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sparsity.prune(tiny_mlp(), 1.0)


def test_progressive_pruning_rounds_keep_old_zeros_and_reach_the_rule():
    x, y = tiny_data()
    model = tiny_mlp()
    training.train(model, x, y, train_cfg(10))
    seen = []

    def on_round(index, target, stripped):
        seen.append((index, target, sparsity.weight_sparsity(stripped)["overall"], sparsity.masks(stripped)))

    final = sparsity.progressive_prune(
        model, rounds=4, rate=0.5, retrain=lambda m: training.train(m, x, y, train_cfg(5)), on_round=on_round
    )
    assert [s[0] for s in seen] == [1, 2, 3, 4]
    for (_, target, overall, _), expected in zip(seen, [0.5, 0.75, 0.875, 0.9375]):
        assert target == pytest.approx(expected)
        assert overall == pytest.approx(expected, abs=0.01)
    for (_, _, _, earlier), (_, _, _, later) in zip(seen, seen[1:]):
        for name in earlier:
            assert not np.any(later[name] & ~earlier[name])
    assert not any(isinstance(layer, PruneLowMagnitude) for layer in final.layers)


def test_stripped_model_keeps_zeros_through_save_and_load(tmp_path):
    x, y = tiny_data()
    pruned = sparsity.prune(tiny_mlp(), 0.8)
    training.train(pruned, x, y, train_cfg(5))
    stripped = sparsity.strip(pruned)
    path = str(tmp_path / "m.keras")
    stripped.save(path)
    with sparsity.scope():
        loaded = keras.models.load_model(path)
    assert sparsity.weight_sparsity(loaded)["overall"] == pytest.approx(
        sparsity.weight_sparsity(stripped)["overall"]
    )
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0), stripped.predict(x[:8], verbose=0), atol=1e-6)
