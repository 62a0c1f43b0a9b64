"""keras-tuner RSR search (SPEC §8): a two-trial run on a tiny model writes its table."""

import csv
import json
import os
import subprocess
import sys

import pytest

from tfsparse.pipelines.tune import score

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_objective_penalises_sparsity_shortfall_only():
    assert score(0.4, 0.6, 0.5, 1.0) == pytest.approx(0.4)
    assert score(0.4, 0.3, 0.5, 1.0) == pytest.approx(0.2)


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
