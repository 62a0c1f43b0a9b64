"""PGD adversarial training and the RSR ensemble loss (SPEC §8)."""

import json
import os
import subprocess
import sys
import textwrap

import ml_collections
import numpy as np
import pytest

from tfsparse import data as data_lib
from tfsparse import sparsity
from tfsparse.attacks import PGD
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.training import AdversarialModel
from tfsparse.training import add_lasso
from tfsparse.training import train_adversarial

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


# --- RSR eq. 6 against a NumPy reference -------------------------------------------------
#
# The inner model is linear (Flatten -> Dense), so every quantity has a closed form that NumPy
# computes without the library: logits z = x·W + b, the input gradient of the softmax CE
# (softmax(z) − onehot(y))·Wᵀ (binary: −s·σ(−s·z)·w, s = 2y − 1), the l∞ PGD iterate
# x ← clip_[0,1](clip_[x0−ε, x0+ε](x + α·sign(∇))) from x0 (no random start), and the objective
#     a·mean(s_i·CE(z_clean)_i) + (1 − a)·mean(s_i·CE(z_adv)_i) + λ·Σ|W|
# (Keras' SUM_OVER_BATCH_SIZE convention: the weighted sum divided by the batch size).

EPS, STEP, STEPS, LAM = 0.1, 0.06, 2, 1e-3


def linear(classes, seed=0):
    rng = np.random.default_rng(seed)
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dense(classes, name="fc")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    model.get_layer("fc").set_weights([rng.normal(size=(16, classes)).astype(np.float32),
                                       rng.normal(scale=0.1, size=classes).astype(np.float32)])
    return model


def _np_logits(w, b, x):
    return x.reshape(len(x), -1).astype(np.float64) @ w + b


def _np_ce(z, y):
    if z.shape[1] == 1:
        s = 2.0 * y - 1.0
        return np.logaddexp(0.0, -s * z[:, 0])
    return np.logaddexp.reduce(z, axis=1) - z[np.arange(len(y)), y]


def _np_grad(w, b, x, y):
    z = _np_logits(w, b, x)
    if z.shape[1] == 1:
        s = 2.0 * y - 1.0
        dz = (-s / (1.0 + np.exp(s * z[:, 0])))[:, None]  # d softplus(−s·z)/dz = −s·σ(−s·z)
    else:
        p = np.exp(z - z.max(axis=1, keepdims=True))
        dz = p / p.sum(axis=1, keepdims=True) - np.eye(z.shape[1])[y]
    return (dz @ w.T).reshape(x.shape)


def _np_pgd(w, b, x, y, eps=EPS, step=STEP, steps=STEPS):
    x0 = x.astype(np.float64)
    cur = x0.copy()
    for _ in range(steps):
        cur = cur + step * np.sign(_np_grad(w, b, cur, y))
        cur = np.clip(np.clip(cur, x0 - eps, x0 + eps), 0.0, 1.0)
    return cur


def _np_objective(w, b, x, y, a, sample_weight, lam=LAM):
    sw = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    x_adv = _np_pgd(w, b, x, y)
    ce_clean, ce_adv = _np_ce(_np_logits(w, b, x), y), _np_ce(_np_logits(w, b, x_adv), y)
    loss = a * np.mean(sw * ce_clean) + (1 - a) * np.mean(sw * ce_adv) + lam * np.abs(w).sum()
    z_adv = _np_logits(w, b, x_adv)
    pred = (z_adv[:, 0] > 0).astype(int) if z_adv.shape[1] == 1 else z_adv.argmax(1)
    adv_accuracy = np.sum(sw * (pred == y)) / np.sum(sw)
    return loss, adv_accuracy, ce_clean, ce_adv


def _compiled_linear(classes, a, grad_samples=1):
    inner = linear(classes)
    add_lasso(inner, LAM)
    binary = classes == 1
    model = AdversarialModel(inner, eps=EPS, step_size=STEP, steps=STEPS, random_start=False,
                             clean_weight=a, grad_samples=grad_samples)
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.BinaryCrossentropy(from_logits=True) if binary
        else keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy") if binary
                 else keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model, inner


