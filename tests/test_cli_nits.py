"""The CLI nits of issue 31 item 8, each on its real code path.

Fractions for ε and step (``--eps=8/255``), a ``--help`` footer whose example override works,
``transfer_<attack>`` for a gradient attack on a TFLite model, no TensorFlow warning when a plain
SavedModel loads, no "retracing" warning per evaluation, and the LiteRT interpreter where
ai-edge-litert is installed.
"""

import ast
import logging
import re
import sys

import numpy as np
import pytest

import tfsparse
from cli_helpers import error_line
from cli_helpers import run_script
from tfsparse import cli
from tfsparse.compat import keras
from tfsparse.compat import tf

N = 60


@pytest.fixture(scope="module")
def mnist():
    return tfsparse.load_data("mnist")


@pytest.fixture(scope="module")
def dense(mnist):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    hidden = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10)(hidden))
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(mnist.x_train[:1000], mnist.y_train[:1000], epochs=1, batch_size=64, verbose=0)
    return model


class TensorFlowLog(logging.Handler):
    """Collects what TensorFlow's Python logger emits (its WARNING lines)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def __enter__(self):
        logger = tf.get_logger()
        self.level, logger.level = logger.level, logging.WARNING
        logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        tf.get_logger().removeHandler(self)
        tf.get_logger().setLevel(self.level)


# --- fractions for eps and step -------------------------------------------------------------


def test_parse_number_takes_decimals_and_fractions_and_refuses_garbage():
    assert cli.parse_number("8/255") == 8 / 255
    assert cli.parse_number(" 2 / 255 ") == 2 / 255
    assert cli.parse_number("0.1") == 0.1 and cli.parse_number("1e-3") == 1e-3 and cli.parse_number(3) == 3.0
    for bad in ("abc", "8/", "8/0", "/255", "8/255/2", "eight/255"):
        with pytest.raises(ValueError, match="could not convert string to float"):
            cli.parse_number(bad)


def config_line(result, key):
    return re.search(rf"^\s*{key}: (.*)$", result.stdout, re.M).group(1)


def test_eps_and_step_fractions_on_the_command_line():
    result = run_script("evaluate.py", "--model=unused", "--eps=8/255", "--config.attacks.pgd.step_size=2/255",
                        "--print_config")
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(config_line(result, "eps")) == pytest.approx(8 / 255)
    pgd = result.stdout[result.stdout.index("  pgd:"):]
    assert float(re.search(r"step_size: (\S+)", pgd).group(1)) == pytest.approx(2 / 255)
    bad = run_script("evaluate.py", "--model=unused", "--eps=8/x", "--print_config")
    assert bad.returncode == 2
    assert error_line(bad) == ("error: flag --eps=8/x: could not convert string to float: '8/x' "
                               "(write a decimal such as 0.031 or a fraction such as 8/255)")


@pytest.mark.slow
def test_train_and_prune_eps_take_fractions():
    for script, extra in (("train.py", ["--workdir=unused"]), ("prune.py", ["--model=unused", "--output=unused"])):
        result = run_script(script, *extra, "--eps=8/255", "--print_config")
        assert result.returncode == 0, result.stderr[-2000:]
        pgd = result.stdout[result.stdout.index("pgd:"):]
        assert float(re.search(r"\beps: (\S+)", pgd).group(1)) == pytest.approx(8 / 255)


# --- the --help footer ------------------------------------------------------------------------


FOOTERS = [("evaluate.py", "evaluate", ["--model=unused"]),
           ("export.py", "export", ["--model=unused", "--output=unused"])]


def suggested_override(script):
    helped = run_script(script, "--help")  # answered before TensorFlow loads
    assert helped.returncode == 0
    (suggested,) = re.findall(r"e\.g\. (--config\.\S+?);", helped.stdout)
    return suggested


@pytest.mark.parametrize("script,config_file,required", FOOTERS)
def test_the_help_footer_suggests_a_key_of_the_scripts_config(script, config_file, required):
    from test_public_api import cli_config

    key, value = suggested_override(script)[len("--config."):].split("=")
    config = cli_config(config_file)
    for part in key.split("."):
        config = config[part]  # KeyError: the footer names a key the file lacks
    assert type(config)(ast.literal_eval(value)) == ast.literal_eval(value)  # the value fits the key's type


@pytest.mark.slow
@pytest.mark.parametrize("script,config_file,required", FOOTERS)
def test_the_help_footer_override_runs(script, config_file, required):
    suggested = suggested_override(script)
    result = run_script(script, *required, suggested, "--print_config")
    assert result.returncode == 0, f"{suggested}: {result.stderr[-500:]}"
    key, value = suggested[len("--config."):].split("=")
    assert config_line(result, key.split(".")[-1]) == value


# --- TFLite targets: transfer_<attack> --------------------------------------------------------


def test_a_gradient_attack_on_a_tflite_model_is_labelled_transfer_of_it(dense, tmp_path):
    from test_public_api import cli_config  # configs/evaluate.py, as the CLI reads it
    from tfsparse.pipelines.evaluate import evaluate_model

    keras_path, lite_path = str(tmp_path / "m.keras"), str(tmp_path / "m.tflite")
    dense.save(keras_path)
    with open(lite_path, "wb") as handle:
        handle.write(tf.lite.TFLiteConverter.from_keras_model(dense).convert())
    config = cli_config()
    with config.unlocked():
        config.attacks.pgd.steps = 5
    common = dict(eps=0.1, dataset="mnist", data_dir=None, classes=None, num_examples=N, subset="first",
                  model_outputs="logits", signature="serving_default", inference_noise=None, output=None,
                  overwrite=False, distribute="none", log=lambda *_: None)
    report = evaluate_model(config, lite_path, attack_names=["fgsm", "pgd", "transfer"], source_model=keras_path,
                            **common)
    assert list(report["attacks"]) == ["transfer_fgsm", "transfer_pgd", "transfer"]
    assert report["attacks"]["transfer_pgd"]["repr"].startswith("TransferAttack(")
    # A Keras target keeps its fields: the white-box names, and transfer for --attacks=transfer.
    plain = evaluate_model(config, keras_path, attack_names=["fgsm", "pgd", "transfer"], source_model=keras_path,
                           **common)
    assert list(plain["attacks"]) == ["fgsm", "pgd", "transfer"]
    # Crafted on the Keras twin, the TFLite model's transfer PGD is the white-box PGD.
    assert report["attacks"]["transfer_pgd"]["accuracy"] == pytest.approx(plain["attacks"]["pgd"]["accuracy"],
                                                                          abs=1 / N)


# --- a plain SavedModel loads without TensorFlow's warning ------------------------------------


class Doubler(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(tf.eye(784, 10))

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
    def __call__(self, images):
        return {"logits": tf.reshape(images, [-1, 784]) @ self.w}


def test_a_plain_saved_model_loads_without_tensorflows_warning(dense, tmp_path):
    module = Doubler()
    tf.saved_model.save(module, str(tmp_path / "plain"), signatures={"serving_default": module.__call__})
    dense.save(str(tmp_path / "keras_sm"), save_format="tf")
    with TensorFlowLog() as log:
        plain = tfsparse.model_io.load_model(str(tmp_path / "plain"))
        keras_model = tfsparse.model_io.load_model(str(tmp_path / "keras_sm"))
    assert not [line for line in log.lines if "SavedModel" in line], log.lines
    assert not isinstance(plain, keras.Model) and isinstance(keras_model, keras.Model)
    x = np.random.rand(3, 28, 28, 1).astype("float32")
    np.testing.assert_allclose(plain(x), x.reshape(3, 784)[:, :10], atol=1e-6)


# --- no retracing warnings --------------------------------------------------------------------


def test_an_evaluation_logs_no_retracing_and_traces_each_attack_once(dense, mnist):
    attacks = tfsparse.attacks
    x, y = mnist.x_test[:N], mnist.y_test[:N]

    # Six attacks, so six functions of one traced closure: two "retracing" warnings before.
    built = [attacks.FGSM(eps=0.05), attacks.FGSM(eps=0.1), attacks.FGSM(eps=0.2), attacks.RFGSM(eps=0.1),
             attacks.PGD(steps=3), attacks.EOTPGD(eps=0.1, step_size=0.02, steps=2, samples=2)]
    with TensorFlowLog() as log:
        tfsparse.evaluate(dense, x, y, built, batch_size=N // 2, progress=False)
    assert not [line for line in log.lines if "retracing" in line], log.lines
    # Nothing is hidden: each attack's function was traced once, over both of its batches.
    assert {a.graph_function(dense, x.shape[1:]).experimental_get_tracing_count() for a in built} == {1}


# --- the LiteRT interpreter -------------------------------------------------------------------


@pytest.fixture(scope="module")
def lite_file(dense, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("lite") / "m.tflite")
    with open(path, "wb") as handle:
        handle.write(tf.lite.TFLiteConverter.from_keras_model(dense).convert())
    return path


def test_the_litert_interpreter_gives_tf_lites_logits(lite_file, mnist):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    from tfsparse.export import tflite

    assert isinstance(tflite.interpreter(lite_file), litert.Interpreter)
    x = mnist.x_test[:N]
    reference = tf.lite.Interpreter(model_path=lite_file, num_threads=1)
    detail = reference.get_input_details()[0]
    reference.resize_tensor_input(detail["index"], x.shape)
    reference.allocate_tensors()
    reference.set_tensor(detail["index"], x)
    reference.invoke()
    expected = reference.get_tensor(reference.get_output_details()[0]["index"])
    np.testing.assert_array_equal(tflite.predict(lite_file, x), expected)
    np.testing.assert_array_equal(np.asarray(tfsparse.model_io.load_model(lite_file)(x)), expected)


def test_without_litert_the_interpreter_is_tf_lites(lite_file, mnist, dense, monkeypatch):
    from tfsparse.export import tflite

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # import fails, as when not installed
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    assert isinstance(tflite.interpreter(lite_file), tf.lite.Interpreter)
    x = mnist.x_test[:N]
    np.testing.assert_allclose(np.asarray(tfsparse.model_io.load_model(lite_file)(x)), dense.predict(x, verbose=0),
                               atol=1e-4)
