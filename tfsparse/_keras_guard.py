"""Selects Keras 2 (`tf_keras`) before TensorFlow is imported.

tfmot supports only Keras 2, so tfsparse sets ``TF_USE_LEGACY_KERAS=1`` before the
first ``import tensorflow``. If TensorFlow was already imported with Keras 3 active,
the variable comes too late: we fail at once with a message saying how to fix it,
instead of failing later deep inside tfmot.
"""

import os
import sys

_FIX = (
    "tfsparse needs Keras 2 (tf_keras) because tensorflow-model-optimization does not support "
    "Keras 3. Import tfsparse before tensorflow, or set TF_USE_LEGACY_KERAS=1 in the "
    "environment before starting Python."
)


def select_legacy_keras() -> None:
    """Sets TF_USE_LEGACY_KERAS=1, or raises ImportError if it is already too late."""
    if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") not in ("1", "true", "True"):
        tf = sys.modules["tensorflow"]
        keras_module = getattr(getattr(tf, "keras", None), "__name__", "") or ""
        version = getattr(getattr(tf, "keras", None), "__version__", "") or ""
        if not keras_module.startswith("tf_keras") and not version.startswith("2."):
            raise ImportError("TensorFlow was imported with Keras 3 active. " + _FIX)
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
