"""RSR Tables 1, 2, 3, 5 as engine declarations (tfsparse.pipelines.rsr_tables, rsr_models) and their configs.

Fast tier: the configs, the grid of settings, the σ-rule copy, one tiny interrupted-then-resumed
Table 1 run (in-process). Slow tier (--runslow): every table end to end through
scripts/experiment.py, shrunk with --config overrides (same code path as the ``quick`` variants).
"""

import importlib
import json
import math
import os
import sys

import numpy as np
import pytest

from tfsparse import data as data_lib
from tfsparse import layers as layer_lib
from tfsparse.errors import ConfigError
from tfsparse.pipelines import EXPERIMENTS
from tfsparse import pipelines
from tfsparse.pipelines import engine
from tfsparse.pipelines import rsr as robust
from tfsparse.pipelines import rsr_models
from tfsparse.pipelines import rsr_tables
from tfsparse.pipelines.validate import validate
from tfsparse.sparsity import weight_sparsity

from cli_helpers import run_script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
TABLES = ("rsr_table1", "rsr_width", "rsr_noise", "rsr_blackbox")


def _config(name, variant="quick"):
    return importlib.import_module(f"configs.{name}").get_config(variant)


@pytest.mark.parametrize("name", TABLES)
def test_every_variant_validates_and_is_registered(name):
    module = importlib.import_module(f"configs.{name}")
    for variant in module.VARIANTS:
        config = module.get_config(variant)
        validate(config)
        rsr_tables.check_config(config)
        assert config.experiment == name and EXPERIMENTS[name][0] == "tfsparse.pipelines.rsr_tables"
        assert pipelines.experiment(name) is rsr_tables.TABLES[name] and pipelines.experiment(name).kind == name
        assert len(config.table.sparsities) == len(config.table.widths)
        # The paper's PGD (RSR eq. 2) starts at x, in training and in the evaluation attack.
        assert config.rsr.random_start is False and config.pgd.eval_random_start is False
    paper = module.get_config("paper")
    assert paper.data.name == "cifar10" and len(paper.seeds) == 5
    assert (paper.pgd.eps, paper.pgd.step_size, paper.pgd.eval_steps, paper.rsr.steps) == (8 / 255, 2 / 255, 7, 7)


def test_paper_variants_follow_rsr_section_4():
    models = {v: _config("rsr_table1", v) for v in ("paper", "paper_resnet18", "paper_vgg16")}
    assert {v: (c.model.name, c.rsr.lasso, c.table.sparsities) for v, c in models.items()} == {
        "paper": ("resnet20", 5e-5, (0.6,)), "paper_resnet18": ("resnet18", 1e-5, (0.85,)),
        "paper_vgg16": ("vgg16", 1e-5, (0.5,))}
    width = _config("rsr_width", "paper")
    assert (width.model.name, tuple(width.table.widths), tuple(width.table.sparsities)) == (
        "resnet18", (0.25, 0.5, 1.0), (0.3833, 0.6317, 0.8536))
    noise = _config("rsr_noise", "paper")
    assert (noise.model.name, noise.table.sparsities, tuple(noise.table.inference_noise)) == (
        "vgg16", (0.5,), ("on", "off"))
    zoo = rsr_models.zoo_attack(_config("rsr_blackbox", "paper"))
    assert (zoo.binary_search_steps, zoo.iterations_per_step, zoo.initial_const) == (9, 100, 0.01)


@pytest.mark.parametrize("key, value, message", [
    ("table.schemes", ("pgd", "madry"), "table.schemes"),
    ("table.sparsities", (0.5, 0.6), "one target per width"),
    ("table.sigma_rules", ("variance",), "table.sigma_rules"),
    ("table.inference_noise", ("maybe",), "table.inference_noise"),
    ("autoattack.version", "plus", "autoattack.version"),
])
def test_bad_table_values_name_the_key(key, value, message):
    config = _config("rsr_table1")
    section, leaf = key.split(".")
    config[section][leaf] = value
    with pytest.raises(ConfigError, match=message):
        rsr_tables.check_config(config)


def test_a_config_runs_only_as_its_own_table():
    with pytest.raises(ConfigError, match="cannot run as 'rsr_width'"):
        rsr_tables.WIDTH.check(_config("rsr_table1"))


def test_bad_transfer_source_is_refused_before_any_work():
    config = _config("rsr_blackbox")
    config.transfer.sources.lenet300_pgd.training = "rsr"
    with pytest.raises(ConfigError, match="transfer.sources.lenet300_pgd.training"):
        rsr_tables.check_config(config)
    config.transfer.sources.lenet300_pgd.training = "pgd"
    config.transfer.sources.lenet300_pgd.path = "/nonexistent/model.h5"
    with pytest.raises(ConfigError, match="does not exist"):
        rsr_tables.check_config(config)
    config.transfer.sources.lenet300_pgd.path = ""
    config.zoo.max_queries = 10  # less than one iteration per round of the c search
    with pytest.raises(ConfigError, match="zoo: max_queries"):
        rsr_tables.check_config(config)


