"""Densely connected networks (Huang et al. 2017), as used by Wang et al.

Both builders are DenseNet-BC: every dense layer is BN → ReLU → 1×1 conv (4k
filters, the bottleneck) → BN → ReLU → 3×3 conv (k filters, the growth rate), its
output concatenated to its input; transitions between dense blocks are
BN → ReLU → 1×1 conv (compression 0.5) → 2×2 average pool; the network ends with
BN → ReLU → global average pooling → linear classifier. Convs are bias-free.

* ``densenet_bc40`` — CIFAR DenseNet-BC, depth 40, k = 12: a 3×3 stem conv with 2k =
  24 filters, three dense blocks of (40 − 4) / 6 = 6 layers, two transitions.
  176,122 trainable parameters for 10 classes (181,210 with BN moving statistics).
* ``densenet121`` — the ImageNet DenseNet-121 (blocks of 6, 12, 24, 16 layers,
  k = 32) with its ImageNet stem (7×7 stride-2 conv with 64 filters, BN, ReLU, 3×3
  stride-2 max pool) kept unchanged for 64×64 Tiny-ImageNet inputs, as Wang et al.
  fine-tune it; the features reach the classifier at 2×2. Its parameters equal
  torchvision's ``densenet121`` with a smaller classifier: 6,964,106 trainable for
  10 classes, 7,158,856 for Tiny-ImageNet's 200.
"""

from tfsparse.compat import keras
from tfsparse.models import blocks


def _bn_relu_conv(x, layers, filters, kernel_size, prefix, suffix=""):
    x = layers.bn(name=f"{prefix}_bn{suffix}")(x)
    x = keras.layers.ReLU(name=f"{prefix}_relu{suffix}")(x)
    return layers.conv(filters, kernel_size, use_bias=False, name=f"{prefix}_conv{suffix}")(x)


def _dense_block(x, layers, num_layers, growth, block):
    for index in range(1, num_layers + 1):
        prefix = f"block{block}_layer{index}"
        y = _bn_relu_conv(x, layers, 4 * growth, 1, prefix, "1")
        y = _bn_relu_conv(y, layers, growth, 3, prefix, "2")
        x = keras.layers.Concatenate(name=f"{prefix}_concat")([x, y])
    return x


def _transition(x, layers, index):
    prefix = f"transition{index}"
    x = _bn_relu_conv(x, layers, x.shape[-1] // 2, 1, prefix)
    return keras.layers.AveragePooling2D(2, strides=2, name=f"{prefix}_pool")(x)


def _head(x, layers, num_classes):
    x = layers.bn(name="final_bn")(x)
    x = keras.layers.ReLU(name="final_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return layers.dense(num_classes, name="logits")(x)


def densenet_bc40(
    num_classes=10,
    input_shape=(32, 32, 3),
    mean=0.0,
    std=1.0,
    *,
    width=1.0,
    layers=None,
    name=None,
):
    """DenseNet-BC (L = 40, k = 12) for CIFAR (Huang et al. 2017; Wang et al.).

    3×3 stem conv with 24 filters, three dense blocks of 6 bottleneck layers, two
    compression-0.5 transitions, BN-ReLU, global average pooling, logits. 176,122
    trainable parameters for 32×32×3 inputs and 10 classes.

    Args:
      num_classes: number of classes (>= 2).
      input_shape: ``(height, width, channels)``; height and width >= 4.
      mean, std: normalisation constants (scalar or per channel) in pixel units.
      width: multiplies the growth rate 12 (the stem has twice the scaled growth).
      layers: ``blocks.Layers`` factory (default ``Layers()``).
      name: model name (default ``"densenet_bc40"``).

    Returns:
      An uncompiled functional ``keras.Model`` returning logits ``(batch, num_classes)``.
      Layers: ``normalize, conv1``, then ``block{b}_layer{i}_{bn1,relu1,conv1,bn2,relu2,
      conv2,concat}`` and ``transition{t}_{bn,relu,conv,pool}``, then ``final_bn,
      final_relu, pool, logits``; the input of ``logits`` is the output of ``pool``.

    Raises:
      ValueError: on a bad argument.
    """
    # Two 2×2 average pools need at least 4 pixels.
    shape = blocks.validate("densenet_bc40", num_classes, input_shape, width, min_size=4)
    layers = layers or blocks.Layers()
    growth = blocks.scaled(12, width)
    inputs, x = blocks.normalized_input("densenet_bc40", shape, mean, std)
    x = layers.conv(2 * growth, 3, use_bias=False, name="conv1")(x)
    for block in (1, 2, 3):
        x = _dense_block(x, layers, 6, growth, block)
        if block < 3:
            x = _transition(x, layers, block)
    outputs = _head(x, layers, num_classes)
    return keras.Model(inputs, outputs, name=name or "densenet_bc40")


def densenet121(
    num_classes=10,
    input_shape=(64, 64, 3),
    mean=0.0,
    std=1.0,
    *,
    width=1.0,
    layers=None,
    name=None,
):
    """DenseNet-121 (Huang et al. 2017) with the ImageNet stem, for 64×64 inputs (Wang et al.).

    7×7 stride-2 stem conv (64 filters) → BN → ReLU → 3×3 stride-2 max pool, dense
    blocks of 6, 12, 24, 16 bottleneck layers with k = 32, compression-0.5
    transitions, BN-ReLU, global average pooling, logits. 6,964,106 trainable
    parameters for 10 classes, 7,158,856 for 200 (Tiny-ImageNet).

    Args:
      num_classes: number of classes (>= 2).
      input_shape: ``(height, width, channels)``; height and width >= 32.
      mean, std: normalisation constants (scalar or per channel) in pixel units.
      width: multiplies the growth rate 32 (the stem has twice the scaled growth).
      layers: ``blocks.Layers`` factory (default ``Layers()``).
      name: model name (default ``"densenet121"``).

    Returns:
      An uncompiled functional ``keras.Model`` returning logits ``(batch, num_classes)``.
      Layers: ``normalize, conv1, bn1, relu1, pool1``, then dense blocks and
      transitions named as in ``densenet_bc40``, then ``final_bn, final_relu, pool,
      logits``; the input of ``logits`` is the output of ``pool``.

    Raises:
      ValueError: on a bad argument.
    """
    # The stem divides the size by 4 and three 2×2 average pools by 8 more.
    shape = blocks.validate("densenet121", num_classes, input_shape, width, min_size=32)
    layers = layers or blocks.Layers()
    growth = blocks.scaled(32, width)
    inputs, x = blocks.normalized_input("densenet121", shape, mean, std)
    x = layers.conv(2 * growth, 7, strides=2, use_bias=False, name="conv1")(x)
    x = layers.bn(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for block, num_layers in enumerate((6, 12, 24, 16), start=1):
        x = _dense_block(x, layers, num_layers, growth, block)
        if block < 4:
            x = _transition(x, layers, block)
    outputs = _head(x, layers, num_classes)
    return keras.Model(inputs, outputs, name=name or "densenet121")
