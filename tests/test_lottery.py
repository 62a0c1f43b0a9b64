"""Adversarial lottery ticket (Wang Alg. 1, SPEC §4 reconstruction) and IWI (Wang Alg. 2)."""

import ml_collections
import numpy as np
import pytest

from tfsparse import training
from tfsparse.compat import keras
from tfsparse.sparsity import masks as nonzero_masks
from tfsparse.sparsity import scope
from tfsparse.sparsity import strip
from tfsparse.sparsity import weight_sparsity
from tfsparse.sparsity._lottery import inverse_weights_inheritance
from tfsparse.sparsity._lottery import lottery_ticket
from tfsparse.sparsity._lottery import prune_surviving
from tfsparse.sparsity._lottery import random_masks
from tfsparse.sparsity._oneshot import wrap_with_masks


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(8, activation="relu", name="fc1",
                           bias_initializer=keras.initializers.RandomNormal(seed=1))(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, outputs)


def tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 6, 6, 1)).astype("float32")
    y = (x[:, :3].mean(axis=(1, 2, 3)) * 3).astype("int64").clip(0, 2)
    return x, y


def train(model, steps=3):
    cfg = ml_collections.ConfigDict(
        {"optimizer": "sgd", "batch_size": 32, "learning_rate": 0.05, "momentum": 0.9, "weight_decay": 0.0,
         "lr_schedule": "constant", "steps": steps, "epochs": 0.0, "augment": False,
         "jit_compile": False}
    )
    x, y = tiny_data()
    training.train(model, x, y, cfg, steps=steps)


def kernels_by_name(model):
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def test_prune_surviving_removes_exactly_count_among_survivors_globally():
    weights = {"a": np.array([[0.1, -5.0], [0.3, 2.0]]), "b": np.array([0.2, -0.05, 4.0])}
    kept = {"a": np.array([[True, True], [False, True]]), "b": np.array([True, True, True])}
    new = prune_surviving(weights, kept, 2)  # survivors 0.1, 5, 2, 0.2, 0.05, 4 -> drop 0.05, 0.1
    np.testing.assert_array_equal(new["a"], [[False, True], [False, True]])
    np.testing.assert_array_equal(new["b"], [True, False, True])
    with pytest.raises(ValueError, match="cannot remove"):
        prune_surviving(weights, kept, 7)


def test_random_masks_keep_each_layer_count_and_follow_the_seed():
    masks = {"a": np.arange(20).reshape(4, 5) % 3 == 0, "b": np.ones(7, dtype=bool)}
    drawn = random_masks(masks, (0, 2))
    for name in masks:
        assert drawn[name].shape == masks[name].shape and drawn[name].sum() == masks[name].sum()
    np.testing.assert_array_equal(random_masks(masks, (0, 2))["a"], drawn["a"])
    assert not np.array_equal(random_masks(masks, (1, 2))["a"], drawn["a"])


def test_ticket_is_rewound_theta0_on_nested_masks_with_k_times_p_sparsity():
    model = tiny_model()
    theta0 = kernels_by_name(model)
    history = []
    ticket, masks = lottery_ticket(
        model, iterations=2, prune_fraction=0.3, train=train,
        on_iteration=lambda k, m: history.append({n: v.copy() for n, v in m.items()}),
    )
    # Nested: every mask is a subset of the previous one; exactly k * round(p * N0) removed.
    total = sum(m.size for m in masks.values())
    per_iteration = round(0.3 * total)
    for k, mask in enumerate(history, start=1):
        assert sum(int((~m).sum()) for m in mask.values()) == k * per_iteration
    for earlier, later in zip(history, history[1:]):
        for name in earlier:
            assert not np.any(later[name] & ~earlier[name]), name
    stripped = strip(ticket)
    assert weight_sparsity(stripped)["zeros"] == 2 * per_iteration
    # θ0 ⊙ MK exactly, biases and BN rewound as well; the original model is untouched.
    for name, values in kernels_by_name(stripped).items():
        for value, initial in zip(values, theta0[name]):
            is_kernel = name in masks and value.shape == masks[name].shape
            expected = np.where(masks[name], initial, 0.0) if is_kernel else initial
            np.testing.assert_array_equal(value, expected, err_msg=name)
    for name, values in kernels_by_name(model).items():
        for value, initial in zip(values, theta0[name]):
            np.testing.assert_array_equal(value, initial)


def test_ticket_trains_with_its_mask_held_and_keep_dense():
    ticket, masks = lottery_ticket(tiny_model(), iterations=1, prune_fraction=0.5, train=train,
                                   keep_dense=("last",))
    assert set(masks) == {"conv1", "fc1"}
    train(ticket, steps=4)
    after = nonzero_masks(strip(ticket))
    for name, mask in masks.items():
        np.testing.assert_array_equal(after[name], mask, err_msg=name)
    assert after["logits"].all()


def test_lottery_ticket_validates_its_arguments():
    with pytest.raises(ValueError, match="iterations"):
        lottery_ticket(tiny_model(), iterations=0, prune_fraction=0.2, train=train)
    with pytest.raises(ValueError, match="< 1"):
        lottery_ticket(tiny_model(), iterations=5, prune_fraction=0.2, train=train)


def test_iwi_holds_finetuned_weights_on_the_mask_and_theta0_elsewhere():
    large = tiny_model(seed=3)
    ticket, masks = lottery_ticket(large, iterations=1, prune_fraction=0.4, train=train)
    train(ticket, steps=3)
    finetuned = kernels_by_name(strip(ticket))
    initial = kernels_by_name(large)
    dense = inverse_weights_inheritance(large, ticket, masks)
    for name, values in kernels_by_name(dense).items():
        kernel = values[0]
        if name in masks:
            expected = np.where(masks[name], finetuned[name][0], initial[name][0])
            np.testing.assert_array_equal(kernel, expected)
            assert np.all(kernel[~masks[name]] != 0)
        else:
            np.testing.assert_array_equal(kernel, finetuned[name][0])
        for value, inherited in zip(values[1:], finetuned[name][1:]):  # biases, BN from θ′
            np.testing.assert_array_equal(value, inherited)
    with pytest.raises(ValueError, match="unknown layers"):
        inverse_weights_inheritance(large, ticket, {"nope": masks["fc1"]})


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_held_mask_wrappers_survive_save_and_load(tmp_path):
    model = tiny_model()
    kept = {"fc1": np.random.default_rng(0).uniform(size=(64, 8)) > 0.5}
    wrapped = wrap_with_masks(model, kept)
    path = str(tmp_path / "wrapped.h5")
    wrapped.save(path)
    with scope():
        loaded = keras.models.load_model(path)
    train(loaded, steps=2)
    np.testing.assert_array_equal(nonzero_masks(strip(loaded))["fc1"], kept["fc1"])
