"""VGG networks with batch normalisation for 32×32 inputs (CIFAR).

Both builders stack 3×3 "same" convolutions (no bias) → BN → ReLU in five blocks,
each block closed by a 2×2 max pool, so a 32×32 input reaches the classifier as
1×1×512 and is flattened (inputs must be at least 32×32).

* ``vgg_like`` — Guo et al. 2018 §4.2's "VGG-like" network, "12 convolutional layers
  and 2 fully-connected layers", after the CIFAR VGG-16 of Li et al. 2017 ("Pruning
  Filters for Efficient ConvNets", Table 2: 13 convs, then linear 512 with BN and
  ReLU, then linear 10; itself from Zagoruyko's cifar.torch, without dropout). Guo
  does not say which conv is left out; we drop the last 3×3 conv of block 5, giving
  blocks of 2, 2, 3, 3, 2 convs (64, 128, 256, 512, 512 filters). 12,626,890
  trainable parameters for 10 classes (12,635,338 with the BN moving statistics).
* ``vgg16`` — VGG-16 (Simonyan & Zisserman 2015, configuration D) with BN after every
  conv, as used by Wang et al. and Rakin et al. (RSR) on CIFAR: 13 convs in blocks of
  2, 2, 3, 3, 3, and a single linear classifier 512 → classes (the common CIFAR head,
  e.g. Liu et al. 2017's network-slimming VGG). 14,724,042 trainable parameters for
  10 classes (14,732,490 with BN moving statistics). RSR's Table 1 quotes 138,357,544,
  the count of the ImageNet VGG-16 (224×224 inputs, 4096-4096-1000 FC head, no BN),
  which no 32×32 CIFAR variant has; we do not try to match it.
"""

from tfsparse.compat import keras
from tfsparse.models import blocks

_FILTERS = (64, 128, 256, 512, 512)


def _features(x, layers, convs_per_block, width):
    for block, (convs, filters) in enumerate(zip(convs_per_block, _FILTERS), start=1):
        for index in range(1, convs + 1):
            prefix = f"block{block}_"
            x = layers.conv(
                blocks.scaled(filters, width), 3, use_bias=False, name=f"{prefix}conv{index}"
            )(x)
            x = layers.bn(name=f"{prefix}bn{index}")(x)
            x = keras.layers.ReLU(name=f"{prefix}relu{index}")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    return keras.layers.Flatten(name="flatten")(x)


def vgg_like(
    num_classes=10,
    input_shape=(32, 32, 3),
    mean=0.0,
    std=1.0,
    *,
    width=1.0,
    layers=None,
    name=None,
):
    """Guo et al. 2018's VGG-like CIFAR network: 12 conv (3×3, BN, ReLU) + 2 FC.

    Blocks of 2, 2, 3, 3, 2 convs with 64, 128, 256, 512, 512 filters, each block
    followed by a 2×2 max pool; then fc 512 (no bias) → BN → ReLU → logits, the head
    of Li et al. 2017. See the module docstring for why 12 convs and which one is
    dropped. 12,626,890 trainable parameters for 32×32×3 inputs and 10 classes.

    Args:
      num_classes: number of classes (>= 2).
      input_shape: ``(height, width, channels)``; height and width >= 32.
      mean, std: normalisation constants (scalar or per channel) in pixel units.
      width: multiplies every conv's filters and the 512 hidden units.
      layers: ``blocks.Layers`` factory (default ``Layers()``).
      name: model name (default ``"vgg_like"``).

    Returns:
      An uncompiled functional ``keras.Model`` returning logits ``(batch, num_classes)``.
      Convs are ``block{b}_conv{i}`` (with ``block{b}_bn{i}``, ``block{b}_relu{i}``),
      then ``flatten, fc1, fc1_bn, fc1_relu, logits``; the input of ``logits`` is the
      output of ``fc1_relu``.

    Raises:
      ValueError: on a bad argument.
    """
    shape = blocks.validate("vgg_like", num_classes, input_shape, width, min_size=32)
    layers = layers or blocks.Layers()
    inputs, x = blocks.normalized_input("vgg_like", shape, mean, std)
    x = _features(x, layers, (2, 2, 3, 3, 2), width)
    x = layers.dense(blocks.scaled(512, width), use_bias=False, name="fc1")(x)
    x = layers.bn(name="fc1_bn")(x)
    x = keras.layers.ReLU(name="fc1_relu")(x)
    outputs = layers.dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or "vgg_like")


def vgg16(
    num_classes=10,
    input_shape=(32, 32, 3),
    mean=0.0,
    std=1.0,
    *,
    width=1.0,
    layers=None,
    name=None,
):
    """VGG-16 with BN for 32×32 inputs: 13 conv (3×3, BN, ReLU) + linear classifier.

    Blocks of 2, 2, 3, 3, 3 convs with 64, 128, 256, 512, 512 filters, each followed
    by a 2×2 max pool; the flattened 512 features feed ``logits`` directly (Wang et
    al.; Rakin et al. 2019, RSR). 14,724,042 trainable parameters for 32×32×3 inputs
    and 10 classes; see the module docstring about RSR's 138,357,544.

    Args:
      num_classes: number of classes (>= 2).
      input_shape: ``(height, width, channels)``; height and width >= 32.
      mean, std: normalisation constants (scalar or per channel) in pixel units.
      width: multiplies every conv's filters.
      layers: ``blocks.Layers`` factory (default ``Layers()``).
      name: model name (default ``"vgg16"``).

    Returns:
      An uncompiled functional ``keras.Model`` returning logits ``(batch, num_classes)``.
      Convs are ``block{b}_conv{i}``; the input of ``logits`` is the output of
      ``flatten``.

    Raises:
      ValueError: on a bad argument.
    """
    shape = blocks.validate("vgg16", num_classes, input_shape, width, min_size=32)
    layers = layers or blocks.Layers()
    inputs, x = blocks.normalized_input("vgg16", shape, mean, std)
    x = _features(x, layers, (2, 2, 3, 3, 3), width)
    outputs = layers.dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or "vgg16")
