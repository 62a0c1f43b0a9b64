"""Activation L1 regularisation (Guo et al. 2018, Table 1): λ_a‖a‖₁ added to the loss.

Normalisation (STYLE §4): the penalty is the L1 norm of each example's activation
(summed over all non-batch axes), averaged over the batch, times ``strength``:

    loss = strength · (1/B) · Σ_b Σ_i |a_{b,i}|

so its size does not depend on the batch size but grows with the layer width (unlike
Keras' ``ActivityRegularization``, which sums over the batch as well).
"""

from tfsparse.compat import keras
from tfsparse.compat import tf


@keras.utils.register_keras_serializable(package="tfsparse")
class ActivationL1(keras.layers.Layer):
    """Identity layer adding ``strength`` · batch-mean of the per-example L1 norm to the loss.

    Place it after the activation to be sparsified (Guo Table 1: the input of the last
    fully connected layer); :func:`insert_activation_l1` does so on a built model.

    Args:
      strength: λ_a ≥ 0.
      **kwargs: base ``Layer`` arguments (``name``, ...).

    Call arguments:
      inputs: activation tensor of any rank ≥ 1 (batch first).

    Input shape: arbitrary. Output shape: same as input (values unchanged).

    The loss is added on every call, in training and evaluation alike (as Keras'
    ``ActivityRegularization`` does), so evaluated losses include it.

    References:
      Guo et al., "Sparse DNNs with Improved Adversarial Robustness", NeurIPS 2018, Table 1.

    Raises:
      ValueError: if ``strength`` < 0.
    """

    def __init__(self, strength=0.0, **kwargs):
        super().__init__(**kwargs)
        if float(strength) < 0:
            raise ValueError(f"ActivationL1: strength must be >= 0, got {strength}")
        self.strength = float(strength)

    def call(self, inputs):
        per_example = tf.reduce_sum(tf.reshape(tf.abs(inputs), [tf.shape(inputs)[0], -1]), axis=1)
        self.add_loss(self.strength * tf.reduce_mean(per_example))
        return inputs

    def get_prunable_weights(self):
        # Makes the layer explicitly "prunable with nothing to prune" for tfmot.
        return []

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "strength": self.strength}


def insert_activation_l1(model, layer_name, strength):
    """Rebuilds ``model`` with an :class:`ActivationL1` after ``layer_name``.

    The model is rebuilt from its config with the new layer wired between
    ``layer_name`` and all its consumers (or the model output); the new layer is named
    ``"<layer_name>_act_l1"``, the others keep their names and get copies of their
    weights (the result has its own variables).

    Args:
      model: a functional or sequential ``tf_keras`` model; left unchanged.
      layer_name: the layer whose output is penalised (called once in the model).
      strength: λ_a ≥ 0.

    Returns:
      The new model, of the same kind.

    Raises:
      ValueError: if ``layer_name`` is not a layer of the model, or ``strength`` < 0.
    """
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise ValueError(f"insert_activation_l1: no layer {layer_name!r}; choose from {names}")
    new_name = f"{layer_name}_act_l1"
    entry = keras.utils.serialize_keras_object(ActivationL1(strength, name=new_name))
    config = model.get_config()
    listed = [layer["config"]["name"] for layer in config["layers"]]
    if isinstance(model, keras.Sequential):
        config["layers"].insert(listed.index(layer_name) + 1, entry)
    else:
        config = _rewire(config, layer_name, new_name)
        node = [[[layer_name, 0, 0, {}]]]
        entry = {**entry, "name": new_name, "inbound_nodes": node}
        config["layers"].insert(listed.index(layer_name) + 1, entry)
    rebuilt = type(model).from_config(config)
    old = {layer.name: layer for layer in model.layers}
    for layer in rebuilt.layers:
        if layer.name in old:
            layer.set_weights(old[layer.name].get_weights())
    return rebuilt


def _rewire(config, source, target):
    """Functional config with every reference to ``source``'s output pointing to ``target``."""

    def redirect(item):
        if isinstance(item, list) and item and item[0] == source and len(item) >= 3:
            return [target, *item[1:]]
        if isinstance(item, list):
            return [redirect(child) for child in item]
        return item

    config = dict(config)
    config["layers"] = [
        {**layer, "inbound_nodes": redirect(layer["inbound_nodes"])} for layer in config["layers"]
    ]
    config["output_layers"] = redirect(config["output_layers"])
    return config
