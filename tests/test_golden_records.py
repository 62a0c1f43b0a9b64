"""Same numbers before and after the experiment engine (issue 29): every experiment's ``quick``
config, shrunk to seconds (same code path), writes records equal to golden records that the
pipelines written one by one produced on the same seeds (``tests/golden/<experiment>.json``).

Timings, paths and run metadata are left out of the comparison; every other field of every
record is compared (floats to 1e-6: the same arithmetic on one CPU gives the same bits, the
margin only absorbs a different BLAS thread split). ``TFSPARSE_WRITE_GOLDEN=1 pytest
tests/test_golden_records.py --runslow`` rewrites the files (only when a change of numbers is
intended, and said so in the commit).
"""

import importlib
import json
import math
import os
import sys

import pytest

from tfsparse import pipelines
from tfsparse.pipelines.validate import validate

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
SWEEP = {"data.num_train": 600, "data.num_test": 100, "train.steps": 20, "prune.rounds": 2,
         "prune.retrain_steps": 5, "eval.num_examples": 30, "eval.deepfool_max_iter": 10, "eval.measures": "r_inf,r2"}
LINEAR = {"seeds": (0,), "model.name": "linear", "data.num_train": 256, "data.num_test": 64, "train.steps": 20,
          "train.epochs": 0.0, "prune.rounds": 1, "prune.retrain_steps": 4, "eval.num_examples": 16,
          "eval.measures": "r_inf,r2", "eval.deepfool_max_iter": 5}
LOTTERY = {"seeds": (0,), "model.name": "lenet300_100", "data.num_train": 128, "data.num_test": 64,
           "lottery.iterations": 1, "lottery.prune_fraction": 0.5, "lottery.search_epochs": 0.5,
           "adversarial_train.epochs": 0.5, "pgd.steps": 2, "pgd.eval_steps": 3, "pgd.eval_examples": 16,
           "pgd.eps_warmup_epochs": 0.0}
RSR = {"seeds": (0,), "data.num_train": 256, "data.num_test": 64, "adversarial_train.epochs": 1.0,
       "train.epochs": 1.0, "pgd.eps_warmup_epochs": 0.0, "pgd.steps": 2, "pgd.eval_steps": 2, "rsr.steps": 2,
       "rsr.eot_samples": 2, "table.num_examples": 16}
# (config file, variant, overrides, fast): the fast ones run in every `make test` (the sweep and the lottery
# table, the cheapest: ~45 s together), the others with --runslow (`make test-all`), e.g. before a change of
# a declaration lands.
RUNS = {
    "guo_progressive_pruning": ("guo_mnist", "quick", {**SWEEP, "seeds": (0, 1)}, True),
    "wang_oneshot": ("wang_mnist", "quick", {
        "seeds": (0,), "methods": ("gup", "fp"), "sparsities": (0.5,), "data.num_train": 300, "data.num_test": 60,
        "validation.num_examples": 40, "adversarial_train.epochs": 1.0, "scratch.epochs": 2.0, "pgd.steps": 2,
        "validation.pgd_steps": 2, "measure.num_examples": 16, "measure.pgd_steps": 5,
        "measure.distortion_examples": 8, "measure.distortion_steps": 3, "measure.distortion_bisections": 3,
        "measure.lipschitz_iterations": 10}, False),
    "rsr_table1": ("rsr_table1", "quick", {**RSR, "table.schemes": ("pgd", "rsr"), "autoattack.steps": 2}, False),
    "wang_lottery": ("wang_lottery", "quick", LOTTERY, True),
    "wang_iwi": ("wang_iwi", "quick", {**LOTTERY, "iwi.large_epochs": 0.5}, False),
    "rsr_blackbox": ("rsr_blackbox", "quick", {**RSR, "zoo.num_examples": 4, "zoo.max_queries": 1544,
                                               "table.stages": ("after",)}, False),
    "guo_activation_l1": ("guo_activation_l1", "quick", {
        "seeds": (0,), "data.num_train": 600, "data.num_test": 100, "train.steps": 40, "eval.num_examples": 30,
        "eval.deepfool_max_iter": 10, "eval.measures": "r_inf,r2"}, False),
    "guo_pruned_models": ("guo_pruned_models", "quick", {**LINEAR, "pruned_models.last_rounds": 1}, False),
    "guo_clever": ("guo_clever", "quick", {**LINEAR, "clever.rounds": (0, 1), "clever.num_images": 3,
                                           "clever.batches": 3, "clever.samples": 4}, False),
    "guo_r2_gap": ("guo_r2_gap", "quick", {"models": ("lenet300_100",), "data.num_train": 300, "data.num_test": 60,
                                           "train.steps": 20, "lengths": (10, 20), "eval.num_examples": 10}, False),
}
# Fields that differ between two runs of the same numbers.
VOLATILE = ("seconds", "metadata", "resumed", "path", "dir", "_at", "source", "figure")


def shrunk(name):
    module, variant, overrides, _ = RUNS[name]
    config = importlib.import_module(f"configs.{module}").get_config(variant)
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        section = config
        for parent in parents:
            section = section[parent]
        section[leaf] = value
    return validate(config)


def stable(value):
    """The value without its volatile fields (recursively), NaN written as the string "nan"."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in sorted(value.items()) if not any(word in k for word in VOLATILE)}
    if isinstance(value, (list, tuple)):
        return [stable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def records_of(run_dir):
    with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as handle:
        state = json.load(handle)
    assert state["status"] == "complete", state.get("error")
    return stable(state.get("records", state.get("rows")))


def assert_same(found, golden, where="records"):
    assert type(found) is type(golden) or {type(found), type(golden)} <= {int, float}, where
    if isinstance(golden, dict):
        assert sorted(found) == sorted(golden), f"{where}: keys {sorted(set(found) ^ set(golden))}"
        for key in golden:
            assert_same(found[key], golden[key], f"{where}.{key}")
    elif isinstance(golden, list):
        assert len(found) == len(golden), f"{where}: {len(found)} entries, golden {len(golden)}"
        for index, (a, b) in enumerate(zip(found, golden)):
            assert_same(a, b, f"{where}[{index}]")
    elif isinstance(golden, float):
        assert found == pytest.approx(golden, abs=1e-6), where
    else:
        assert found == golden, where


@pytest.mark.parametrize("name", [pytest.param(name, marks=() if fast else pytest.mark.slow)
                                  for name, (_, _, _, fast) in RUNS.items()])
def test_quick_records_equal_the_golden_ones(name, tmp_path):
    run_dir = pipelines.experiment(name)(shrunk(name), str(tmp_path / name), log=lambda *_: None)
    found = records_of(run_dir)
    path = os.path.join(GOLDEN, f"{name}.json")
    if os.environ.get("TFSPARSE_WRITE_GOLDEN"):
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(found, handle, indent=1, sort_keys=True)
            handle.write("\n")
    with open(path, encoding="utf-8") as handle:
        golden = json.load(handle)
    assert_same(found, golden)


def test_the_overrides_name_existing_keys():
    for name in RUNS:
        module, variant, overrides, _ = RUNS[name]
        config = importlib.import_module(f"configs.{module}").get_config(variant)
        for key in overrides:
            section = config
            for part in key.split("."):
                assert part in section, f"{name}: {key}"
                section = section[part]
