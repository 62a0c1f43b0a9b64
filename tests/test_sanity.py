"""Sanity checks that act (tfsparse.sanity), through the evaluator's dataset entry point, and the
model formats a user brings (Keras 3 ``.keras``, plain SavedModels)."""

import numpy as np
import pytest

from tfsparse import attacks
from tfsparse import data
from tfsparse import evaluation
from tfsparse import model_io
from tfsparse import sanity
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.errors import ConfigError
from tfsparse.errors import NonFiniteGradientError
from tfsparse.errors import NonFiniteOutputError

N = 48


@pytest.fixture(scope="module")
def mnist():
    return data.load("mnist")


def trained_dense(mnist, softmax=False):
    """A small dense net trained for a few steps on the embedded sample (logits or softmax out)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    hidden = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(inputs))
    logits = keras.layers.Dense(10, name="logits")(hidden)
    model = keras.Model(inputs, logits)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(mnist.x_train[:2000], mnist.y_train[:2000], epochs=1, batch_size=64, verbose=0)
    if not softmax:
        return model
    return keras.Model(inputs, keras.layers.Softmax()(logits))


def run(model, attack_list, **kwargs):
    return evaluation.evaluate_dataset(model, attack_list, dataset="mnist", num_examples=N, progress=False,
                                       check_unbounded=False, **kwargs)


def flags_of(report):
    return {f["flag"] for f in report["flags"]}


def test_probability_outputs_are_refused_and_attacked_as_log_probabilities_when_declared(mnist):
    logits_model = trained_dense(mnist)
    softmax_model = trained_dense(mnist, softmax=True)  # same weights: the logits model plus a softmax
    suite = [attacks.DeepFool(max_iter=20)]
    with pytest.raises(ConfigError, match="outputs probabilities"):
        run(softmax_model, suite)
    with pytest.raises(ConfigError, match="not probabilities"):
        run(logits_model, suite, model_outputs="probabilities")
    declared = run(softmax_model, suite, model_outputs="probabilities")
    reference = run(logits_model, suite)
    # log softmax(z) = z − logsumexp(z): DeepFool's margins and gradients of differences are
    # those of the logits, so r2 must be the logits model's (not the inflated softmax one).
    assert declared["attacks"]["deepfool"]["r2"] == pytest.approx(reference["attacks"]["deepfool"]["r2"], rel=1e-3)
    assert "probability_outputs" in flags_of(declared)
    assert declared["model_outputs"] == "probabilities"


class InferenceNoise(keras.layers.Layer):
    """Adds Gaussian noise at every call, training or not (a randomised defence)."""

    def call(self, inputs, training=None):
        return inputs + tf.random.normal(tf.shape(inputs), stddev=0.5)


def test_a_model_random_at_inference_is_attacked_with_eot_and_refuses_attacks_without_it(mnist):
    base = trained_dense(mnist)
    noisy = keras.Model(base.input, InferenceNoise()(base.output))
    x = mnist.x_test[:N]
    assert sanity.is_random_at_inference(noisy, x) and not sanity.is_random_at_inference(base, x)
    suite = [attacks.FGSM(eps=0.1), attacks.PGD(eps=0.1, step_size=0.02, steps=5)]
    _, switched, found, stochastic = sanity.prepare(noisy, x, suite, eot_samples=4)
    assert stochastic and [type(a) for a in switched] == [attacks.EOTPGD, attacks.EOTPGD]
    assert [a.params["samples"] for a in switched] == [4, 4]
    assert switched[0].params["steps"] == 1 and switched[0].params["step_size"] == 0.1  # EOT-FGS
    assert switched[1].params["steps"] == 5 and switched[1].params["eps"] == 0.1
    assert [f["flag"] for f in found] == ["random_inference"]
    with pytest.raises(ConfigError, match="deepfool has no EOT form"):
        sanity.prepare(noisy, x, [attacks.DeepFool()])
    report = run(noisy, suite, eot_samples=2)
    assert report["random_at_inference"] and "eot_pgd" in report["attacks"]


def broken(model, value, where):
    """``model`` with one weight set to ``value`` (NaN: every output NaN; Inf in a bias: those logits Inf)."""
    broken = keras.models.clone_model(model)
    broken.set_weights(model.get_weights())
    layer = broken.get_layer("logits")
    kernel, bias = (w.numpy() for w in layer.weights)
    if where == "kernel":
        kernel[0, 0] = value
    else:
        bias[3] = value
    layer.set_weights([kernel, bias])
    return broken


@pytest.mark.parametrize("value, where, kind", [(np.nan, "kernel", "NaN"), (np.inf, "bias", "Inf")])
def test_nan_or_inf_outputs_are_refused_before_anything_is_concluded(mnist, value, where, kind):
    healthy = trained_dense(mnist)
    model = broken(healthy, value, where)
    x, y = mnist.x_test[:N], mnist.y_test[:N]
    assert not sanity.is_random_at_inference(model, x)  # NaN != NaN is not randomness
    message = f"the model outputs {kind} on {N} of {N} inputs, so no accuracy or robustness can be measured"
    # Not "random at inference": no EOT swap for FGS/PGD, no "drop deepfool".
    for suite in ([attacks.FGSM(eps=0.1), attacks.PGD(eps=0.1, step_size=0.02, steps=3)], [attacks.DeepFool()]):
        with pytest.raises(NonFiniteOutputError, match=message):
            run(model, suite)
        with pytest.raises(NonFiniteOutputError, match=message):
            sanity.prepare(model, x, suite)
    with pytest.raises(NonFiniteOutputError, match=message):
        evaluation.evaluate(model, x, y, [attacks.FGSM(eps=0.1)])
    with pytest.raises(NonFiniteOutputError, match=message):
        evaluation.measure(model, x, y, [("clean", "clean"), ("fgs", attacks.FGSM(eps=0.1))])
    assert issubclass(NonFiniteOutputError, ConfigError)
    # Inputs beyond the probe are checked by evaluate too (it predicts all of them).
    # (An input with a lit corner pixel, the last one, gets the bad value; MNIST corners are 0.)
    partly = keras.Model(healthy.input, keras.layers.Lambda(
        lambda ts: ts[1] * tf.where(ts[0][:, :1, 0, 0] > 0.5, np.float32(value), 1.0))([healthy.input, healthy.output]))
    lit = x.copy()
    lit[-1, 0, 0, 0] = 1.0
    assert np.isfinite(partly.predict(lit[:-1], verbose=0)).all()
    with pytest.raises(NonFiniteOutputError, match=f"{kind} on 1 of {N} inputs"):
        evaluation.evaluate(partly, lit, y, [attacks.FGSM(eps=0.1)], batch_size=16)
    # The healthy model is unaffected.
    report = run(healthy, [attacks.FGSM(eps=0.1)])
    assert not report["random_at_inference"] and "fgsm" in report["attacks"] and report["clean_accuracy"] > 0.5


def test_zero_gradients_and_an_unbeatable_model_are_flagged(mnist):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    dead = keras.layers.Lambda(lambda t: tf.nn.relu(t - 2.0))(inputs)  # pixels in [0, 1]: always 0
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(dead)))
    x, y = mnist.x_test[:N], mnist.y_test[:N]
    assert [f["flag"] for f in sanity.gradient_flags(model, x, y)] == ["zero_gradients"]
    # The constant prediction is right for one class; PGD at eps = 1 cannot move it.
    accuracy = float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))
    assert accuracy > 0
    assert [f["flag"] for f in sanity.unbounded_flags(model, x, y, steps=3)] == ["accuracy_not_zero_at_large_eps"]
    trained = trained_dense(mnist)
    assert sanity.gradient_flags(trained, x, y) == []
    assert sanity.unbounded_flags(trained, x, y, steps=10) == []


def test_nan_gradients_on_finite_outputs_refuse_gradient_attacks(mnist):
    # Issue 30, item 4: sqrt at 0 gives finite outputs but NaN input gradients; PGD stepping
    # along NaN would report the clean accuracy as robust. Black-box attacks still run.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    root = keras.layers.Lambda(lambda t: tf.sqrt(tf.nn.relu(t - 0.5)))(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10)(root))
    assert np.all(np.isfinite(model.predict(mnist.x_test[:N], verbose=0)))
    with pytest.raises(NonFiniteGradientError, match="NaN/Inf input gradients: pgd would step along NaN"):
        run(model, [attacks.PGD(eps=0.1, step_size=0.01, steps=5)])
    report = run(model, [attacks.Square(eps=0.1, max_queries=10)])
    assert "nonfinite_gradients" in flags_of(report)


def test_an_attack_failing_where_another_succeeds_is_flagged():
    report = {"n": 100, "clean_accuracy": 0.8,
              "attacks": {"zoo": {"failures": 60}, "cw_l2": {"failures": 2}, "fgsm": {"accuracy": 0.3}}}
    found = sanity.attack_failure_flags(report)
    assert [f["flag"] for f in found] == ["attack_mostly_fails"] and "zoo" in found[0]["detail"]
    report["attacks"]["cw_l2"]["failures"] = 30  # both weak: nothing to compare against
    assert sanity.attack_failure_flags(report) == []


class StarvedAutoAttack(attacks.AutoAttack):
    """An ensemble whose budget is far too small: one Square query."""

    def _build_components(self):
        return [attacks.Square(eps=self.eps, max_queries=1, jit_compile=False)]


class ApgdOnlyAutoAttack(attacks.AutoAttack):
    """An ensemble of one APGD-CE at PGD's budget (one component: one graph to trace)."""

    def _build_components(self):
        return [attacks.APGD(eps=self.eps, steps=20, jit_compile=False)]


