"""tfsparse.pipelines.guo_r2_gap: variants checked before work, softmax output, an end-to-end run."""

import json
import os

import numpy as np
import pytest

from configs import guo_r2_gap as r2_gap_config
from tfsparse.compat import keras
from tfsparse.errors import ConfigError
from tfsparse.pipelines import guo_r2_gap


def test_variants_apply_their_eval_keys_and_refuse_unknown_ones():
    config = r2_gap_config.get_config("quick")
    variants = guo_r2_gap.variant_configs(config)
    output, measured = variants["deepfool_no_box"]
    assert output == "logits" and measured.eval.deepfool_box is False
    assert config.eval.deepfool_box is True  # the run's own config is left alone
    assert variants["deepfool_softmax"][0] == "softmax"
    assert variants["cw"][1].eval.measures == "r2_cw"
    config.variants.typo = {"deepfool_max_iters": 3}
    with pytest.raises(ConfigError, match="deepfool_max_iters"):
        guo_r2_gap.variant_configs(config)
    del config.variants["typo"]
    config.variants.bad_output = {"output": "probits"}
    with pytest.raises(ConfigError, match="probits"):
        guo_r2_gap.variant_configs(config)


def test_lengths_must_end_at_the_training_budget():
    config = r2_gap_config.get_config("quick")
    config.lengths = (600, 1000)
    with pytest.raises(ConfigError, match="train.steps"):
        guo_r2_gap._lengths(config)


def test_pivot_puts_variants_side_by_side_with_ci_over_seeds():
    rows = [{"model": "m", "train_steps": 10, "seed": seed, "variant": variant, "clean_accuracy": 0.9 + 0.02 * seed,
             "r2": r2 + seed, "failures": failures}
            for seed in (0, 1) for variant, r2, failures in (("deepfool", 1.0, 0), ("cw", 0.5, 3))]
    summary, columns = guo_r2_gap.pivot(rows)
    assert len(summary) == 1 and [c[0] for c in columns][3:5] == ["deepfool", "cw"]
    row = summary[0]
    assert row["n"] == 2 and row["deepfool"] == pytest.approx(1.5) and row["cw"] == pytest.approx(1.0)
    assert row["clean_accuracy"] == pytest.approx(0.91) and row["clean_accuracy_ci95"] > 0
    assert row["failures"] == "cw 3"


def test_with_softmax_outputs_probabilities_of_the_same_logits():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    probabilities = guo_r2_gap.with_softmax(model)(x).numpy()
    logits = model(x).numpy()
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5)


@pytest.mark.slow
def test_quick_experiment_runs_end_to_end(tmp_path):
    from cli_helpers import run_script

    workdir = tmp_path / "gap"
    result = run_script("experiment.py", "--config=configs/guo_r2_gap.py:quick", f"--workdir={workdir}",
                        "--config.models=(\"lenet300_100\",)", "--config.lengths=(100,200)",
                        "--config.train.steps=200", "--config.eval.num_examples=50",
                        "--config.eval.cw_steps=20", "--config.eval.cw_binary_search_steps=2")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((workdir / "results.json").read_text())["records"]
    variants = set(r2_gap_config.get_config("quick").variants.keys())
    assert {(r["train_steps"], r["variant"]) for r in rows} == {(s, v) for s in (100, 200) for v in variants}
    by_variant = {r["variant"]: r for r in rows if r["train_steps"] == 200}
    assert by_variant["deepfool_softmax"]["r2"] > by_variant["deepfool"]["r2"]  # probability margins are flatter
    assert by_variant["deepfool"]["clean_accuracy"] == by_variant["cw"]["clean_accuracy"]
    assert "| lenet300_100 | 200 | " in (workdir / "results.md").read_text()
    assert os.path.isfile(workdir / "results.csv")
