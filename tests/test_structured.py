"""Structured pruning (FP, NS), structure statistics and re-initialisation.

The oracle for every rebuild is the *masked wide model* of ``sparsity._structured.rebuild``: the wide
model with the consumer's input weights from removed channels zeroed. It is built here
independently, from the kernels' natural shapes (e.g. the Dense kernel after a Flatten
reshaped to (H, W, C, units)), so the NHWC index mapping is checked, not re-used.
"""

import ml_collections
import numpy as np
import pytest

from tfsparse import models
from tfsparse import sparsity
from tfsparse import training
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.layers import Normalize
from tfsparse.sparsity import _reinit as reinit
from tfsparse.sparsity import _structured as structured


def tiny_convnet(seed=0):
    """conv(4)→BN→relu→conv(6)→BN→relu→flatten→fc(5)→relu→logits(3), 4×4×2 inputs."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4, 4, 2))
    x = Normalize(0.5, 0.25, name="normalize")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(5, activation="relu", name="fc")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    for name in ("bn1", "bn2"):  # non-trivial BN so that slicing it matters
        bn = model.get_layer(name)
        c = bn.gamma.shape[0]
        bn.set_weights([rng.uniform(0.5, 2, c), rng.normal(0, 0.5, c),
                        rng.normal(0, 0.5, c), rng.uniform(0.5, 2, c)])
    return model


def tiny_mlp(seed=0):
    keras.utils.set_random_seed(seed)
    return models.get("lenet300_100")(3, (8, 8, 1), 0.5, 0.25, width=0.1)  # 30, 10 units


def tiny_resnet(seed=0):
    keras.utils.set_random_seed(seed)
    model = models.get("resnet20")(3, (8, 8, 3), width=0.25)  # stages of 4, 8, 16 channels
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(0, 0.5, c),
                               rng.normal(0, 0.5, c), rng.uniform(0.5, 2, c)])
    return model


def images(shape, n=8, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (n, *shape)).astype("float32")


def train_cfg(steps=3):
    return ml_collections.ConfigDict(
        {"optimizer": "sgd", "batch_size": 16, "learning_rate": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
         "lr_schedule": "constant", "steps": steps, "epochs": 0.0, "augment": False,
         "jit_compile": False}
    )


def l1_kept(kernel, ratio):
    """Kept output indices by Li et al.'s rule, computed straight from the definition."""
    norms = np.array([np.abs(kernel[..., j]).sum() for j in range(kernel.shape[-1])])
    remove = int(np.floor(ratio * norms.size + 0.5))
    return np.sort(np.argsort(norms, kind="stable")[remove:])


def masked_wide(model, consumers):
    """Wide copy with ``consumer`` input weights zeroed: ``{consumer: (removed, reshape)}``."""
    masked = sparsity.copy_model(model)
    for name, (removed, shape) in consumers.items():
        layer = masked.get_layer(name)
        weights = layer.get_weights()
        kernel = weights[0].reshape(shape) if shape else weights[0].copy()
        kernel[..., removed, :] = 0.0
        weights[0] = kernel.reshape(weights[0].shape)
        layer.set_weights(weights)
    return masked


def assert_same_function(a, b, x):
    for flag in (False, True):  # inference and batch-statistics BN
        np.testing.assert_allclose(a(x, training=flag).numpy(), b(x, training=flag).numpy(),
                                   atol=1e-5, rtol=1e-5)


def removed(kept, n):
    return np.setdiff1d(np.arange(n), kept)


# ---------------------------------------------------------------- filter pruning


def test_removable_layers_follow_the_graph():
    assert structured.removable_layers(tiny_convnet()) == ["conv1", "conv2", "fc"]
    assert structured.removable_layers(tiny_mlp()) == ["fc1", "fc2"]
    blocks = [f"stage{s}_block{b}_conv1" for s in (1, 2, 3) for b in (1, 2, 3)]
    assert structured.removable_layers(tiny_resnet()) == blocks


