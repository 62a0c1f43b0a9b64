"""The one Keras handle of tfsparse: every module does ``from tfsparse.compat import keras``.

Keeping the choice here means a future move to Keras 3 touches this file and
``tfsparse.sparsity`` (the only package importing tfmot), nothing else.
"""

from tfsparse._keras_guard import select_legacy_keras

select_legacy_keras()

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402


XLA_CHOICES = ("auto", "on", "off")


def xla_setting(choice):
    """Maps a config's ``xla`` word (auto / on / off) to :func:`use_xla`'s argument.

    Raises:
      ValueError: for another word.
    """
    if choice not in XLA_CHOICES:
        raise ValueError(f"xla must be one of {XLA_CHOICES}, got {choice!r}")
    return {"auto": "auto", "on": True, "off": False}[choice]


def use_xla(jit_compile="auto") -> bool:
    """Resolves the XLA switch (SPEC §1): ``auto`` = on when a GPU is visible, off on CPU.

    On CPU XLA's convolutions measured ~10x slower than TensorFlow's oneDNN kernels,
    so ``auto`` keeps XLA off there; on GPU XLA is the fast path.
    """
    if isinstance(jit_compile, str):
        if jit_compile != "auto":
            raise ValueError(f"jit_compile must be True, False or 'auto', got {jit_compile!r}")
        return bool(tf.config.list_logical_devices("GPU"))
    return bool(jit_compile)


__all__ = ["XLA_CHOICES", "keras", "tf", "use_xla", "xla_setting"]
