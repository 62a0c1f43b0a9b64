"""Tests of the model zoo (SPEC §3): shapes, parameter counts, naming, validation, saving."""

import functools
import inspect

import numpy as np
import pytest

from tfsparse import models
from tfsparse.compat import keras
from tfsparse.layers.normalization import Normalize
from tfsparse.models import blocks
from tfsparse.models.resnet import ZeroPadShortcut

# (trainable, total incl. BN moving statistics) for the default build, 10 classes
# (linear_binary: one logit). Provenance:
#   lenet300_100, lenet5: Guo et al. / Caffe, checked by hand in the builder docstrings.
#   resnet20: RSR Table 1 "capacity" 269,722 = trainable, option A (arithmetic in resnet.py).
#   resnet18: RSR Table 1 11,173,962 = trainable (the PyTorch CIFAR ResNet-18 count).
#   densenet121: torchvision densenet121 (7,978,856 for 1000 classes) minus its
#     1024x1000 classifier plus a 1024x10 one.
#   linear, linear_binary: 784*10 + 10 and 784 + 1.
#   vgg_like, vgg16, resnet32, densenet_bc40: computed by this zoo (no paper figure);
#     the vgg counts are the conv/BN/FC sums in vgg.py's docstring.
EXPECTED_PARAMS = {
    "linear": (7_850, 7_850),
    "linear_binary": (785, 785),
    "lenet300_100": (266_610, 266_610),
    "lenet5": (431_080, 431_080),
    # lenet5_bn: lenet5 minus 570 conv/fc1 biases plus BN gamma/beta 2 * 570 (+ 1,140 moving stats).
    "lenet5_bn": (431_650, 432_790),
    # cnn_small (Gowal et al. 2018 "small"): 16·16 + 16, 32·16·16 + 32, 3,200·100 + 100, 100·10 + 10.
    "cnn_small": (329_606, 329_606),
    "vgg_like": (12_626_890, 12_635_338),
    "vgg16": (14_724_042, 14_732_490),
    "resnet20": (269_722, 271_098),
    "resnet32": (464_154, 466_426),
    "resnet18": (11_173_962, 11_183_562),
    "densenet_bc40": (176_122, 181_210),
    "densenet121": (6_964_106, 7_047_754),
}

# The layer whose output is the input of "logits" (Guo Table 1's activation sparsity).
FEATURE_LAYER = {
    "linear": "flatten",
    "linear_binary": "flatten",
    "lenet300_100": "fc2_relu",
    "lenet5": "fc1_relu",
    "lenet5_bn": "fc1_relu",
    "cnn_small": "fc1_relu",
    "vgg_like": "fc1_relu",
    "vgg16": "flatten",
    "resnet20": "pool",
    "resnet32": "pool",
    "resnet18": "pool",
    "densenet_bc40": "pool",
    "densenet121": "pool",
}

# Built once only to count parameters; the rest are also run forward on a tiny batch.
BIG = {"vgg_like", "vgg16", "resnet18", "densenet121"}


def natural_input(name):
    return inspect.signature(models.get(name)).parameters["input_shape"].default


@functools.lru_cache(maxsize=None)
def built(name):
    return models.get(name)()


def kernel_layers(model):
    return [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D,
                                                                  keras.layers.Dense))]


def test_registry_covers_spec_and_expected_tables():
    assert set(models.names()) == set(EXPECTED_PARAMS) == set(FEATURE_LAYER)
    assert models.names() == sorted(models.REGISTRY)


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_natural_input_defaults(name):
    expected = {
        "linear": (28, 28, 1), "linear_binary": (28, 28, 1), "lenet300_100": (28, 28, 1),
        "lenet5": (28, 28, 1), "lenet5_bn": (28, 28, 1), "cnn_small": (28, 28, 1),
        "densenet121": (64, 64, 3),
    }.get(name, (32, 32, 3))
    assert natural_input(name) == expected


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_structure_and_param_count(name):
    model = built(name)
    assert isinstance(model, keras.Model) and model.name == name
    assert isinstance(model.layers[1], Normalize) and model.layers[1].name == "normalize"
    assert model.layers[1].input is model.inputs[0]
    assert model.layers[-1].name == "logits" and isinstance(model.layers[-1], keras.layers.Dense)
    assert model.layers[-1].get_config()["activation"] == "linear"
    classes = 1 if name == "linear_binary" else 10
    assert model.output_shape == (None, classes)
    counts = models.count_params(model)
    assert (counts["trainable"], counts["total"]) == EXPECTED_PARAMS[name]
    assert counts["total"] == model.count_params()
    assert counts["trainable"] + counts["non_trainable"] == counts["total"]
    assert model.get_layer("logits").input is model.get_layer(FEATURE_LAYER[name]).output


