"""AdversarialModel through the public API (issue 31 items 2, 3): it goes where a model goes.

Only ``import tfsparse`` (and its Keras handle): strip / plain / save_saved_model / export /
evaluate take the wrapper, a ``.keras`` file round-trips it, HDF5 is refused with what to save
instead, and both training accuracies are read in the same (inference) mode.
"""

import numpy as np
import pytest

import tfsparse
from tfsparse.compat import keras
from tfsparse.compat import tf


def small_cnn(seed=0, batch_norm=False):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    if batch_norm:
        h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Flatten()(keras.layers.ReLU()(h))
    return keras.Model(inputs, keras.layers.Dense(3, name="fc")(h))


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, n)


def adversarial(inner, **kwargs):
    settings = dict(eps=0.1, step_size=0.05, steps=2, seed=3)
    settings.update(kwargs)
    model = tfsparse.AdversarialModel(inner, **settings)
    model.compile(keras.optimizers.SGD(0.05),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


@pytest.fixture(scope="module")
def pruned_adv():
    """An AdversarialModel around a 50 %-pruned CNN, after one epoch of PGD training."""
    adv = adversarial(tfsparse.sparsity.prune(small_cnn(), 0.5))
    x, y = data()
    adv.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[tfsparse.sparsity.UpdatePruningStep()])
    return adv


def kernel_sparsity(model):
    kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
    return float(np.mean(np.concatenate([k.ravel() for k in kernels]) == 0))


@pytest.mark.parametrize("name", ["strip", "plain"])
def test_strip_and_plain_take_the_wrapper_and_give_the_model_it_trains(pruned_adv, name):
    x, _ = data(8, seed=1)
    stripped = getattr(tfsparse.sparsity, name)(pruned_adv)
    assert not isinstance(stripped, tfsparse.AdversarialModel)
    assert not tfsparse.sparsity.has_pruning_wrappers(stripped)
    assert kernel_sparsity(stripped) == pytest.approx(0.5, abs=0.01)  # real zeros in the kernels
    np.testing.assert_allclose(stripped(x).numpy(), pruned_adv(x, training=False).numpy(), atol=1e-5)


def test_save_saved_model_takes_the_wrapper(pruned_adv, tmp_path):
    x, _ = data(8, seed=1)
    path = tfsparse.save_saved_model(pruned_adv, str(tmp_path / "sm"), check_inputs=x)
    served = tf.saved_model.load(path).signatures["serving_default"]
    np.testing.assert_allclose(served(images=tf.constant(x))["logits"].numpy(),
                               pruned_adv(x, training=False).numpy(), atol=1e-5)


def test_export_takes_the_wrapper(pruned_adv, tmp_path):
    x, _ = data(8, seed=1)
    report = tfsparse.export.export(pruned_adv, str(tmp_path / "out"), ("saved_model",), check_inputs=x,
                                    latency_runs=0)
    entry = report["formats"]["saved_model"]
    assert entry["top1_agreement"] == 1.0 and entry["max_abs_logit_diff"] <= 1e-5
    assert entry["weight_sparsity"] > 0.4  # the pruned kernels, stripped


def test_evaluate_takes_the_wrapper(pruned_adv):
    x, y = data(16, seed=2)
    pgd = tfsparse.PGD(eps=0.1, step_size=0.05, steps=3)
    got = tfsparse.evaluate(pruned_adv, x, y, [pgd])
    want = tfsparse.evaluate(tfsparse.sparsity.strip(pruned_adv), x, y, [pgd])
    assert got["clean_accuracy"] == want["clean_accuracy"]
    assert got["attacks"]["pgd"]["accuracy"] == want["attacks"]["pgd"]["accuracy"]


