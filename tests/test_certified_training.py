"""Certified training (IBP, CROWN-IBP; issue 34, item 3): the schedules, a certified gain over
standard training on real MNIST images, and composition with pruning."""

import numpy as np
import pytest

import tfsparse
from tfsparse import data
from tfsparse.compat import keras
from tfsparse.training.certified import CertifiedModel

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _net():
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 4, strides=2, activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(10)])


@pytest.fixture(scope="module")
def mnist():
    return data.load("mnist", num_train=600, num_test=200)


def test_schedule_ramps_eps_kappa_and_beta_after_the_warmup():
    model = CertifiedModel(_net(), eps=0.2, method="crown_ibp", warmup_steps=10, ramp_steps=20, kappa=(1.0, 0.0))
    model.compile(keras.optimizers.SGD(0.0), CE)
    seen = []
    for step in (0, 10, 20, 30, 50):
        model.optimizer.iterations.assign(step)
        seen.append(tuple(round(float(v), 6) for v in model.schedule()))
    assert seen == [(0.0, 1.0, 1.0), (0.0, 1.0, 1.0), (0.1, 0.5, 0.5), (0.2, 0.0, 0.0), (0.2, 0.0, 0.0)]


def test_ibp_training_certifies_what_standard_training_does_not(mnist):
    x, y = mnist.x_train, mnist.y_train
    keras.utils.set_random_seed(0)
    standard = _net()
    standard.compile(keras.optimizers.Adam(2e-3), CE)
    standard.fit(x, y, epochs=8, batch_size=50, verbose=0)
    keras.utils.set_random_seed(0)
    inner = _net()
    model = CertifiedModel(inner, eps=0.1, method="ibp", warmup_steps=12, ramp_steps=48, kappa=(1.0, 0.5))
    model.compile(keras.optimizers.Adam(2e-3), CE, metrics=["accuracy"])
    history = model.fit(x, y, epochs=8, batch_size=50, verbose=0).history
    assert set(history) == {"loss", "accuracy", "certified"}
    xt, yt = mnist.x_test, mnist.y_test
    trained = tfsparse.certify(inner, xt, yt, 0.1, method="ibp").accuracy
    assert tfsparse.certify(standard, xt, yt, 0.1, method="ibp").accuracy == 0.0
    assert trained >= 0.1  # a code-path check on 600 images: the bound loss moves the bound


@pytest.mark.slow  # CROWN-IBP training traces a large graph; the fast path: the IBP test above
def test_certified_training_of_a_pruned_model_keeps_its_zeros(mnist):
    keras.utils.set_random_seed(1)
    pruned = tfsparse.sparsity.prune_with("threshold", _net(), 0.5)
    model = CertifiedModel(pruned, eps=0.05, method="crown_ibp", ramp_steps=6)
    model.compile(keras.optimizers.Adam(1e-3), CE)
    model.fit(mnist.x_train[:300], mnist.y_train[:300], epochs=1, batch_size=50, verbose=0,
              callbacks=[tfsparse.sparsity.UpdatePruningStep()])
    stripped = tfsparse.strip(pruned)
    assert tfsparse.weight_sparsity(stripped)["overall"] == pytest.approx(0.5, abs=0.02)
    xt, yt = mnist.x_test[:50], mnist.y_test[:50]
    np.testing.assert_allclose(tfsparse.certify(pruned, xt, yt, 0.05, method="crown").margins,
                               tfsparse.certify(stripped, xt, yt, 0.05, method="crown").margins, atol=1e-5)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        CertifiedModel(_net(), eps=0.1, method="crown")
    with pytest.raises(ValueError, match="kappa must be"):
        CertifiedModel(_net(), eps=0.1, kappa=(1.0, 2.0))