@pytest.mark.parametrize("name", sorted(set(EXPECTED_PARAMS) - BIG))
def test_forward_returns_logits(name):
    model = built(name)
    x = np.random.default_rng(0).uniform(size=(2, *natural_input(name))).astype("float32")
    logits = model(x, training=False).numpy()
    assert logits.shape == (2, model.output_shape[-1])
    assert np.all(np.isfinite(logits))
    # Logits, not probabilities: rows need not sum to one.
    assert not np.allclose(logits.sum(axis=-1), 1.0)


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_kernel_layer_names_unique(name):
    model = built(name)
    kernels = kernel_layers(model)
    assert kernels and all(getattr(layer, "kernel", None) is not None for layer in kernels)
    layer_names = [layer.name for layer in kernels]
    assert len(layer_names) == len(set(layer_names))


@pytest.mark.parametrize(
    "name, shortcut, trainable, total",
    [
        # Option B adds two 1x1 projections + BN: 512 + 2,048 + 2*(32 + 64) = 2,752.
        ("resnet20", "B", 272_474, 274_042),
        ("resnet32", "B", 466_906, 469_370),
    ],
)
def test_resnet_shortcut_b_counts(name, shortcut, trainable, total):
    counts = models.count_params(models.get(name)(shortcut=shortcut))
    assert (counts["trainable"], counts["total"]) == (trainable, total)


@pytest.mark.parametrize("width, trainable", [(0.5, 2_797_610), (0.25, 701_466)])
def test_resnet18_width_counts(width, trainable):
    model = models.get("resnet18")(width=width)
    assert models.count_params(model)["trainable"] == trainable
    assert model.get_layer("conv1").filters == int(64 * width)
    assert model.get_layer("stage4_block2_conv2").filters == int(512 * width)


def test_width_scales_hidden_layers_only():
    model = models.get("lenet300_100")(width=0.5)
    assert [model.get_layer(n).units for n in ("fc1", "fc2", "logits")] == [150, 50, 10]
    model = models.get("resnet20")(width=2)
    assert model.get_layer("conv1").filters == 32
    assert model.get_layer("stage3_block3_conv2").filters == 128
    assert model.get_layer("logits").units == 10
    model = models.get("lenet5")(width=0.5, num_classes=3)
    assert [model.get_layer(n).filters for n in ("conv1", "conv2")] == [10, 25]
    assert model.get_layer("fc1").units == 250
    assert model.output_shape == (None, 3)


def test_lenet5_follows_caffe_no_relu_after_convs():
    model = built("lenet5")
    assert [type(layer).__name__ for layer in model.layers[2:]] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "ReLU", "Dense",
    ]
    assert model.get_layer("conv1").get_config()["activation"] == "linear"


def test_resnet20_shortcut_a_has_no_parameters():
    model = built("resnet20")
    shortcuts = [layer for layer in model.layers if isinstance(layer, ZeroPadShortcut)]
    assert [layer.name for layer in shortcuts] == ["stage2_block1_shortcut",
                                                   "stage3_block1_shortcut"]
    assert all(not layer.weights for layer in shortcuts)
    assert len([layer for layer in kernel_layers(model) if "conv" in layer.name]) == 19


def test_zero_pad_shortcut_values():
    x = np.arange(2 * 4 * 4 * 2, dtype="float32").reshape(2, 4, 4, 2)
    y = ZeroPadShortcut(6, strides=2)(x).numpy()
    assert y.shape == (2, 2, 2, 6)
    np.testing.assert_array_equal(y[..., 2:4], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., :2], 0)
    np.testing.assert_array_equal(y[..., 4:], 0)
    with pytest.raises(ValueError, match="more than filters"):
        ZeroPadShortcut(1)(x)


@pytest.mark.parametrize("shape", [(28, 28, 1), (15, 15, 1)])
def test_cifar_resnet_handles_other_sizes(shape):
    # Option A's strided slice and the stride-2 "same" conv must agree on odd sizes.
    model = models.get("resnet20")(input_shape=shape, width=0.25)
    assert model(np.zeros((1, *shape), "float32")).shape == (1, 10)


