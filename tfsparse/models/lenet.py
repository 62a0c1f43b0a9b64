"""LeNet reference models on MNIST (Guo et al. 2018, §4.2).

Guo et al. follow the "LeNet-300-100" and "LeNet-5" of the network-compression
literature (Han et al. 2015) and Caffe's training policy. Both end in ReLU-activated
hidden units feeding ``logits``, whose input is the activation whose sparsity Guo's
Table 1 reports ("neurons feeding to the last fully-connected layer").
"""

from tfsparse.compat import keras
from tfsparse.models import blocks


def lenet300_100(
    num_classes=10,
    input_shape=(28, 28, 1),
    mean=0.0,
    std=1.0,
    *,
    width=1.0,
    layers=None,
    name=None,
):
    """LeNet-300-100: flatten → fc 300 ReLU → fc 100 ReLU → logits (LeCun et al. 1998).

    266,610 parameters for 28×28×1 inputs and 10 classes
    (784·300 + 300 + 300·100 + 100 + 100·10 + 10).

    Args:
      num_classes: number of classes (>= 2).
      input_shape: ``(height, width, channels)`` of the [0, 1] input images.
      mean, std: normalisation constants (scalar or per channel) in pixel units.
      width: multiplies the hidden sizes 300 and 100.
      layers: ``blocks.Layers`` factory (default ``Layers()``).
      name: model name (default ``"lenet300_100"``).

    Returns:
      An uncompiled functional ``keras.Model`` returning logits ``(batch, num_classes)``.
      Layers: ``normalize, flatten, fc1, fc1_relu, fc2, fc2_relu, logits``; the input
      of ``logits`` is the output of ``fc2_relu``.

    Raises:
      ValueError: on a bad argument.
    """
    shape = blocks.validate("lenet300_100", num_classes, input_shape, width)
    layers = layers or blocks.Layers()
    inputs, x = blocks.normalized_input("lenet300_100", shape, mean, std)
    x = keras.layers.Flatten(name="flatten")(x)
    for index, units in enumerate((300, 100), start=1):
        x = layers.dense(blocks.scaled(units, width), name=f"fc{index}")(x)
        x = keras.layers.ReLU(name=f"fc{index}_relu")(x)
    outputs = layers.dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or "lenet300_100")


def lenet5(
    num_classes=10,
    input_shape=(28, 28, 1),
    mean=0.0,
    std=1.0,
    *,
    width=1.0,
    layers=None,
    name=None,
    batch_norm=False,
):
    """Caffe's LeNet-5: conv 20@5×5, pool, conv 50@5×5, pool, fc 500 ReLU, logits.

    Follows Caffe's ``examples/mnist/lenet_train_test.prototxt``: both convolutions
    are "valid" with stride 1 and bias, the pools are 2×2 max with stride 2, and the
    only non-linearity is the ReLU after ``ip1`` (500 units); Caffe has no ReLU after
    the convolutions, and neither has this model. 431,080 parameters for 28×28×1 and
    10 classes (520 + 25,050 + 800·500 + 500 + 5,010). Caffe flattens in CHW order and
    Keras in HWC, which only permutes the rows of ``fc1`` (no effect when training
    from scratch). Caffe initialises kernels with its "xavier" filler (uniform,
    variance 1 / fan_in), which is Keras' ``"lecun_uniform"``: pass
    ``layers=Layers(kernel_initializer="lecun_uniform")`` to follow it.

    Args:
      num_classes: number of classes (>= 2).
      input_shape: ``(height, width, channels)``; height and width >= 16.
      mean, std: normalisation constants (scalar or per channel) in pixel units.
      width: multiplies the 20 and 50 filters and the 500 hidden units.
      layers: ``blocks.Layers`` factory (default ``Layers()``).
      name: model name (default ``"lenet5"``).
      batch_norm: add BN (+ ReLU) after each conv and BN after ``fc1`` (see ``lenet5_bn``).

    Returns:
      An uncompiled functional ``keras.Model`` returning logits ``(batch, num_classes)``.
      Layers: ``normalize, conv1, pool1, conv2, pool2, flatten, fc1, fc1_relu, logits``;
      the input of ``logits`` is the output of ``fc1_relu``.

    Raises:
      ValueError: on a bad argument.
    """
    # Two valid 5×5 convs and two 2×2 pools need at least 16 pixels to leave 1×1.
    shape = blocks.validate("lenet5", num_classes, input_shape, width, min_size=16)
    layers = layers or blocks.Layers()
    inputs, x = blocks.normalized_input("lenet5", shape, mean, std)
    for index, filters in enumerate((20, 50), start=1):
        x = layers.conv(
            blocks.scaled(filters, width), 5, padding="valid", use_bias=not batch_norm, name=f"conv{index}"
        )(x)
        if batch_norm:
            x = layers.bn(name=f"conv{index}_bn")(x)
            x = keras.layers.ReLU(name=f"conv{index}_relu")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"pool{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = layers.dense(blocks.scaled(500, width), use_bias=not batch_norm, name="fc1")(x)
    if batch_norm:
        x = layers.bn(name="fc1_bn")(x)
    x = keras.layers.ReLU(name="fc1_relu")(x)
    outputs = layers.dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or ("lenet5_bn" if batch_norm else "lenet5"))


def lenet5_bn(num_classes=10, input_shape=(28, 28, 1), mean=0.0, std=1.0, *, width=1.0, layers=None, name=None):
    """LeNet-5 with batch normalisation after conv1, conv2 (then ReLU) and fc1.

    Not in Caffe: network slimming (Liu et al. 2017), one of Wang et al.'s pruning methods,
    ranks channels by their BN scale γ, so the MNIST one-shot table needs a LeNet-5 with BN.
    Conv/fc1 biases are dropped (BN's β replaces them): 431,080 − 570 + 2·(20 + 50 + 500)
    trainable parameters (γ, β) = 431,650, plus 1,140 BN moving statistics.
    """
    return lenet5(num_classes, input_shape, mean, std, width=width, layers=layers, name=name, batch_norm=True)
