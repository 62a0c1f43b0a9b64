"""PGD adversarial training and the RSR ensemble loss (SPEC §8)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfsparse import data as data_lib
from tfsparse import sparsity
from tfsparse.attacks import PGD
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.training import AdversarialModel
from tfsparse.training import add_lasso
from tfsparse.training import ensemble_loss
from tfsparse.training import lasso_penalty

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mlp(hidden=32, input_shape=(4, 4, 1), classes=3, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    h = keras.layers.Flatten()(inputs)
    h = keras.layers.Dense(hidden, activation="relu", name="fc1")(h)
    return keras.Model(inputs, keras.layers.Dense(classes, name="fc2")(h))


def compiled(inner, lr=0.1, jit=False, **kwargs):
    model = AdversarialModel(inner, **kwargs)
    model.compile(
        keras.optimizers.SGD(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # A metric object, not the string: strings build their variables inside the
        # first traced step, which makes tf.function trace twice.
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=jit,
    )
    return model


def toy(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 4, 4, 1), dtype=np.float32), rng.integers(0, 3, n)


def test_train_step_examples_lie_in_eps_ball_and_box():
    x, y = toy()
    model = compiled(mlp(), eps=0.1, step_size=0.05, steps=5)
    x_adv = tf.function(model.perturb)(tf.constant(x), tf.constant(y), tf.constant(3, tf.int64)).numpy()
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert np.abs(x_adv - x).max() > 0.05


def test_eps_warmup_ramps_the_training_radius_linearly():
    x, y = toy()
    model = compiled(mlp(), eps=0.2, step_size=0.05, steps=5, eps_warmup=4)
    radii = []
    for step in range(6):
        model.optimizer.iterations.assign(step)
        radii.append(float(model.training_eps()))
    np.testing.assert_allclose(radii, [0.05, 0.1, 0.15, 0.2, 0.2, 0.2], rtol=1e-6)
    model.optimizer.iterations.assign(0)
    x_adv = model.perturb(tf.constant(x), tf.constant(y), tf.constant(0, tf.int64), model.training_eps())
    assert np.abs(x_adv.numpy() - x).max() <= 0.05 + 1e-6
    assert compiled(mlp(), eps=0.2, step_size=0.05, steps=5).training_eps().numpy() == pytest.approx(0.2)


def test_ensemble_objective_equals_rsr_eq6():
    x, y = toy(16)
    inner = mlp()
    add_lasso(inner, 1e-3)
    model = compiled(inner, eps=0.1, step_size=0.05, steps=3, random_start=False, clean_weight=0.5)
    logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    x_adv = model.perturb(tf.constant(x), tf.constant(y), tf.constant(0, tf.int64))
    expected = ensemble_loss(inner(x), inner(x_adv), y, 0.5) + 1e-3 * lasso_penalty(inner)
    assert logs["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert set(logs) == {"loss", "accuracy", "adv_accuracy"}


@pytest.mark.parametrize("jit", [False, True])
def test_pruning_step_advances_once_per_step_and_zeros_stay(jit):
    x, y = toy()
    inner = sparsity.prune(mlp(), 0.5)
    model = compiled(inner, jit=jit, eps=0.1, step_size=0.05, steps=3, clean_weight=0.5)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[sparsity.UpdatePruningStep()])
    steps = int(model.optimizer.iterations.numpy())
    assert steps == 8
    assert [int(layer.pruning_step.numpy()) for layer in sparsity.prunable_layers(inner)] == [steps] * 2
    before = sparsity.masks(sparsity.strip(inner))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[sparsity.UpdatePruningStep()])
    after = sparsity.masks(sparsity.strip(inner))
    for name, kept in before.items():
        assert not np.any(after[name] & ~kept)


def test_train_function_traces_once_across_epochs():
    x, y = toy()
    model = compiled(mlp(), eps=0.1, step_size=0.05, steps=2)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert model.train_tf_function.experimental_get_tracing_count() == 1


def test_pgd_training_beats_clean_training_under_pgd():
    dataset = data_lib.load("mnist", num_train=1024, num_test=256, seed=0)
    x, y = dataset.x_train, dataset.y_train
    attack = PGD(eps=0.1, step_size=0.03, steps=5)
    scores = {}
    for name, eps in (("clean", 0.0), ("pgd", 0.1)):
        inner = mlp(64, (28, 28, 1), 10)
        model = compiled(inner, lr=0.1, eps=eps, step_size=0.03, steps=5 if eps else 0,
                         random_start=bool(eps), adversarial_eval=False)
        model.fit(x, y, batch_size=32, epochs=5, verbose=0)
        scores[name] = attack.run(inner, dataset.x_test, dataset.y_test).adv_accuracy
    assert scores["pgd"] > scores["clean"] + 0.1, scores  # measured: 0.28 vs 0.11


def test_validation():
    with pytest.raises(ValueError, match="eps"):
        AdversarialModel(mlp(), eps=-1, step_size=0.1, steps=1)
    with pytest.raises(ValueError, match="clean_weight"):
        AdversarialModel(mlp(), eps=0.1, step_size=0.1, steps=1, clean_weight=2)
    with pytest.raises(ValueError, match="inner"):
        AdversarialModel("model", eps=0.1, step_size=0.1, steps=1)
    with pytest.raises(ValueError, match="eps_warmup"):
        AdversarialModel(mlp(), eps=0.1, step_size=0.1, steps=1, eps_warmup=-1)


_MIRRORED = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tfsparse
    from tfsparse.compat import keras, tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    from test_adversarial import compiled, mlp, toy

    def run(strategy):
        with strategy.scope():
            model = compiled(mlp(), eps=0.1, step_size=0.05, steps=3, random_start=False,
                             clean_weight=0.5)
        x, y = toy()
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
        history = model.fit(data, epochs=2, verbose=0)
        return history.history["loss"]

    devices = ["/cpu:0", "/cpu:1"]
    print(json.dumps({
        "mirrored": run(tf.distribute.MirroredStrategy(devices)),
        "single": run(tf.distribute.OneDeviceStrategy("/cpu:0")),
    }))
    """
)


def test_mirrored_strategy_gives_the_same_loss():
    proc = subprocess.run(
        [sys.executable, "-c", _MIRRORED, os.path.join(REPO, "tests")],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(losses["mirrored"], losses["single"], rtol=1e-4)
