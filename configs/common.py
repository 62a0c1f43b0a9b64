"""Config sections shared by the experiment files (the only place defaults live).

Each experiment file defines ``get_config(arg)`` with variants such as ``quick``
(minutes on 2 CPU cores, same code path) and ``paper`` (the paper's settings).
"""

import ml_collections


def parse_variant(arg, known):
    """Returns the variant named by ``arg`` (default: the first of ``known``)."""
    variant = (arg or known[0]).strip()
    if variant not in known:
        raise ValueError(f"unknown config variant {variant!r}; choose from {known}")
    return variant


def data(name="mnist", data_dir="", num_train=0, num_test=0, classes=""):
    """Dataset section. ``num_*`` 0 = all; ``data_dir`` '' = embedded sample / TFDS."""
    return ml_collections.ConfigDict(
        {"name": name, "data_dir": data_dir, "num_train": num_train, "num_test": num_test,
         "classes": classes, "seed": 0}
    )


def model(name="lenet300_100", width=1.0, normalization="dataset", kernel_initializer="he_normal"):
    """Model section. ``normalization``: "dataset" (per-channel mean/std as the first layer)
    or "none" (inputs stay in [0, 1], as Caffe's LeNets with scale 1/256 see them)."""
    return ml_collections.ConfigDict(
        {"name": name, "width": width, "normalization": normalization, "kernel_initializer": kernel_initializer}
    )


def lenet_training(steps=50_000):
    """Guo's LeNet policy after Caffe: SGD 0.9, lr 0.01 with 'inv' decay, wd 5e-4, batch 64;
    a budget of ``steps`` iterations (``epochs`` 0: set one of the two, the other 0)."""
    return ml_collections.ConfigDict(
        {"optimizer": "sgd", "batch_size": 64, "learning_rate": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
         "lr_schedule": "caffe_inv", "steps": steps, "epochs": 0.0, "augment": False}
    )


def cifar_training(epochs=200.0):
    """The CIFAR policy: SGD 0.9, lr 0.1 (÷10 at each third), wd 5e-4, batch 128, augmentation."""
    return ml_collections.ConfigDict(
        {"optimizer": "sgd", "batch_size": 128, "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
         "lr_schedule": "thirds", "steps": 0, "epochs": epochs, "augment": True}
    )


def evaluation(num_examples=1000, fgs_eps=0.1):
    """r∞ by FGS at ``fgs_eps`` and r2 by DeepFool (overshoot 0.02, 50 iterations, [0, 1] box;
    ``deepfool_box_rule`` "accumulate" as Foolbox/ART, or "mask", see ``attacks.DeepFool``)."""
    return ml_collections.ConfigDict(
        {"num_examples": num_examples, "batch_size": 500, "fgs_eps": fgs_eps,
         "deepfool_overshoot": 0.02, "deepfool_max_iter": 50, "deepfool_box": True,
         "deepfool_box_rule": "accumulate"}
    )


def scale(config, *sections, distribute=True):
    """The scale-out keys of the pipelines that train under ``tf.distribute`` (docs/SCALE.md).

    ``distribute`` (top level, added when ``distribute`` is True): ``none`` (one device),
    ``mirrored`` (every GPU of the machine), ``multi_worker`` (the TF_CONFIG cluster) or
    ``tpu``; a train section's ``batch_size`` is then the global batch, split over the
    replicas. ``mixed_precision`` (in each train section named): 16-bit compute with float32
    variables, logits and attacks (``tfsparse.training.precision``).
    """
    if distribute:
        config.distribute = "none"
    for section in sections:
        config[section].mixed_precision = False
    return config
