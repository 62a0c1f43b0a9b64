"""Residual networks for CIFAR-sized inputs (He et al. 2016).

``resnet20`` / ``resnet32`` are the CIFAR ResNets of He et al. 2016 §4.2: a 3×3
conv with 16 filters, three stages of n basic blocks (two 3×3 convs each) with 16,
32 and 64 filters, global average pooling and a linear classifier; depth 6n + 2
(n = 3 → ResNet-20, n = 5 → ResNet-32, Guo's "31 convolutional layers and a single
fully-connected layer"). Every conv is bias-free and followed by BN. Where a stage
halves the resolution and doubles the channels the shortcut is either

* option **A** (``ZeroPadShortcut``): identity with stride-2 subsampling and zero
  channels padded on both sides — no parameters; or
* option **B**: a 1×1 stride-2 conv + BN projection.

Parameter arithmetic of ResNet-20, 10 classes (conv kernels k×k×in×out, no bias):

====================  ==========================================  =========
part                  count                                       params
====================  ==========================================  =========
stem conv             3·3·3·16                                        432
stage 1 (6 convs)     6 · 3·3·16·16                                13,824
stage 2 (6 convs)     3·3·16·32 + 5 · 3·3·32·32                    50,688
stage 3 (6 convs)     3·3·32·64 + 5 · 3·3·64·64                   202,752
BN γ, β (19 BNs)      2 · (16 + 6·16 + 6·32 + 6·64) = 2 · 688       1,376
classifier            64·10 + 10                                      650
**option A total**    trainable                                   269,722
BN moving mean/var    2 · 688 (non-trainable)                       1,376
option B extra        1·1·16·32 + 1·1·32·64 + BN γβ 2·(32+64)       2,752
====================  ==========================================  =========

So RSR's "capacity" 269,722 (Rakin et al. 2019, Table 1: "the number of trainable
parameters") is exactly option A counting BN γ and β but not the BN moving
statistics: Keras' ``count_params()`` gives 271,098 for it (trainable 269,722,
non-trainable 1,376). Option B has 272,474 trainable (274,042 in all), and biases
on the convs would add 688 more; neither matches. Option A is therefore the default.
ResNet-32: 464,154 trainable with option A (466,426 in all), 466,906 with option B.

``resnet18`` is the ResNet-18 adapted to 32×32 inputs used by Rakin et al. (RSR) and
Wang et al. (the widespread PyTorch CIFAR ResNet-18): a 3×3 stride-1 stem conv with
64 filters and no max pool, four stages of two basic blocks (64, 128, 256, 512
filters; stride 2 at the start of stages 2-4), option-B projection shortcuts where
the shape changes, global average pooling and a linear classifier. 11,173,962
trainable parameters for 10 classes, as RSR reports (11,183,562 with BN moving
statistics).
"""

from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.models import blocks


