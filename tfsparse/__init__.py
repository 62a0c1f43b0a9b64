"""tfsparse: sparse and adversarially robust neural networks on TensorFlow/Keras.

Importing tfsparse selects Keras 2 (``tf_keras``) before TensorFlow loads, because
tensorflow-model-optimization does not support Keras 3 (SPEC §1).
"""

from tfsparse._keras_guard import select_legacy_keras

select_legacy_keras()

__version__ = "0.1.0"