def test_schemes_switch_only_cni_and_lasso():
    config = _config("rsr_table1")
    seen = {}
    for scheme in rsr_models.SCHEMES:
        cfg = rsr_models.scheme_config(config, scheme, 0.5)
        seen[scheme] = (bool(cfg.rsr.noise), cfg.rsr.lasso > 0)
        assert cfg.training == "rsr" and cfg.model.width == 0.5 and cfg.rsr.target_sparsity == 0 == cfg.rsr.gamma
        assert (cfg.rsr.clean_weight, cfg.rsr.steps, cfg.rsr.random_start) == (
            config.rsr.clean_weight, config.rsr.steps, config.rsr.random_start)
    assert seen == rsr_models.SCHEMES
    assert config.model.width == 1.0 and config.rsr.noise == "channel"  # the table's config is left alone


def test_settings_grid_per_table():
    table1, noise = _config("rsr_table1"), _config("rsr_noise")
    assert rsr_tables._settings(table1, "lasso", "after") == [(None, None)]
    assert rsr_tables._settings(table1, "rsr", "before") == [("full", "on")]
    assert rsr_tables._settings(table1, "cni", "after") == [("full", "on"), ("nonzero", "on")]
    assert rsr_tables._settings(noise, "rsr", "after") == [("full", "on"), ("full", "off")]
    table1.rsr.noise = ""  # no noise layers at all: CNI rows become deterministic
    assert rsr_tables._settings(table1, "cni", "after") == [(None, None)]


