"""Selects Keras 2 (`tf_keras`) for TensorFlow, early enough for it to count.

tfmot supports only Keras 2, so tfsparse sets ``TF_USE_LEGACY_KERAS=1``. TensorFlow reads the
variable twice: at ``import tensorflow`` (for the ``tensorflow.keras`` import path) and when
``tf.keras`` is first touched (its lazy loader picks ``tf_keras`` or Keras 3 then). So
``import tensorflow as tf`` before ``import tfsparse`` is fine as long as nothing has used
``tf.keras`` yet: the variable is set, and the import path is pointed at ``tf_keras`` as
TensorFlow would have done. Once ``tf.keras`` has been resolved to Keras 3, it is too late
(``tf.keras`` would name another library than the one tfsparse trains with): we fail at once
with the one line to add, instead of failing later deep inside tfmot.
"""

import importlib.util
import os
import sys

_FIX = (
    "tfsparse needs Keras 2 (tf_keras) because tensorflow-model-optimization does not support "
    "Keras 3. Import tfsparse before tensorflow, or set TF_USE_LEGACY_KERAS=1 in the "
    "environment before starting Python."
)
_LEGACY = ("1", "true", "True")


def _keras_bound_to_keras3(tf):
    """True if ``tf.keras`` already names Keras 3, read without resolving its lazy loader."""
    imported = sys.modules.get("tensorflow.keras")
    if imported is not None and not getattr(imported, "__name__", "").startswith("tf_keras"):
        return "tf_keras" not in (getattr(imported, "__file__", "") or "")
    handle = vars(tf).get("keras")
    if handle is None:
        return False
    state = vars(handle)
    if "_tfll_initialized" in state:  # TensorFlow's KerasLazyLoader
        return bool(state["_tfll_initialized"]) and state.get("_tfll_keras_version") != "tf_keras"
    return not (state.get("__name__", "") or "").startswith("tf_keras")


def _point_import_path_at_tf_keras(tf):
    # What tensorflow/__init__.py does when the variable is set before it: ``from
    # tensorflow.keras import layers`` then finds tf_keras's API package first.
    spec = importlib.util.find_spec("tf_keras")
    if spec is None or not spec.origin or not isinstance(getattr(tf, "__path__", None), list):
        return
    api = os.path.join(os.path.dirname(spec.origin), "api", "_v2")
    if api not in tf.__path__:
        tf.__path__.insert(0, api)


def select_legacy_keras() -> None:
    """Sets TF_USE_LEGACY_KERAS=1, or raises ImportError if ``tf.keras`` is already Keras 3."""
    tf = sys.modules.get("tensorflow")
    if tf is not None and os.environ.get("TF_USE_LEGACY_KERAS") not in _LEGACY:
        if _keras_bound_to_keras3(tf):
            raise ImportError("TensorFlow was imported with Keras 3 active (tf.keras was used). " + _FIX)
        _point_import_path_at_tf_keras(tf)
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
