"""Wang Tables 1–2 (tfsparse.pipelines.wang, configs/wang_mnist.py, configs/wang_cifar.py).

Fast: the distortion bound against the ε where PGD starts to succeed on a tiny conv net; the
tables and figures rendered from stored rows (seeds → mean ± CI); the shipped configs validate.
Slow (--runslow): ``scripts/experiment.py --config=configs/wang_mnist.py:quick`` end to end,
shrunk by overrides (same code path), then the weights each row kept under ``checkpoints/`` are
checked from outside the pipeline: the re-initialised GUP row has the inherited row's mask with
fresh values, the FP-rand row the narrow FP shape with fresh values.
"""

import json
import sys

import numpy as np
import pytest
from cli_helpers import REPO
from cli_helpers import run_script

from tfsparse import attacks
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.errors import ConfigError
from tfsparse.metrics import distortion_lower_bound
from tfsparse.pipelines import validate
from tfsparse.pipelines import wang
from tfsparse.training import validated

sys.path.insert(0, REPO)


def _tiny_conv(seed):
    inputs = keras.layers.Input((6, 6, 1))
    x = keras.layers.Conv2D(3, 3, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    rng = np.random.default_rng(seed)
    model.set_weights([w.astype(np.float32) for w in
                       (rng.normal(size=(3, 3, 1, 3)), rng.normal(size=3) * 0.1, rng.normal(size=(48, 3)),
                        np.zeros(3))])
    return model


def _pgd_function(model):
    """One traced PGD (20 steps of ε/4, random start) with ε an argument: ``(x, y, eps, seed) -> fooled``."""

    @tf.function
    def fooled(x, y, eps, seed):
        x_adv = attacks.pgd_perturb(lambda z: model(z, training=False), x, y, eps=eps, step_size=eps / 4,
                                    steps=20, seed=seed)
        return tf.not_equal(tf.argmax(model(x_adv, training=False), axis=1, output_type=tf.int32), y)

    return fooled


def test_distortion_bound_brackets_the_eps_where_pgd_starts_to_succeed():
    model = _tiny_conv(2)
    x = np.random.default_rng(3).uniform(0.35, 0.65, size=(30, 6, 6, 1)).astype(np.float32)
    y = np.argmax(model(x).numpy(), axis=1).astype(np.int32)
    bound = distortion_lower_bound(model, x, y, eps_max=0.3, steps=20, bisection_steps=7)
    assert bound["found"] == 30 and bound["misclassified"] == 0
    # PGD of the same kind (20 steps of ε/4, random start) on a grid of budgets: the first budget
    # at which it fools a sample lies inside the sample's [eps_low, eps_high] (up to one grid step).
    pgd = _pgd_function(model)
    grid = np.linspace(0.005, 0.3, 40)
    first = np.full(30, np.inf)
    for i, eps in enumerate(grid):
        fooled = pgd(x, y, np.float32(eps), np.array([1, i], np.int64)).numpy()
        first = np.where(np.isinf(first) & fooled, eps, first)
    step = grid[1] - grid[0]
    inside = (first >= bound["eps_low"] - step) & (first <= bound["eps_high"] + step)
    assert inside.mean() >= 0.9, (first, bound["eps_low"], bound["eps_high"])
    assert np.all(bound["eps_high"] - bound["eps_low"] <= 0.3 / 2**7 + 1e-7)
    # Below every sample's eps_low PGD fools (almost) nothing; at every eps_high it fools (almost) all.
    low = pgd(x, y, np.float32(0.9 * np.min(bound["eps_low"])), np.array([2, 0], np.int64)).numpy()
    high = pgd(x, y, np.float32(np.max(bound["eps_high"])), np.array([2, 1], np.int64)).numpy()
    assert low.mean() <= 0.05 and high.mean() >= 0.95
    assert bound["mean_eps"] == pytest.approx(np.mean(bound["eps_high"]))


def _row(seed, method, p, init, clean, pgd, epochs):
    histogram = {"counts": [1, 5, 1], "edges": [-0.3, -0.1, 0.1, 0.3], "zeros": 0, "size": 7}
    return {"seed": seed, "method": method, "p": p, "init": init, "eps": 0.3, "clean_accuracy": clean,
            "pgd_accuracy": pgd, "autoattack_accuracy": None, "distortion_eps": 0.2, "distortion_l2": 2.0,
            "sparsity": p, "params_reduction": p, "flops_reduction": 0.0, "lipschitz_linf_log10": 5.0,
            "lipschitz_l2_log10": 2.0, "train_epochs": epochs, "train_steps": 10 * epochs,
            "stopped_by": "stop_c" if init == "reinit" else "budget", "budget_epochs": 40.0 if init == "reinit" else 2,
            "log_l0": 10.0 - p, "log_l1": 5.0, "log_l2": 1.0, "histogram": histogram, "num_eval": 100,
            "num_distortion": 50, "pgd_attack": "PGD(eps=0.3)", "distortion_units": "pixel units"}


def test_tables_and_figures_are_rendered_from_the_rows_of_a_run_directory(tmp_path):
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        rows += [_row(seed, "dense", 0.0, "inherited", 0.98 + shift / 2, 0.90, 20),
                 _row(seed, "gup", 0.5, "inherited", 0.97 + shift, 0.88, 2),
                 _row(seed, "gup", 0.5, "reinit", 0.95, 0.80 + shift, 17 + seed)]
    state = {"pipeline": wang.KIND, "status": "complete", "model": "lenet5_bn", "dataset": "mnist", "rows": rows}
    (tmp_path / "results.json").write_text(json.dumps(state))

    def config(seeds, variant="quick"):
        return json.dumps({"config": {"model": {"name": "lenet5_bn"}, "data": {"name": "mnist"}, "seeds": seeds,
                                      "variant": variant}})

    (tmp_path / "config.json").write_text(config([0, 1]))
    text = wang.report_section([str(tmp_path)])
    table1, table2 = text.split("Table 2")
    # Seeds aggregate: gup inherited clean = mean 0.98 ± t(1)·std/√2·… (two seeds: 0.97, 0.99).
    assert "| gup | 0.50 | 0.9800 ± 0.1271 |" in table1
    assert "reinit" not in table1.split("|---")[1]
    assert "| gup | 0.50 | reinit | 0.9500 ± 0.0000 | 0.8100 ± 0.1271 |" in table2
    assert "stop_c (cap 40 ep.)" in table2 and "budget (cap 2 ep.)" in table2
    # Paired with the same seed's counterpart (t(1) = 12.706 on two seeds): gup inherited − dense is
    # clean −0.01 / 0.00, PGD −0.02 / −0.02; gup reinit − gup inherited is clean −0.02 / −0.04, PGD −0.08 / −0.06.
    assert table1.split("| gup | 0.50 |")[1].split("\n")[0].endswith("| 2 | -0.0050 ± 0.0635 | -0.0200 ± 0.0000 |")
    assert table2.split("| gup | 0.50 | reinit |")[1].split("\n")[0].endswith("| 2 | -0.0300 ± 0.1271 | -0.0700 ± 0.1271 |")
    assert "Δ PGD vs dense (paired)" in table1 and "Δ PGD vs inherited (paired)" in table2
    for name in ("fig1_robustness_vs_norm_products.png", "fig2_weight_histograms_p50.png"):
        assert (tmp_path / name).stat().st_size > 1000
        assert name in text
    # The same seeds run in two directories give the same tables; a directory given twice is refused.
    for seed in (0, 1):
        (tmp_path / f"s{seed}").mkdir()
        part = dict(state, rows=[r for r in rows if r["seed"] == seed])
        (tmp_path / f"s{seed}" / "results.json").write_text(json.dumps(part))
        (tmp_path / f"s{seed}" / "config.json").write_text(config([seed]))
    pooled = wang.report_section([str(tmp_path / "s0"), str(tmp_path / "s1")])
    assert pooled.split("Run directories")[0] == text.split("Run directories")[0]
    with pytest.raises(ConfigError, match="seed 0 is in both"):
        wang.report_section([str(tmp_path / "s0"), str(tmp_path / "s0")])
    # Different budgets of one model are never pooled: a quick and a full run are two tables.
    for seed, variant in ((0, "quick"), (1, "full")):
        (tmp_path / f"s{seed}" / "config.json").write_text(config([seed], variant))
    assert wang.report_section([str(tmp_path / "s0"), str(tmp_path / "s1")]).count("Run directories") == 2


@pytest.mark.parametrize("name, variant", [("wang_mnist", "quick"), ("wang_mnist", "full"), ("wang_mnist", "paper"),
                                           ("wang_cifar", "quick_cifar"), ("wang_cifar", "paper")])
def test_shipped_configs_validate_and_state_their_attacks(name, variant):
    import importlib

    config = importlib.import_module(f"configs.{name}").get_config(variant)
    validate.validate(config)
    wang._check(config)
    assert config.experiment == wang.KIND and config.training == "pgd"
    assert config.measure.pgd_steps == 100 and config.scratch.lr_schedule == "constant"
    if name == "wang_cifar":
        assert config.pgd.eps == pytest.approx(8 / 255) and config.pgd.step_size == pytest.approx(2 / 255)
        assert config.pgd.steps == 10


@pytest.mark.parametrize("method", ["dense", "gup"])
def test_a_row_killed_mid_training_resumes_to_the_result_of_an_uninterrupted_one(tmp_path, monkeypatch, method):
    # A Stop-C row with best_sum selection on a tiny conv net, dense or in GUP's tfmot wrappers (their
    # mask and pruning step go through the checkpoint too); the "kill" is an exception at the end of
    # epoch 2, after the epoch's validation and before its checkpoint, as a SIGKILL there would be.
    import importlib

    from tfsparse import sparsity

    config = importlib.import_module("configs.wang_mnist").get_config("quick")
    config.scratch.epochs, config.scratch.batch_size = 6.0, 16
    config.pgd.steps, config.validation.pgd_steps, config.pgd.eps_warmup_epochs = 2, 2, 1.0
    config.stop_c.min_delta = 1.0  # nothing counts as progress: LR ÷10 after epochs 1 and 2, stop after 3
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (96, 6, 6, 1)).astype(np.float32)
    y = ((x[:, :3].mean(axis=(1, 2, 3)) > x[:, 3:].mean(axis=(1, 2, 3))).astype(np.int32)
         + (x.mean(axis=(1, 2, 3)) > 0.52))
    data = (x[:64], y[:64], x[64:], y[64:])

    lines = []

    def fit(checkpoint_dir=None):
        model = _tiny_conv(4) if method == "dense" else sparsity.prune_with(method, _tiny_conv(4), 0.5)
        info = wang.fit_row(config, model, data, "scratch", seed=0, stop_c=True,
                            checkpoint_dir=checkpoint_dir, log=lines.append)
        return model, {k: v for k, v in info.items() if k != "train_seconds"}

    whole, whole_info = fit()
    original = validated.EpochValidation.on_epoch_end

    def dies_at_epoch_2(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(validated.EpochValidation, "on_epoch_end", dies_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "row.training")
    monkeypatch.setattr(validated.EpochValidation, "on_epoch_end", original)
    resumed, resumed_info = fit(tmp_path / "row.training")
    assert sum("resuming after epoch 2" in line for line in lines) == 1
    assert resumed_info == whole_info
    assert (whole_info["train_epochs"], whole_info["lr_decays"], whole_info["stopped_by"]) == (4, 2, "stop_c")
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    if method == "gup":
        assert sparsity.weight_sparsity(resumed)["overall"] == pytest.approx(0.5, abs=0.02)


def _kernels(model):
    return {layer.name: layer.get_weights()[0] for layer in model.layers
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))}


