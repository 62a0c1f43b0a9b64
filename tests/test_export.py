"""tfsparse.export: SavedModel and TFLite artifacts, checked against the source and measured.

``save_saved_model`` and ``export`` must catch an artifact that serves other logits. The
mismatch is produced honestly: a layer that adds an offset only when it runs eagerly. The
live model (called eagerly by the check) and the saved or converted graph then really
compute different logits, as a model with eager-only Python logic would.

``export`` is checked per format on tiny models (8x8x1 images, conv + dense): round trips
within tolerance, a resizable float32 interface, zeros counted in each artifact against an
independent count of the source kernels, gzip size of a 90%-sparse model, CNI/PNI noise off
(plain layers, TFLite) and on (fresh and seeded draws), refusals, and all-or-nothing output.
"""

import gzip
import json
import os
import warnings

import numpy as np
import pytest

from tfsparse import export
from tfsparse import layers
from tfsparse import models
from tfsparse import sparsity
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.errors import ConfigError


class EagerOffset(keras.layers.Layer):
    """Adds ``offset`` when executed eagerly, nothing inside a traced function."""

    def __init__(self, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = float(offset)

    def call(self, inputs):
        return inputs + self.offset if tf.executing_eagerly() else inputs

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


def linear(offset=0.0, seed=0, bias=0.0):
    rng = np.random.default_rng(seed)
    inputs = keras.Input((4, 4, 1))
    logits = keras.layers.Dense(3, name="fc")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, EagerOffset(offset)(logits))
    model.get_layer("fc").set_weights([rng.normal(size=(16, 3)).astype(np.float32), np.full(3, bias, np.float32)])
    return model


X = np.random.default_rng(1).random((8, 4, 4, 1)).astype(np.float32)


def _served(path, x):
    return tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(x))["logits"].numpy()


def test_round_trip_passes_and_serves_the_live_logits(tmp_path):
    model = linear()
    path = str(tmp_path / "ok")
    assert export.save_saved_model(model, path, check_inputs=X) == path
    assert os.path.isdir(path) and not os.path.exists(path + ".partial")
    w = model.get_layer("fc").get_weights()[0]
    np.testing.assert_allclose(_served(path, X), X.reshape(8, -1) @ w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("offset", [1e-3, 1.0])
def test_round_trip_mismatch_raises_and_publishes_nothing(tmp_path, offset):
    model = linear(offset)
    # The mismatch is real: eager logits minus served logits = offset.
    probe = str(tmp_path / "probe")
    export.save_saved_model(model, probe)  # no check_inputs: no check
    np.testing.assert_allclose(model(X).numpy() - _served(probe, X), offset, rtol=1e-3)
    path = str(tmp_path / "bad")
    with pytest.raises(RuntimeError, match="round trip changed predictions"):
        export.save_saved_model(model, path, check_inputs=X, atol=1e-5)
    assert not os.path.exists(path) and not os.path.exists(path + ".partial")


def test_round_trip_tolerance_is_atol(tmp_path):
    # A difference of 1e-3 is accepted at atol = 1e-2 and refused at atol = 1e-4, also on
    # logits near 50 (an absolute tolerance: no relative slack from the logits' size).
    model = linear(1e-3, bias=50.0)
    export.save_saved_model(model, str(tmp_path / "loose"), check_inputs=X, atol=1e-2)
    with pytest.raises(RuntimeError):
        export.save_saved_model(model, str(tmp_path / "tight"), check_inputs=X, atol=1e-4)


def test_pruned_model_is_saved_stripped_with_real_zeros(tmp_path):
    model = sparsity.prune(linear(), 0.5)
    model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, np.zeros(8, np.int32), epochs=1, verbose=0, callbacks=[sparsity.UpdatePruningStep()])
    path = export.save_saved_model(model, str(tmp_path / "pruned"), check_inputs=X)
    reloaded = keras.models.load_model(path, custom_objects={"EagerOffset": EagerOffset}, compile=False)
    kernel = reloaded.get_layer("fc").get_weights()[0]
    assert np.count_nonzero(kernel == 0) == kernel.size // 2  # counted here, not by the library
    flat = X.reshape(8, -1)
    np.testing.assert_allclose(_served(path, X), flat @ kernel + reloaded.get_layer("fc").get_weights()[1],
                               rtol=1e-5, atol=1e-5)


# --- export(): every format, checked and measured ----------------------------------------

FLOAT_FORMATS = ("saved_model", "tflite", "tflite_sparse", "tflite_fp16")


