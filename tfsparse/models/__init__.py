"""Model zoo of tfsparse (SPEC §3): functional Keras builders returning logits.

Every builder has the signature::

    builder(num_classes=10, input_shape=<natural input>, mean=0.0, std=1.0, *,
            width=1.0, layers=None, name=None) -> keras.Model

and returns an uncompiled functional model whose first layer after the input is
``Normalize(mean, std, name="normalize")`` and whose last layer is the Dense
``logits`` (no softmax). ``layers`` is a ``Layers`` factory: the one place where
kernels and batch normalisation are created. The CIFAR ResNets also take
``shortcut="A" | "B"``.

Example:

>>> from tfsparse import models
>>> model = models.get("lenet5")(num_classes=10, input_shape=(28, 28, 1))
>>> models.count_params(model)["total"]
431080
"""

from tfsparse.models import densenet
from tfsparse.models import lenet
from tfsparse.models import linear
from tfsparse.models import resnet
from tfsparse.models import small_cnn
from tfsparse.models import vgg
from tfsparse.models.blocks import Layers

REGISTRY = {
    "linear": linear.linear,
    "linear_binary": linear.linear_binary,
    "lenet300_100": lenet.lenet300_100,
    "lenet5": lenet.lenet5,
    "lenet5_bn": lenet.lenet5_bn,
    "cnn_small": small_cnn.cnn_small,
    "vgg_like": vgg.vgg_like,
    "vgg16": vgg.vgg16,
    "resnet20": resnet.resnet20,
    "resnet32": resnet.resnet32,
    "resnet18": resnet.resnet18,
    "densenet_bc40": densenet.densenet_bc40,
    "densenet121": densenet.densenet121,
}


def names():
    """The registered model names, sorted."""
    return sorted(REGISTRY)


def get(name):
    """Returns the builder registered as ``name``.

    Raises:
      ValueError: if ``name`` is unknown; the message lists the known names.
    """
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown model {name!r}; known models: {', '.join(names())}"
        ) from None


def count_params(model):
    """Parameter counts of ``model``: ``{"total", "trainable", "non_trainable"}``.

    ``non_trainable`` holds e.g. BN moving statistics; papers that report a model's
    "capacity" (RSR) usually mean ``trainable``.
    """

    def _count(weights):
        return int(sum(w.shape.num_elements() for w in weights))

    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    return {
        "total": trainable + non_trainable,
        "trainable": trainable,
        "non_trainable": non_trainable,
    }


__all__ = ["REGISTRY", "Layers", "count_params", "get", "names"]