def test_fp_removes_smallest_l1_filters_and_narrows_exactly():
    model = tiny_convnet()
    conv1 = model.get_layer("conv1")
    kernel, bias = conv1.get_weights()
    kernel[..., 2] *= 1e-3  # filter 2 is the clear L1 minimum
    conv1.set_weights([kernel, bias])
    plan = structured.filter_prune_plan(model, 0.5)
    assert set(plan) == {"conv1", "conv2"}  # convs only by default, like Li et al.
    assert 2 not in plan["conv1"]
    for name in plan:
        kernel = model.get_layer(name).get_weights()[0]
        np.testing.assert_array_equal(plan[name], l1_kept(kernel, 0.5))
    narrow = structured.filter_prune(model, 0.5)
    assert narrow.get_layer("conv1").kernel.shape == (3, 3, 2, 2)
    assert narrow.get_layer("bn1").gamma.shape == (2,)
    assert narrow.get_layer("conv2").kernel.shape == (3, 3, 2, 3)
    assert narrow.get_layer("bn2").moving_variance.shape == (3,)
    assert narrow.get_layer("fc").kernel.shape == (4 * 4 * 3, 5)
    assert narrow.get_layer("logits").kernel.shape == (5, 3)
    np.testing.assert_array_equal(narrow.get_layer("bn1").gamma.numpy(),
                                  model.get_layer("bn1").gamma.numpy()[plan["conv1"]])
    assert model.get_layer("conv1").kernel.shape == (3, 3, 2, 4)  # original untouched


def test_fp_equals_masked_wide_model_and_retrains():
    model = tiny_convnet()
    plan = structured.filter_prune_plan(model, 0.5)
    narrow = structured.remove_channels(model, plan)
    oracle = masked_wide(model, {
        "conv2": (removed(plan["conv1"], 4), None),
        "fc": (removed(plan["conv2"], 6), (4, 4, 6, 5)),  # NHWC flatten order
    })
    x = images((4, 4, 2))
    assert_same_function(narrow, oracle, x)
    assert not np.allclose(narrow(x).numpy(), model(x).numpy(), atol=1e-3)  # masking matters
    history = training.train(narrow, x, np.arange(8) % 3, train_cfg(3))
    assert np.isfinite(history.history["loss"][-1])


def test_fp_on_resnet_prunes_inside_blocks_and_leaves_shortcuts():
    model = tiny_resnet()
    narrow = structured.filter_prune(model, 0.5)
    inner = set(structured.removable_layers(model))
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            expected = layer.filters // 2 if layer.name in inner else layer.filters
            assert narrow.get_layer(layer.name).filters == expected, layer.name
    # Everything that enters a residual sum keeps its shape: stem, conv2, shortcuts.
    for name in ("conv1", "bn1", "stage2_block1_conv2", "stage2_block1_shortcut",
                 "stage3_block3_add", "pool"):
        assert narrow.get_layer(name).output_shape == model.get_layer(name).output_shape
    plan = structured.filter_prune_plan(model, 0.5)
    oracle = masked_wide(model, {
        name.replace("_conv1", "_conv2"): (removed(kept, model.get_layer(name).filters), None)
        for name, kept in plan.items()
    })
    assert_same_function(narrow, oracle, images((8, 8, 3), n=4))


def test_fp_prunes_mlp_hidden_units():
    model = tiny_mlp()
    plan = structured.filter_prune_plan(model, 0.3)
    assert set(plan) == {"fc1", "fc2"}
    narrow = structured.remove_channels(model, plan)
    assert narrow.get_layer("fc1").units == 21 and narrow.get_layer("fc2").units == 7
    assert narrow.get_layer("fc2").kernel.shape == (21, 7)
    assert narrow.get_layer("logits").kernel.shape == (7, 3)
    oracle = masked_wide(model, {"fc2": (removed(plan["fc1"], 30), None),
                                 "logits": (removed(plan["fc2"], 10), None)})
    assert_same_function(narrow, oracle, images((8, 8, 1)))
    only = structured.filter_prune_plan(model, 0.3, layers=["fc2"])
    assert list(only) == ["fc2"]
    assert list(structured.filter_prune_plan(model, 0.3, keep=("first",))) == ["fc2"]


# ------------------------------------------------------------- network slimming


def set_gammas(model, bn1, bn2):
    for name, gamma in (("bn1", bn1), ("bn2", bn2)):
        weights = model.get_layer(name).get_weights()
        weights[0] = np.asarray(gamma, dtype="float32")
        model.get_layer(name).set_weights(weights)