def _quadrant_data(n, seed):
    """8x8 images whose class (0-2) is the brightest of three quadrants: learnable in seconds."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.random((n, 8, 8, 1)) * 0.5
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, 4 * r:4 * r + 4, 4 * c:4 * c + 4] += 0.5
    return x.astype(np.float32), y.astype(np.int32)


def conv_net(noise=None, inference_noise=False):
    """Normalize → conv 3x3x4 (+relu) → flatten → dense 3: a tiny model of the zoo's shape."""
    inputs = keras.Input((8, 8, 1))
    x = layers.Normalize(0.5, 0.25)(inputs)
    if noise:
        x = layers.NoisyConv2D(4, 3, activation="relu", mode=noise, inference_noise=inference_noise, seed=1,
                               name="conv")(x)
        logits = layers.NoisyDense(3, mode=noise, inference_noise=inference_noise, seed=2, name="fc")(
            keras.layers.Flatten()(x))
    else:
        x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
        logits = keras.layers.Dense(3, name="fc")(keras.layers.Flatten()(x))
    return keras.Model(inputs, logits)


def source_kernels(model):
    """The conv and dense kernels, counted here independently of the library."""
    return [model.get_layer(name).kernel.numpy() for name in ("conv", "fc")]


def tflite_interpreter(path):
    with warnings.catch_warnings():  # tf.lite.Interpreter's pointer to LiteRT
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_path=path)


