"""Guo et al. 2018's sweep (tfsparse.pipelines.guo): four measures, seeds with 95 % CIs, the
r2 failure rule, re-evaluation of kept rounds, the over-pruning detector and the report section.

One tiny in-process sweep (embedded MNIST sample, 2 seeds, 1 round, a few steps, 40 eval
images) serves the summary, report and re-evaluation tests.
"""

import csv
import json
import math
import os
import shutil
import sys

import numpy as np
import pytest
from scipy import stats

from tfsparse import pipelines
from tfsparse import reporting
from tfsparse.errors import ConfigError
from tfsparse.errors import RunDirError
from tfsparse.pipelines import _guo
from tfsparse.pipelines import guo
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import guo_suite
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._build import parse_measures
from tfsparse.pipelines._build import robustness_record

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import guo_linear  # noqa: E402
from configs import guo_mnist  # noqa: E402


def tiny(config, **eval_values):
    config.seeds = (0, 1)
    config.data.num_train, config.data.num_test = 600, 100
    config.train.steps = 20
    config.prune.update({"rounds": 1, "retrain_steps": 5})
    config.eval.update({"num_examples": 40, "deepfool_max_iter": 10, "measures": "r_inf,r2",
                        "cw_binary_search_steps": 2, "cw_steps": 20, **eval_values})
    return config


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("guo") / "sweep"
    guo.run_sweep(tiny(guo_mnist.get_config("quick")), str(workdir), log=lambda *_: None)
    return workdir


