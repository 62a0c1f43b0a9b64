"""export.save_saved_model: the round-trip check catches a SavedModel that serves other logits.

The mismatch is produced honestly: a layer that adds an offset only when it runs eagerly.
The live model (called eagerly by the check) and the saved serving signature (a traced
graph) then really compute different logits, as a model with eager-only Python logic would.
"""

import os

import numpy as np
import pytest

from tfsparse import export
from tfsparse import sparsity
from tfsparse.compat import keras
from tfsparse.compat import tf


class EagerOffset(keras.layers.Layer):
    """Adds ``offset`` when executed eagerly, nothing inside a traced function."""

    def __init__(self, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = float(offset)

    def call(self, inputs):
        return inputs + self.offset if tf.executing_eagerly() else inputs

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


def linear(offset=0.0, seed=0, bias=0.0):
    rng = np.random.default_rng(seed)
    inputs = keras.Input((4, 4, 1))
    logits = keras.layers.Dense(3, name="fc")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, EagerOffset(offset)(logits))
    model.get_layer("fc").set_weights([rng.normal(size=(16, 3)).astype(np.float32), np.full(3, bias, np.float32)])
    return model


X = np.random.default_rng(1).random((8, 4, 4, 1)).astype(np.float32)


def _served(path, x):
    return tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(x))["logits"].numpy()


def test_round_trip_passes_and_serves_the_live_logits(tmp_path):
    model = linear()
    path = str(tmp_path / "ok")
    assert export.save_saved_model(model, path, check_inputs=X) == path
    assert os.path.isdir(path) and not os.path.exists(path + ".partial")
    w = model.get_layer("fc").get_weights()[0]
    np.testing.assert_allclose(_served(path, X), X.reshape(8, -1) @ w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("offset", [1e-3, 1.0])
def test_round_trip_mismatch_raises_and_publishes_nothing(tmp_path, offset):
    model = linear(offset)
    # The mismatch is real: eager logits minus served logits = offset.
    probe = str(tmp_path / "probe")
    export.save_saved_model(model, probe)  # no check_inputs: no check
    np.testing.assert_allclose(model(X).numpy() - _served(probe, X), offset, rtol=1e-3)
    path = str(tmp_path / "bad")
    with pytest.raises(RuntimeError, match="round trip changed predictions"):
        export.save_saved_model(model, path, check_inputs=X, atol=1e-5)
    assert not os.path.exists(path) and not os.path.exists(path + ".partial")


def test_round_trip_tolerance_is_atol(tmp_path):
    # A difference of 1e-3 is accepted at atol = 1e-2 and refused at atol = 1e-4, also on
    # logits near 50 (an absolute tolerance: no relative slack from the logits' size).
    model = linear(1e-3, bias=50.0)
    export.save_saved_model(model, str(tmp_path / "loose"), check_inputs=X, atol=1e-2)
    with pytest.raises(RuntimeError):
        export.save_saved_model(model, str(tmp_path / "tight"), check_inputs=X, atol=1e-4)


def test_pruned_model_is_saved_stripped_with_real_zeros(tmp_path):
    model = sparsity.prune(linear(), 0.5)
    model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, np.zeros(8, np.int32), epochs=1, verbose=0, callbacks=[sparsity.UpdatePruningStep()])
    path = export.save_saved_model(model, str(tmp_path / "pruned"), check_inputs=X)
    reloaded = keras.models.load_model(path, custom_objects={"EagerOffset": EagerOffset}, compile=False)
    kernel = reloaded.get_layer("fc").get_weights()[0]
    assert np.count_nonzero(kernel == 0) == kernel.size // 2  # counted here, not by the library
    flat = X.reshape(8, -1)
    np.testing.assert_allclose(_served(path, X), flat @ kernel + reloaded.get_layer("fc").get_weights()[1],
                               rtol=1e-5, atol=1e-5)