def test_an_ensemble_weaker_than_pgd_is_flagged(mnist):
    model = trained_dense(mnist)
    x, y = mnist.x_test[:N], mnist.y_test[:N]
    pgd = attacks.PGD(eps=0.1, step_size=0.0125, steps=20, jit_compile=False)
    report = evaluation.evaluate(model, x, y, [pgd, StarvedAutoAttack(eps=0.1, jit_compile=False)])
    assert report["attacks"]["autoattack"]["accuracy"] > report["attacks"]["pgd"]["accuracy"] + 0.2
    assert "ensemble_weaker" in flags_of(report)
    strong = ApgdOnlyAutoAttack(eps=0.1, jit_compile=False)
    assert "ensemble_weaker" not in flags_of(evaluation.evaluate(model, x, y, [pgd, strong]))


def test_subset_first_takes_the_first_test_images(mnist):
    model = trained_dense(mnist)
    report = run(model, [attacks.FGSM(eps=0.0)])
    expected = float(np.mean(np.argmax(model.predict(mnist.x_test[:N], verbose=0), axis=1) == mnist.y_test[:N]))
    assert report["clean_accuracy"] == pytest.approx(expected)
    assert report["dataset"]["subset"] == "first" and report["dataset"]["num_examples"] == N


def test_a_keras3_file_loads_with_keras3_and_is_attacked_as_a_callable(mnist, tmp_path):
    import keras as keras3

    keras3.utils.set_random_seed(0)
    model = keras3.Sequential([keras3.Input((28, 28, 1)), keras3.layers.Flatten(), keras3.layers.Dense(10)])
    path = str(tmp_path / "k3.keras")
    model.save(path)
    assert model_io.keras_file_version(path).startswith("3.") and model_io.describe_format(path) == "keras3"
    loaded = model_io.load_model(path)
    x = mnist.x_test[:N]
    np.testing.assert_allclose(np.asarray(loaded(x)), model.predict(x, verbose=0), atol=1e-5)
    report = run(loaded, [attacks.FGSM(eps=0.3), attacks.DeepFool(max_iter=10)])
    # An untrained linear model falls to FGS at eps 0.3 on most points; the attack ran on its gradients.
    assert report["attacks"]["fgsm"]["accuracy"] <= report["clean_accuracy"]
    assert report["attacks"]["deepfool"]["mean_l2"] > 0