def test_ns_ranks_gammas_globally_and_honours_the_cap():
    model = tiny_convnet()
    set_gammas(model, [0.1, 2.0, 0.05, 3.0], [1.0, -0.01, 0.02, 4.0, 0.03, 5.0])
    # 40% of 10 channels: the four smallest |γ| are 0.01, 0.02, 0.03 (bn2) and 0.05 (bn1).
    plan = structured.slimming_plan(model, 0.4)
    np.testing.assert_array_equal(plan["conv1"], [0, 1, 3])
    np.testing.assert_array_equal(plan["conv2"], [0, 3, 5])
    # Cap floor(0.3 · C) = 1 per layer: after 0.01 (bn2) bn2 is full, next is 0.05 (bn1).
    capped = structured.slimming_plan(model, 0.2, max_per_layer=0.3)
    np.testing.assert_array_equal(capped["conv1"], [0, 1, 3])
    np.testing.assert_array_equal(capped["conv2"], [0, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="at most 2"):
        structured.slimming_plan(model, 0.3, max_per_layer=0.3)
    narrow = structured.network_slim(model, 0.4)
    assert narrow.get_layer("conv1").filters == 3 and narrow.get_layer("conv2").filters == 3
    np.testing.assert_allclose(narrow.get_layer("bn2").gamma.numpy(), [1.0, 4.0, 5.0])


def test_ns_equals_masked_wide_model():
    model = tiny_convnet(seed=3)
    plan = structured.slimming_plan(model, 0.5)
    narrow = structured.network_slim(model, 0.5)
    oracle = masked_wide(model, {
        "conv2": (removed(plan["conv1"], 4), None),
        "fc": (removed(plan["conv2"], 6), (4, 4, 6, 5)),
    })
    assert_same_function(narrow, oracle, images((4, 4, 2)))


def test_ns_on_resnet_only_touches_block_inner_bns():
    plan = structured.slimming_plan(tiny_resnet(), 0.3)
    assert set(plan) == set(structured.removable_layers(tiny_resnet()))


def test_ns_without_batchnorm_says_what_to_change():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, name="conv1")(inputs)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(4, 3, name="conv2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="x")
    assert structured.removable_layers(model) == ["conv1", "conv2"]
    for call in (structured.network_slim, structured.slimming_plan):
        with pytest.raises(ValueError) as info:
            call(model, 0.3)
        message = str(info.value)
        assert "\n" not in message
        assert "model 'x' has no BatchNormalization layer" in message
        assert "lenet5_bn" in message and "(gup, lup, fp)" in message


def test_bn_gamma_l1_value_and_gradient():
    model = tiny_convnet()
    set_gammas(model, [0.1, -2.0, 0.05, 3.0], [1.0, -0.01, 0.02, 4.0, 0.03, 5.0])
    penalty = structured.bn_gamma_l1(model, 1e-2)
    with tf.GradientTape() as tape:
        value = penalty()
    np.testing.assert_allclose(value.numpy(), 1e-2 * (5.15 + 10.06), rtol=1e-6)
    gammas = [model.get_layer("bn1").gamma, model.get_layer("bn2").gamma]
    grads = tape.gradient(value, gammas)
    for gamma, grad in zip(gammas, grads):
        np.testing.assert_allclose(grad.numpy(), 1e-2 * np.sign(gamma.numpy()))
    model.add_loss(penalty)
    np.testing.assert_allclose(model.losses[0].numpy(), value.numpy())


# ------------------------------------------------------------------- statistics


def test_structure_summary_hand_computed():
    # conv1 3·3·2·4 + 4; conv2 3·3·4·6 + 6; fc 96·5 + 5; logits 5·3 + 3; BN 4·(4 + 6).
    summary = structured.structure_summary(tiny_convnet())
    assert summary["layers"]["conv1"] == {"type": "Conv2D", "channels": 4, "params": 76,
                                          "flops": 16 * 9 * 2 * 4}
    assert summary["layers"]["conv2"]["flops"] == 16 * 9 * 4 * 6
    assert summary["layers"]["fc"]["flops"] == 96 * 5
    assert summary["params"] == 76 + 222 + 485 + 18 + 40
    assert summary["trainable_params"] == 76 + 222 + 485 + 18 + 20
    assert summary["flops"] == 1152 + 3456 + 480 + 15
    narrow = structured.filter_prune(tiny_convnet(), 0.5)
    small = structured.structure_summary(narrow)
    # conv1 2 filters, conv2 3 filters: 38 + 57 + 245 + 18 + 4·(2 + 3); MACs 576 + 864 + 240 + 15.
    assert small["params"] == 38 + 57 + 245 + 18 + 20
    assert small["flops"] == 576 + 864 + 240 + 15
    reduction = structured.structure_reduction(tiny_convnet(), narrow)
    np.testing.assert_allclose(reduction["flops"], 1 - 1695 / 5103)
    np.testing.assert_allclose(reduction["params"], 1 - 378 / 841)
    wrapped = structured.structure_summary(sparsity.prune(tiny_convnet(), 0.5))
    assert wrapped["params"] == summary["params"] and wrapped["flops"] == summary["flops"]


def test_structure_summary_counts_nonzero_params():
    # Zeroing 30 of conv1's 72 (random, non-zero) kernel entries removes exactly 30 non-zero
    # parameters and no parameter; biases, BN beta and moving means start at 0 and are not counted.
    model = tiny_convnet()
    before = structured.structure_summary(model)
    kernel, bias = model.get_layer("conv1").get_weights()
    assert np.count_nonzero(kernel) == kernel.size
    flat = kernel.reshape(-1).copy()
    flat[:30] = 0.0
    model.get_layer("conv1").set_weights([flat.reshape(kernel.shape), bias])
    after = structured.structure_summary(model)
    assert after["params"] == before["params"]
    assert after["nonzero_params"] == before["nonzero_params"] - 30
    independent = sum(int(np.count_nonzero(w)) for w in model.get_weights())
    assert after["nonzero_params"] == independent


# ------------------------------------------------------------- re-initialisation


def test_reinitialize_keeps_structure_and_mask_and_is_seeded():
    model = sparsity.strip(sparsity.prune(tiny_convnet(), 0.5))
    sparsity.apply_masks(model)
    for layer in sparsity.prunable_layers(model):  # a real zero pattern, as after tfmot
        kernel = layer.kernel.numpy()
        layer.kernel.assign(np.where(np.abs(kernel) < np.median(np.abs(kernel)), 0.0, kernel))
    before = [w.copy() for w in model.get_weights()]
    fresh = reinit.reinitialize(model, seed=7)
    again = reinit.reinitialize(model, seed=7)
    other = reinit.reinitialize(model, seed=8)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # original untouched
    assert [w.shape for w in fresh.weights] == [w.shape for w in model.weights]
    assert [layer.name for layer in fresh.layers] == [layer.name for layer in model.layers]
    for a, b in zip(fresh.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    for name in ("conv1", "conv2", "fc", "logits"):
        old = model.get_layer(name).kernel.numpy()
        new = fresh.get_layer(name).kernel.numpy()
        assert not np.any(new[old == 0]), name  # zeros kept
        assert np.mean(new[old != 0] != 0) > 0.99, name  # fresh values elsewhere
        assert not np.allclose(new[old != 0], old[old != 0]), name
        assert not np.allclose(new, other.get_layer(name).kernel.numpy()), name
    bn = fresh.get_layer("bn1")
    np.testing.assert_array_equal(bn.moving_mean.numpy(), 0.0)
    np.testing.assert_array_equal(bn.moving_variance.numpy(), 1.0)
    dense_mask = reinit.reinitialize(model, seed=7, keep_mask=False)
    assert np.all(dense_mask.get_layer("conv1").kernel.numpy() != 0)


def test_reinitialize_keeps_a_narrow_model_narrow():
    narrow = structured.filter_prune(tiny_convnet(), 0.5)
    fresh = reinit.reinitialize(narrow, seed=0)
    assert fresh.get_layer("conv1").filters == 2
    assert [w.shape for w in fresh.weights] == [w.shape for w in narrow.weights]


# ------------------------------------------------------------------------ errors


def test_errors_are_clear():
    model = tiny_convnet()
    for ratio in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\)"):
            structured.filter_prune(model, ratio)
        with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\)"):
            structured.network_slim(model, ratio)
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        structured.filter_prune(model, 0.5, layers=["nope"])
    with pytest.raises(ValueError, match="'logits' is a model output"):
        structured.filter_prune(model, 0.5, layers=["logits"])
    with pytest.raises(ValueError, match="would remove all 4 filters of 'conv1'"):
        structured.filter_prune(model, 0.9)
    with pytest.raises(ValueError, match="max_per_layer"):
        structured.network_slim(model, 0.5, max_per_layer=0.0)
    with pytest.raises(ValueError, match="strength"):
        structured.bn_gamma_l1(model, -1.0)
    with pytest.raises(ValueError, match="no BatchNormalization"):
        structured.network_slim(tiny_mlp(), 0.5)
    with pytest.raises(ValueError, match="distinct, non-empty"):
        structured.remove_channels(model, {"conv1": []})
    with pytest.raises(ValueError, match="strip"):
        structured.filter_prune(sparsity.prune(model, 0.5), 0.5)
    with pytest.raises(ValueError, match="strip"):
        reinit.reinitialize(sparsity.prune(model, 0.5))
    with pytest.raises(ValueError, match="stage1_block1_add"):
        structured.filter_prune(tiny_resnet(), 0.5, layers=["stage1_block1_conv2"])
