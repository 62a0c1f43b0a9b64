"""SavedModel export with a serving signature on [0, 1] images, checked by reloading (SPEC §10)."""

import os
import shutil

import numpy as np

from tfsparse.compat import tf
from tfsparse.sparsity import has_pruning_wrappers
from tfsparse.sparsity import strip


def save_saved_model(model, path, *, check_inputs=None, atol=1e-5):
    """Saves ``model`` as a Keras SavedModel directory and verifies the round trip.

    Pruning wrappers are stripped first, so the saved kernels hold real zeros. The
    ``serving_default`` signature takes ``images`` (float32, [0, 1], NHWC) and returns
    ``logits``. When ``check_inputs`` is given, the reloaded signature must reproduce the
    live model's logits on them within ``atol``.

    Returns:
      The path written.

    Raises:
      RuntimeError: if the reloaded model's predictions differ.
    """
    if has_pruning_wrappers(model):
        model = strip(model)
    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="images")

    @tf.function(input_signature=[spec])
    def serve(images):
        return {"logits": model(images, training=False)}

    tmp = path.rstrip("/") + ".partial"
    try:
        model.save(tmp, save_format="tf", signatures={"serving_default": serve}, include_optimizer=False)
        if check_inputs is not None:
            reloaded = tf.saved_model.load(tmp).signatures["serving_default"]
            expected = model(check_inputs, training=False).numpy()
            got = reloaded(images=tf.constant(check_inputs, tf.float32))["logits"].numpy()
            if not np.allclose(expected, got, atol=atol):
                raise RuntimeError(f"SavedModel round trip changed predictions (max diff {np.abs(expected - got).max()})")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):  # a failed save or check leaves nothing half-written behind
            shutil.rmtree(tmp)
    return path
