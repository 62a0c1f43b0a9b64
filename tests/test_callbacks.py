"""Stop-E, Stop-C (Wang §4), SparsityMonitor and the checkpoint helper (SPEC §8, §11)."""

import numpy as np
import pytest

from tfsparse import sparsity
from tfsparse.compat import keras
from tfsparse.training import SparsityMonitor
from tfsparse.training import StopC
from tfsparse.training import StopE
from tfsparse.training import backup_and_restore


def tiny(lr=1.0):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="fc")(inputs))
    model.compile(keras.optimizers.SGD(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def drive(callback, model, values, monitor="val_loss"):
    """Feeds epoch-end logs to ``callback``; returns the LR seen after each epoch."""
    callback.set_model(model)
    callback.on_train_begin()
    lrs = []
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {monitor: value})
        lrs.append(float(model.optimizer.learning_rate.numpy()))
        if model.stop_training:
            break
    return lrs


def test_stop_c_decays_after_patience_flat_epochs_and_stops_after_two_decays():
    model = tiny()
    stop = StopC(patience=3)
    # Improves for 2 epochs, then flat: decay at epochs 5 and 8, stop at epoch 11.
    lrs = drive(stop, model, [3.0, 2.0] + [2.0] * 20)
    np.testing.assert_allclose(lrs, [1, 1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01], rtol=1e-6)
    assert stop.decays == 2 and stop.stopped_epoch == 10 and model.stop_training


def test_stop_c_threshold_is_relative():
    model = tiny()
    stop = StopC(patience=2, min_delta=1e-5)
    # 1e-6 relative gains are "flat"; a 1e-4 relative gain resets the count.
    lrs = drive(stop, model, [1.0, 1.0 - 1e-6, 1.0 - 2e-6, 0.9999, 0.9999 - 1e-7, 0.9999 - 2e-7])
    np.testing.assert_allclose(lrs, [1, 1, 0.1, 0.1, 0.1, 0.01], rtol=1e-6)


def test_stop_c_needs_validation_loss_and_valid_arguments():
    model = tiny()
    stop = StopC()
    stop.set_model(model)
    with pytest.raises(KeyError, match="val_loss"):
        stop.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(ValueError, match="patience"):
        StopC(patience=0)


def test_stop_e_divides_by_ten_at_each_third_and_stops():
    model = tiny(lr=0.3)
    lrs = drive(StopE(6), model, [1.0] * 10)
    np.testing.assert_allclose(lrs, [0.3, 0.3, 0.03, 0.03, 0.003, 0.003], rtol=1e-5)
    assert model.stop_training


def test_stop_e_in_fit_and_schedule_rejected():
    model = tiny(lr=0.3)
    x, y = np.ones((8, 4), np.float32), np.zeros(8)
    history = model.fit(x, y, epochs=50, verbose=0, callbacks=[StopE(3)])
    assert len(history.epoch) == 3
    np.testing.assert_allclose(history.history["lr"], [0.3, 0.03, 0.003], rtol=1e-5)
    scheduled = tiny()
    scheduled.compile(keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)), "mse")
    with pytest.raises(ValueError, match="constant learning rate"):
        scheduled.fit(x, y, epochs=1, verbose=0, callbacks=[StopE(3)])


def test_sparsity_monitor_logs_weight_sparsity(tmp_path):
    model = sparsity.prune(tiny(), 0.5)
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.random.rand(16, 4).astype(np.float32), np.arange(16) % 2
    history = model.fit(
        x, y, epochs=2, verbose=0,
        callbacks=[sparsity.UpdatePruningStep(), SparsityMonitor(), backup_and_restore(tmp_path / "b")],
    )
    assert history.history["weight_sparsity"] == [0.5, 0.5]


