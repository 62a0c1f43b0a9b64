"""The CLI scripts on the real code path with tiny configs, and their exit-code contract."""

import json

import numpy as np
import pytest
from cli_helpers import TINY_SWEEP
from cli_helpers import error_line
from cli_helpers import run_script


@pytest.mark.parametrize(
    "override, message",
    [
        # prune.rate=1.5: tests/test_bad_input.py ("sweep: pruning rate out of range").
        pytest.param("--config.eval.fgs_eps=-0.1", "eval.fgs_eps", marks=pytest.mark.slow),
        pytest.param("--config.model.name=resnet99", "model.name", marks=pytest.mark.slow),
    ],
)
def test_sweep_bad_config_exits_2_before_any_work(tmp_path, override, message):
    workdir = tmp_path / "bad"
    result = run_script("sweep.py", *TINY_SWEEP, override, f"--workdir={workdir}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in error_line(result)
    assert not workdir.exists()


def test_unknown_config_key_exits_2(tmp_path):
    result = run_script("sweep.py", "--config.prune.nope=1", f"--workdir={tmp_path / 'x'}")
    assert result.returncode == 2
    assert "nope" in result.stderr


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("trained") / "train"
    result = run_script(
        "train.py", "--model=lenet300_100", "--dataset=mnist", "--num_train=600", "--epochs=1",
        f"--workdir={workdir}", "--config.verbose=0",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_train_saves_a_servable_savedmodel(trained_workdir):
    workdir = trained_workdir
    summary = json.loads((workdir / "results.json").read_text())
    assert summary["train_steps"] == 10  # ceil(600 / 64) batches for one epoch
    assert 0.0 <= summary["clean_accuracy"] <= 1.0
    import tfsparse  # noqa: F401
    from tfsparse.compat import tf

    import ml_collections

    from tfsparse.pipelines._build import build_model
    from tfsparse.pipelines._build import load_data

    serve = tf.saved_model.load(str(workdir / "saved_model")).signatures["serving_default"]
    assert serve(images=tf.zeros([3, 28, 28, 1]))["logits"].shape == (3, 10)
    # Independent path to the same network: rebuild the architecture from the run's config.json
    # and restore the weights from the run's epoch checkpoint (not from the SavedModel).
    config = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text())["config"])
    dataset = load_data(config.data)
    rebuilt = build_model(config.model, dataset, seed=123)
    x = dataset.x_test
    served = serve(images=tf.constant(x))["logits"].numpy()
    assert not np.allclose(rebuilt(x, training=False).numpy(), served, atol=1e-2)  # not trivially equal
    status = tf.train.Checkpoint(model=rebuilt).restore(tf.train.latest_checkpoint(str(workdir / "checkpoints")))
    status.expect_partial().assert_existing_objects_matched()
    np.testing.assert_allclose(served, rebuilt(x, training=False).numpy(), rtol=1e-5, atol=1e-5)
    # The reported accuracy is the served model's accuracy on the run's test split (argmax by hand).
    assert summary["clean_accuracy"] == pytest.approx(np.mean(served.argmax(1) == dataset.y_test))


