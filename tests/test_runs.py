"""Runs that survive: status in results.json, kill -9 + --resume equals an uninterrupted run,
Ctrl-C / SIGTERM leave an ``interrupted`` run, and a taken workdir is refused with the way out.

Every test drives the real scripts in a subprocess on tiny configs (embedded MNIST sample).
"""

import csv
import json
import os
import signal

import numpy as np
import pytest
from cli_helpers import TINY_SWEEP
from cli_helpers import error_line
from cli_helpers import run_script
from cli_helpers import run_until

SWEEP = TINY_SWEEP  # dense reference + 2 pruning rounds
TRAIN = ["--model=lenet300_100", "--num_train=256", "--epochs=6", "--config.train.batch_size=32",
         "--config.eval.epoch_examples=64", "--config.eval.num_examples=64", "--config.verbose=0"]
TIMING = ("train_seconds", "eval_seconds", "resumed", "metadata", "saved_model")


def state(workdir):
    path = os.path.join(workdir, "results.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def measured(value):
    """``value`` without wall-clock figures and paths, which legitimately differ between runs."""
    if isinstance(value, dict):
        return {k: measured(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [measured(v) for v in value]
    return value


def history(workdir):
    with open(os.path.join(workdir, "history.csv"), newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def uninterrupted_sweep(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sweep") / "whole"
    result = run_script("sweep.py", *SWEEP, f"--workdir={workdir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_a_complete_sweep_writes_its_files_says_so_and_is_not_redone(uninterrupted_sweep):
    for name in ("config.json", "results.json", "results.csv", "results.md", "robustness_vs_sparsity.png"):
        assert (uninterrupted_sweep / name).is_file(), name
    final = state(uninterrupted_sweep)
    assert final["status"] == "complete" and final["last_completed"] == "seed 0 round 2"
    assert [r["round"] for r in final["records"]] == [0, 1, 2]
    for record in final["records"]:
        for key in ("round", "sparsity", "clean_accuracy", "r_inf", "r2"):
            assert isinstance(record[key], (int, float)), key
    # ρ = 1/3 per round, counted in the stripped weights: 1 − (2/3)^r.
    np.testing.assert_allclose([r["sparsity"] for r in final["records"]], [0, 1 / 3, 5 / 9], atol=2e-3)
    assert "| round |" in (uninterrupted_sweep / "results.md").read_text()
    assert (uninterrupted_sweep / "checkpoints" / "seed0" / "round2.weights.h5").is_file()
    again = run_script("sweep.py", *SWEEP, f"--workdir={uninterrupted_sweep}")
    assert again.returncode == 2
    assert "status complete" in error_line(again) and "choose a new --workdir" in error_line(again)
    assert state(uninterrupted_sweep) == final


# Slow tier: the kill-and-resume path stays fast for train.py and the RSR tables (below, test_rsr_tables).
@pytest.mark.slow
def test_sweep_killed_then_resumed_ends_with_the_uninterrupted_records(uninterrupted_sweep, tmp_path):
    workdir = tmp_path / "killed"
    code, _ = run_until("sweep.py", [*SWEEP, f"--workdir={workdir}"],
                        lambda: len(state(workdir).get("records", [])) >= 2, sig=signal.SIGKILL)
    assert code == -signal.SIGKILL
    killed = state(workdir)
    assert killed["status"] == "running" and killed["last_completed"].startswith("seed 0 round")
    assert len(killed["records"]) < 3

    refused = run_script("sweep.py", *SWEEP, f"--workdir={workdir}")
    assert refused.returncode == 2 and "--resume" in error_line(refused)
    other_flags = run_script("sweep.py", *SWEEP, "--config.prune.rate=0.5", "--resume", f"--workdir={workdir}")
    assert other_flags.returncode == 2 and "prune.rate" in error_line(other_flags)

    resumed = run_script("sweep.py", *SWEEP, "--resume", f"--workdir={workdir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after round" in resumed.stdout
    final, whole = state(workdir), state(uninterrupted_sweep)
    assert final["status"] == "complete" and final["resumed"] == 1
    assert measured(final["records"]) == measured(whole["records"])
    assert (workdir / "results.md").read_text() == (uninterrupted_sweep / "results.md").read_text()


def test_ctrl_c_leaves_an_interrupted_sweep_with_its_partial_results(tmp_path):
    workdir = tmp_path / "ctrl_c"
    code, stderr = run_until("sweep.py", [*SWEEP, f"--workdir={workdir}"],
                             lambda: len(state(workdir).get("records", [])) >= 1, sig=signal.SIGINT)
    crash = stderr.find("Fatal Python error")  # faulthandler's report (absl enables it) names the thread
    assert code == 130, stderr[crash:crash + 4000] if crash >= 0 else stderr[-2000:]
    assert [line for line in stderr.splitlines() if line.startswith("interrupted")], stderr[-2000:]
    assert "Traceback" not in stderr
    stopped = state(workdir)
    assert stopped["status"] == "interrupted" and len(stopped["records"]) >= 1
    refused = run_script("sweep.py", *SWEEP, f"--workdir={workdir}")
    assert refused.returncode == 2 and "status interrupted" in error_line(refused)


@pytest.fixture(scope="module")
def uninterrupted_train(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("train") / "whole"
    result = run_script("train.py", *TRAIN, f"--workdir={workdir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_train_records_status_history_and_tensorboard(uninterrupted_train):
    final = state(uninterrupted_train)
    assert final["status"] == "complete" and final["last_completed"] == "evaluation"
    assert final["train_steps"] == 6 * 8  # 6 epochs of ceil(256 / 32) batches
    rows = history(uninterrupted_train)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "accuracy", "weight_sparsity", "robust_fgsm"} <= set(rows[0])
    events = [f for _, _, files in os.walk(uninterrupted_train / "tensorboard") for f in files]
    assert any(f.startswith("events.out.tfevents") for f in events)


def test_train_killed_then_resumed_ends_with_the_uninterrupted_model(uninterrupted_train, tmp_path):
    workdir = tmp_path / "killed"
    code, _ = run_until("train.py", [*TRAIN, f"--workdir={workdir}"],
                        lambda: (workdir / "checkpoints" / "checkpoint").exists(), sig=signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert state(workdir)["status"] == "running"
    assert (workdir / ".lock").exists()  # the killed run's lock file: stale, its flock went with the process
    resumed = run_script("train.py", *TRAIN, "--resume", f"--workdir={workdir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (workdir / ".lock").exists()  # released when the run's process ends
    final, whole = state(workdir), state(uninterrupted_train)
    assert final["status"] == "complete" and final["resumed"] == 1
    assert measured(final) == measured(whole)
    np.testing.assert_array_equal(
        [list(r.values()) for r in history(workdir)], [list(r.values()) for r in history(uninterrupted_train)]
    )


@pytest.mark.slow
def test_sigterm_leaves_an_interrupted_training_run_that_resumes(tmp_path):
    workdir = tmp_path / "term"
    code, stderr = run_until("train.py", [*TRAIN, f"--workdir={workdir}"],
                             lambda: (workdir / "checkpoints" / "checkpoint").exists(), sig=signal.SIGTERM)
    assert code == 128 + signal.SIGTERM and "Traceback" not in stderr
    assert state(workdir)["status"] == "interrupted"
    resumed = run_script("train.py", *TRAIN, "--resume", f"--workdir={workdir}")
    assert resumed.returncode == 0 and state(workdir)["status"] == "complete"
