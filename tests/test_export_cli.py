"""scripts/export.py on the real code path: a pruned LeNet-5 to SavedModel and TFLite, then attacked.

The library's per-format checks (round trips, zeros, noise, gzip) are in tests/test_export.py;
this file checks what the script adds: the flags, export.json as written, the artifact
robustness step, and that a second export never touches the first one.
"""

import json
import os

import numpy as np
import pytest
from cli_helpers import error_line
from cli_helpers import run_script

TINY_ROBUSTNESS = [
    "--config.robustness.num_examples=40", "--config.robustness.pgd_steps=3",
    "--config.robustness.square_queries=20", "--config.export.check_examples=50",
    "--config.export.representative_examples=20", "--config.export.latency_runs=3",
]


@pytest.fixture(scope="module")
def pruned_model(tmp_path_factory):
    """A LeNet-5 (width 0.5) trained briefly on the embedded MNIST sample, 60 % of its weights zero."""
    from tfsparse import data
    from tfsparse import models
    from tfsparse import sparsity
    from tfsparse.compat import keras

    keras.utils.set_random_seed(0)
    mnist = data.load("mnist", num_train=600)
    model = models.get("lenet5")(10, mnist.input_shape, mnist.mean, mnist.std, width=0.5)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(mnist.x_train, mnist.y_train, epochs=1, batch_size=64, verbose=0)
    pruned = sparsity.strip(sparsity.prune_with("threshold", model, 0.6))  # global magnitude, zeros at once
    path = tmp_path_factory.mktemp("model") / "lenet5.h5"
    pruned.save(path)
    kernels = [w for w in pruned.get_weights() if w.ndim >= 2]
    zeros = sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)
    return str(path), zeros


def test_export_writes_checked_artifacts_and_their_robustness(pruned_model, tmp_path):
    path, zeros = pruned_model
    output = tmp_path / "export"
    result = run_script("export.py", f"--model={path}", f"--output={output}",
                        "--formats=saved_model,tflite,tflite_int8", "--robustness", *TINY_ROBUSTNESS)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((output / "export.json").read_text())
    assert {"saved_model", "tflite", "tflite_int8"} <= set(report["formats"])
    for name, entry in report["formats"].items():
        assert (output / entry["path"]).exists(), name
        assert entry["gzip_bytes"] < entry["bytes"]
        # Sparsity is counted in each artifact: the 60 % of zeroed kernel entries survive conversion.
        assert entry["weight_sparsity"] == pytest.approx(zeros, abs=0.01), name
    assert report["formats"]["tflite"]["max_abs_logit_diff"] <= report["formats"]["tflite"]["tolerance"]
    assert 0.9 <= report["formats"]["tflite_int8"]["top1_agreement"] <= 1.0
    assert report["formats"]["tflite"]["latency_ms"]["runs"] == 3

    found = json.loads((output / "robustness.json").read_text())
    assert found["num_examples"] == 40 and set(found["artifacts"]) >= {"saved_model", "tflite", "tflite_int8"}
    low, high = found["float"]["clean"]["interval"]
    assert low <= found["float"]["clean"]["accuracy"] <= high
    # The float SavedModel computes the float model's logits: same clean accuracy, same transferred
    # PGD examples scored the same way as the white-box ones.
    assert found["artifacts"]["saved_model"]["clean"] == found["float"]["clean"]["accuracy"]
    assert found["artifacts"]["saved_model"]["pgd"] == found["float"]["pgd"]["accuracy"]
    flagged = {(f["format"], f["measure"]) for f in found["flags"]}
    for name, row in found["artifacts"].items():
        for measure, accuracy in row.items():
            low, high = found["float"][measure]["interval"]
            assert ((name, measure) in flagged) == (not low <= accuracy <= high)
    assert "transferred from float" in result.stdout

    again = run_script("export.py", f"--model={path}", f"--output={output}")
    assert again.returncode == 2 and "already exists" in error_line(again)
    assert json.loads((output / "export.json").read_text()) == report


@pytest.mark.slow  # the same folder rule is tested on export() and save_saved_model in tests/test_export.py
def test_export_keeps_the_users_partial_folder(pruned_model, tmp_path):
    """Issue 30: with --output=R/ship an existing R/ship.partial/ (the user's) was deleted without a word."""
    path, _ = pruned_model
    users = tmp_path / "ship.partial"
    users.mkdir()
    (users / "mine.txt").write_text("mine")
    result = run_script("export.py", f"--model={path}", f"--output={tmp_path / 'ship'}", "--formats=saved_model",
                        "--config.export.check_examples=20", "--config.export.latency_runs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "ship" / "export.json").is_file()
    assert os.listdir(users) == ["mine.txt"] and (users / "mine.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["ship", "ship.partial"]


def _partial_holds(tmp_path, name):
    return lambda: any(os.path.exists(os.path.join(tmp_path, folder, name)) for folder in os.listdir(tmp_path)
                       if folder.startswith("export.partial-"))


@pytest.mark.slow  # four exports stopped part-way; the stop record itself: tests/test_cli.py
@pytest.mark.parametrize("stage", ["started", "saved_model", "model.tflite", "model_sparse.tflite"])
def test_sigterm_stops_an_export_at_every_stage(pruned_model, tmp_path, stage):
    # Issue 30, item 7: a SIGTERM inside TensorFlow's converter came out as a SystemError that
    # the sparse encoding's fallback swallowed; the export went on and exited 0.
    from cli_helpers import run_until

    path, _ = pruned_model
    ready = ((lambda: any(f.startswith("export.partial-") for f in os.listdir(tmp_path))) if stage == "started"
             else _partial_holds(tmp_path, stage))
    code, stderr = run_until("export.py", [f"--model={path}", f"--output={tmp_path / 'export'}",
                                           "--formats=saved_model,tflite,tflite_int8",
                                           "--config.export.latency_runs=1"], ready, sig=15)
    assert code == 143, stderr[-2000:]
    assert "nothing was written" in stderr and "--resume" not in stderr
    assert os.listdir(tmp_path) == []  # no output, no partial folder left behind
