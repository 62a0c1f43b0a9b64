"""evaluate(), the RobustnessEval callback and scripts/evaluate.py on tiny models."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfsparse.attacks import FGSM
from tfsparse.attacks import PGD
from tfsparse.attacks import TransferAttack
from tfsparse.attacks import DeepFool
from tfsparse.attacks.base import FixedEpsilonAttack
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.evaluation import evaluate
from tfsparse.training.robustness_eval import RobustnessEval

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (4, 4, 1)


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(11)
    w = rng.normal(size=(16, 3))
    model = keras.Sequential([keras.layers.Input(SHAPE), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    model.set_weights([w, np.zeros(3)])
    x = rng.uniform(size=(60,) + SHAPE).astype(np.float32)
    y = np.argmax(x.reshape(60, -1) @ w, axis=1).astype(np.int32)
    y[:6] = (y[:6] + 1) % 3
    return model, x, y


def test_evaluate_report_fields_and_worst_case(tiny):
    model, x, y = tiny
    attacks = [FGSM(eps=0.05), PGD(eps=0.05, step_size=0.01, steps=10), DeepFool(),
               FGSM(eps=0.1)]
    report = evaluate(model, x, y, attacks, batch_size=25)
    assert report["n"] == 60 and report["clean_accuracy"] == pytest.approx(0.9)
    assert list(report["attacks"]) == ["fgsm", "pgd", "deepfool", "fgsm_2"]
    fgsm, pgd, deepfool = (report["attacks"][k] for k in ("fgsm", "pgd", "deepfool"))
    assert fgsm["r_inf"] == fgsm["accuracy"] and "r_inf" not in pgd
    assert pgd["accuracy"] <= fgsm["accuracy"]
    assert deepfool["r2"] == pytest.approx(deepfool["mean_l2"] * 54 / 60)
    assert deepfool["failures"] == 0 and "accuracy" not in deepfool
    for entry in report["attacks"].values():
        assert entry["seconds"] > 0 and 0 <= entry["success_rate"] <= 1
        assert entry["params"]["name"] in entry["repr"].lower().replace("fgsm", "fgsm")
    # FGS on a linear model in closed form (NumPy): x + ε·sign((softmax(z) − onehot(y))·Wᵀ),
    # clipped to [0, 1]; accuracy = fraction still classified correctly.
    w = model.layers[-1].get_weights()[0].astype(np.float64)
    flat = x.reshape(60, -1).astype(np.float64)
    assert report["clean_accuracy"] == pytest.approx(np.mean(np.argmax(flat @ w, 1) == y))
    fgsm_correct = {}
    for key, eps in (("fgsm", 0.05), ("fgsm_2", 0.1)):
        z = flat @ w
        p = np.exp(z - z.max(1, keepdims=True))
        grad = (p / p.sum(1, keepdims=True) - np.eye(3)[y]) @ w.T
        fgsm_correct[key] = np.argmax(np.clip(flat + eps * np.sign(grad), 0, 1) @ w, 1) == y
        assert report["attacks"][key]["accuracy"] == pytest.approx(np.mean(fgsm_correct[key]))
    worst = report["worst_case"]["accuracy"]
    assert worst <= np.mean(fgsm_correct["fgsm"] & fgsm_correct["fgsm_2"]) + 1e-12
    assert worst <= pgd["accuracy"]
    assert len(report["worst_case"]["attacks"]) == 3  # fgsm, pgd, fgsm_2 (not DeepFool)
    assert report["warnings"] == []
    json.dumps(report)  # JSON-ready


class Shift(FixedEpsilonAttack):
    """A hand-made l∞ attack moving every pixel by ``sign · eps``."""

    name = "shift"

    def __init__(self, *, eps, sign):
        super().__init__(eps=eps, sign=sign, jit_compile=False)

    def _attack(self, model_fn, x, y, logits, seed):
        return x + self.sign * self.eps


def test_worst_case_is_the_per_sample_and_over_linf_attacks():
    # One logit z = mean(x) − 0.5 on constant images of value v: "up" (v + ε) fools the label-0
    # samples just below 0.5, "down" (v − ε) the label-1 samples just above it. The two attacks
    # fool DIFFERENT samples, so the per-sample worst case (robust only if neither fooled it) is
    # strictly below the accuracy of each attack. Expected values by hand in NumPy.
    eps = 0.06
    v = 0.305 + 0.01 * np.arange(40)                           # 0.305 … 0.695, no ties at 0.5
    x = np.repeat(v, 16).reshape(40, 4, 4, 1).astype(np.float32)
    y = (v > 0.5).astype(np.int32)
    y[[0, 39]] = 1 - y[[0, 39]]                                 # two clean errors
    model = keras.Sequential([keras.layers.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.set_weights([np.full((16, 1), 1 / 16, np.float32), np.array([-0.5], np.float32)])

    def correct(values):
        return (np.clip(values, 0, 1) > 0.5).astype(np.int32) == y

    clean, up, down = correct(v), correct(v + eps), correct(v - eps)
    expected_worst = np.mean(clean & up & down)
    assert expected_worst < min(np.mean(up), np.mean(down))      # the case is discriminating
    l2_everything = PGD(eps=5.0, step_size=1.0, steps=5, norm="l2", random_start=False)

    report = evaluate(model, x, y, [Shift(eps=eps, sign=1.0), l2_everything,
                                    Shift(eps=eps, sign=-1.0)], batch_size=16)
    assert report["clean_accuracy"] == pytest.approx(np.mean(clean))
    assert report["attacks"]["shift"]["accuracy"] == pytest.approx(np.mean(up))
    assert report["attacks"]["shift_2"]["accuracy"] == pytest.approx(np.mean(down))
    assert report["attacks"]["pgd"]["accuracy"] < expected_worst  # l2: must not enter the l∞ worst case
    assert report["worst_case"]["accuracy"] == pytest.approx(expected_worst)
    assert len(report["worst_case"]["attacks"]) == 2


def test_evaluate_warns_on_masking_signs(tiny):
    model, x, y = tiny
    # A "transfer" from a much better source beats white-box PGD with a single step.
    weak = PGD(eps=0.05, step_size=0.001, steps=1, random_start=False)
    strong = TransferAttack(source_model=model, attack=PGD(eps=0.05, step_size=0.01, steps=20))
    report = evaluate(model, x, y, [FGSM(eps=0.05), weak, strong], stochastic=True)
    text = " ".join(report["warnings"])
    assert "single-step" in text and "black-box" in text and "EOT" in text


def test_robustness_eval_callback_logs_into_history(tiny):
    model, x, y = tiny
    model = keras.models.clone_model(model)
    model.compile(keras.optimizers.SGD(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pgd_cb = RobustnessEval(PGD(eps=0.05, step_size=0.01, steps=3), x[:20], y[:20], name="pgd_acc")
    df_cb = RobustnessEval(DeepFool(max_iter=5), x[:20], y[:20], every=2)
    history = model.fit(x, y, epochs=2, batch_size=30, verbose=0, callbacks=[pgd_cb, df_cb])
    assert len(history.history["pgd_acc"]) == 2
    assert len(history.history["robust_deepfool"]) == 1  # every=2: only after epoch 2
    assert "robust_deepfool_mean_l2" in history.history
    with pytest.raises(ValueError, match="every"):
        RobustnessEval(FGSM(eps=0.1), x, y, every=0)


def run_evaluate(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "evaluate.py"), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    tf.random.set_seed(0)
    good = keras.Sequential([keras.layers.Input((28, 28, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(10)])
    good.save(root / "good.keras")
    bad = keras.Sequential([keras.layers.Input((28, 28, 1)), keras.layers.Flatten(),
                            keras.layers.Dense(10), keras.layers.Reshape((2, 5))])
    bad.save(root / "bad.keras")
    return root


def test_evaluate_script_writes_json(saved_models, tmp_path):
    output = tmp_path / "results.json"
    result = run_evaluate(
        f"--model={saved_models / 'good.keras'}", "--num_examples=20", "--classes=1,7",
        "--attacks=fgsm,pgd,deepfool,cw", "--eps=0.1", f"--output={output}",
        "--config.attacks.pgd.steps=3", "--config.attacks.cw_l2.steps=5",
        "--config.attacks.cw_l2.binary_search_steps=2", "--config.attacks.deepfool.max_iter=5",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(output.read_text())
    assert report["n"] == 20 and 0 <= report["clean_accuracy"] <= 1
    assert set(report["attacks"]) == {"fgsm", "pgd", "deepfool", "cw_l2"}
    assert report["attacks"]["pgd"]["params"]["steps"] == 3
    for key in ("fgsm", "pgd"):
        assert {"accuracy", "success_rate", "seconds", "params"} <= set(report["attacks"][key])
    for key in ("deepfool", "cw_l2"):
        assert {"mean_l2", "r2", "success_rate", "seconds"} <= set(report["attacks"][key])
    assert report["dataset"]["classes"] == ["1", "7"]
    assert "clean accuracy" in result.stdout and "deepfool" in result.stdout


@pytest.mark.parametrize(
    "args,message",
    [(["--attacks=fgsm,foo"], "unknown attack"),
     pytest.param(["--eps=-0.1"], "eps", marks=pytest.mark.slow),
     pytest.param(["--model=bad.keras"], "logits", marks=pytest.mark.slow)],
    ids=["unknown_attack", "negative_eps", "not_logits"],
)
def test_evaluate_script_bad_usage_exits_2(saved_models, args, message):
    model = [f"--model={saved_models / 'good.keras'}"]
    if args[0].startswith("--model"):
        model, args = [f"--model={saved_models / 'bad.keras'}"], []
    result = run_evaluate(*model, "--num_examples=10", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in [line for line in result.stderr.splitlines() if line.startswith("error:")][0]


def test_bad_usage_is_a_config_error_in_process(saved_models):
    # The same checks the slow script tests run through the CLI (exit 2 = ConfigError).
    from configs import evaluate as evaluate_config
    from tfsparse.errors import ConfigError
    from tfsparse.evaluation import build_attacks
    from tfsparse.evaluation import check_model_output
    from tfsparse.model_io import load_model

    config = evaluate_config.get_config("mnist")
    with pytest.raises(ConfigError, match="eps"):
        build_attacks(["fgsm"], -0.1, config)
    with pytest.raises(ConfigError, match="unknown attack"):
        build_attacks(["fgsm", "foo"], 0.1, config)
    assert [a.name for a in build_attacks(["cw", "PGD"], 0.1, config)] == ["cw_l2", "pgd"]
    with pytest.raises(ConfigError, match="logits"):
        check_model_output(load_model(str(saved_models / "bad.keras")), np.zeros((3, 28, 28, 1)))
    with pytest.raises(ConfigError, match="does not exist"):
        load_model(str(saved_models / "missing.keras"))


def test_plain_tf_savedmodel_is_attacked_like_the_keras_model(tmp_path):
    # A non-Keras SavedModel (a tf.Module with a serving signature) is wrapped by load_model;
    # gradients flow through the restored signature, so FGS gives what it gives on Keras.
    from tfsparse.attacks import FGSM
    from tfsparse.compat import keras
    from tfsparse.compat import tf
    from tfsparse.model_io import load_model

    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(16, 3)).astype("float32"), rng.normal(size=3).astype("float32")

    class Linear(tf.Module):
        def __init__(self):
            self.w, self.b = tf.Variable(w), tf.Variable(b)

        @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 1], tf.float32)])
        def serve(self, images):
            return {"logits": tf.reshape(images, [-1, 16]) @ self.w + self.b}

    module = Linear()
    tf.saved_model.save(module, str(tmp_path / "plain"), signatures={"serving_default": module.serve})
    reference = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    reference.layers[-1].set_weights([w, b])

    loaded = load_model(str(tmp_path / "plain"))
    x = rng.random((32, 4, 4, 1), dtype=np.float32)
    y = np.argmax(reference.predict(x, verbose=0), axis=1)
    np.testing.assert_allclose(loaded(tf.constant(x)).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-5)
    ours, expected = FGSM(eps=0.2).run(loaded, x, y), FGSM(eps=0.2).run(reference, x, y)
    np.testing.assert_allclose(ours.x_adv, expected.x_adv, atol=1e-6)
    assert ours.adv_accuracy == expected.adv_accuracy < 1.0


# --- --inference_noise and --attacks=transfer (RSR Tables 5 and 3) ------------------------------


def _rsr_config():
    """configs/evaluate.py shrunk for tiny models: 2-step PGD, 2 EOT draws, a 200-query ZOO, no ε = 1 check."""
    from configs import evaluate as evaluate_config

    config = evaluate_config.get_config("mnist")
    config.attacks.pgd.steps = 2
    config.attacks.eot_pgd.steps = 2
    config.attacks.zoo.update({"coords": 8, "max_queries": 200})
    config.eot_samples = 2
    config.check_unbounded = False
    return config


def _evaluate(config, model_path, **args):
    """``evaluate_model`` with every run argument from ``config`` (its only defaults), then ``args``."""
    from tfsparse.pipelines.evaluate import evaluate_model

    run = {key: config[key] for key in ("eps", "dataset", "data_dir", "classes", "num_examples", "subset",
                                        "model_outputs", "signature", "source_model", "inference_noise",
                                        "output", "overwrite", "distribute")}
    run.update(attack_names=list(config.attack_names), log=lambda *_: None)
    return evaluate_model(config, model_path, **{**run, **args})


@pytest.fixture(scope="module")
def noisy_saved(tmp_path_factory):
    """A tiny MNIST CNN with CNI layers saved with its noise switch off, and a plain one."""
    from tfsparse.layers import NoisyConv2D
    from tfsparse.layers import NoisyDense

    root = tmp_path_factory.mktemp("noisy")
    tf.random.set_seed(1)
    inputs = keras.Input((28, 28, 1))
    h = NoisyConv2D(2, 5, strides=4, activation="relu", seed=1, alpha_initializer=1.0)(inputs)
    outputs = NoisyDense(10, seed=2, alpha_initializer=1.0)(keras.layers.Flatten()(h))
    keras.Model(inputs, outputs, name="noisy").save(root / "noisy.keras")
    plain = keras.Sequential([keras.layers.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)],
                             name="plain")
    plain.save(root / "plain.keras")
    return root


def test_inference_noise_switch_changes_prediction_variance_and_survives_save_load(noisy_saved, tmp_path):
    from tfsparse.model_io import load_model
    from tfsparse.pipelines.evaluate import switch_inference_noise

    x = np.random.default_rng(0).random((6, 28, 28, 1), dtype=np.float32)
    model = load_model(str(noisy_saved / "noisy.keras"))
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())  # saved with noise off
    switch_inference_noise(model, "on", "noisy.keras")
    draws = np.stack([model(x).numpy() for _ in range(4)])
    assert draws.std(axis=0).mean() > 1e-3
    model.save(tmp_path / "on.keras")
    reloaded = load_model(str(tmp_path / "on.keras"))
    assert np.stack([reloaded(x).numpy() for _ in range(4)]).std(axis=0).mean() > 1e-3
    switch_inference_noise(reloaded, "off", "on.keras")
    reloaded.save(tmp_path / "off.keras")
    off = load_model(str(tmp_path / "off.keras"))
    np.testing.assert_array_equal(off(x).numpy(), off(x).numpy())


def test_inference_noise_flag_attacks_with_eot_when_on_and_refuses_plain_models(noisy_saved):
    from tfsparse.errors import ConfigError

    common = dict(attack_names=["pgd"], eps=0.1, dataset="mnist", num_examples=8)
    on = _evaluate(_rsr_config(), str(noisy_saved / "noisy.keras"), inference_noise="on", **common)
    assert on["random_at_inference"] and list(on["attacks"]) == ["eot_pgd"] and on["inference_noise"] == "on"
    with pytest.raises(ConfigError, match="no CNI/PNI noise layers"):
        _evaluate(_rsr_config(), str(noisy_saved / "plain.keras"), inference_noise="on", **common)


def test_transfer_attack_from_source_model_and_its_bad_usage(noisy_saved):
    from tfsparse.errors import ConfigError

    common = dict(eps=0.2, dataset="mnist", num_examples=8)
    plain = str(noisy_saved / "plain.keras")
    report = _evaluate(_rsr_config(), plain, attack_names=["zoo", "transfer"], source_model=plain, **common)
    transfer = report["attacks"]["transfer"]
    # Source = target: the transferred PGD is the white-box PGD, so it is as strong as one.
    assert transfer["params"]["source_model"] == "plain" and transfer["params"]["attack"]["name"] == "pgd"
    white = _evaluate(_rsr_config(), plain, attack_names=["pgd"], **common)["attacks"]["pgd"]
    assert transfer["accuracy"] == pytest.approx(white["accuracy"])
    assert report["source_model"]["path"].endswith("plain.keras")
    # RSR Table 3 counts success over all samples: misclassified after the attack, the samples
    # already misclassified clean included (success_rate counts flips of clean-correct ones).
    assert transfer["success_rate_all"] == pytest.approx(1 - transfer["accuracy"])
    assert report["attacks"]["zoo"]["success_rate_all"] >= 1 - report["clean_accuracy"]
    with pytest.raises(ConfigError, match="--source_model=PATH"):
        _evaluate(_rsr_config(), plain, attack_names=["transfer"], **common)
    with pytest.raises(ConfigError, match="add transfer to --attacks"):
        _evaluate(_rsr_config(), plain, attack_names=["pgd"], source_model=plain, **common)


@pytest.mark.slow
def test_inference_noise_on_a_plain_model_exits_2(noisy_saved):
    result = run_evaluate(f"--model={noisy_saved / 'plain.keras'}", "--num_examples=4", "--inference_noise=on")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "no CNI/PNI noise layers" in result.stderr


def test_the_one_evaluator_refuses_what_would_give_wrong_numbers():
    # Through the public API (issue 31 item 1): 0-255 images, softmax outputs and too few outputs are
    # refused by tfsparse.evaluate itself, so measure, evaluate_dataset and every table inherit it.
    import tfsparse
    from tfsparse.errors import ConfigError

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (16, 4)).astype(np.float32)
    y = rng.integers(0, 3, 16).astype(np.int32)
    inputs = keras.Input((4,))
    logits = keras.layers.Dense(3)(inputs)
    model = keras.Model(inputs, logits)
    suite = [tfsparse.attacks.PGD(eps=0.1, step_size=0.05, steps=2)]
    assert tfsparse.evaluate(model, x, y, suite)["n"] == 16
    with pytest.raises(ConfigError, match=r"inputs must lie in \[0, 1\].*1/255"):
        tfsparse.evaluate(model, x * 255, y, suite)
    softmax = keras.Model(inputs, keras.layers.Softmax()(logits))
    with pytest.raises(ConfigError, match="outputs probabilities"):
        tfsparse.evaluate(softmax, x, y, suite)
    with pytest.raises(ConfigError, match="1 output"):
        tfsparse.evaluate(keras.Model(inputs, keras.layers.Dense(1)(inputs)), x, np.full(16, 2, np.int32), suite)
    with pytest.raises(ConfigError, match="outputs probabilities"):
        tfsparse.evaluation.measure(softmax, x, y, [("pgd_accuracy", suite[0])])
