"""AutoAttack ensemble: per-sample worst case over its components, the ε-ball, and its rand version."""

import numpy as np
import pytest

from tfsparse import attacks
from tfsparse import data
from tfsparse import sanity
from tfsparse.compat import keras
from tfsparse.compat import tf

N = 64
EPS = 0.1
SMALL = {"steps": 10, "n_target_classes": 3, "square_queries": 100, "jit_compile": False}


@pytest.fixture(scope="module")
def setup():
    mnist = data.load("mnist")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    hidden = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10)(hidden))
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(mnist.x_train[:2000], mnist.y_train[:2000], epochs=1, batch_size=64, verbose=0)
    return model, mnist.x_test[:N], mnist.y_test[:N]


@pytest.mark.parametrize("norm, eps", [("linf", EPS), ("l2", 1.0)])
def test_worst_case_is_no_weaker_than_any_component_and_inside_the_ball(setup, norm, eps):
    model, x, y = setup
    ensemble = attacks.AutoAttack(eps=eps, norm=norm, **SMALL)
    result = ensemble.run(model, x, y, seed=1)
    # Each component alone, on all points. The first runs with the ensemble's own seed on the
    # same batch, so every point it fools the ensemble reports fooled (exact subset). The later
    # ones draw other random starts on other batches: at most a few points may differ.
    alone = [c.run(model, x, y, seed=1) for c in ensemble.components()]
    assert not np.any(result.adv_correct & ~alone[0].adv_correct)
    for component in alone[1:]:
        assert result.adv_accuracy <= component.adv_accuracy + 3 / N
    # Independent check of the labels: predict on the returned examples ourselves.
    predicted = np.argmax(model.predict(result.x_adv, verbose=0), axis=1)
    np.testing.assert_array_equal(result.adv_correct, result.clean_correct & (predicted == y))
    np.testing.assert_array_equal(result.success, result.clean_correct & (predicted != y))
    norms = result.linf if norm == "linf" else result.l2
    assert norms.max() <= eps + 1e-5 and result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    # Points still robust are returned unchanged.
    assert np.all(norms[result.adv_correct] == 0)
    assert result.adv_accuracy < result.clean_accuracy  # the ensemble breaks something at this budget


def test_params_rebuild_and_versions(setup):
    ensemble = attacks.AutoAttack(eps=EPS, **SMALL)
    params = ensemble.params
    rebuilt = attacks.ATTACKS[params.pop("name")](**params)
    assert repr(rebuilt) == repr(ensemble)
    assert [c.name for c in ensemble.components()] == ["apgd", "apgd_t", "fab_t", "square"]
    rand = attacks.AutoAttack(eps=EPS, version="rand", **SMALL)
    assert [(c.name, c.params["loss"], c.params["eot_samples"]) for c in rand.components()] == [
        ("apgd", "ce", 20), ("apgd", "dlr", 20)]
    with pytest.raises(ValueError, match="version"):
        attacks.AutoAttack(eps=EPS, version="fast")


def test_components_are_traced_once_across_batches_and_runs(setup):
    model, x, y = setup
    ensemble = attacks.AutoAttack(eps=EPS, **SMALL)
    ensemble.run(model, x, y, batch_size=N // 2, seed=0)
    ensemble.run(model, x, y, batch_size=N // 4, seed=1)
    first = ensemble.components()[0]
    assert first is ensemble.components()[0]
    assert first.graph_function(model, x.shape[1:]).experimental_get_tracing_count() == 1


class InferenceNoise(keras.layers.Layer):
    def call(self, inputs, training=None):
        return inputs + tf.random.normal(tf.shape(inputs), stddev=0.5)


def test_a_random_model_gets_the_rand_version(setup):
    model, x, _ = setup
    noisy = keras.Model(model.input, InferenceNoise()(model.output))
    _, switched, found, stochastic = sanity.prepare(noisy, x, [attacks.AutoAttack(eps=EPS, **SMALL)], eot_samples=5)
    assert stochastic and switched[0].params["version"] == "rand" and switched[0].params["eot_samples"] == 5
    assert [f["flag"] for f in found] == ["random_inference"]


def test_stages_report_robust_accuracy_and_seconds_as_the_reference_prints_them(setup, capsys):
    import tfsparse

    model, x, y = setup
    ensemble = attacks.AutoAttack(eps=EPS, **SMALL)
    result = ensemble.run(model, x, y, batch_size=N // 2, seed=0, progress=True)
    stages = result.stages
    assert [s["name"] for s in stages] == ["APGD-CE", "APGD-T", "FAB-T", "Square"] == ensemble.stage_names()
    accuracies = [s["robust_accuracy"] for s in stages]
    assert all(later <= earlier for earlier, later in zip(accuracies, accuracies[1:]))
    assert accuracies[-1] == result.adv_accuracy < result.clean_accuracy
    assert all(s["seconds"] > 0 for s in stages)
    # Each stage is handed exactly the points the earlier ones left robust.
    assert stages[0]["attacked"] == N
    assert [s["attacked"] for s in stages[1:]] == [round(a * N) for a in accuracies[:-1]]
    captured = capsys.readouterr()
    printed = captured.err + captured.out
    assert f"robust accuracy after Square: {accuracies[-1]:.2%}" in printed
    # The report through the public API carries the stages; the table prints one line per stage.
    report = tfsparse.evaluate(model, x, y, [ensemble], seed=0, batch_size=N // 2)
    entry = report["attacks"]["autoattack"]
    assert [s["robust_accuracy"] for s in entry["stages"]] == accuracies  # same seed, same result
    assert entry["accuracy"] == accuracies[-1] == report["worst_case"]["accuracy"]
    table = tfsparse.evaluation.format_table(report)
    assert all(f"  {name}" in table for name in ensemble.stage_names())


def test_one_batch_call_and_a_fully_fooled_run_list_only_the_stages_that_ran(setup):
    model, x, y = setup
    strong = attacks.AutoAttack(eps=0.5, **SMALL)(model, x[:16], y[:16], seed=0)
    assert strong.adv_accuracy == 0.0
    assert [s["name"] for s in strong.stages] == ["APGD-CE"]
    assert strong.stages[0]["robust_accuracy"] == 0.0