CASES = {
    # name: (classes, a, sample weights?, grad_samples)
    "a0.3": (3, 0.3, False, 1),
    "a0.3_sample_weight": (3, 0.3, True, 1),
    "a0.3_grad_samples3": (3, 0.3, False, 3),
    "madry_a0": (3, 0.0, True, 1),
    "clean_a1": (3, 1.0, False, 1),
    "binary_a0.3_sample_weight": (1, 0.3, True, 1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_ensemble_objective_equals_rsr_eq6(case):
    classes, a, weighted, grad_samples = CASES[case]
    rng = np.random.default_rng(5)
    n = 16
    x = rng.random((n, 4, 4, 1), dtype=np.float32)
    y = rng.integers(0, max(classes, 2), n)
    sw = rng.uniform(0.2, 2.0, n).astype(np.float32) if weighted else None
    model, inner = _compiled_linear(classes, a, grad_samples)
    w, b = (v.astype(np.float64) for v in inner.get_layer("fc").get_weights())
    loss, adv_accuracy, ce_clean, ce_adv = _np_objective(w, b, x, y, a, sw)
    # The two CE terms differ a lot, so a swapped a ↔ 1 − a (or a dropped term) moves the loss.
    assert np.mean(ce_adv) > np.mean(ce_clean) + 0.2

    # test_step: the same objective, adv_accuracy on the NumPy PGD examples.
    logs = model.evaluate(x, y, sample_weight=sw, batch_size=n, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(loss, rel=1e-5)
    assert logs["adv_accuracy"] == pytest.approx(adv_accuracy, abs=1e-6)

    # train_step: the loss of the one step is the objective at the weights before the update.
    history = model.fit(x, y, sample_weight=sw, batch_size=n, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(loss, rel=1e-5)
    w_after = inner.get_layer("fc").get_weights()[0]
    assert not np.allclose(w_after, w)  # the step did update


def test_attack_and_evaluation_use_inference_mode_batch_norm():
    # Flatten -> BatchNormalization (hand-set moving statistics) -> Dense. In inference mode BN
    # is the affine map h = (x − μ)·γ/√(σ² + ε_bn) + β, so the network folds into one linear
    # layer W' = diag(γ/√(σ² + ε_bn))·W, b' = b + (β − μ·γ/√(σ² + ε_bn))·W for the NumPy
    # reference. An attack (or evaluation) run in training mode would use batch statistics.
    rng = np.random.default_rng(7)
    inputs = keras.Input((4, 4, 1))
    bn = keras.layers.BatchNormalization(name="bn")
    outputs = keras.layers.Dense(3, name="fc")(bn(keras.layers.Flatten()(inputs)))
    inner = keras.Model(inputs, outputs)
    gamma, beta = rng.uniform(0.5, 2.0, 16), rng.normal(scale=0.3, size=16)
    mu, var = rng.uniform(0.3, 0.7, 16), rng.uniform(0.01, 0.05, 16)
    bn.set_weights([v.astype(np.float32) for v in (gamma, beta, mu, var)])
    w, b = rng.normal(scale=0.3, size=(16, 3)), rng.normal(scale=0.1, size=3)
    inner.get_layer("fc").set_weights([w.astype(np.float32), b.astype(np.float32)])
    add_lasso(inner, LAM)
    model = compiled(inner, eps=EPS, step_size=STEP, steps=STEPS, random_start=False, clean_weight=0.3)
    scale = gamma / np.sqrt(var + bn.epsilon)
    w32, b32 = w.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
    w_fold, b_fold = scale[:, None] * w32, b32 + (beta - mu * scale) @ w32
    x = rng.random((16, 4, 4, 1), dtype=np.float32)
    y = rng.integers(0, 3, 16)
    loss, adv_accuracy, _, _ = _np_objective(w_fold, b_fold, x, y, 0.3, None, lam=0.0)
    loss += LAM * np.abs(w32).sum()  # the lasso is on the Dense kernel, never on BN
    logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(loss, rel=1e-4)
    assert logs["adv_accuracy"] == pytest.approx(adv_accuracy, abs=1e-6)


class CallCounter(keras.layers.Layer):
    """Identity layer counting its (executed, not traced) forward passes."""

    def build(self, input_shape):
        self.calls = self.add_weight(name="calls", shape=(), dtype=tf.float32,
                                     initializer="zeros", trainable=False)

    def call(self, inputs):
        with tf.control_dependencies([self.calls.assign_add(1.0)]):
            return tf.identity(inputs)


@pytest.mark.parametrize("grad_samples, clean_weight", [(1, 0.5), (3, 0.5), (3, 0.0)])
def test_attack_runs_grad_samples_forward_passes_per_step(grad_samples, clean_weight):
    # An outside counter of executed forward passes: STEPS · grad_samples in the attack, one
    # inference pass over concat([x, x_adv]) for both accuracies, then one training pass.
    inputs = keras.Input((4, 4, 1))
    counter = CallCounter()
    h = counter(inputs)
    inner = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(h)))
    model = compiled(inner, eps=0.1, step_size=0.05, steps=STEPS, grad_samples=grad_samples,
                     clean_weight=clean_weight)
    x, y = toy(16)
    counter.calls.assign(0.0)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert int(counter.calls.numpy()) == STEPS * grad_samples + 2
    counter.calls.assign(0.0)
    model.evaluate(x, y, batch_size=16, verbose=0)
    assert int(counter.calls.numpy()) == STEPS * grad_samples + 1  # one pass over clean + adversarial


@pytest.mark.parametrize("jit", [False, pytest.param(True, marks=pytest.mark.slow)])
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


def test_checkpointed_pgd_training_resumes_with_the_weights_of_an_uninterrupted_run(tmp_path):
    # PGD's random start is seeded by the step: a resumed fit must draw the starts that the
    # uninterrupted one drew at the same steps (Keras restarts its own train counter at every
    # fit). 16 steps = 4 epochs of 4 batches; the interrupted run stops after epoch 2.
    x, y = toy()
    train_cfg = ml_collections.ConfigDict(
        {"optimizer": "sgd", "batch_size": 16, "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.0,
         "lr_schedule": "constant", "steps": 16, "epochs": 0.0, "augment": False, "jit_compile": False})

    def run(steps, checkpoint_dir=None):
        model = AdversarialModel(mlp(), eps=0.2, step_size=0.05, steps=3, random_start=True, seed=5)
        history = train_adversarial(model, x, y, train_cfg, steps=steps, seed=3, checkpoint_dir=checkpoint_dir)
        return model, history

    whole, _ = run(16)
    run(8, checkpoint_dir=tmp_path / "ckpt")
    resumed, history = run(16, checkpoint_dir=tmp_path / "ckpt")
    assert history.epoch == [2, 3] and int(resumed.optimizer.iterations.numpy()) == 16
    for a, b in zip(whole.inner.get_weights(), resumed.inner.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
