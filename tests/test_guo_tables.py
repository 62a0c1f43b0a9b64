"""Guo et al. 2018's tables beside the sweep (tfsparse/pipelines/guo_tables.py, guo_sweep_tables.py) and the
Guo configs.

Fast tier: the layer Table 1 regularises, one tiny sweep read by the Table 2 analogue and the
CLEVER table (CLEVER of a linear model checked against its closed form), and a bad sweep
directory refused before any work. Slow tier: every ``quick`` config of configs/guo_linear.py,
guo_cifar.py, guo_activation_l1.py, guo_clever.py and guo_pruned_models.py run end to end by
scripts/experiment.py, shrunk by ``--config.*`` overrides (same code path).
"""

import importlib
import json
import os
import sys

import numpy as np
import pytest

from cli_helpers import REPO
from cli_helpers import run_script
from tfsparse import models
from tfsparse.errors import ConfigError
from tfsparse.pipelines import EXPERIMENTS
from tfsparse.pipelines import _guo
from tfsparse.pipelines import guo_sweep_tables
from tfsparse.pipelines import guo_tables
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines.validate import validate

sys.path.insert(0, REPO)
CIFAR = os.path.join(REPO, "..", "shared", "data", "cifar10_jpeg.tar.gz")


def _read(run_dir, name="results.json"):
    with open(os.path.join(run_dir, name), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.mark.parametrize("name", ["guo_linear", "guo_cifar", "guo_activation_l1", "guo_pruned_models", "guo_clever"])
def test_every_variant_validates(name):
    module = importlib.import_module(f"configs.{name}")
    variants = tuple(getattr(module, "VARIANTS", ("quick", "full", "paper")))
    for variant in variants:
        config = validate(module.get_config(variant))
        if variant.startswith(("quick", "paper")):  # the issue: quick variants use 3 seeds; Guo: 10 references
            assert len(config.seeds) == (3 if variant.startswith("quick") else 10)
        assert config.experiment in EXPERIMENTS
    if name == "guo_cifar":
        assert module.get_config("quick_resnet32").model.name == "resnet32"
        assert tuple(module.get_config("paper").prune.keep_dense) == ("first", "last")


def test_table_1_regularises_the_input_of_the_last_fc_layer():
    assert guo_tables.last_fc_input_layer(models.get("lenet300_100")(10, (28, 28, 1))) == "fc2_relu"
    assert guo_tables.last_fc_input_layer(models.get("lenet5")(10, (28, 28, 1))) == "fc1_relu"


def tiny(config):
    """A config of configs/guo_*.py cut to seconds: a 10-class linear model, 1 seed, 1 round."""
    config.seeds = (0,)
    config.model.name = "linear"
    config.data.num_train, config.data.num_test = 256, 64
    config.train.update({"steps": 20, "epochs": 0.0})
    config.prune.update({"rounds": 1, "retrain_steps": 4})
    config.eval.update({"num_examples": 16, "measures": "r_inf,r2", "deepfool_max_iter": 5})
    return validate(config)


def test_table_2_and_clever_read_the_rounds_of_a_sweep(tmp_path):
    from configs import guo_clever
    from configs import guo_pruned_models

    config = tiny(guo_pruned_models.get_config("quick"))
    config.pruned_models.last_rounds = 1
    table2 = guo_sweep_tables.run_pruned_models(config, str(tmp_path / "table2"), log=lambda *_: None)
    sweep_dir = os.path.join(table2, "sweep")  # made by the run itself (sweep_dir '')
    state, sweep = _read(table2), _read(sweep_dir)
    assert state["status"] == "complete" and sweep["status"] == "complete"
    assert [(r["round"], r["role"]) for r in state["records"]] == [(0, "dense"), (1, "pruned")]
    swept = {r["round"]: r for r in sweep["records"]}
    for record in state["records"]:
        # Same eval as the sweep: the rebuilt checkpoint measures exactly as the sweep's own model.
        for key in ("sparsity", "clean_accuracy", "r_inf", "r2"):
            assert record[key] == pytest.approx(swept[record["round"]][key], abs=1e-6), key
        assert record["compression"] == pytest.approx(1 / (1 - record["sparsity"]))
    assert state["records"][1]["sparsity"] == pytest.approx(1 / 3, abs=0.01)
    markdown = open(os.path.join(table2, "results.md"), encoding="utf-8").read()
    assert "Han et al." in markdown and "cannot be fetched" in markdown and sweep_dir in markdown

    config = tiny(guo_clever.get_config("quick"))
    config.clever.update({"sweep_dir": sweep_dir, "rounds": (0, 1), "num_images": 3, "batches": 3, "samples": 4})
    clever_dir = guo_sweep_tables.run_clever(config, str(tmp_path / "clever"), log=lambda *_: None)
    records = _read(clever_dir)["records"]
    assert [r["round"] for r in records] == [0, 1]
    assert not os.path.exists(os.path.join(clever_dir, "sweep"))  # the named sweep was used
    # A linear model's gradients are constant, so CLEVER's Lipschitz estimate is exact and the
    # score is the distance to the nearest decision boundary: min_j (z_c − z_j) / ‖w_c − w_j‖_q.
    data = load_data(config.data)
    x, _ = eval_subset(data, 3)
    for record in records:
        model = _guo.round_model(sweep_dir, config, data, 0, record["round"])
        w, b = model.get_layer("logits").get_weights()
        z = x.reshape(3, -1) @ w + b
        for norm, order, radius in (("l2", 2, 5.0), ("linf", 1, 0.3)):
            expected = []
            for zi in z:
                c = int(np.argmax(zi))
                expected.append(min(min((zi[c] - zi[j]) / np.linalg.norm(w[:, c] - w[:, j], order), radius)
                                    for j in range(10) if j != c))
            assert record[f"clever_{norm}"] == pytest.approx(np.mean(expected), rel=1e-4)
        assert record["r2"] == swept[record["round"]]["r2"]  # copied from the sweep's record
    text = guo_tables.report_section([table2, clever_dir])
    assert "Table 2 analogue" in text and "CLEVER l2" in text and "3 × 4" in text

    config.clever.rounds = (0, 5)
    with pytest.raises(ConfigError, match=r"clever.rounds \[5\]"):
        guo_sweep_tables.run_clever(config, str(tmp_path / "clever_bad"), log=lambda *_: None)
    assert not (tmp_path / "clever_bad").exists()  # refused before any work


def test_a_directory_that_is_no_sweep_is_refused(tmp_path):
    from configs import guo_pruned_models

    config = tiny(guo_pruned_models.get_config("quick"))
    other = tmp_path / "not_a_sweep"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"config": {}}))
    (other / "results.json").write_text(json.dumps({"pipeline": "wang_oneshot", "status": "complete"}))
    config.pruned_models.sweep_dir = str(other)
    with pytest.raises(ConfigError, match="not a guo_progressive_pruning sweep"):
        guo_sweep_tables.run_pruned_models(config, str(tmp_path / "run"), log=lambda *_: None)
    config.pruned_models.last_rounds = 0
    with pytest.raises(ConfigError, match="last_rounds must be >= 1"):
        guo_sweep_tables.run_pruned_models(config, str(tmp_path / "run2"), log=lambda *_: None)
    config.pruned_models.update({"sweep_dir": "", "last_rounds": 2})  # the own sweep has 1 round
    with pytest.raises(ConfigError, match="exceeds the sweep's 1 rounds"):
        guo_sweep_tables.run_pruned_models(config, str(tmp_path / "run3"), log=lambda *_: None)
    assert not (tmp_path / "run").exists() and not (tmp_path / "run2").exists() and not (tmp_path / "run3").exists()


