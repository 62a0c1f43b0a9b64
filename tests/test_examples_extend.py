"""examples/custom_attack_in_train_step.py and examples/tune_rsr.py run end to end (quick size).

Each example runs as a subprocess with ``TFSPARSE_EXAMPLE_QUICK=1`` from the repository
root on the CPU, and the ``name=value`` numbers it prints are checked for sanity.
"""

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHANCE = 0.1  # ten MNIST classes
TOL = 0.02  # robust accuracy may exceed clean accuracy only by this much (random starts)


def run_example(name):
    env = {**os.environ, "TFSPARSE_EXAMPLE_QUICK": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, os.path.join("examples", name)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # one `name=number` per line; the header line (several `k=v`) is matched by the tests
    values = dict(re.findall(r"^(\w+)=(\S+)$", proc.stdout, re.MULTILINE))
    return proc.stdout, {key: float(value) for key, value in values.items()}


def test_custom_attack_in_train_step_trains_trades_and_madry():
    out, v = run_example("custom_attack_in_train_step.py")
    assert re.search(r"\bquick=1\b", out)
    for name in ("trades", "madry"):
        clean, robust = v[f"{name}_clean_accuracy"], v[f"{name}_pgd_accuracy"]
        assert 0.0 <= robust <= 1.0 and 0.0 <= clean <= 1.0
        assert clean > 2 * CHANCE, f"{name}: clean accuracy {clean} not above chance"
        assert robust <= clean + TOL, f"{name}: PGD accuracy {robust} > clean {clean}"


@pytest.mark.slow  # ~11 s quiet; tests/test_tuning.py runs a two-trial search in the fast tier
def test_tune_rsr_runs_the_requested_trials():
    out, v = run_example("tune_rsr.py")
    assert re.search(r"\bquick=1\b", out)
    requested = int(re.search(r"max_trials=(\d+)", out).group(1))
    assert v["trials"] == requested == 2
    table_rows = [line for line in out.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(table_rows) == requested
    assert 0.0 <= v["best_pgd_accuracy"] <= v["best_clean_accuracy"] + TOL <= 1.0 + TOL
    assert v["best_clean_accuracy"] > CHANCE
    # score = pgd_accuracy − penalty · sparsity shortfall, never above the PGD accuracy
    assert v["best_score"] <= v["best_pgd_accuracy"] + 1e-6
    assert v["best_sparsity"] == pytest.approx(v["best_target_sparsity"], abs=0.01)
    assert 1e-6 <= v["best_lasso"] <= 1e-3
