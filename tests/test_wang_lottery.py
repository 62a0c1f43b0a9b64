"""Wang et al. Tables 3–4 pipelines (tfsparse.pipelines.wang_lottery / wang_iwi).

The rows' starting weights are checked from outside: on a tiny hand-built model for the
Table 3 controls (``start_model``), and inside a real IWI run through a spy around
``SeedWork.fit`` that copies every model just before it trains, compared with θ0 rebuilt
from the seed and with the masks and ticket weights the run left on disk.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from test_lottery import tiny_model
from tfsparse import pipelines
from tfsparse import reporting
from tfsparse import sparsity
from tfsparse.errors import ConfigError
from tfsparse.pipelines import engine
from tfsparse.pipelines import wang_iwi
from tfsparse.pipelines import wang_lottery
from tfsparse.pipelines import wang_lottery_report
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines.validate import validate
from tfsparse.sparsity._lottery import start_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from configs import wang_iwi as iwi_config  # noqa: E402
from configs import wang_lottery as lottery_config  # noqa: E402


def weights_by_layer(model):
    """{layer name: [weights]} of a model, read after stripping any pruning wrappers."""
    if sparsity.has_pruning_wrappers(model):
        model = sparsity.strip(sparsity.copy_model(model))
    return {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.weights}


def ticket_masks(model, seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(size=values[0].shape) > 0.6
            for name, values in weights_by_layer(model).items() if name in ("conv1", "fc1", "logits")}


def test_table3_controls_share_the_ticket_mask_or_its_sparsity_but_not_its_weights():
    theta0 = tiny_model()
    initial = weights_by_layer(theta0)
    masks = ticket_masks(theta0)
    ticket = weights_by_layer(start_model("ticket", theta0, masks, seed=0))
    reinit = weights_by_layer(start_model("reinit", theta0, masks, seed=0))
    random = weights_by_layer(start_model("random", theta0, masks, seed=0))
    for name, mask in masks.items():
        np.testing.assert_array_equal(ticket[name][0], np.where(mask, initial[name][0], 0.0))
        # Fresh weights on exactly the same mask: zero off the mask, new values on it.
        np.testing.assert_array_equal(reinit[name][0] != 0, mask)
        assert np.all(reinit[name][0][mask] != initial[name][0][mask]), name
        # Random mask: the ticket's count in every layer, other positions, θ0's values.
        chosen = random[name][0] != 0
        assert chosen.sum() == mask.sum(), name
        assert (chosen & mask).sum() < 0.8 * mask.sum(), name
        np.testing.assert_array_equal(random[name][0][chosen], initial[name][0][chosen])
    assert not np.array_equal(reinit["fc1"][1], initial["fc1"][1])  # biases re-drawn as well
    np.testing.assert_array_equal(random["fc1"][1], initial["fc1"][1])  # ... but rewound to θ0 here
    again = weights_by_layer(start_model("reinit", theta0, masks, seed=0))
    other = weights_by_layer(start_model("reinit", theta0, masks, seed=1))
    np.testing.assert_array_equal(again["conv1"][0], reinit["conv1"][0])
    assert not np.array_equal(other["conv1"][0], reinit["conv1"][0])
    for name, values in weights_by_layer(theta0).items():  # θ0 untouched
        for value, first in zip(values, initial[name]):
            np.testing.assert_array_equal(value, first)
    with pytest.raises(ValueError, match="unknown row"):
        start_model("dense", theta0, masks, seed=0)


@pytest.mark.parametrize("key, value, message", [
    ("lottery.iterations", 4, "final sparsity"),
    ("lottery.prune_fraction", 0.0, "prune_fraction"),
    ("adversarial_train.steps", 100, "budgets of the lottery tables are epochs"),
    ("training", "clean", "training must be 'pgd'"),
    ("robust_eval.autoattack_version", "fast", "autoattack_version"),
    ("iwi.large_epochs", 0.0, "large_epochs"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, key, value, message):
    config = iwi_config.get_config("quick")
    section, _, name = key.rpartition(".")
    (config[section] if section else config)[name] = value
    workdir = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        wang_iwi.run_iwi_table(config, str(workdir), log=lambda *_: None)
    assert not workdir.exists()


def tiny(config):
    """The quick config shrunk to seconds: one seed, an MLP, fractions of an epoch, PGD-2/PGD-3."""
    config.seeds = (0,)
    config.model.name = "lenet300_100"
    config.data.num_train = 128
    config.data.num_test = 64
    config.lottery.iterations = 1
    config.lottery.prune_fraction = 0.5
    config.lottery.search_epochs = 0.5
    config.adversarial_train.epochs = 0.5
    config.pgd.steps = 2
    config.pgd.eval_steps = 3
    config.pgd.eval_examples = 16
    config.pgd.eps_warmup_epochs = 0.0
    return config


REAL_FIT = wang_lottery.SeedWork.fit


class FitSpy:
    """Replaces ``SeedWork.fit``: copies each model before it trains; can fail at a phase."""

    def __init__(self, fail_at=None):
        self.starts, self.fail_at = [], fail_at

    def install(self, monkeypatch):
        def fit(work, model, epochs, phase):
            self.starts.append((phase, weights_by_layer(model)))
            if phase == self.fail_at:
                raise RuntimeError(f"stopped before {phase}")
            return REAL_FIT(work, model, epochs, phase)

        monkeypatch.setattr(wang_lottery.SeedWork, "fit", fit)


def test_iwi_starts_from_inherited_weights_and_resumes_after_the_last_row(tmp_path, monkeypatch):
    config = tiny(iwi_config.get_config("quick"))
    config.iwi.large_epochs = 0.5
    workdir = str(tmp_path / "iwi")
    first = FitSpy(fail_at="iwi")
    first.install(monkeypatch)
    with pytest.raises(RuntimeError, match="stopped before iwi"):
        wang_iwi.run_iwi_table(config, workdir, log=lambda *_: None)
    state = json.load(open(os.path.join(workdir, "results.json"), encoding="utf-8"))
    assert state["status"] == "failed" and state["last_completed"] == "seed 0 ticket"
    assert [r["row"] for r in state["records"]] == ["dense", "ticket"]
    assert [phase for phase, _ in first.starts] == ["dense", "ticket search 1", "ticket", "iwi"]
    # Finished phases leave no epoch checkpoints behind (the search's go once its masks are saved).
    assert not [name for name in os.listdir(os.path.join(workdir, "checkpoints", "seed0")) if "training" in name]

    resumed = FitSpy()
    resumed.install(monkeypatch)
    wang_iwi.run_iwi_table(config, workdir, resume=True, log=lambda *_: None)
    assert [phase for phase, _ in resumed.starts] == ["iwi"]  # neither the search nor the ticket again

    # θ′ ⊙ M_K + θ0 ⊙ (M0 − M_K), exactly: θ0 rebuilt from the seed, θ′ and M_K from the run's files.
    dataset = load_data(config.data)
    theta0 = weights_by_layer(build_model(config.model, dataset, 0))
    finetuned_model = build_model(config.model, dataset, 0)
    finetuned_model.load_weights(os.path.join(workdir, "checkpoints", "seed0", "ticket.weights.h5"))
    finetuned = weights_by_layer(finetuned_model)
    with np.load(os.path.join(workdir, "checkpoints", "seed0", "masks.npz")) as stored:
        masks = {name: stored[name] for name in stored.files}
    assert set(masks) == {"fc1", "fc2", "logits"}
    pruned = sum(int((~m).sum()) for m in masks.values())
    assert pruned == round(0.5 * sum(m.size for m in masks.values()))
    for spy in (first, resumed):
        start = spy.starts[-1][1]
        for name, values in start.items():
            kernel = values[0]
            expected = np.where(masks[name], finetuned[name][0], theta0[name][0]) if name in masks else \
                finetuned[name][0]
            np.testing.assert_array_equal(kernel, expected, err_msg=name)
            assert np.count_nonzero(kernel) == kernel.size, name  # dense again
            for value, inherited in zip(values[1:], finetuned[name][1:]):
                np.testing.assert_array_equal(value, inherited, err_msg=name)
    # The ticket row trained θ0 ⊙ M_K; the dense row θ0 for IWI's total epochs.
    ticket_start = dict(first.starts)["ticket"]
    for name, mask in masks.items():
        np.testing.assert_array_equal(ticket_start[name][0], np.where(mask, theta0[name][0], 0.0))
    state = json.load(open(os.path.join(workdir, "results.json"), encoding="utf-8"))
    assert state["status"] == "complete" and state["resumed"] == 1
    rows = {r["row"]: r for r in state["records"]}
    assert rows["dense"]["epochs"] == wang_iwi.total_epochs(config) == 1.5 == rows["iwi"]["total_epochs"]
    assert rows["iwi"]["epochs"] == 0.5 and rows["ticket"]["total_epochs"] == 1.0
    assert rows["ticket"]["sparsity"] == pytest.approx(pruned / sum(m.size for m in masks.values()))
    assert rows["iwi"]["sparsity"] == 0.0 and rows["dense"]["sparsity"] == 0.0
    for name in ("results.md", "results.csv", wang_lottery_report.FIGURE):
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name
    section = pipelines.report_section("wang_iwi")([workdir])
    assert "Inverse Weights Inheritance" in section and "| iwi |" in section and wang_lottery_report.FIGURE in section
    # scripts/plot.py's path: the declared figure, redrawn from the run's files alone.
    figure = os.path.join(workdir, wang_lottery_report.FIGURE)
    os.remove(figure)
    assert engine.redraw_figures(pipelines.experiment("wang_iwi"), workdir) == [figure]
    assert os.path.getsize(figure) > 0
    _check_seeds_in_separate_directories_pool(workdir, state)


def test_a_phase_killed_mid_training_resumes_from_its_last_epoch(tmp_path, monkeypatch):
    # SeedWork.fit checkpoints every epoch of a phase: killed after its 2nd epoch's checkpoint
    # (the 3rd epoch's never comes), the phase resumes there and ends with the weights, steps and
    # (at least) the seconds of an uninterrupted one.
    from types import SimpleNamespace

    from tfsparse.training import TrainingClock

    config = tiny(lottery_config.get_config("quick"))
    dataset = load_data(config.data)
    run = SimpleNamespace(file=lambda *parts: str(tmp_path.joinpath(*parts)))
    whole_work = wang_lottery.SeedWork(run, config, dataset, dataset, 0, log=lambda *_: None)

    def phase(work, name):
        model = work.theta0()
        steps, seconds = work.fit(model, 4.0, name)
        return model, steps, seconds

    whole, whole_steps, _ = phase(whole_work, "uninterrupted")
    real_end = TrainingClock.on_epoch_end

    def killed_in_epoch_3(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt("killed")
        real_end(self, epoch, logs)

    monkeypatch.setattr(TrainingClock, "on_epoch_end", killed_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        phase(whole_work, "dense")
    monkeypatch.setattr(TrainingClock, "on_epoch_end", real_end)
    assert os.path.isdir(whole_work.training_dir("dense"))
    lines = []
    whole_work.log = lines.append
    resumed, steps, seconds = phase(whole_work, "dense")
    assert steps == whole_steps and seconds > 0
    assert lines[0] == "seed 0 dense: resuming after epoch 2"
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def _check_seeds_in_separate_directories_pool(workdir, state):
    """report.py pools seeds run as separate directories into one table; a seed given twice is refused."""
    other = workdir + "_seed1"
    os.makedirs(other)
    shifted = [dict(r, seed=1, clean_accuracy=r["clean_accuracy"] - 0.1) for r in state["records"]]
    with open(os.path.join(other, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(dict(state, records=shifted), handle)
    with open(os.path.join(workdir, "config.json"), encoding="utf-8") as handle:
        stored = json.load(handle)
    stored["config"]["seeds"] = [1]
    with open(os.path.join(other, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(stored, handle)
    section = pipelines.report_section("wang_iwi")([workdir, other])
    assert section.count("### ") == 1 and wang_lottery_report.POOLED_FIGURE in section
    assert os.path.isfile(os.path.join(workdir, wang_lottery_report.POOLED_FIGURE))
    dense = next(line for line in section.splitlines() if line.startswith("| dense |")).split(" | ")
    clean = next(r for r in state["records"] if r["row"] == "dense")["clean_accuracy"] - 0.05  # two seeds' mean
    assert dense[5] == "2" and dense[7].startswith(f"{clean:.4f} ± ")
    with pytest.raises(ConfigError, match="seed 0 is in both"):
        pipelines.report_section("wang_iwi")([workdir, workdir])


def _script(config_file, workdir, *overrides):
    command = [sys.executable, os.path.join(REPO, "scripts", "experiment.py"), f"--config={config_file}:quick",
               f"--workdir={workdir}", *overrides]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)


SHRINK = ["--config.seeds=(0,1)", "--config.data.num_train=256", "--config.data.num_test=100",
          "--config.lottery.search_epochs=0.5", "--config.adversarial_train.epochs=0.5",
          "--config.pgd.eval_examples=32", "--config.pgd.eval_steps=5"]


@pytest.mark.slow
@pytest.mark.parametrize("name, rows", [("wang_lottery", wang_lottery.ROWS), ("wang_iwi", wang_iwi.ROWS)])
def test_quick_config_runs_end_to_end_from_the_script(tmp_path, name, rows):
    """The quick config (shrunk by flags, same code path) writes its table and figure; two seeds give CIs."""
    workdir = str(tmp_path / name)
    extra = ["--config.iwi.large_epochs=0.5"] if name == "wang_iwi" else []
    done = _script(f"configs/{name}.py", workdir, *SHRINK, *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.load(open(os.path.join(workdir, "results.json"), encoding="utf-8"))
    assert state["pipeline"] == name and state["status"] == "complete"
    assert sorted((r["seed"], r["row"]) for r in state["records"]) == sorted((s, r) for s in (0, 1) for r in rows)
    table = open(os.path.join(workdir, "results.md"), encoding="utf-8").read()
    for row in rows:
        assert f"| {row} |" in table
    assert " ± " in table  # two seeds: mean ± 95 % CI
    with open(os.path.join(workdir, wang_lottery_report.FIGURE), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    again = _script(f"configs/{name}.py", workdir, *SHRINK, *extra, "--resume")
    assert again.returncode == 0 and "already complete" in again.stdout
    if name == "wang_lottery":
        summary = {r["row"]: r for r in state["summary"]}
        assert summary["ticket"]["sparsity"] == summary["reinit"]["sparsity"] == summary["random"]["sparsity"]
        assert summary["ticket"]["sparsity"] == pytest.approx(0.6, abs=1e-3)


def test_configs_name_their_pipelines_and_share_the_lottery_section():
    for variant in lottery_config.VARIANTS:
        lottery, iwi = lottery_config.get_config(variant), iwi_config.get_config(variant)
        assert pipelines.experiment(lottery.experiment) is wang_lottery.run_lottery_table
        assert pipelines.experiment(iwi.experiment) is wang_iwi.run_iwi_table
        assert lottery.lottery.to_dict().keys() == iwi.lottery.to_dict().keys()
        for config in (lottery, iwi):
            validate(config)  # the common sections, as scripts/experiment.py checks them
            wang_lottery.check_config(config)


def test_rows_are_compared_with_the_dense_row_of_the_same_seed():
    records = [{"seed": s, "row": row, "start": wang_lottery_report.STARTS[row], "sparsity": sp, "clean_accuracy": c,
                "pgd_accuracy": p}
               for s, row, sp, c, p in ((0, "dense", 0.0, 0.99, 0.90), (0, "ticket", 0.6, 0.98, 0.80),
                                        (1, "dense", 0.0, 0.97, 0.70), (1, "ticket", 0.6, 0.97, 0.65),
                                        (2, "ticket", 0.6, 0.50, 0.10))]  # seed 2 has no dense row: unpaired
    dense, ticket = wang_lottery_report.summarise(records, ["dense", "ticket"])
    assert "pgd_accuracy_vs_dense" not in dense and ticket["n"] == 3
    differences = np.array([-0.10, -0.05])
    assert ticket["pgd_accuracy_vs_dense"] == pytest.approx(differences.mean())
    # Student t, 1 degree of freedom: t(0.975) = 12.706; the spread of the differences, not of the rows.
    assert ticket["pgd_accuracy_vs_dense_ci95"] == pytest.approx(12.706 * differences.std(ddof=1) / np.sqrt(2),
                                                                 rel=1e-3)
    assert ticket["clean_accuracy_vs_dense"] == pytest.approx(-0.005)
    assert "pgd_accuracy_vs_ticket" not in ticket and "pgd_accuracy_vs_ticket" not in dense
    # The controls are also paired with the ticket of their seed (seed 1 has no random row).
    records += [{"seed": s, "row": "random", "start": "", "sparsity": 0.6, "clean_accuracy": c, "pgd_accuracy": p}
                for s, c, p in ((0, 0.96, 0.75), (2, 0.40, 0.00))]
    random = wang_lottery_report.summarise(records, ["dense", "ticket", "random"])[2]
    assert random["pgd_accuracy_vs_ticket"] == pytest.approx(np.mean([-0.05, -0.10]))
    assert random["pgd_accuracy_vs_dense"] == pytest.approx(-0.15) and random["pgd_accuracy_vs_dense_ci95"] is None
    header = reporting.markdown_table([random], wang_lottery_report._columns([random])).splitlines()[0]
    assert "Δ PGD vs dense (paired)" in header and "Δ PGD vs ticket (paired)" in header
