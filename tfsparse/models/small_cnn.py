"""The small CNN of certified training (Gowal et al. 2018, "On the Effectiveness of Interval
Bound Propagation for Training Verifiably Robust Models", Table 1 "small"; DM-small in Zhang et
al. 2020, CROWN-IBP)."""

from tfsparse.compat import keras
from tfsparse.models import blocks


def cnn_small(num_classes=10, input_shape=(28, 28, 1), mean=0.0, std=1.0, *, width=1.0, layers=None, name=None):
    """Conv 16@4×4 stride 2, conv 32@4×4 stride 1, fc 100, logits; ReLU after each hidden layer.

    Gowal et al. 2018, Table 1 ("small"): the network whose IBP bounds the paper trains; only
    convolutions, ReLU and dense layers, so CROWN's backward bounds apply to every layer (no
    max pooling, which bound propagation can only relax coarsely). Both convolutions are
    "valid", as in the CROWN-IBP code's DM-small: 28×28 → 13×13×16 → 10×10×32 → 3,200 → 100,
    329,606 parameters for 28×28×1 and 10 classes.

    Args:
      num_classes: number of classes (>= 2).
      input_shape: ``(height, width, channels)``; height and width >= 10.
      mean, std: normalisation constants (scalar or per channel) in pixel units.
      width: multiplies the 16 and 32 filters and the 100 hidden units.
      layers: ``blocks.Layers`` factory (default ``Layers()``).
      name: model name (default ``"cnn_small"``).

    Returns:
      An uncompiled functional ``keras.Model`` returning logits ``(batch, num_classes)``.
      Layers: ``normalize, conv1, conv1_relu, conv2, conv2_relu, flatten, fc1, fc1_relu, logits``.
    """
    # A 4×4 stride-2 valid conv, then a 4×4 valid conv, need 10 pixels to leave 1×1.
    shape = blocks.validate("cnn_small", num_classes, input_shape, width, min_size=10)
    layers = layers or blocks.Layers()
    inputs, x = blocks.normalized_input("cnn_small", shape, mean, std)
    for index, (filters, strides) in enumerate(((16, 2), (32, 1)), start=1):
        x = layers.conv(blocks.scaled(filters, width), 4, strides=strides, padding="valid", name=f"conv{index}")(x)
        x = keras.layers.ReLU(name=f"conv{index}_relu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = layers.dense(blocks.scaled(100, width), name="fc1")(x)
    x = keras.layers.ReLU(name="fc1_relu")(x)
    outputs = layers.dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or "cnn_small")