@pytest.mark.slow
def test_quick_config_runs_end_to_end_and_the_reinit_rows_have_fresh_weights(tmp_path):
    from configs import wang_mnist
    from tfsparse import sparsity
    from tfsparse.pipelines._build import build_model
    from tfsparse.pipelines._build import load_data

    workdir = tmp_path / "wang"
    overrides = ["--config.methods=('gup','fp')", "--config.sparsities=(0.5,)", "--config.data.num_train=600",
                 "--config.data.num_test=100", "--config.validation.num_examples=100",
                 "--config.adversarial_train.epochs=2.0", "--config.scratch.epochs=3.0", "--config.pgd.steps=3",
                 "--config.validation.pgd_steps=3", "--config.measure.num_examples=40",
                 "--config.measure.pgd_steps=10", "--config.measure.distortion_examples=20",
                 "--config.measure.distortion_steps=5", "--config.measure.distortion_bisections=4",
                 "--config.measure.lipschitz_iterations=30"]
    result = run_script("experiment.py", "--config=configs/wang_mnist.py:quick", f"--workdir={workdir}", *overrides,
                        timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((workdir / "results.json").read_text())
    keys = [(r["method"], r["p"], r["init"]) for r in state["rows"]]
    assert keys == [("dense", 0.0, "inherited"), ("gup", 0.5, "inherited"), ("gup", 0.5, "reinit"),
                    ("fp", 0.5, "inherited"), ("fp", 0.5, "reinit")]
    assert state["status"] == "complete"
    text = (workdir / "results.md").read_text()
    assert "Table 1" in text and "Table 2" in text and text.count("reinit") >= 2
    for name in ("results.csv", "fig1_robustness_vs_norm_products.png", "fig2_weight_histograms_p50.png"):
        assert (workdir / name).is_file(), name
    rows = {(r["method"], r["init"]): r for r in state["rows"]}
    for row in state["rows"]:
        assert 0 <= row["pgd_accuracy"] <= row["clean_accuracy"] + 0.1 and row["distortion_eps"] > 0
        assert np.isfinite(row["lipschitz_linf_log10"]) and len(row["histogram"]["counts"]) == 60
    for init in ("inherited", "reinit"):
        assert rows[("gup", init)]["sparsity"] == pytest.approx(0.5, abs=2e-3)
    assert rows[("gup", "reinit")]["stopped_by"] in ("stop_c", "budget")
    assert rows[("gup", "reinit")]["budget_epochs"] == 3.0 and rows[("gup", "inherited")]["budget_epochs"] == 1.0

    # The kept weights, loaded into models built here: GUP reinit = inherited mask, fresh values.
    config = wang_mnist.get_config("quick")
    config.data.num_train, config.data.num_test = 600, 100
    dataset = load_data(config.data)
    ckpt = workdir / "checkpoints" / "seed0"

    def loaded(name, model):
        model.load_weights(str(ckpt / f"{name}.weights.h5"))
        return model

    dense = loaded("reference", build_model(config.model, dataset, 0))
    inherited = _kernels(loaded("gup_p0.5_inherited", build_model(config.model, dataset, 0)))
    fresh = _kernels(loaded("gup_p0.5_reinit", build_model(config.model, dataset, 0)))
    for name, kernel in inherited.items():
        np.testing.assert_array_equal(kernel == 0, fresh[name] == 0, err_msg=name)
        kept = kernel != 0
        assert np.mean(np.isclose(kernel[kept], fresh[name][kept], atol=1e-6)) < 0.01, name
    # FP-rand: the narrow shape of the FP row (rebuilt by the same pruning of the reference), fresh values.
    narrow = sparsity.prune_with("fp", dense, 0.5)
    fp = _kernels(loaded("fp_p0.5_inherited", sparsity.copy_model(narrow)))
    fp_rand = _kernels(loaded("fp_p0.5_reinit", sparsity.copy_model(narrow)))
    dense_kernels = _kernels(dense)
    for name, kernel in fp.items():
        assert fp_rand[name].shape == kernel.shape
        if kernel.ndim == 4:
            assert kernel.shape[-1] == pytest.approx(0.5 * dense_kernels[name].shape[-1], abs=1)
        assert not np.allclose(kernel, fp_rand[name], atol=1e-3), name
    assert rows[("fp", "reinit")]["params_reduction"] == pytest.approx(rows[("fp", "inherited")]["params_reduction"])
    assert not list(ckpt.glob("*.training")), "a recorded row's training checkpoints are removed"
