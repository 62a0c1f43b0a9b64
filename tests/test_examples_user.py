"""The user-facing examples (examples/*.py) run end to end in quick mode and print sane numbers.

Each example runs as a subprocess, as a user would run it (``python examples/NAME.py``),
with ``TFSPARSE_EXAMPLE_QUICK=1`` (fewer images/epochs/steps, same code path).
"""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_example(name, tmp_path):
    env = {**os.environ, "TFSPARSE_EXAMPLE_QUICK": "1", "TFSPARSE_EXAMPLE_OUT": str(tmp_path),
           "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, str(ROOT / "examples" / name)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    values = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            values[key] = value.strip()
    return values


def numbers(values, *keys):
    return [float(values[key]) for key in keys]


def test_prune_and_fit(tmp_path):
    values = run_example("prune_and_fit.py", tmp_path)
    clean, r_inf, r2, sparsity, target = numbers(
        values, "clean_accuracy", "r_inf", "r2", "sparsity", "target_sparsity")
    assert clean > 0.3
    assert 0.0 <= r_inf <= clean
    assert r2 > 0.0
    assert abs(sparsity - target) <= 0.01
    saved = pathlib.Path(values["saved_model"])
    assert saved.is_dir() and (saved / "saved_model.pb").is_file()
    assert (tmp_path / "logs").is_dir()  # TensorBoard wrote its event files


@pytest.mark.slow  # ~15 s quiet; the adversarial / RSR paths it uses are tested in the fast tier
def test_adversarial_fit(tmp_path):
    values = run_example("adversarial_fit.py", tmp_path)
    clean, pgd, rsr_clean, rsr_eot = numbers(
        values, "clean_accuracy", "pgd_accuracy", "rsr_clean_accuracy", "rsr_eot_pgd_accuracy")
    assert clean > 0.3 and rsr_clean > 0.3
    assert 0.0 <= pgd <= clean
    # The RSR model is random at inference: its clean and attacked accuracies come from
    # different noise draws, so allow a little slack.
    assert 0.0 <= rsr_eot <= rsr_clean + 0.05
    assert int(values["stopc_decays"]) >= 0
    assert (tmp_path / "pgd_trained.keras").is_file() and (tmp_path / "rsr.keras").is_file()


@pytest.mark.slow  # ~17 s quiet; evaluate.py on a user model is tested in the fast tier
def test_evaluate_my_model(tmp_path):
    values = run_example("evaluate_my_model.py", tmp_path)
    clean, fgsm, pgd, aa, worst = numbers(
        values, "clean_accuracy", "fgsm_accuracy", "pgd_accuracy", "autoattack_accuracy",
        "worst_case_accuracy")
    assert clean > 0.5
    for robust in (fgsm, pgd, aa):
        assert 0.0 <= robust <= clean
    assert worst <= min(fgsm, pgd, aa)
    assert int(values["num_examples"]) > 0
    assert (tmp_path / "my_model.keras").is_file()


@pytest.mark.parametrize("name", ["prune_and_fit.py", "adversarial_fit.py", "evaluate_my_model.py"])
def test_example_documents_quick_mode(name):
    text = (ROOT / "examples" / name).read_text()
    assert 'QUICK = os.environ.get("TFSPARSE_EXAMPLE_QUICK") == "1"' in text
    assert "TFSPARSE_EXAMPLE_QUICK=1" in text.split('"""')[1]  # documented in the docstring