def tflite_logits(path, x):
    interpreter = tflite_interpreter(path)
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(source["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(target["index"])


XQ, YQ = _quadrant_data(400, 0)
XQ_TEST, _ = _quadrant_data(200, 1)


@pytest.fixture(scope="module")
def pruned_net():
    """A trained conv_net pruned to 50% per kernel, still wrapped for pruning (export strips)."""
    tf.random.set_seed(0)
    model = conv_net()
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(XQ, YQ, epochs=15, batch_size=32, verbose=0)
    pruned = sparsity.prune(model, 0.5)
    pruned.compile(keras.optimizers.SGD(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(XQ[:32], YQ[:32], epochs=1, verbose=0, callbacks=[sparsity.UpdatePruningStep()])
    return pruned


@pytest.fixture(scope="module")
def full_export(pruned_net, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("full") / "export")
    lines = []
    report = export.export(pruned_net, output, export.FORMATS, representative_data=XQ[:100],
                           check_inputs=XQ_TEST, latency_runs=5, log=lines.append)
    return pruned_net, output, report, lines


def test_every_format_round_trips_within_tolerance(full_export):
    model, output, report, lines = full_export
    reference = sparsity.strip(model)(XQ_TEST, training=False).numpy()
    assert list(report["formats"]) == ["saved_model", "tflite", "tflite_sparse", "tflite_fp16", "tflite_int8"]
    served = {"saved_model": _served(os.path.join(output, "saved_model"), XQ_TEST)}
    for name in FLOAT_FORMATS[1:] + ("tflite_int8",):
        served[name] = tflite_logits(os.path.join(output, report["formats"][name]["path"]), XQ_TEST)
    scale = np.abs(reference).max()
    for name in FLOAT_FORMATS:
        entry = report["formats"][name]
        diff = np.abs(served[name] - reference).max()
        atol, rtol = export.TOLERANCES[name]
        assert entry["tolerance"] == pytest.approx(atol + rtol * scale, rel=1e-5)
        assert diff <= entry["tolerance"] and entry["max_abs_logit_diff"] == pytest.approx(diff, abs=1e-6)
        assert entry["top1_agreement"] == 1.0
    # The three precisions really differ: float32 ~1e-6, float16 weights ~1e-3 of the logit scale.
    assert np.abs(served["tflite"] - reference).max() < 1e-5 * scale < np.abs(served["tflite_fp16"] - reference).max()
    int8 = report["formats"]["tflite_int8"]
    agreement = np.mean(served["tflite_int8"].argmax(1) == reference.argmax(1))
    assert int8["tolerance"] is None and int8["top1_agreement"] == pytest.approx(agreement) and agreement >= 0.9
    assert report["check_examples"] == len(XQ_TEST) and any("tflite_int8" in line for line in lines)


def test_every_artifact_keeps_the_interface_and_a_resizable_batch(full_export):
    _, output, report, _ = full_export
    for name in ("tflite", "tflite_sparse", "tflite_fp16", "tflite_int8"):
        interpreter = tflite_interpreter(os.path.join(output, report["formats"][name]["path"]))
        (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
        assert list(source["shape_signature"]) == [-1, 8, 8, 1] and source["dtype"] == np.float32
        assert target["dtype"] == np.float32
        for batch in (1, 5):
            assert tflite_logits(os.path.join(output, report["formats"][name]["path"]), XQ_TEST[:batch]).shape == (
                batch, 3)
    signature = tf.saved_model.load(os.path.join(output, "saved_model")).signatures["serving_default"]
    assert signature.structured_input_signature[1]["images"].shape.as_list() == [None, 8, 8, 1]


def test_every_artifact_keeps_the_zeros(full_export):
    model, _, report, _ = full_export
    kernels = source_kernels(sparsity.strip(model))
    size = sum(k.size for k in kernels)
    nonzero = sum(np.count_nonzero(k) for k in kernels)
    assert nonzero == size - sum(k.size // 2 for k in kernels)  # tfmot's 50%, counted here
    assert report["source"] == {"params": size, "nonzero_params": nonzero, "weight_sparsity": 1 - nonzero / size,
                                "flops": 6 * 6 * 9 * 4 + 144 * 3, "inference_noise": "off", "noise_layers": 0}
    for name, entry in report["formats"].items():
        assert entry["params"] == size, name
        assert entry["flops"] == report["source"]["flops"]
        if name == "tflite_int8":  # quantisation may round tiny weights to 0, never the reverse
            assert nonzero - 2 <= entry["nonzero_params"] <= nonzero
        else:
            assert entry["nonzero_params"] == nonzero, name
        assert entry["weight_sparsity"] == pytest.approx(0.5, abs=0.01)


def test_sizes_report_and_table(full_export):
    _, output, report, _ = full_export
    for name, entry in report["formats"].items():
        path = os.path.join(output, entry["path"])
        assert entry["bytes"] > entry["gzip_bytes"] > 0
        if os.path.isfile(path):
            assert entry["bytes"] == os.path.getsize(path)
            with open(path, "rb") as handle:
                assert entry["gzip_bytes"] == len(gzip.compress(handle.read(), 9, mtime=0))
            assert entry["latency_ms"]["median"] > 0 and entry["latency_ms"]["runs"] == 5
    assert report["formats"]["saved_model"]["latency_ms"] is None
    # int8 weights take a quarter of float32's bytes, float16 a half (the rest is the graph).
    assert report["formats"]["tflite_int8"]["bytes"] < report["formats"]["tflite_fp16"]["bytes"] < \
        report["formats"]["tflite"]["bytes"]
    with open(os.path.join(output, "export.json")) as handle:
        assert json.load(handle) == json.loads(json.dumps(report))
    table = export.format_table(report).splitlines()
    assert len(table) == 1 + len(report["formats"]) and table[1].split()[0] == "saved_model"


def test_table_shows_a_format_that_was_not_produced():
    from tfsparse.export import writer

    report = {"formats": {"tflite_sparse": {"error": "ConverterError: no"}}}
    assert "not produced: ConverterError: no" in writer.format_table(report)
    assert export.format_table is writer.format_table and export.export is writer.export


def dense_784(sparse_fraction, seed=0):
    """Dense 784→256→10 (~200k weights), random, with ``sparse_fraction`` of each kernel zeroed."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input((28, 28, 1))
    hidden = keras.layers.Dense(256, activation="relu", name="h")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(hidden))
    for name in ("h", "out"):
        kernel, bias = model.get_layer(name).get_weights()
        kernel = rng.normal(size=kernel.shape).astype(np.float32)
        kernel[np.abs(kernel) < np.quantile(np.abs(kernel), sparse_fraction)] = 0
        model.get_layer(name).set_weights([kernel, bias])
    return model


def test_gzip_bytes_and_sparse_encoding_follow_the_zeros(tmp_path):
    x = np.random.default_rng(2).random((20, 28, 28, 1)).astype(np.float32)
    empty = tmp_path / "dense"
    empty.mkdir()  # an existing empty folder may be the output
    dense = export.export(dense_784(0.0), str(empty), ("saved_model", "tflite"), check_inputs=x, latency_runs=0)
    sparse = export.export(dense_784(0.9), str(tmp_path / "sparse"), ("saved_model", "tflite"), check_inputs=x,
                           latency_runs=0)
    for name in ("saved_model", "tflite"):  # tfmot's measure: zeros pay off once compressed
        assert sparse["formats"][name]["gzip_bytes"] <= 0.4 * dense["formats"][name]["gzip_bytes"], name
        assert sparse["formats"][name]["weight_sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert dense["formats"]["tflite_sparse"]["sparse_tensors"] == 0  # nothing to encode
    encoded = sparse["formats"]["tflite_sparse"]
    assert encoded["sparse_tensors"] >= 1 and encoded["bytes"] < 0.3 * sparse["formats"]["tflite"]["bytes"]
    assert encoded["nonzero_params"] == sparse["formats"]["tflite"]["nonzero_params"]


def rsr_net():
    model = conv_net(noise="channel", inference_noise=True)  # noise kept at inference in the source
    for layer in layers.noisy_layers(model):
        layer.alpha.assign(tf.fill(tf.shape(layer.alpha), 0.5))
    return model


def test_rsr_model_exports_noise_free_and_converts_to_tflite(tmp_path):
    model = rsr_net()
    report = export.export(model, str(tmp_path / "out"), ("saved_model", "tflite"), check_inputs=XQ_TEST,
                           latency_runs=0, sparse_tflite=False)
    assert layers.has_inference_noise(model)  # the caller's switch is given back
    layers.set_inference_noise(model, False)
    clean = model(XQ_TEST, training=False).numpy()
    layers.set_inference_noise(model, True)
    assert np.abs(model(XQ_TEST, training=False).numpy() - clean).max() > 1e-2  # the noise is real
    tflite_out = tflite_logits(str(tmp_path / "out" / "model.tflite"), XQ_TEST)
    np.testing.assert_allclose(tflite_out, clean, atol=1e-5)
    np.testing.assert_array_equal(tflite_logits(str(tmp_path / "out" / "model.tflite"), XQ_TEST), tflite_out)
    saved = str(tmp_path / "out" / "saved_model")
    np.testing.assert_array_equal(_served(saved, XQ_TEST), _served(saved, XQ_TEST))  # deterministic
    np.testing.assert_allclose(_served(saved, XQ_TEST), clean, atol=1e-5)
    assert report["source"]["inference_noise"] == "off" and report["source"]["noise_layers"] == 2
    assert report["formats"]["saved_model"]["signatures"] == ["serving_default"]
    kernels = source_kernels(model)
    assert report["formats"]["tflite"]["params"] == sum(k.size for k in kernels)  # α is not a parameter here


def test_without_noise_clones_nested_and_zoo_models_with_the_same_kernels():
    inner = keras.Sequential([keras.Input((16,)), layers.NoisyDense(5, inference_noise=True, name="noisy"),
                              keras.layers.Dense(3, name="plain")], name="head")
    inputs = keras.Input((4, 4, 1))
    outer = keras.Model(inputs, inner(keras.layers.Flatten()(inputs)))
    zoo = models.get("lenet5")(layers=models.Layers(noise="layer", inference_noise=True))
    for model, x in ((outer, X), (zoo, np.random.default_rng(3).random((4, 28, 28, 1)).astype(np.float32))):
        clean = export.without_noise(model)
        assert layers.noisy_layers(model) and not layers.noisy_layers(clean)
        assert not any("Noisy" in type(layer).__name__ for layer in clean.submodules)
        layers.set_inference_noise(model, False)
        np.testing.assert_array_equal(clean(x, training=False).numpy(), model(x, training=False).numpy())
        np.testing.assert_array_equal(clean(x, training=True).numpy(), clean(x, training=True).numpy())
    assert export.without_noise(outer).get_layer("head").get_layer("noisy").get_config()["units"] == 5
    plain = linear()
    assert export.without_noise(plain) is plain


def test_noise_on_saved_model_draws_fresh_noise_and_seeded_noise(tmp_path):
    model = rsr_net()
    layers.set_inference_noise(model, False)  # "on" switches the artifact's noise on, not the caller's
    report = export.export(model, str(tmp_path / "on"), ("saved_model",), inference_noise="on",
                           check_inputs=XQ_TEST)
    assert not layers.has_inference_noise(model)
    entry = report["formats"]["saved_model"]
    assert report["source"]["inference_noise"] == "on"
    assert entry["signatures"] == ["serving_default", "serving_seeded"] and entry["max_abs_logit_diff"] <= 1e-5
    loaded = tf.saved_model.load(str(tmp_path / "on" / "saved_model"))
    x = tf.constant(XQ_TEST[:16])

    def seeded(seed):
        return loaded.signatures["serving_seeded"](images=x, seed=tf.constant(seed, tf.int64))["logits"].numpy()

    first, second = (loaded.signatures["serving_default"](images=x)["logits"].numpy() for _ in range(2))
    clean = model(x, training=False).numpy()
    assert np.abs(first - second).max() > 1e-2 and np.abs(first - clean).max() > 1e-2
    np.testing.assert_array_equal(seeded(7), seeded(7))
    assert np.abs(seeded(7) - seeded(8)).max() > 1e-2 and np.abs(seeded(7) - clean).max() > 1e-2


def test_noise_setting_is_ignored_without_noise_layers(tmp_path):
    report = export.export(linear(), str(tmp_path / "out"), ("tflite",), inference_noise="on", sparse_tflite=False,
                           latency_runs=0)
    assert report["source"]["inference_noise"] == "off" and list(report["formats"]) == ["tflite"]
    assert report["checks"].startswith("skipped") and report["formats"]["tflite"]["max_abs_logit_diff"] is None


@pytest.mark.parametrize("formats, kwargs, message", [
    (("saved_model", "onnx"), {}, "unknown export format.*saved_model, tflite, tflite_fp16, tflite_int8"),
    (("saved_model",), {"inference_noise": "sometimes"}, "inference_noise must be one of"),
    (("tflite_fp16",), {"inference_noise": "on"}, "TFLite cannot hold the CNI/PNI random noise"),
    (("tflite_int8",), {}, "tflite_int8 needs representative_data"),
    (("saved_model",), {"check_inputs": np.zeros((2, 5, 5, 1), np.float32)}, "check_inputs has shape"),
    (("tflite_int8",), {"representative_data": np.full((2, 8, 8, 1), 255.0, np.float32)}, r"in \[0, 1\]"),
])
def test_bad_requests_are_refused_before_any_work(tmp_path, formats, kwargs, message):
    output = tmp_path / "out"
    with pytest.raises(ConfigError, match=message) as caught:
        export.export(rsr_net(), str(output), formats, **kwargs)
    assert "\n" not in str(caught.value)
    assert not os.path.exists(output) and not os.path.exists(str(output) + ".partial")


def test_existing_output_is_refused_and_left_untouched(tmp_path):
    output = tmp_path / "taken"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists"):
        export.export(linear(), str(output), ("saved_model",))
    assert os.listdir(output) == ["keep.txt"] and (output / "keep.txt").read_text() == "mine"


def _users_partial(output):
    """Issue 30: an existing ``<output>.partial/`` holding the user's file (export once deleted it)."""
    folder = output.parent / (output.name + ".partial")
    folder.mkdir()
    (folder / "mine.txt").write_text("mine")
    return folder


@pytest.mark.parametrize("offset", [0.0, 0.5])  # 0.5: a failed float check, nothing published
def test_export_never_touches_a_folder_it_did_not_create(tmp_path, offset):
    output = tmp_path / "ship"
    users = _users_partial(output)
    if offset:
        with pytest.raises(RuntimeError, match="logits differ"):
            export.export(linear(offset=offset), str(output), ("saved_model",), check_inputs=X, latency_runs=0)
        assert not output.exists()
    else:
        report = export.export(linear(), str(output), ("saved_model",), check_inputs=X, latency_runs=0)
        assert json.loads((output / export.REPORT_FILE).read_text()) == report
    assert os.listdir(users) == ["mine.txt"] and (users / "mine.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == (["ship.partial"] if offset else ["ship", "ship.partial"])


@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_save_saved_model_never_touches_a_folder_it_did_not_create(tmp_path, offset):
    path = tmp_path / "saved_model"
    users = _users_partial(path)
    if offset:
        with pytest.raises(RuntimeError, match="round trip changed predictions"):
            export.save_saved_model(linear(offset), str(path), check_inputs=X)
    else:
        export.save_saved_model(linear(), str(path), check_inputs=X)
    assert (users / "mine.txt").read_text() == "mine" and os.listdir(users) == ["mine.txt"]
    assert sorted(os.listdir(tmp_path)) == (["saved_model.partial"] if offset else ["saved_model", "saved_model.partial"])


def test_export_folder_mode_follows_the_umask(tmp_path):
    # The folder is made by mkdtemp (mode 0700) and renamed: it must get os.makedirs' mode.
    previous = os.umask(0o022)
    try:
        export.export(linear(), str(tmp_path / "out"), ("saved_model",), latency_runs=0)
    finally:
        os.umask(previous)
    assert os.stat(tmp_path / "out").st_mode & 0o777 == 0o755


@pytest.mark.parametrize("formats, failing", [(("saved_model", "tflite"), "saved_model"), (("tflite",), "tflite")])
def test_a_failed_float_check_publishes_nothing(tmp_path, formats, failing):
    # EagerOffset: the live (eager) model adds 0.5 that every traced artifact lacks.
    output = tmp_path / "out"
    with pytest.raises(RuntimeError, match=f"^{failing}: the artifact's logits differ"):
        export.export(linear(offset=0.5), str(output), formats, check_inputs=X, latency_runs=0)
    assert not os.path.exists(output) and not os.path.exists(str(output) + ".partial")
