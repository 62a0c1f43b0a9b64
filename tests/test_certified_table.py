"""The certified table (tfsparse.pipelines.certified, configs/certified_mnist.py; issue 34, item 5).

Fast: the quick declaration end to end in-process, shrunk by overrides (CROWN-IBP and Gaussian
smoothing, dense and 80 % pruned; the same code path as ``scripts/experiment.py``), then what
its files hold; the
per-unit objective each training reads; the checks; the seed summary with paired differences.
"""

import json
import sys

import numpy as np
import pytest
from cli_helpers import REPO

from tfsparse.errors import ConfigError
from tfsparse.pipelines import certified
from tfsparse.pipelines import experiment
from tfsparse.pipelines import validate

sys.path.insert(0, REPO)
from configs import certified_mnist  # noqa: E402


def _quick(**overrides):
    config = certified_mnist.get_config("quick")
    config.data.num_train = 256
    config.train.epochs = config.adversarial_train.epochs = 1.0
    config.finetune_epochs = 0.5
    config.measure.update({"num_examples": 32, "pgd_steps": 3})
    config.pgd.steps = 2
    config.update(overrides)
    return validate.validate(config)


@pytest.mark.parametrize("variant", certified_mnist.VARIANTS)
def test_shipped_variants_validate(variant):
    config = certified_mnist.get_config(variant)
    validate.validate(config)
    certified.EXPERIMENT.check(config)


def test_crown_ibp_and_smoothing_dense_and_pruned_end_to_end(tmp_path):
    config = _quick(trainings=("crown_ibp", "gaussian"))
    config.smoothing.update({"n": 200, "num_examples": 32})
    run_dir = experiment("certified_pruning")(config, str(tmp_path / "run"), log=lambda line: None)
    state = json.loads((tmp_path / "run" / "results.json").read_text())
    assert state["status"] == "complete" and state["experiment"] == "certified_pruning"
    (dense, pruned), smoothed = state["records"][:2], state["records"][2:]
    assert (dense["training"], dense["sparsity"], pruned["sparsity"]) == ("crown_ibp", 0.0, 0.8)
    assert dense["weight_sparsity"] == 0.0 and pruned["weight_sparsity"] == pytest.approx(0.8, abs=0.01)
    for record in state["records"][:2]:
        # One measure on the same 32 images: proved ≤ attacked ≤ clean (enforced per image).
        assert record["num_eval"] == 32 and "PGD(eps=0.1" in record["pgd_attack"]
        assert 0 <= record["certified_ibp"] <= record["pgd_accuracy"] <= record["clean_accuracy"]
        assert 0 <= record["certified_crown"] <= record["pgd_accuracy"]
        assert record["autoattack_accuracy"] is None  # quick: no AutoAttack column
    row = next(r for r in state["summary"] if r["sparsity"] == 0.8)
    assert row["certified_crown_vs_dense"] == pytest.approx(pruned["certified_crown"] - dense["certified_crown"])
    markdown = (tmp_path / "run" / "results.md").read_text()
    assert "| crown_ibp | 0.10 | 0.80 |" in markdown
    # Smoothing rows: σ in place of ε; certified l2 accuracy never grows with the radius.
    assert [(r["training"], r["sigma"], r["sparsity"]) for r in smoothed] == [("gaussian", 0.25, 0.0),
                                                                              ("gaussian", 0.25, 0.8)]
    for record in smoothed:
        curve = [record[f"smoothed_at_{r:g}"] for r in config.smoothing.radii]
        assert curve == sorted(curve, reverse=True) and curve[0] <= 1 - record["smoothed_abstain"]
        assert record["smoothed_n"] == 200 and record["smoothed_examples"] == 32
    assert "#### Randomized smoothing" in markdown and "| 0.25 | 0.80 |" in markdown
    assert (tmp_path / "run" / certified.FIGURE).stat().st_size > 0
    # The pruned model was saved with real zeros, 80 % of its kernels (the fine-tuning held the mask).
    import h5py

    with h5py.File(tmp_path / "run" / "checkpoints" / "seed0" / "crown_ibp_eps0.1_s0.8.weights.h5") as weights:
        kernels = []
        weights.visititems(lambda name, item: kernels.append(np.asarray(item))
                           if isinstance(item, h5py.Dataset) and item.ndim >= 2 else None)  # kernels, not biases
    zeros = sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)
    assert zeros == pytest.approx(0.8, abs=0.01)
    again = experiment("certified_pruning")(config, run_dir, resume=True, log=lambda line: None)
    assert again == run_dir and json.loads((tmp_path / "run" / "results.json").read_text()) == state


def test_each_unit_reads_its_own_objective():
    config = _quick(train_eps=(0.2,))
    ibp = certified.objective(config, "ibp", 0.1)
    assert (ibp.training, ibp.pgd.eps, ibp.certified.train_eps, ibp.certified.kappa_end) == ("ibp", 0.1, 0.2, 0.5)
    tuned = certified.objective(config, "crown_ibp", 0.1, finetune=True)
    assert tuned.certified.kappa_end == 0.0 and tuned.certified.warmup_epochs == tuned.certified.ramp_epochs == 0
    assert tuned.adversarial_train.epochs == 0.5 and tuned.pgd.eps_warmup_epochs == 0
    clean = certified.objective(config, "clean", 0.1, finetune=True)
    assert clean.train.epochs == 0.5 and config.train.epochs == 1.0  # the table's own config is untouched


@pytest.mark.parametrize("overrides, message", [
    ({"trainings": ("clean", "rsr")}, "choose one or more of"),
    ({"train_eps": (0.2, 0.4)}, "must match eps_values"),
    ({"sparsities": (0.0, 1.0)}, "sparsities"),
    ({"eps_values": (0.0,)}, "eps_values"),
    ({"finetune_epochs": 0.0}, "finetune_epochs must be > 0"),
    ({"smoothing_sigmas": ()}, "smoothing_sigmas"),
])
def test_bad_table_settings_are_refused_before_any_work(overrides, message):
    config = certified_mnist.get_config("quick")
    config.update(overrides)
    with pytest.raises(ConfigError, match=message):
        certified.EXPERIMENT.check(config)


def test_a_bad_objective_section_is_refused_by_its_key():
    config = certified_mnist.get_config("quick")
    config.crown_ibp.beta_end = 2.0
    with pytest.raises(ConfigError, match=r"certified\.beta_end must be in \[0, 1\]"):
        certified.EXPERIMENT.check(config)


def test_summary_pairs_each_pruned_row_with_the_dense_row_of_its_seed():
    def record(seed, s, crown):
        return {"seed": seed, "training": "ibp", "eps": 0.1, "sparsity": s, "clean_accuracy": 0.9,
                "pgd_accuracy": 0.8, "autoattack_accuracy": None, "certified_ibp": crown, "certified_crown": crown,
                "weight_sparsity": s, "train_seconds": 1.0}

    rows = certified.summary_rows([record(0, 0.0, 0.5), record(0, 0.9, 0.6), record(1, 0.0, 0.7),
                                   record(1, 0.9, 0.7)])
    pruned = next(r for r in rows if r["sparsity"] == 0.9)
    assert pruned["n"] == 2 and pruned["certified_crown"] == pytest.approx(0.65)
    assert pruned["certified_crown_vs_dense"] == pytest.approx(0.05)  # (0.1 + 0.0) / 2