def test_backup_and_restore_resumes_after_interruption(tmp_path):
    x, y = np.random.rand(16, 4).astype(np.float32), np.arange(16) % 2

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    model = tiny(lr=0.1)
    with pytest.raises(RuntimeError):
        model.fit(x, y, epochs=4, batch_size=16, verbose=0,
                  callbacks=[backup_and_restore(tmp_path / "b"), Interrupt()])
    resumed = tiny(lr=0.1)
    history = resumed.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[backup_and_restore(tmp_path / "b")])
    assert history.epoch == [2, 3]  # the backup of epoch 1 was written before the interruption
    reference = tiny(lr=0.1)
    reference.fit(x, y, epochs=4, batch_size=16, verbose=0)
    np.testing.assert_allclose(resumed.get_layer("fc").kernel.numpy(), reference.get_layer("fc").kernel.numpy(), atol=1e-6)


class ScriptedValidation(keras.callbacks.Callback):
    """Writes a scripted ``val_loss`` into the epoch logs; raises at ``kill_at`` (before the checkpoint)."""

    def __init__(self, values, kill_at=None):
        super().__init__()
        self.values, self.kill_at = values, kill_at

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]
        if epoch == self.kill_at:
            raise KeyboardInterrupt(f"killed at the end of epoch {epoch}")


def test_a_fit_killed_mid_stop_c_resumes_with_its_counters_and_ends_as_an_uninterrupted_one(tmp_path):
    import ml_collections

    from tfsparse import training

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (32, 2, 2, 1)).astype("float32")
    y = (x.sum(axis=(1, 2, 3)) > 2).astype("int64")
    cfg = ml_collections.ConfigDict(
        {"optimizer": "sgd", "batch_size": 8, "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.0,
         "lr_schedule": "constant", "steps": 32, "epochs": 0.0, "augment": False, "jit_compile": False})
    # val_loss improves twice, then is flat: with patience 1, LR ÷10 after epochs 2 and 3, stop at 4.
    values = [3.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]

    def fit(kill_at=None, checkpoint_dir=None):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
        training.compile_model(model, cfg, 32)
        stop = StopC(patience=1)
        history = training.fit_arrays(model, x, y, cfg, 32, seed=1, checkpoint_dir=checkpoint_dir,
                                      callbacks=[ScriptedValidation(values, kill_at), stop])
        return model, stop, history

    whole, whole_stop, whole_history = fit()
    assert whole_history.epoch == [0, 1, 2, 3, 4] and (whole_stop.decays, whole_stop.stopped_epoch) == (2, 4)
    with pytest.raises(KeyboardInterrupt):
        fit(kill_at=3, checkpoint_dir=tmp_path)  # dies before epoch 3's checkpoint: 3 epochs, 1 decay saved
    assert training.checkpointed_epochs(tmp_path) == 3 and training.checkpointed_epochs(tmp_path / "none") == 0
    resumed, stop, history = fit(checkpoint_dir=tmp_path)
    assert history.epoch == [3, 4] and (stop.decays, stop.stopped_epoch) == (2, 4)
    assert resumed.optimizer.learning_rate.numpy() == pytest.approx(0.001)
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    # Resumed once more after Stop-C stopped it: no further epoch, although the cap allows 8.
    again, stop, history = fit(checkpoint_dir=tmp_path)
    assert history.epoch == [] and stop.stopped_epoch == 4
    assert int(again.optimizer.iterations.numpy()) == int(whole.optimizer.iterations.numpy())
    for a, b in zip(whole.get_weights(), again.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_stop_e_keeps_its_base_rate_through_a_checkpoint(tmp_path):
    # Resumed after the first decay, Stop-E must go on from lr0 = 0.3, not from the decayed 0.03.
    from tfsparse.compat import tf

    model = tiny(lr=0.3)
    stop = StopE(6)
    drive(stop, model, [1.0] * 3)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.03)
    path = tf.train.Checkpoint(callback=stop.checkpoint_state()).save(str(tmp_path / "ckpt"))
    resumed = StopE(6)
    assert resumed.base_lr is None
    tf.train.Checkpoint(callback=resumed.checkpoint_state()).restore(path).assert_consumed()
    assert resumed.base_lr == pytest.approx(0.3)
    lrs = drive(resumed, model, [1.0] * 6)  # the rate as of epoch 0 again: lr0, from the checkpoint
    assert lrs[0] == pytest.approx(0.3)
