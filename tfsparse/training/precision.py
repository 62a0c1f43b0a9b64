"""Mixed precision of training (a train section's ``mixed_precision``; Micikevicius et al. 2018).

With ``mixed_precision: true`` layers compute in a 16-bit type while their variables stay
float32. The type is chosen by the device (:func:`policy_name`):

* GPU: ``mixed_float16`` — Tensor Cores; float16's narrow exponent range needs loss
  scaling, which ``Model.compile`` adds under this policy by wrapping the optimizer in a
  ``keras.mixed_precision.LossScaleOptimizer`` (dynamic scale);
* TPU and CPU: ``mixed_bfloat16`` — bfloat16 keeps float32's exponent range, so no loss
  scaling; it is the 16-bit type CPUs run natively (oneDNN), where float16 is emulated.

What stays float32, and why: the logits (:func:`float32_logits` casts the model's output,
so softmax cross-entropy and the attack losses are computed in float32), the inputs and
everything an attack does with them — the PGD iterate, its gradient (the gradient of a
float32 input through the model's first cast is float32), the step, the projection onto
the ε-ball and the clip to [0, 1] — so adversarial examples lie inside the ball exactly
as in float32 training. Evaluation and the exported SavedModel use a float32 copy of the
trained weights.
"""

import contextlib

from tfsparse.compat import keras
from tfsparse.compat import tf


def policy_name(enabled):
    """``float32``, or the mixed policy of this machine's accelerator (see the module docstring)."""
    if not enabled:
        return "float32"
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16"


@contextlib.contextmanager
def precision_policy(enabled):
    """Sets the Keras global dtype policy of :func:`policy_name` for the block, then restores it.

    Build (and compile) the model inside the block: a layer takes the global policy when it
    is created.

    Yields:
      The policy name.
    """
    previous = keras.mixed_precision.global_policy()
    name = policy_name(enabled)
    keras.mixed_precision.set_global_policy(name)
    try:
        yield name
    finally:
        keras.mixed_precision.set_global_policy(previous)


def float32_logits(model):
    """``model`` with its output cast to float32 (the same layers and weights), or ``model`` itself
    when the output already is float32."""
    if model.outputs[0].dtype == tf.float32:
        return model
    logits = keras.layers.Activation("linear", dtype="float32", name="float32_logits")(model.outputs[0])
    return keras.Model(model.inputs, logits, name=model.name)