@pytest.mark.parametrize("training", [pytest.param("pgd", marks=pytest.mark.slow), "rsr"])
def test_train_adversarially_records_the_robust_setup(tmp_path, training):
    workdir = tmp_path / training
    result = run_script(
        "train.py", "--model=lenet300_100", "--num_train=256", "--epochs=1", f"--training={training}",
        "--eps=0.1", "--config.pgd.eval_steps=3", "--config.pgd.eval_examples=64",
        "--config.rsr.target_sparsity=0.5", f"--workdir={workdir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((workdir / "results.json").read_text())
    # MNIST family policy (configs/train.py): Adam 1e-3, ε ramped over the one epoch (4 steps).
    assert summary["optimizer"] == "adam" and summary["learning_rate"] == pytest.approx(1e-3)
    assert summary["eps"] == pytest.approx(0.1) and summary["pgd_steps"] == 40
    assert summary["eps_warmup_steps"] == summary["train_steps"] == 4
    assert 0.0 <= summary["pgd_accuracy"] <= summary["clean_accuracy"] + 0.05
    if training == "rsr":
        assert summary["weight_sparsity"] == pytest.approx(0.5, abs=0.01)
        assert summary["inference_noise"] and "EOTPGD" in summary["pgd_attack"]
    assert (workdir / "saved_model" / "saved_model.pb").exists()


def test_train_certified_records_its_schedule_and_certified_accuracy(tmp_path):
    # Issue 34, item 3: --training=ibp|crown_ibp; CROWN-IBP on the small CNN of Gowal et al.
    workdir = tmp_path / "crown_ibp"
    result = run_script(
        "train.py", "--num_train=256", "--epochs=1", "--training=crown_ibp", "--eps=0.1",
        "--config.model.name=cnn_small", "--config.pgd.eval_steps=3", "--config.pgd.eval_examples=64",
        "--config.certified.warmup_epochs=0", "--config.certified.ramp_epochs=1", f"--workdir={workdir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((workdir / "results.json").read_text())
    # 256 images at the default variant's batch 64: 4 steps, ε ramped over all of them; κ 1 → 0.
    assert summary["training"] == "crown_ibp" and summary["model"] == "cnn_small"
    assert summary["train_eps"] == pytest.approx(0.1) and summary["eps_ramp_steps"] == summary["train_steps"] == 4
    assert summary["eps_warmup_steps"] == 0 and summary["kappa"] == [1.0, 0.0] and summary["beta"] == [1.0, 0.0]
    # Same 64 images, one measure: what is proved is never more than what the attack left.
    assert 0.0 <= summary["certified_ibp"] <= summary["pgd_accuracy"]
    assert 0.0 <= summary["certified_crown"] <= summary["pgd_accuracy"]
    assert "certified (IBP / CROWN)" in result.stdout
    assert (workdir / "saved_model" / "saved_model.pb").exists()


# Slow tier: the gaussian objective's parts run fast in tests/test_smoothing.py and test_certified_table.py.
@pytest.mark.slow
def test_train_gaussian_reports_the_smoothed_certified_accuracy(tmp_path):
    workdir = tmp_path / "gaussian"
    result = run_script(
        "train.py", "--config=configs/train.py:mnist_gaussian", "--num_train=256", "--epochs=1",
        "--config.pgd.eval_steps=3", "--config.pgd.eval_examples=64", "--config.smoothing.n=200",
        "--config.smoothing.num_examples=32", f"--workdir={workdir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((workdir / "results.json").read_text())
    assert summary["training"] == "gaussian" and summary["sigma"] == 0.25 and summary["smoothed_examples"] == 32
    curve = list(summary["smoothed_certified"].values())
    assert list(summary["smoothed_certified"]) == ["0", "0.25", "0.5", "0.75", "1"] and curve == sorted(curve)[::-1]
    assert "smoothed (σ 0.25) certified l2 accuracy" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model=nope"], "model.name"),
        pytest.param(["--data_dir=/nonexistent/dir"], "/nonexistent/dir", marks=pytest.mark.slow),
        pytest.param(["--dataset=imagenet"], "data.name", marks=pytest.mark.slow),
        (["--training=pgd", "--config.adversarial_train.optimizer=lbfgs"],
         "adversarial_train.optimizer 'lbfgs' is unknown"),
    ],
)
def test_train_bad_usage_exits_2(tmp_path, args, message):
    result = run_script("train.py", *args, f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in error_line(result)


@pytest.mark.parametrize("method, sparsity, training", [
    ("gup", 0.6, "clean"),
    pytest.param("fp", 0.5, "clean", marks=pytest.mark.slow),  # structured: also tests/test_structured.py
    ("threshold", 0.6, "pgd"),
    ("gup", 0.5, "crown_ibp"),  # issue 34: verification-aware fine-tuning of a pruned model
])
def test_prune_exports_a_smaller_model_with_real_zeros(trained_workdir, tmp_path, method, sparsity, training):
    """scripts/prune.py over tfsparse.pipelines.prune: real zeros or a narrower model; the
    zeros survive adversarial fine-tuning (PGD steps call the model, the masks must hold)."""
    output = tmp_path / method
    result = run_script(
        "prune.py", f"--model={trained_workdir / 'saved_model'}", f"--method={method}", f"--sparsity={sparsity}",
        "--dataset=mnist", "--retrain_epochs=0.2", f"--output={output}", "--config.data.num_train=600",
        "--config.verbose=0", f"--training={training}", "--config.pgd.steps=2",
        "--config.pgd.eval_steps=5", "--config.pgd.eval_examples=100",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((output / "stats.json").read_text())
    assert stats["training"] == training
    assert (output / "weights_histogram.png").is_file()
    assert "overall" in result.stdout  # the per-layer table
    if training != "clean":  # robustness after robust fine-tuning, on the same images
        assert 0 <= stats["pgd_accuracy"] <= 1
    if training == "crown_ibp":
        assert 0 <= stats["certified_ibp"] <= stats["pgd_accuracy"] and stats["certified_crown"] <= stats["pgd_accuracy"]
    import tfsparse  # noqa: F401
    from tfsparse import sparsity as sparsity_lib
    from tfsparse.model_io import load_keras_model

    reloaded = load_keras_model(str(output / "saved_model"))
    if method != "fp":
        assert stats["weight_sparsity"]["overall"] == pytest.approx(sparsity, abs=1e-3)
        assert sparsity_lib.weight_sparsity(reloaded)["overall"] == pytest.approx(sparsity, abs=1e-3)
    else:
        assert stats["structure_after"]["params"] < stats["structure_before"]["params"]
        assert reloaded.get_layer("fc1").units == 150


# LUP through the CLI is slow-tier only: both methods are checked without a training step in tests/test_sparsity.py.
@pytest.mark.parametrize("method", ["gup", pytest.param("lup", marks=pytest.mark.slow)])
def test_prune_without_retraining_reaches_the_requested_sparsity(trained_workdir, tmp_path, method):
    """Issue 30: --retrain_epochs=0 exported the dense model (0 % sparsity, status complete):
    tfmot sets its masks only in a training step, and there was none."""
    output = tmp_path / method
    result = run_script(
        "prune.py", f"--model={trained_workdir / 'saved_model'}", f"--method={method}", "--sparsity=0.5",
        "--dataset=mnist", "--retrain_epochs=0", f"--output={output}", "--config.data.num_train=600",
        "--config.verbose=0",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "took no training step" not in result.stderr  # asked for: the pipeline applies the masks itself
    summary = json.loads((output / "results.json").read_text())
    assert summary["status"] == "complete"
    assert summary["requested_sparsity"] == 0.5
    assert summary["weight_sparsity"] == pytest.approx(0.5, abs=1e-3)
    import tfsparse  # noqa: F401
    from tfsparse import sparsity as sparsity_lib
    from tfsparse.model_io import load_keras_model

    exported = sparsity_lib.weight_sparsity(load_keras_model(str(output / "saved_model")))
    assert exported["overall"] == pytest.approx(0.5, abs=1e-3)
    if method == "lup":
        assert all(layer["sparsity"] == pytest.approx(0.5, abs=1e-3) for layer in exported["layers"].values())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method=nope"], "method"),
        pytest.param(["--model=/nonexistent/model.h5"], "/nonexistent/model.h5", marks=pytest.mark.slow),
        pytest.param(["--sparsity=1.5"], "sparsity", marks=pytest.mark.slow),
    ],
)
def test_prune_bad_usage_exits_2(trained_workdir, tmp_path, args, message):
    base = {"--model": f"--model={trained_workdir / 'saved_model'}", "--method": "--method=gup", "--sparsity": "--sparsity=0.5"}
    for arg in args:
        base[arg.split("=")[0]] = arg
    result = run_script("prune.py", *base.values(), f"--output={tmp_path / 'out'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert not (tmp_path / "out").exists()