def test_normalize_uses_per_channel_stats():
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    model = models.get("resnet20")(mean=mean, std=std)
    config = model.get_layer("normalize").get_config()
    np.testing.assert_allclose(config["mean"], mean)
    np.testing.assert_allclose(config["std"], std)


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("lenet5", {"num_classes": 1}, "num_classes must be >= 2"),
        ("lenet5", {"num_classes": 2.5}, "num_classes must be an int"),
        ("linear", {"num_classes": 0}, "num_classes must be >= 2"),
        ("linear_binary", {"num_classes": 3}, "num_classes must be 1 or 2"),
        ("lenet300_100", {"width": 0}, "width must be a number > 0"),
        ("resnet20", {"width": -1.0}, "width must be a number > 0"),
        ("resnet20", {"input_shape": (32, 32)}, r"input_shape must be \(height, width"),
        ("resnet20", {"input_shape": "abc"}, r"input_shape must be \(height, width"),
        ("lenet5", {"input_shape": (12, 12, 1)}, "must be >= 16"),
        ("vgg16", {"input_shape": (28, 28, 3)}, "must be >= 32"),
        ("vgg_like", {"input_shape": (16, 32, 3)}, "must be >= 32"),
        ("densenet121", {"input_shape": (16, 16, 3)}, "must be >= 32"),
        ("resnet18", {"input_shape": (4, 4, 3)}, "must be >= 8"),
        ("resnet20", {"shortcut": "C"}, "shortcut must be 'A' or 'B'"),
        ("resnet20", {"mean": (0.5, 0.5)}, "one value per channel"),
        ("lenet5", {"std": 0.0}, "std must be > 0"),
    ],
)
def test_bad_arguments_raise(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.get(name)(**kwargs)


def test_get_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="Unknown model 'nope'") as info:
        models.get("nope")
    for name in models.names():
        assert name in str(info.value)


def test_layers_factory_is_the_only_kernel_maker():
    class Counting(blocks.Layers):
        made = 0

        def conv(self, *args, **kwargs):
            Counting.made += 1
            return super().conv(*args, **kwargs)

        def dense(self, *args, **kwargs):
            Counting.made += 1
            return super().dense(*args, **kwargs)

    for name in ("lenet5", "resnet20", "vgg_like"):
        Counting.made = 0
        model = models.get(name)(layers=Counting())
        assert Counting.made == len(kernel_layers(model)), name


def test_layers_weight_decay_and_bn_options():
    layers = blocks.Layers(weight_decay=5e-4, bn_momentum=0.8, bn_epsilon=1e-3)
    model = models.get("resnet20")(layers=layers, width=0.25)
    # One L2 term per kernel: (wd / 2) * sum(w^2), none on biases or BN.
    assert len(model.losses) == len(kernel_layers(model))
    conv = model.get_layer("conv1")
    expected = 2.5e-4 * np.sum(conv.kernel.numpy() ** 2)
    np.testing.assert_allclose(conv.losses[0].numpy(), expected, rtol=1e-5)
    assert model.get_layer("bn1").momentum == 0.8 and model.get_layer("bn1").epsilon == 1e-3
    assert not models.get("resnet20")(width=0.25).losses
    assert "weight_decay=0.0005" in repr(layers)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weight_decay": -1.0}, "weight_decay must be >= 0"),
        ({"bn_momentum": 1.0}, r"bn_momentum must be in \[0, 1\)"),
        ({"bn_epsilon": 0.0}, "bn_epsilon must be > 0"),
    ],
)
def test_layers_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        blocks.Layers(**kwargs)


@pytest.fixture(scope="module")
def small_resnet():
    # Covers both custom layers (Normalize, ZeroPadShortcut) and BN.
    return models.get("resnet20")(width=0.25, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))


def test_clone_model_keeps_outputs(small_resnet):
    clone = keras.models.clone_model(small_resnet)
    clone.set_weights(small_resnet.get_weights())
    x = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(clone(x).numpy(), small_resnet(x).numpy(), rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in small_resnet.layers]


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_save_load_round_trip(small_resnet, tmp_path, suffix):
    path = str(tmp_path / f"model{suffix}")
    small_resnet.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(2).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(loaded(x).numpy(), small_resnet(x).numpy())
    assert isinstance(loaded.get_layer("normalize"), Normalize)
    assert isinstance(loaded.get_layer("stage2_block1_shortcut"), ZeroPadShortcut)
