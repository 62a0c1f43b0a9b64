"""keras-tuner RSR search (SPEC §8): a two-trial run on a tiny model writes its table."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfsparse.pipelines.tune import over_pruning_point
from tfsparse.pipelines.tune import pareto_front
from tfsparse.pipelines.tune import score
from tfsparse.pipelines.tune import weighted_score

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_objective_penalises_sparsity_shortfall_only():
    assert score(0.4, 0.6, 0.5, 1.0) == pytest.approx(0.4)
    assert score(0.4, 0.3, 0.5, 1.0) == pytest.approx(0.2)


def test_weighted_objective_is_the_stated_sum():
    assert weighted_score(0.9, 0.4, 0.6, 0.25, 0.5, 0.25) == pytest.approx(0.25 * 0.9 + 0.5 * 0.4 + 0.25 * 0.6)
    assert weighted_score(0.9, 0.4, 0.6, 0.0, 1.0, 0.0) == pytest.approx(0.4)


def test_search_objective_picks_the_score_and_bad_values_are_refused():
    from configs import tune_rsr
    from tfsparse.errors import ConfigError
    from tfsparse.pipelines.tune import objective
    from tfsparse.pipelines.validate import validate

    config = tune_rsr.get_config("quick")
    search = config.search
    assert search.objective == "constrained"
    assert objective(0.9, 0.4, 0.3, search) == pytest.approx(score(0.4, 0.3, search.min_sparsity, search.penalty))
    search.objective = "weighted"
    assert objective(0.9, 0.4, 0.3, search) == pytest.approx(
        weighted_score(0.9, 0.4, 0.3, search.weight_clean, search.weight_robust, search.weight_sparsity))
    validate(config)
    for key, value, message in (("objective", "pareto", "search.objective"), ("weight_robust", -1.0, "weight"),
                                ("over_pruning_drop", -0.1, "over_pruning_drop")):
        bad = tune_rsr.get_config("quick")
        bad.search[key] = value
        with pytest.raises(ConfigError, match=message):
            validate(bad)


KEYS = ("sparsity", "clean_accuracy", "pgd_accuracy")


def trial(i, s, c, r):
    return {"trial": str(i), "sparsity": s, "clean_accuracy": c, "pgd_accuracy": r}


def test_pareto_front_by_hand():
    rows = [trial(0, 0.5, 0.9, 0.4),   # front: best clean
            trial(1, 0.7, 0.8, 0.4),   # front: sparser
            trial(2, 0.5, 0.8, 0.4),   # dominated by 0
            trial(3, 0.7, 0.8, 0.4),   # equal to 1: neither dominates, both stay
            trial(4, 0.3, 0.7, 0.5),   # front: best PGD
            trial(5, 0.3, 0.7, float("nan"))]  # a failed trial takes no part
    assert [t["trial"] for t in pareto_front(rows, KEYS)] == ["0", "1", "3", "4"]
    assert [t["trial"] for t in pareto_front(rows, ["sparsity"])] == ["1", "3"]


def test_pareto_front_holds_exactly_the_non_dominated_trials():
    rng = np.random.default_rng(0)
    # Coarse values, so ties (the edge of the definition) are frequent.
    rows = [trial(i, *np.round(rng.random(3), 1)) for i in range(60)]
    front = pareto_front(rows, KEYS)

    def dominated(t):
        return any(all(o[k] >= t[k] for k in KEYS) and any(o[k] > t[k] for k in KEYS) for o in rows)

    assert 0 < len(front) < len(rows)
    assert [t["trial"] for t in front] == [t["trial"] for t in rows if not dominated(t)]


def test_over_pruning_point_is_the_first_level_whose_best_falls_by_the_drop():
    rows = [trial(0, 0.3, 0.9, 0.40), trial(1, 0.3, 0.9, 0.30),   # level 0.3: best 0.40
            trial(2, 0.5, 0.9, 0.42),                              # peak
            trial(3, 0.7, 0.9, 0.39), trial(4, 0.7, 0.9, 0.10),   # best 0.39: within 0.05 of 0.42
            trial(5, 0.85, 0.9, 0.30)]                             # falls by 0.12
    for row in rows:
        row["target_sparsity"] = row["sparsity"]
    point = over_pruning_point(rows, 0.05)
    assert point["trial"] == "5" and point["peak_trial"] == "2"
    assert point["pgd_accuracy"] == 0.30 and point["peak_pgd_accuracy"] == 0.42 and point["sparsity"] == 0.85
    assert over_pruning_point(rows, 0.2) is None
    assert over_pruning_point(rows[:5], 0.02)["trial"] == "3"


def test_two_trial_search_writes_table_and_best_config(tmp_path):
    workdir = tmp_path / "tune"
    overrides = [
        "--config.model.name=lenet300_100", "--config.data.num_train=128", "--config.data.num_test=32",
        "--config.adversarial_train.batch_size=64", "--config.rsr.steps=2", "--config.pgd.eval_steps=2",
        "--config.search.eval_examples=32",
    ]
    proc = subprocess.run(
        [sys.executable, "scripts/tune.py", "--config=configs/tune_rsr.py:quick", "--max_trials=2",
         f"--workdir={workdir}", *overrides],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(workdir / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for row in rows:
        assert 0 <= float(row["pgd_accuracy"]) <= 1
        assert float(row["sparsity"]) == pytest.approx(float(row["target_sparsity"]), abs=0.01)
        assert 1e-6 <= float(row["lasso"]) <= 1e-3
    best = json.loads((workdir / "best.json").read_text())
    assert best["score"] == max(float(r["score"]) for r in rows)
    assert (workdir / "trials.md").read_text().startswith("| trial |")
    for row in rows:
        assert 0 <= float(row["clean_accuracy"]) <= 1 and row["pareto"] in ("True", "False")
    summary = json.loads((workdir / "results.json").read_text())
    front = {r["trial"] for r in summary["pareto_front"]}
    assert front and front == {r["trial"] for r in rows if r["pareto"] == "True"}
    assert summary["pareto_keys"] == list(KEYS) and "over_pruning" in summary
    assert (workdir / "pareto.png").stat().st_size > 0 and (workdir / "fig2.png").stat().st_size > 0