SHRINK_MNIST = ["--config.data.num_train=600", "--config.data.num_test=200", "--config.eval.num_examples=40",
                "--config.eval.deepfool_max_iter=10", "--config.eval.measures=r_inf,r2"]
SHRINK_SWEEP = SHRINK_MNIST + ["--config.prune.rounds=2", "--config.prune.retrain_steps=10"]
QUICK_RUNS = {
    "guo_linear:quick": SHRINK_SWEEP + ["--config.train.epochs=2"],
    # 200 images: Thm 3.2 needs a correctly classified image of every class (NaN otherwise).
    "guo_linear:quick_multiclass": SHRINK_SWEEP + ["--config.train.epochs=2", "--config.eval.num_examples=200"],
    "guo_activation_l1:quick": SHRINK_MNIST + ["--config.train.steps=100"],
    "guo_pruned_models:quick": SHRINK_SWEEP + ["--config.train.steps=100", "--config.pruned_models.last_rounds=1"],
    "guo_clever:quick": SHRINK_SWEEP + ["--config.train.steps=100", "--config.clever.rounds=0,2",
                                        "--config.clever.num_images=3"],
    "guo_cifar:quick": ["--config.data.num_train=256", "--config.data.num_test=64", "--config.train.epochs=1",
                        "--config.prune.rounds=1", "--config.prune.retrain_steps=2", "--config.eval.num_examples=8",
                        "--config.eval.deepfool_max_iter=3", "--config.seeds=(0,)", f"--config.data.data_dir={CIFAR}"],
}
QUICK_RUNS["guo_cifar:quick_resnet32"] = QUICK_RUNS["guo_cifar:quick"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(QUICK_RUNS))
def test_quick_configs_run_end_to_end(name, tmp_path):
    if name.startswith("guo_cifar") and not os.path.isfile(CIFAR):
        pytest.skip(f"needs the CIFAR-10 JPEG copy at {CIFAR}")
    file, variant = name.split(":")
    workdir = str(tmp_path / "run")
    result = run_script("experiment.py", f"--config=configs/{file}.py:{variant}", f"--workdir={workdir}",
                        *QUICK_RUNS[name], timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    state = _read(workdir)
    assert state["status"] == "complete"
    assert os.path.isfile(os.path.join(workdir, "results.md"))
    records = state["records"]
    seeds = {r["seed"] for r in records}
    assert len(seeds) == (1 if file == "guo_cifar" else 3)  # quick variants: 3 seeds (CIFAR cut to 1 here)
    if file == "guo_linear":
        keys = {"thm31_r2", "thm31_r_inf_bound"} if variant == "quick" else {"thm32_r2_bound", "thm32_r_inf_bound"}
        assert all(set(r["theory"]) == keys for r in records)
        assert all(np.isfinite(r["theory"][k]) for r in records for k in keys)
    if file == "guo_cifar":
        layers = records[-1]["layer_sparsity"]
        names = list(layers)
        assert layers[names[0]] == 0.0 and layers[names[-1]] == 0.0  # first and last layers kept dense
        assert max(layers.values()) > 0.3
    if file == "guo_activation_l1":
        assert sorted({r["strength"] for r in records}) == [0.0, 3e-3, 3e-2]
        assert all(0 <= r["activation_sparsity"] <= 1 for r in records)
