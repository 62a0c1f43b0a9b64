"""Linear classifiers of Guo et al. 2018, §4.1.

Y. Guo, C. Zhang, C. Zhang, Y. Chen. "Sparse DNNs with Improved Adversarial
Robustness". NeurIPS 2018. The binary model is trained with the softplus loss
τ(−y·(wᵀx + b)), the multi-class one with softmax cross-entropy; the losses live in
``tfsparse.training``, these builders return logits.
"""

from tfsparse.compat import keras
from tfsparse.models import blocks


def linear(
    num_classes=10,
    input_shape=(28, 28, 1),
    mean=0.0,
    std=1.0,
    *,
    width=1.0,
    layers=None,
    name=None,
):
    """Multi-class softmax regression: flatten → dense(num_classes) logits (Guo §4.1).

    Parameters: ``prod(input_shape) * num_classes + num_classes``; 7,850 for MNIST and
    10 classes. There is no hidden layer, so ``width`` is validated and has no effect.

    Args:
      num_classes: number of classes (>= 2).
      input_shape: ``(height, width, channels)`` of the [0, 1] input images.
      mean, std: normalisation constants (scalar or per channel) in pixel units.
      width: hidden-width multiplier (> 0); no hidden layer here.
      layers: ``blocks.Layers`` factory for the kernel (default ``Layers()``).
      name: model name (default ``"linear"``).

    Returns:
      An uncompiled functional ``keras.Model`` with logits of shape ``(batch, num_classes)``.
      Layers: ``normalize``, ``flatten``, ``logits``.

    Raises:
      ValueError: on a bad argument.
    """
    shape = blocks.validate("linear", num_classes, input_shape, width)
    layers = layers or blocks.Layers()
    inputs, x = blocks.normalized_input("linear", shape, mean, std)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = layers.dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or "linear")


def linear_binary(
    num_classes=1,
    input_shape=(28, 28, 1),
    mean=0.0,
    std=1.0,
    *,
    width=1.0,
    layers=None,
    name=None,
):
    """Binary linear classifier wᵀx + b with one logit (Guo §4.1, e.g. MNIST "1" vs "7").

    Trained with the softplus loss τ(−y·(wᵀx + b)), y ∈ {−1, +1}; a positive logit
    predicts the positive class. Parameters: ``prod(input_shape) + 1`` (785 for MNIST).

    Args:
      num_classes: 1 or 2; both mean "two classes, one logit" so that dataset configs
        may pass either.
      input_shape, mean, std, width, layers: as for ``linear``.
      name: model name (default ``"linear_binary"``).

    Returns:
      An uncompiled functional ``keras.Model`` with logits of shape ``(batch, 1)``.
      Layers: ``normalize``, ``flatten``, ``logits``.

    Raises:
      ValueError: on a bad argument, e.g. ``num_classes`` other than 1 or 2.
    """
    shape = blocks.validate("linear_binary", num_classes, input_shape, width, min_classes=1)
    if num_classes > 2:
        raise ValueError(
            f"linear_binary: num_classes must be 1 or 2 (one logit), got {num_classes}; "
            "use 'linear' for multi-class"
        )
    layers = layers or blocks.Layers()
    inputs, x = blocks.normalized_input("linear_binary", shape, mean, std)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = layers.dense(1, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or "linear_binary")
