"""Library pieces of the RSR tables (issue 14): σ rule after γ-pruning, ZOO's c search,
the inference-noise and transfer options of scripts/evaluate.py, the tuner's Pareto front."""

import ml_collections
import numpy as np
import pytest

from tfsparse import layers
from tfsparse import models
from tfsparse import sparsity
from tfsparse.errors import ConfigError


def _gamma_pruned(sigma_rule, target=0.6):
    """LeNet-5 with CNI layers under ``sigma_rule``, threshold-pruned (RSR §3.4) to ``target``."""
    from tfsparse.compat import keras

    keras.utils.set_random_seed(0)
    model = models.get("lenet5")(10, (28, 28, 1), layers=models.Layers(noise="channel", noise_sigma_rule=sigma_rule))
    gamma = sparsity.gamma_for_sparsity(model, target)
    return sparsity.threshold_prune(model, gamma)


@pytest.mark.parametrize("sigma_rule", ["full", "nonzero"])
def test_sigma_after_gamma_pruning_follows_the_rule_and_spares_pruned_weights(sigma_rule):
    pruned = _gamma_pruned(sigma_rule)
    noisy = layers.noisy_layers(pruned)
    assert noisy and all(layer.sigma_rule == sigma_rule for layer in noisy)  # kept by the γ copy
    assert sparsity.weight_sparsity(pruned)["overall"] == pytest.approx(0.6, abs=0.01)
    assert sum(np.mean(layer.kernel.numpy() == 0) > 0.5 for layer in noisy) >= 2
    for layer in noisy:
        kernel = layer.kernel.numpy()
        expected = kernel.std() if sigma_rule == "full" else kernel[kernel != 0].std()
        other = kernel[kernel != 0].std() if sigma_rule == "full" else kernel.std()
        sigma = float(layer.noise_sigma())
        np.testing.assert_allclose(sigma, expected, rtol=1e-4)
        if np.mean(kernel == 0) > 0.5:  # (global γ prunes the big layers most) the rules differ
            assert abs(sigma - other) > 0.1 * other
        noise = layer.noisy_kernel(training=True).numpy() - kernel
        assert np.all(noise[kernel == 0] == 0)
        assert np.mean(noise[kernel != 0] != 0) > 0.99


def test_sigma_rule_travels_from_the_rsr_section_to_the_layers_and_back_from_disk(tmp_path):
    from tfsparse import data as data_lib
    from tfsparse.pipelines import _build

    dataset = data_lib.load("mnist", None, num_train=16, num_test=16)
    noise_cfg = ml_collections.ConfigDict({"noise": "channel", "noise_alpha": 0.25, "inference_noise": False,
                                           "noise_sigma_rule": "nonzero"})
    model_cfg = ml_collections.ConfigDict({"name": "lenet5", "width": 1.0, "normalization": "dataset",
                                           "kernel_initializer": "he_normal"})
    model = _build.build_model(model_cfg, dataset, 0, noise_cfg=noise_cfg)
    assert {layer.sigma_rule for layer in layers.noisy_layers(model)} == {"nonzero"}
    path = str(tmp_path / "m.keras")
    model.save(path)
    with sparsity.scope():
        from tfsparse.compat import keras

        loaded = keras.models.load_model(path)
    assert {layer.sigma_rule for layer in layers.noisy_layers(loaded)} == {"nonzero"}
    with pytest.raises(ValueError, match="noise_sigma_rule"):
        models.Layers(noise="channel", noise_sigma_rule="live")


def test_rsr_section_refuses_an_unknown_sigma_rule():
    from configs import train as train_config
    from tfsparse.pipelines import validate

    config = train_config.get_config("mnist_rsr")
    assert config.rsr.noise_sigma_rule == "full"  # RSR eq. 4 by default
    validate.validate(config)
    config.rsr.noise_sigma_rule = "live"
    with pytest.raises(ConfigError, match="noise_sigma_rule"):
        validate.validate(config)


def test_zoo_c_search_finds_adversarial_examples_where_a_fixed_small_c_cannot():
    # z = wᵀx + b on 4x4 images, inputs at l2 distance 0.2 ... 0.35 from the boundary. With c fixed
    # at 0.01 the optimum of ‖δ‖² + c·margin sits at ‖δ‖ = c‖w‖/2 ≈ 0.02 from x: no flip. Chen's
    # search raises c ×10 per failed round (0.01, 0.1, 1, 10) and flips every one, with the same
    # query budget.
    from tfsparse.attacks import ZOO
    from tfsparse.compat import keras

    rng = np.random.default_rng(0)
    w = rng.normal(size=16)
    w /= np.linalg.norm(w)
    distance = np.linspace(0.2, 0.35, 8)
    sign = np.where(np.arange(8) % 2, 1.0, -1.0)
    x = (0.5 + sign[:, None] * distance[:, None] * w).astype(np.float32)  # boundary through 0.5
    y = (sign > 0).astype(np.int32)
    model = keras.Sequential([keras.layers.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.set_weights([w[:, None].astype(np.float32), np.array([-0.5 * w.sum()], np.float32)])
    budget = dict(coords=8, max_queries=2000, learning_rate=0.02)
    fixed = ZOO(initial_const=0.01, binary_search_steps=1, **budget)(model, x.reshape(-1, 4, 4, 1), y, seed=0)
    search = ZOO(initial_const=0.01, binary_search_steps=5, **budget)(model, x.reshape(-1, 4, 4, 1), y, seed=0)
    assert fixed.clean_correct.all() and not fixed.success.any()
    assert search.success.all()
    assert np.all(search.l2 >= distance * (1 - 1e-4))  # never inside the closed-form distance
    # The same budget: each of the 5 rounds gets whole iterations of 2·8 + 1 queries.
    assert 2000 - 5 * 17 < search.queries[0] <= fixed.queries[0] <= 2000