def read(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def test_summary_carries_mean_and_student_t_ci_over_seeds(sweep):
    state = read(sweep / "results.json")
    assert state["status"] == "complete" and state["seeds"] == [0, 1] and state["measures"] == ["r_inf", "r2"]
    for row in state["summary"]:
        members = [r for r in state["records"] if r["round"] == row["round"]]
        assert row["n"] == 2
        for key in ("clean_accuracy", "r_inf", "r2", "r2_failures", "sparsity"):
            values = np.array([m[key] for m in members], dtype=np.float64)
            half = stats.t.ppf(0.975, 1) * values.std(ddof=1) / math.sqrt(2)  # t(0.975, 1) = 12.71
            assert row[key] == pytest.approx(values.mean(), abs=1e-12), key
            assert row[key + "_ci95"] == pytest.approx(half, abs=1e-12), key
    with open(sweep / "results_summary.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["round"]) for r in rows] == [0, 1]
    assert float(rows[1]["r2_ci95"]) == pytest.approx(state["summary"][1]["r2_ci95"])
    text = (sweep / "results.md").read_text()
    assert "±" in text and "failures" in text and "robustness_vs_sparsity.png" in text
    assert set(state["over_pruning"]) == {"tolerances", "peaks", "r2_falls"}
    assert (sweep / "robustness_vs_sparsity.png").stat().st_size > 10_000


def test_report_section_is_registered_and_renders_the_sweep(sweep):
    text = pipelines.report_section(guo.KIND)([str(sweep)])
    assert text.startswith("### lenet300_100 on mnist") and "2 seed(s)" in text and "first 40 test images" in text
    assert "| round | seeds |" in text and "Peaks (mean over seeds)" in text
    assert os.path.join(str(sweep), "robustness_vs_sparsity.png") in text


def test_reevaluate_adds_measures_to_an_old_run_without_retraining(sweep, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(sweep, old)
    # The format of runs made before eval.measures existed: no measures / rFGS / C&W keys.
    stored = read(old / "config.json")
    for key in [k for k in stored["config"]["eval"] if k == "measures" or k.startswith(("cw_", "rfgs"))]:
        del stored["config"]["eval"][key]
    (old / "config.json").write_text(json.dumps(stored))
    state = read(old / "results.json")
    for key in ("summary", "over_pruning", "measures"):
        state.pop(key)
    (old / "results.json").write_text(json.dumps(state))
    weights = old / "checkpoints" / "seed1" / "round1.weights.h5"
    before = weights.read_bytes()

    config = tiny(guo_mnist.get_config("quick"), measures="r_inf,r2_cw")
    guo.reevaluate_sweep(config, str(old), log=lambda *_: None)

    after = read(old / "results.json")
    assert weights.read_bytes() == before
    assert after["measures"] == ["r_inf", "r2_cw"]
    assert read(old / "config.json")["config"]["eval"]["measures"] == "r_inf,r2_cw"
    assert after["reevaluated"][0]["previous_eval"]["deepfool_max_iter"] == 10
    for new, orig in zip(after["records"], state["records"]):
        for key in guo.TRAINING_KEYS:
            assert new[key] == orig[key], key
        # The same kept weights: the deterministic measures come out the same.
        for key in ("sparsity", "clean_accuracy", "r_inf"):
            assert new[key] == pytest.approx(orig[key], abs=1e-6), key
        assert new["r2_cw"] > 0 and new["r2_cw_failures"] >= 0 and "r2" not in new
    with open(old / "results.csv", newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert {"r2_cw", "r2_cw_failures", "train_seconds"} <= set(header)
    assert "r2 (C&W)" in (old / "results.md").read_text()


def test_reevaluate_refuses_a_run_that_is_not_complete(sweep, tmp_path):
    running = tmp_path / "running"
    shutil.copytree(sweep, running)
    state = read(running / "results.json")
    state["status"] = "running"
    (running / "results.json").write_text(json.dumps(state))
    with pytest.raises(RunDirError, match="not a complete sweep"):
        guo.reevaluate_sweep(tiny(guo_mnist.get_config("quick")), str(running), log=lambda *_: None)
    assert read(running / "results.json") == state


@pytest.mark.parametrize("text, message", [("", "empty"), ("r_inf,r3", "unknown"), ("r2,r2", "twice")])
def test_bad_measures_are_refused_before_any_work(text, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        parse_measures(text)
    config = tiny(guo_mnist.get_config("quick"), measures=text)
    with pytest.raises(ConfigError):
        guo.run_sweep(config, str(tmp_path / "run"), log=lambda *_: None)
    assert not (tmp_path / "run").exists()


def test_attack_settings_are_checked_with_the_measure_named():
    config = tiny(guo_mnist.get_config("quick"), measures="r_inf_rfgs", rfgs_alpha=1.5)
    with pytest.raises(ConfigError, match="r_inf_rfgs"):
        guo_suite(config.eval, config.xla)


def test_linear_model_measures_are_ordered_as_the_theory_says():
    """On a linear classifier FGS is the optimal l∞ attack and the r2 boundary distance is exact
    (Guo §3.1 eq. 1): C&W's r2 cannot exceed DeepFool's (which overshoots by 2 %) beyond the
    optimiser's tolerance, and rFGS (a random step, then a shorter FGS step) cannot beat FGS."""
    config = guo_linear.get_config("quick")
    config.data.num_test = 200
    config.eval.update({"num_examples": 60, "measures": "r_inf,r_inf_rfgs,r2,r2_cw", "cw_binary_search_steps": 6,
                        "cw_steps": 200})
    dataset = load_data(config.data)
    model = build_model(config.model, dataset, 0)
    from tfsparse import training
    from tfsparse.pipelines._build import train_section

    training.train(model, dataset.x_train, dataset.y_train, train_section(config, steps=150, epochs=0.0), seed=0,
                   verbose=0)
    record = robustness_record(model, dataset, config)
    assert record["clean_accuracy"] > 0.9
    assert record["r2_failures"] == 0 and record["r2_cw_failures"] == 0
    assert record["r2_cw"] <= record["r2"] * 1.01
    assert record["r2_cw"] >= record["r2"] / 1.02 * 0.9  # C&W finds the same boundary, not a far one
    assert record["r_inf"] <= record["r_inf_rfgs"] + 0.01


def test_failed_attacks_are_left_out_of_r2():
    """The failure rule: with F failures among N, r2 = Σ_flipped d / (N − F), for both attacks."""
    config = tiny(guo_mnist.get_config("quick"), num_examples=40, measures="r2,r2_cw", deepfool_max_iter=1,
                  cw_binary_search_steps=1, cw_steps=3, cw_initial_const=0.001, cw_learning_rate=0.01)
    dataset = load_data(config.data)
    model = build_model(config.model, dataset, 0)  # untrained: some images flip in one step, some not
    record = robustness_record(model, dataset, config)
    from tfsparse import attacks
    from tfsparse.pipelines._build import eval_subset

    x, y = eval_subset(dataset, 40)
    cw = attacks.CarliniWagnerL2(binary_search_steps=1, steps=3, initial_const=0.001,
                                 learning_rate=config.eval.cw_learning_rate)
    for key, attack in (("r2", attacks.DeepFool(max_iter=1)), ("r2_cw", cw)):
        result = attack.run(model, x, y)
        assert record[f"{key}_failures"] == result.failures
        expected = result.l2[result.success].sum() / (len(x) - result.failures)
        assert record[key] == pytest.approx(expected, rel=1e-5), key
    assert record["r2_failures"] > 0 and record["r2_cw_failures"] > 0  # the rule was exercised


def synthetic(r2_by_round, clean_by_round, seeds=3, noise=0.001):
    """Records of ``seeds`` seeds: round r has r2 = r2_by_round[r] ± noise, sparsity 1 − (2/3)^r."""
    records = []
    for seed in range(seeds):
        offset = (seed - (seeds - 1) / 2) * noise
        for r, (r2, clean) in enumerate(zip(r2_by_round, clean_by_round)):
            records.append({"seed": seed, "round": r, "sparsity": 1 - (2 / 3) ** r, "clean_accuracy": clean,
                            "r_inf": 0.1 * r, "r2": r2 + offset})
    return records


def test_over_pruning_detector_finds_r2_falling_while_accuracy_holds():
    records = synthetic([1.0, 1.2, 1.3, 1.1, 0.8], [0.98, 0.98, 0.98, 0.975, 0.90])
    found = reporting.over_pruning(records, ["r_inf", "r2"])
    assert found["peaks"]["r2"]["round"] == 2 and found["peaks"]["r2"]["value"] == pytest.approx(1.3)
    assert found["peaks"]["r_inf"]["round"] == 4
    assert found["peaks"]["r2"]["sparsity"] == pytest.approx(1 - (2 / 3) ** 2)
    fall = found["r2_falls"]["r2"]
    assert (fall["round"], fall["peak_round"]) == (3, 2)
    assert fall["value"] == pytest.approx(1.1) and fall["clean_accuracy"] == pytest.approx(0.975)


def test_over_pruning_detector_ignores_noise_and_falls_after_accuracy_drops():
    # Within 2 % of the peak: not a fall. The big fall comes with accuracy 0.95 < 0.98 − 0.01.
    noisy = synthetic([1.0, 1.2, 1.19, 1.185, 0.7], [0.98, 0.98, 0.98, 0.98, 0.95])
    assert reporting.over_pruning(noisy, ["r2"])["r2_falls"]["r2"] is None
    # A wide CI (seeds disagree by ±0.3) hides a 0.1 drop that 2 % alone would flag.
    wide = synthetic([1.0, 1.2, 1.1], [0.98] * 3, noise=0.3)
    assert reporting.over_pruning(wide, ["r2"])["r2_falls"]["r2"] is None
    # One seed: no CI, the 2 % tolerance decides.
    single = synthetic([1.0, 1.2, 1.1], [0.98] * 3, seeds=1)
    assert reporting.over_pruning(single, ["r2"])["r2_falls"]["r2"]["round"] == 2


def test_linear_records_put_the_theory_beside_the_measures():
    records = [{"round": 0, "seed": seed, "r2": 2.0, "theory": {"thm31_r_inf_bound": 0.5, "thm31_r2": 1.0 + seed}}
               for seed in (0, 1)]
    keys = _guo.theory_keys(records)
    assert keys == ["theory_thm31_r2", "theory_thm31_r_inf_bound"]  # label order, not record order
    headers = [header for _, header, _ in _guo.table_columns(("r2",), keys)]
    assert headers[-2:] == ["r2 (Thm 3.1)", "r∞ bound (Thm 3.1)"]
    row = reporting.aggregate([_guo.flat(r) for r in records], "round", keys)[0]
    assert row["theory_thm31_r2"] == pytest.approx(1.5) and row["theory_thm31_r_inf_bound"] == pytest.approx(0.5)
    assert _guo.theory_keys([{"round": 0, "r2": 1.0}]) == []  # no theory: no columns
