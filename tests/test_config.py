"""Config validation (SPEC §11) on the shipped config files, in-process."""

import importlib
import os
import sys

import pytest

from tfsparse import errors
from tfsparse.pipelines import validate as config_lib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIGS = [
    ("guo_mnist", "quick"), ("guo_mnist", "full"), ("guo_mnist", "paper"),
    ("guo_linear", "binary"), ("guo_linear", "multiclass"), ("guo_linear", "quick"),
    ("wang_mnist", "quick"), ("wang_mnist", "full"), ("train", "lenet"), ("train", "cifar"),
    ("train", "mnist_pgd"), ("train", "mnist_rsr"), ("train", "cifar_pgd"), ("train", "cifar_rsr"),
    ("train", "mnist_ibp"), ("train", "mnist_crown_ibp"), ("train", "mnist_gaussian"),
    ("prune", "default"), ("tune_rsr", "quick"), ("tune_rsr", "paper"), ("evaluate", "mnist"),
]


def get_config(name, variant):
    return importlib.import_module(f"configs.{name}").get_config(variant)


@pytest.mark.parametrize("name, variant", CONFIGS)
def test_shipped_configs_validate(name, variant):
    config_lib.validate(get_config(name, variant))


def test_unknown_variant_is_rejected():
    with pytest.raises(ValueError, match="choose from"):
        get_config("guo_mnist", "bogus")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("eval.fgs_eps", -0.1, "eval.fgs_eps must be >= 0"),
        ("model.name", "resnet99", "model.name 'resnet99' is unknown"),
        ("data.name", "imagenet", "data.name 'imagenet' is unknown"),
        ("prune.rate", 1.5, "prune.rate"),
        ("prune.rounds", 0, "prune.rounds must be >= 1"),
        ("train.batch_size", 0, "train.batch_size must be >= 1"),
        ("train.lr_schedule", "nope", "train.lr_schedule 'nope' is unknown"),
        ("train.optimizer", "rmsprop", "train.optimizer 'rmsprop' is unknown"),
        ("eval.deepfool_box_rule", "project", "eval.deepfool_box_rule must be"),
        ("xla", "maybe", "xla 'maybe' is unknown"),
        ("data.classes", "1", "at least two classes"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(key, value, message):
    config = get_config("guo_mnist", "quick")
    section, _, leaf = key.rpartition(".")
    target = config if not section else config[section]
    with config.unlocked():
        target[leaf] = value
    with pytest.raises(errors.ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")) as error:
        config_lib.validate(config)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("key, value, message", [
    ("certified.kappa_end", 1.5, "certified.kappa_end must be in [0, 1], got 1.5"),
    ("certified.ramp_epochs", -1.0, "certified.ramp_epochs must be >= 0"),
    ("certified.train_eps", 4.0, "certified.train_eps"),
    ("certified.norm", "l1", "certified.norm 'l1' is unknown"),
])
def test_certified_training_values_are_checked(key, value, message):
    config = get_config("train", "mnist_crown_ibp")
    assert config.training == "crown_ibp" and config.model.name == "cnn_small"
    section, leaf = key.split(".")
    config[section][leaf] = value
    with pytest.raises(errors.ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        config_lib.validate(config)


@pytest.mark.parametrize("key, value, message", [
    ("smoothing.sigma", 0.0, "smoothing.sigma (the noise scale, pixel units) must be > 0"),
    ("smoothing.alpha", 1.0, "smoothing.alpha must be in (0, 1)"),
    ("smoothing.n", 0, "smoothing.n must be >= 1"),
    ("smoothing.radii", (-0.5,), "smoothing.radii must be one or more l2 radii >= 0"),
])
def test_smoothing_values_are_checked(key, value, message):
    config = get_config("train", "mnist_gaussian")
    assert config.training == "gaussian"
    section, leaf = key.split(".")
    config[section][leaf] = value
    with pytest.raises(errors.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        config_lib.validate(config)


def test_prune_config_rejects_bad_method_and_sparsity():
    config = get_config("prune", "default")
    with config.unlocked():
        config.method = "nope"
    with pytest.raises(errors.ConfigError, match="method 'nope' is unknown"):
        config_lib.validate(config)
    config = get_config("prune", "default")
    with config.unlocked():
        config.sparsity = 1.0
    with pytest.raises(errors.ConfigError, match=r"sparsity must be in \[0, 1\)"):
        config_lib.validate(config)