@keras.utils.register_keras_serializable(package="tfsparse")
class ZeroPadShortcut(keras.layers.Layer):
    """He et al. 2016's option-A shortcut: subsample spatially, zero-pad channels.

    Returns ``x[:, ::strides, ::strides, :]`` with ``filters - channels`` zero channels
    added, half before and half after (as the reference CIFAR implementations do). It
    has no weights.

    Args:
      filters: output channels (>= input channels).
      strides: spatial subsampling step (>= 1).

    Input shape: ``(batch, height, width, channels)``.
    Output shape: ``(batch, ceil(height / strides), ceil(width / strides), filters)``,
    the shape of a "same" conv with these strides.
    """

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(**kwargs)
        if int(filters) < 1 or int(strides) < 1:
            raise ValueError(
                f"ZeroPadShortcut: filters and strides must be >= 1, got {filters}, {strides}"
            )
        self.filters = int(filters)
        self.strides = int(strides)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if channels > self.filters:
            raise ValueError(
                f"ZeroPadShortcut: input has {channels} channels, more than filters={self.filters}"
            )
        super().build(input_shape)

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :]
        extra = self.filters - inputs.shape[-1]
        before = extra // 2
        return tf.pad(x, [[0, 0], [0, 0], [0, 0], [before, extra - before]])

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        spatial = [None if d is None else -(-d // self.strides) for d in shape[1:3]]
        return tf.TensorShape([shape[0], *spatial, self.filters])

    def get_prunable_weights(self):
        # "Prunable with nothing to prune", so tfmot accepts the layer.
        return []

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


def _basic_block(x, layers, filters, strides, shortcut, prefix):
    """conv3×3-BN-ReLU-conv3×3-BN + shortcut, then ReLU (He et al. 2016, Fig. 2 left)."""
    channels = x.shape[-1]
    y = layers.conv(filters, 3, strides=strides, use_bias=False, name=f"{prefix}_conv1")(x)
    y = layers.bn(name=f"{prefix}_bn1")(y)
    y = keras.layers.ReLU(name=f"{prefix}_relu1")(y)
    y = layers.conv(filters, 3, use_bias=False, name=f"{prefix}_conv2")(y)
    y = layers.bn(name=f"{prefix}_bn2")(y)
    if strides == 1 and channels == filters:
        residual = x
    elif shortcut == "A":
        residual = ZeroPadShortcut(filters, strides, name=f"{prefix}_shortcut")(x)
    else:
        residual = layers.conv(
            filters, 1, strides=strides, use_bias=False, name=f"{prefix}_shortcut"
        )(x)
        residual = layers.bn(name=f"{prefix}_shortcut_bn")(residual)
    y = keras.layers.Add(name=f"{prefix}_add")([y, residual])
    return keras.layers.ReLU(name=f"{prefix}_out")(y)


def _resnet(arch, blocks_per_stage, stage_filters, shortcut, num_classes, input_shape, mean,
            std, width, layers, name):
    if shortcut not in ("A", "B"):
        raise ValueError(f"{arch}: shortcut must be 'A' or 'B', got {shortcut!r}")
    # Each stride-2 stage halves the size; the last stage needs at least 1×1 input.
    min_size = 2 ** (len(stage_filters) - 1)
    shape = blocks.validate(arch, num_classes, input_shape, width, min_size=min_size)
    layers = layers or blocks.Layers()
    inputs, x = blocks.normalized_input(arch, shape, mean, std)
    x = layers.conv(blocks.scaled(stage_filters[0], width), 3, use_bias=False, name="conv1")(x)
    x = layers.bn(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    for stage, filters in enumerate(stage_filters, start=1):
        for block in range(1, blocks_per_stage + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            x = _basic_block(
                x, layers, blocks.scaled(filters, width), strides, shortcut,
                prefix=f"stage{stage}_block{block}",
            )
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or arch)


def resnet20(
    num_classes=10,
    input_shape=(32, 32, 3),
    mean=0.0,
    std=1.0,
    *,
    width=1.0,
    layers=None,
    name=None,
    shortcut="A",
):
    """ResNet-20 for CIFAR (He et al. 2016 §4.2, n = 3), as in Rakin et al. 2019 (RSR).

    269,722 trainable parameters for 32×32×3 inputs and 10 classes with the default
    option-A shortcut, RSR's figure (272,474 with ``shortcut="B"``); see the module
    docstring for the arithmetic.

    Args:
      num_classes: number of classes (>= 2).
      input_shape: ``(height, width, channels)``; height and width >= 4.
      mean, std: normalisation constants (scalar or per channel) in pixel units.
      width: multiplies the stage widths 16, 32, 64.
      layers: ``blocks.Layers`` factory (default ``Layers()``).
      name: model name (default ``"resnet20"``).
      shortcut: ``"A"`` (zero-padded identity, default) or ``"B"`` (1×1 conv + BN
        projection) where a stage changes shape.
    Returns:
      An uncompiled functional ``keras.Model`` returning logits ``(batch, num_classes)``.
      Layers: ``normalize, conv1, bn1, relu1``, then per block
      ``stage{s}_block{b}_{conv1,bn1,relu1,conv2,bn2,add,out}`` (plus ``_shortcut`` and,
      for option B, ``_shortcut_bn`` where the shape changes), then ``pool, logits``;
      the input of ``logits`` is the output of ``pool``.
    Raises:
      ValueError: on a bad argument.
    """
    return _resnet("resnet20", 3, (16, 32, 64), shortcut, num_classes, input_shape, mean, std,
                   width, layers, name)


def resnet32(
    num_classes=10,
    input_shape=(32, 32, 3),
    mean=0.0,
    std=1.0,
    *,
    width=1.0,
    layers=None,
    name=None,
    shortcut="A",
):
    """ResNet-32 for CIFAR (He et al. 2016 §4.2, n = 5), Guo et al. 2018's ResNet.

    464,154 trainable parameters for 32×32×3 inputs and 10 classes with the default
    option-A shortcut (466,906 with ``shortcut="B"``).

    Args:
      num_classes, input_shape, mean, std, width, layers, shortcut: as for ``resnet20``.
      name: model name (default ``"resnet32"``).
    Returns:
      An uncompiled functional ``keras.Model`` returning logits ``(batch, num_classes)``.
      Layers: ``normalize, conv1, bn1, relu1``, then per block
      ``stage{s}_block{b}_{conv1,bn1,relu1,conv2,bn2,add,out}`` (plus ``_shortcut`` and,
      for option B, ``_shortcut_bn`` where the shape changes), then ``pool, logits``;
      the input of ``logits`` is the output of ``pool``.
    Raises:
      ValueError: on a bad argument.
    """
    return _resnet("resnet32", 5, (16, 32, 64), shortcut, num_classes, input_shape, mean, std,
                   width, layers, name)


def resnet18(
    num_classes=10,
    input_shape=(32, 32, 3),
    mean=0.0,
    std=1.0,
    *,
    width=1.0,
    layers=None,
    name=None,
):
    """ResNet-18 for 32×32 inputs (He et al. 2016; RSR and Wang et al.'s CIFAR variant).

    3×3 stem conv with 64 filters (stride 1, no max pool), stages of 2 basic blocks
    with 64, 128, 256, 512 filters, option-B projection shortcuts, global average
    pooling, linear classifier. 11,173,962 trainable parameters for 32×32×3 inputs and
    10 classes (RSR Table 1); 2,797,610 at ``width=0.5`` and 701,466 at ``width=0.25``
    (RSR Table 2's width ablation scales every layer's channels).

    Args:
      num_classes: number of classes (>= 2).
      input_shape: ``(height, width, channels)``; height and width >= 8.
      mean, std: normalisation constants (scalar or per channel) in pixel units.
      width: multiplies every conv's filters (RSR uses 0.25, 0.5, 1).
      layers: ``blocks.Layers`` factory (default ``Layers()``).
      name: model name (default ``"resnet18"``).
    Returns:
      An uncompiled functional ``keras.Model`` returning logits ``(batch, num_classes)``.
      Layers: ``normalize, conv1, bn1, relu1``, then per block
      ``stage{s}_block{b}_{conv1,bn1,relu1,conv2,bn2,add,out}`` (plus ``_shortcut`` and,
      for option B, ``_shortcut_bn`` where the shape changes), then ``pool, logits``;
      the input of ``logits`` is the output of ``pool``.
    Raises:
      ValueError: on a bad argument.
    """
    return _resnet("resnet18", 2, (64, 128, 256, 512), "B", num_classes, input_shape, mean, std,
                   width, layers, name)