def test_sigma_rule_copy_keeps_weights_and_switch():
    config = _config("rsr_table1")
    dataset = data_lib.load("mnist", None, num_train=64, num_test=64)
    cfg = rsr_models.scheme_config(config, "rsr", 1.0)
    model = rsr_models.build_model(cfg.model, dataset, 0, noise_cfg=cfg.rsr)
    pruned, gamma = robust.threshold(model, rsr_models.pruning(cfg.rsr, 0.8))
    assert gamma > 0 and abs(weight_sparsity(pruned)["overall"] - 0.8) < 1e-3
    copy = rsr_models.with_sigma_rule(pruned, cfg, dataset, 0, "nonzero")
    assert rsr_models.with_sigma_rule(pruned, cfg, dataset, 0, "full") is pruned
    assert {layer.sigma_rule for layer in layer_lib.noisy_layers(copy)} == {"nonzero"}
    assert {layer.sigma_rule for layer in layer_lib.noisy_layers(pruned)} == {"full"}
    for a, b in zip(pruned.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert layer_lib.has_inference_noise(copy)
    # Noise off: both are the same deterministic function; on: the rule changes the noise scale.
    x = dataset.x_test[:16]
    for model_ in (pruned, copy):
        layer_lib.set_inference_noise(model_, False)
    np.testing.assert_allclose(pruned(x, training=False), copy(x, training=False), rtol=1e-5, atol=1e-5)
    sigmas = [[float(layer.noise_sigma()) for layer in layer_lib.noisy_layers(m)] for m in (pruned, copy)]
    assert all(nonzero > full for full, nonzero in zip(*sigmas))


def _tiny(config):
    """Shrinks a quick table config to seconds (same code path)."""
    config.seeds = (0,)
    config.data.num_train = 256
    config.data.num_test = 64
    config.adversarial_train.epochs = 1.0
    config.train.epochs = 1.0
    config.pgd.eps_warmup_epochs = 0.0
    config.pgd.update({"steps": 2, "eval_steps": 2})
    config.rsr.update({"steps": 2, "eot_samples": 2})
    config.table.num_examples = 16
    return config


def _state(run_dir):
    with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as handle:
        return json.load(handle)


def test_table1_interrupted_then_resumed_gives_the_full_grid(tmp_path, monkeypatch):
    config = _tiny(_config("rsr_table1"))
    config.table.schemes = ("pgd", "rsr")
    config.autoattack.version = "off"
    trained, epoch_checkpoints = [], []
    real_train = robust.train_robust

    def spy(cfg, *args, **kwargs):
        trained.append((bool(cfg.rsr.noise), cfg.rsr.lasso))
        epoch_checkpoints.append(kwargs["checkpoint_dir"])
        return real_train(cfg, *args, **kwargs)

    monkeypatch.setattr(robust, "train_robust", spy)
    real_measure = rsr_models.whitebox_measures
    calls = []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_measure(*args)

    monkeypatch.setattr(rsr_models, "whitebox_measures", interrupted)
    workdir = str(tmp_path / "table1")
    with pytest.raises(KeyboardInterrupt):
        rsr_tables.TABLE1(config, workdir, log=lambda *_: None)
    state = _state(workdir)
    assert state["status"] == "interrupted" and len(state["records"]) == 2
    assert state["last_completed"] == "seed 0 w=1 pgd after"
    assert trained == [(False, 0.0), (True, config.rsr.lasso)]

    monkeypatch.setattr(rsr_models, "whitebox_measures", real_measure)
    rsr_tables.TABLE1(config, workdir, resume=True, log=lambda *_: None)
    state = _state(workdir)
    assert trained == [(False, 0.0), (True, config.rsr.lasso)]  # the RSR weights came from checkpoints/
    records = {(r["scheme"], r["stage"], r["sigma_rule"], r["inference_noise"]): r for r in state["records"]}
    assert state["status"] == "complete" and len(records) == len(state["records"]) == 5
    assert set(records) == {("pgd", "before", None, None), ("pgd", "after", None, None),
                            ("rsr", "before", "full", "on"), ("rsr", "after", "full", "on"),
                            ("rsr", "after", "nonzero", "on")}
    for (scheme, stage, rule, noise), r in records.items():
        if stage == "after":  # every scheme pruned to the same sparsity by its own γ
            assert abs(r["sparsity"] - 0.8) < 2e-3 and r["gamma"] > 0
        else:
            assert r["sparsity"] < 0.01 and r["gamma"] == 0
        assert (r["eot_pgd_accuracy"] is None) == (scheme == "pgd")
        assert r["autoattack_accuracy"] is None
        found = [r[k] for k in ("fgsm_accuracy", "pgd_accuracy", "eot_pgd_accuracy") if r[k] is not None]
        assert r["worst_case_accuracy"] <= min(found) and r["num_eval"] == 16
    # The two σ rules measure one model: same zeros, same γ.
    full, nonzero = records[("rsr", "after", "full", "on")], records[("rsr", "after", "nonzero", "on")]
    assert (full["gamma"], full["nonzero_params"]) == (nonzero["gamma"], nonzero["nonzero_params"])
    assert sorted(state["models"]) == ["seed0/pgd_w1", "seed0/rsr_w1"]
    # Each training checkpointed its epochs (to resume mid-training); gone once its weights were kept.
    assert [os.path.relpath(d, workdir) for d in epoch_checkpoints] == [
        os.path.join("checkpoints", "seed0", f"{name}.training") for name in ("pgd_w1", "rsr_w1")]
    assert not any(os.path.exists(d) for d in epoch_checkpoints)
    assert all(state["models"][m]["train_seconds"] > 0 for m in state["models"])
    for name in ("results.csv", "results.md", "results.png"):
        assert os.path.isfile(os.path.join(workdir, name)), name
    os.remove(os.path.join(workdir, "results.png"))  # the figure is redrawn from the run's files (scripts/plot.py)
    assert engine.redraw_figures(rsr_tables.TABLE1, workdir) == [os.path.join(workdir, "results.png")]
    assert os.path.isfile(os.path.join(workdir, "results.png"))
    text = rsr_tables.report_section([workdir])
    assert text.count("| rsr |") == 3 and text.count("| pgd |") == 2 and "report.png" in text


def test_report_section_pools_seeds_with_ci():
    records = []
    for seed, acc in ((0, 0.5), (1, 0.7), (2, 0.6)):
        records.append({"seed": seed, "width": 1.0, "scheme": "rsr", "stage": "after", "sigma_rule": "full",
                        "inference_noise": "on", "sparsity": 0.8, "clean_accuracy": acc, "pgd_accuracy": acc / 2,
                        "prunable_params": 100, "nonzero_params": 20, "label": "w=1 rsr after σ full noise on"})
    (row,) = rsr_tables.summary_rows("rsr_table1", records)
    values = np.array([0.5, 0.7, 0.6])
    assert row["n"] == 3 and row["clean_accuracy"] == pytest.approx(values.mean())
    # Student t, 2 degrees of freedom: t(0.975) = 4.303.
    assert row["clean_accuracy_ci95"] == pytest.approx(4.3027 * values.std(ddof=1) / np.sqrt(3), rel=1e-3)
    assert row["params_remaining"] == pytest.approx(20.0) and row["scheme"] == "rsr"


def test_zoo_measures_undefined_in_a_seed_are_left_out_not_nan():
    # Seed 1: ZOO flipped nothing (no mean l2); seed 2: no ZOO image was classified correctly (no
    # success rate over correct samples, RSR's rate over all samples is still defined).
    records = []
    for seed, l2 in ((0, 0.4), (1, float("nan")), (2, 0.6)):
        records.append({"seed": seed, "width": 1.0, "scheme": "rsr", "stage": "before", "sigma_rule": "full",
                        "inference_noise": "on", "sparsity": 0.0, "clean_accuracy": 0.9, "pgd_accuracy": 0.1,
                        "zoo_success_over_correct": {0: 0.5, 1: 0.0, 2: float("nan")}[seed],
                        "zoo_success_over_samples": 0.0 if seed == 1 else 0.5, "zoo_mean_l2": l2,
                        "prunable_params": 100, "nonzero_params": 100, "label": "w=1 rsr before"})
    (row,) = rsr_tables.summary_rows("rsr_blackbox", records)
    assert row["zoo_mean_l2"] == pytest.approx(0.5) and row["zoo_success_over_samples"] == pytest.approx(1 / 3)
    assert row["zoo_success_over_correct"] == pytest.approx(0.25)
    assert math.isnan(records[1]["zoo_mean_l2"])  # the caller's records are not changed


def _experiment(tmp_path, name, *overrides):
    workdir = str(tmp_path / name)
    result = run_script("experiment.py", f"--config=configs/{name}.py:quick", f"--workdir={workdir}",
                        "--config.data.num_train=512", "--config.data.num_test=100", "--config.table.num_examples=20",
                        "--config.adversarial_train.epochs=1.0", "--config.train.epochs=1.0",
                        "--config.rsr.eot_samples=2", *overrides, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    state = _state(workdir)
    assert state["status"] == "complete" and state["pipeline"] == name
    for file in ("results.md", "results.csv", "results.png"):
        assert os.path.isfile(os.path.join(workdir, file)), file
    return workdir, state


@pytest.mark.slow
def test_table1_quick_end_to_end_with_two_seeds(tmp_path):
    workdir, state = _experiment(tmp_path, "rsr_table1", "--config.seeds=(0,1)", "--config.autoattack.steps=2",
                                 "--config.table.schemes=('pgd','cni')")
    assert len(state["records"]) == 2 * 5  # PGD before / after; CNI before, after under both σ rules
    text = open(os.path.join(workdir, "results.md"), encoding="utf-8").read()
    assert " ± " in text and "AutoAttack" in text
    assert all(r["autoattack_accuracy"] is not None for r in state["records"])


@pytest.mark.slow
def test_width_table_quick_end_to_end(tmp_path):
    _, state = _experiment(tmp_path, "rsr_width", "--config.seeds=(0,)", "--config.autoattack.version=off")
    sizes = {r["width"]: r["prunable_params"] for r in state["records"]}
    assert sizes[0.25] < sizes[0.5] < sizes[1.0]
    after = {(r["width"], r["scheme"]): r["sparsity"] for r in state["records"] if r["stage"] == "after"}
    assert after[(0.25, "rsr")] == pytest.approx(0.6, abs=2e-3) and after[(1.0, "pgd")] == pytest.approx(0.8, abs=2e-3)


@pytest.mark.slow
def test_noise_table_quick_end_to_end(tmp_path):
    _, state = _experiment(tmp_path, "rsr_noise", "--config.seeds=(0,)", "--config.autoattack.version=off",
                           "--config.table.stages=('after',)")
    rows = {(r["scheme"], r["inference_noise"]): r for r in state["records"]}
    assert set(rows) == {("pgd", None), ("rsr", "on"), ("rsr", "off")}
    on, off = rows[("rsr", "on")], rows[("rsr", "off")]
    assert on["nonzero_params"] == off["nonzero_params"]  # one trained, pruned model
    assert on["eot_pgd_accuracy"] is not None and off["eot_pgd_accuracy"] is None
    assert set(on["attacks"]) == {"fgsm", "pgd", "eot_pgd"} and set(off["attacks"]) == {"fgsm", "pgd"}


@pytest.mark.slow
def test_blackbox_table_quick_end_to_end(tmp_path):
    _, state = _experiment(tmp_path, "rsr_blackbox", "--config.seeds=(0,)", "--config.zoo.num_examples=4",
                           "--config.zoo.max_queries=1544", "--config.table.stages=('after',)")
    assert {r["scheme"] for r in state["records"]} == {"pgd", "rsr"}
    for r in state["records"]:
        assert r["zoo_num_examples"] == 4 and set(r) >= {"transfer_lenet300_clean", "transfer_lenet300_pgd"}
        # RSR's count (over all attacked samples) adds the already-misclassified ones to Chen's.
        clean = r["zoo_clean_accuracy"]
        assert r["zoo_success_over_samples"] == pytest.approx((1 - clean) + clean * r["zoo_success_over_correct"])
    assert "source_lenet300_clean_clean_accuracy" in state