def test_a_plain_savedmodel_signature_is_evaluated(mnist, tmp_path):
    base = trained_dense(mnist)

    class Served(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
        def serve(self, images):
            return {"logits": self.model(images, training=False)}

    module = Served(base)
    path = str(tmp_path / "plain")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve, "other": module.serve})
    loaded = model_io.load_model(path, signature="other")
    assert loaded.input_shape == (None, 28, 28, 1)
    with pytest.raises(ConfigError, match="no signature 'nope'"):
        model_io.load_model(path, signature="nope")
    report = run(loaded, [attacks.FGSM(eps=0.1), attacks.PGD(eps=0.1, step_size=0.02, steps=5)])
    direct = run(base, [attacks.FGSM(eps=0.1), attacks.PGD(eps=0.1, step_size=0.02, steps=5)])
    assert report["attacks"]["fgsm"]["accuracy"] == pytest.approx(direct["attacks"]["fgsm"]["accuracy"])
    assert report["worst_case"]["accuracy"] == pytest.approx(direct["worst_case"]["accuracy"])


def test_a_tflite_model_runs_black_box_and_transfer_attacks_only(mnist, tmp_path):
    from tfsparse.pipelines.evaluate import gradient_free_attacks

    base = trained_dense(mnist)
    path = str(tmp_path / "m.tflite")
    with open(path, "wb") as handle:
        handle.write(tf.lite.TFLiteConverter.from_keras_model(base).convert())
    lite = model_io.load_model(path)
    assert model_io.describe_format(path) == "tflite" and lite.input_shape == (None, 28, 28, 1)
    x = mnist.x_test[:N]
    np.testing.assert_allclose(np.asarray(lite(x)), base.predict(x, verbose=0), atol=1e-4)
    with pytest.raises(ConfigError, match="has no gradients"):
        gradient_free_attacks([attacks.PGD(eps=0.1, step_size=0.02, steps=5)])
    suite = gradient_free_attacks([attacks.Square(eps=0.1, max_queries=50),
                                   attacks.PGD(eps=0.1, step_size=0.02, steps=5)], source_model=base)
    assert [a.name for a in suite] == ["square", "transfer"] and suite[0].params["jit_compile"] is False
    report = run(lite, suite)
    direct = run(base, [attacks.PGD(eps=0.1, step_size=0.02, steps=5)])
    # Crafted on the Keras twin of the TFLite model, the transfer is the white-box attack itself.
    assert report["attacks"]["transfer"]["accuracy"] == pytest.approx(direct["attacks"]["pgd"]["accuracy"], abs=1 / N)
    assert report["attacks"]["square"]["queries_per_sample"] <= 50
    assert "no_gradients" not in flags_of(report)