@pytest.mark.parametrize("loader", ["keras", "model_io"])
def test_keras_file_round_trips_the_wrapper(pruned_adv, tmp_path, loader):
    x, y = data(8, seed=1)
    path = str(tmp_path / "adv.keras")
    pruned_adv.save(path)
    load = keras.models.load_model if loader == "keras" else tfsparse.model_io.load_model
    loaded = load(path)
    assert isinstance(loaded, tfsparse.AdversarialModel)
    settings = {k: v for k, v in pruned_adv.get_config().items() if k not in ("inner", "name")}
    assert {k: v for k, v in loaded.get_config().items() if k in settings} == settings
    assert tfsparse.sparsity.has_pruning_wrappers(loaded.inner)
    np.testing.assert_allclose(loaded(x, training=False).numpy(), pruned_adv(x, training=False).numpy(),
                               atol=1e-6)
    # The same PGD examples: the attack settings and the seed came back too.
    counter = tf.constant(7, tf.int64)
    np.testing.assert_allclose(loaded.perturb(tf.constant(x), tf.constant(y), counter).numpy(),
                               pruned_adv.perturb(tf.constant(x), tf.constant(y), counter).numpy(), atol=1e-6)


@pytest.mark.parametrize("kwargs", [{"path": "adv.h5"}, {"path": "adv.hdf5"},
                                    {"path": "adv_model", "save_format": "h5"}])
def test_hdf5_is_refused_with_what_to_save_instead(pruned_adv, tmp_path, kwargs):
    kwargs = dict(kwargs)
    path = str(tmp_path / kwargs.pop("path"))
    with pytest.raises(tfsparse.errors.UsageError, match=r"\.keras.*\.inner\.save") as info:
        pruned_adv.save(path, **kwargs)
    assert "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())  # nothing half-written


def bn_model():
    """A CNN whose BatchNormalization holds moving statistics far from any batch's.

    Moving mean 3 and variance 0.01 (the conv outputs of [0, 1] images have mean ~0 and a
    larger spread), so inference mode (moving statistics) and training mode (batch statistics)
    predict differently: a metric read in the other mode would not match.
    """
    inner = small_cnn(seed=4, batch_norm=True)
    bn = inner.get_layer("bn")
    gamma, beta, _, _ = bn.get_weights()
    bn.set_weights([gamma, beta, np.full(4, 3.0, np.float32), np.full(4, 0.01, np.float32)])
    return inner


def accuracy(logits, y):
    return float(np.mean(np.argmax(logits, -1) == y))


@pytest.mark.parametrize("clean_weight", [0.0, 0.5])
def test_both_training_accuracies_are_read_in_inference_mode(clean_weight):
    x, y = data(48, seed=5)
    inner = bn_model()
    inference, training = inner(x, training=False).numpy(), inner(x, training=True).numpy()
    assert accuracy(inference, y) != accuracy(training, y)  # the two modes are told apart here
    # ε = 0: the PGD examples are the clean images, so both metrics see the same inputs.
    adv = adversarial(inner, eps=0.0, step_size=0.05, steps=2, clean_weight=clean_weight)
    history = adv.fit(x, y, batch_size=48, epochs=1, shuffle=False, verbose=0).history
    assert history["accuracy"][0] == history["adv_accuracy"][0]
    # ... and that mode is inference, on the weights before the step (as the attack saw them).
    assert history["accuracy"][0] == pytest.approx(accuracy(inference, y), abs=1e-6)


@pytest.mark.slow
def test_export_script_takes_a_saved_wrapper(tmp_path):
    # The export pipeline end to end on an adv.keras file: load, shape checks, strip, artifacts.
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    inputs = keras.Input((28, 28, 1))
    h = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inputs))
    adv = adversarial(tfsparse.sparsity.prune(keras.Model(inputs, keras.layers.Dense(10)(h)), 0.5))
    sample = tfsparse.load_data("mnist", num_train=64, num_test=16)
    adv.fit(sample.x_train, sample.y_train, batch_size=32, epochs=1, verbose=0,
            callbacks=[tfsparse.sparsity.UpdatePruningStep()])
    adv.save(str(tmp_path / "adv.keras"))
    proc = subprocess.run(
        [sys.executable, os.path.join(repo, "scripts", "export.py"), f"--model={tmp_path / 'adv.keras'}",
         f"--output={tmp_path / 'out'}", "--formats=saved_model", "--representative_data=mnist"],
        capture_output=True, text=True, timeout=600, cwd=repo)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "saved_model").is_dir() and "0.5000" in proc.stdout
