"""Clean training recipe: schedules, weight decay, NaN guard, one trace per fit."""

import ml_collections
import numpy as np
import pytest

from tfsparse import training
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.training.clean import add_weight_decay


def cfg(**overrides):
    base = {"optimizer": "sgd", "batch_size": 16, "learning_rate": 0.05, "momentum": 0.9, "weight_decay": 0.0,
            "lr_schedule": "constant", "steps": 12, "epochs": 0.0, "augment": False, "jit_compile": False}
    base.update(overrides)
    return ml_collections.ConfigDict(base)


def small_model(outputs=3):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(8, activation="relu", name="fc1")(x)
    return keras.Model(inputs, keras.layers.Dense(outputs, name="logits")(x))


def data(n=64):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (n, 4, 4, 1)).astype("float32")
    return x, (x.mean(axis=(1, 2, 3)) > 0.5).astype("int64")


def test_caffe_inv_schedule_matches_formula():
    schedule = training.CaffeInvDecay(0.01)
    for step in (0, 1000, 50_000):
        assert float(schedule(step)) == pytest.approx(0.01 * (1 + 1e-4 * step) ** -0.75, rel=1e-6)


def test_thirds_schedule_divides_by_ten_at_each_third():
    schedule = training.make_schedule("thirds", 0.1, 300)
    assert [float(schedule(s)) for s in (0, 101, 201)] == pytest.approx([0.1, 0.01, 0.001])
    with pytest.raises(ValueError, match="unknown lr_schedule"):
        training.make_schedule("nope", 0.1, 10)


def test_steps_budget_from_epochs_or_steps():
    assert training.steps_for(cfg(epochs=2.0), 100) == 14  # ceil(100 / 16) = 7 batches per epoch
    assert training.steps_for(cfg(steps=500), 100) == 500


@pytest.mark.parametrize("steps", [12, 10, 3])
def test_train_runs_exactly_the_budget_and_traces_once(steps):
    # 64 images in batches of 16: 4 batches per epoch. 12 divides evenly; 10 and 3 do not
    # (10 = 3 epochs cut short: 4 + 4 + 2), and the optimizer must still take exactly `steps`.
    model = small_model()
    x, y = data()
    history = training.train(model, x, y, cfg(steps=steps))
    assert int(model.optimizer.iterations.numpy()) == steps
    assert len(history.epoch) == -(-steps // 4)
    assert model.train_tf_function.experimental_get_tracing_count() == 1


def test_weight_decay_adds_half_lambda_sum_of_squares_on_kernels_only():
    model = small_model()
    add_weight_decay(model, 0.1)
    kernels = [model.get_layer("fc1").kernel, model.get_layer("logits").kernel]
    expected = 0.05 * sum(float(tf.reduce_sum(k ** 2)) for k in kernels)
    assert float(tf.add_n(model.losses)) == pytest.approx(expected, rel=1e-5)


def test_binary_single_logit_uses_softplus_loss():
    model = small_model(outputs=1)
    loss = training.loss_for(model)
    z = tf.constant([[0.3], [-1.2]])
    y = tf.constant([[1.0], [0.0]])
    # softplus(-s z) with s = 2y - 1, averaged over the batch (Guo §3.1).
    assert float(loss(y, z)) == pytest.approx(float(tf.reduce_mean(tf.nn.softplus(-(2 * y - 1) * z))), rel=1e-6)


def test_nan_loss_stops_with_a_clear_error_naming_the_step():
    model = small_model()
    x, y = data()
    with pytest.raises(FloatingPointError, match=r"at step \d+ \(epoch"):
        training.train(model, x, y, cfg(steps=40, learning_rate=1e30))


def test_make_optimizer_builds_sgd_or_adam_with_the_schedule():
    sgd = training.make_optimizer(cfg(learning_rate=0.05), 10)
    assert isinstance(sgd, keras.optimizers.SGD) and float(sgd.momentum) == pytest.approx(0.9)
    adam = training.make_optimizer(cfg(optimizer="adam", learning_rate=1e-3, lr_schedule="thirds"), 30)
    assert isinstance(adam, keras.optimizers.Adam)
    schedule = adam.get_config()["learning_rate"]
    assert schedule["class_name"] == "PiecewiseConstantDecay"
    assert schedule["config"]["values"] == pytest.approx([1e-3, 1e-4, 1e-5])
    with pytest.raises(ValueError, match="optimizer"):
        training.make_optimizer(cfg(optimizer="rmsprop"), 10)


def test_a_zero_budget_trains_nothing():
    # prune.py --retrain_epochs=0: prune without retraining, weights untouched.
    model = small_model()
    x, y = data()
    before = [w.copy() for w in model.get_weights()]
    history = training.train(model, x, y, cfg(steps=0))
    assert history.history == {} and int(model.optimizer.iterations.numpy()) == 0
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_checkpointed_fit_resumes_with_the_weights_of_an_uninterrupted_fit(tmp_path):
    # 16 steps = 4 epochs of 4 batches; the interrupted fit stops after epoch 2 (8 steps).
    x, y = data()
    whole = small_model()
    training.train(whole, x, y, cfg(steps=16), seed=3)

    first = small_model()
    training.train(first, x, y, cfg(steps=8), seed=3, checkpoint_dir=tmp_path / "ckpt")
    # The same run resumed: the budget is the full one, the checkpoint says 2 epochs are done.
    resumed = small_model()
    training.compile_model(resumed, cfg(steps=16), 16)
    history = training.fit_arrays(resumed, x, y, cfg(steps=16), 16, seed=3, checkpoint_dir=tmp_path / "ckpt")
    assert history.epoch == [2, 3] and int(resumed.optimizer.iterations.numpy()) == 16
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
