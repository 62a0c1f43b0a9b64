"""The experiment engine (tfsparse.pipelines.engine) on a declaration of its own: the done-set,
resume after a kill (in process and a real SIGKILL of a script), the seeds loop, the summary
after every unit, outputs written from the complete run's files, and pooling of run directories.

Every paper table runs through :func:`run_experiment`, so what holds here holds for each of them;
tests/test_golden_records.py checks that their records did not change in the move.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap

import ml_collections
import numpy as np
import pytest

from tfsparse import reporting
from tfsparse.errors import ConfigError
from tfsparse.errors import RunDirError
from tfsparse.pipelines import engine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def toy_config(seeds=(0, 1)):
    return ml_collections.ConfigDict({
        "experiment": "toy", "seeds": seeds, "steps": 3,
        "data": {"name": "mnist", "data_dir": "", "num_train": 64, "num_test": 16, "classes": "", "seed": 0}})


class ToyWork(engine.Work):
    made = []

    def base(self):
        """A dependency of every unit of the seed, made once (counted in ``made``)."""
        def make():
            ToyWork.made.append(self.seed)
            return float(self.dataset.x_train[self.seed].mean())
        return self.once("base", make)


def toy(kill_at=None, calls=None):
    """A table of ``steps`` units per seed; its record depends on the seed's data and the unit."""

    def run_unit(work, unit):
        step = unit.fields["step"]
        if calls is not None:
            calls.append((work.seed, step))
        if (work.seed, step) == kill_at:
            raise KeyboardInterrupt("killed")
        os.makedirs(work.training_dir(unit.name), exist_ok=True)  # a unit's epoch checkpoints, removed once recorded
        return {"value": work.base() * (step + 1) + work.seed}

    return engine.Experiment(
        kind="toy", run_unit=run_unit, work=ToyWork,
        units=lambda config, seed: [engine.Unit(f"step {s}", {"seed": int(seed), "step": s})
                                    for s in range(config.steps)],
        summarise=lambda records: reporting.aggregate(records, "step", ["value"]),
        describe=lambda record, config: f"seed {record['seed']} step {record['step']}: {record['value']:.4f}",
        write_outputs=lambda run_dir: {"outputs_saw": engine.read_run(run_dir)[1]["status"]})


def state_of(run_dir):
    with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(autouse=True)
def _reset():
    ToyWork.made = []


def test_a_run_records_every_unit_of_every_seed_with_a_summary(tmp_path):
    lines = []
    run_dir = toy()(toy_config(), str(tmp_path / "run"), log=lines.append)
    state = state_of(run_dir)
    assert state["status"] == "complete" and state["last_completed"] == "seed 1 step 2"
    assert [(r["seed"], r["step"]) for r in state["records"]] == [(s, k) for s in (0, 1) for k in range(3)]
    assert [row["n"] for row in state["summary"]] == [2, 2, 2]
    assert state["outputs_saw"] == "complete"  # outputs come from the files of the complete run
    assert ToyWork.made == [0, 1]  # a seed's dependency is made once for all its units
    assert not os.path.exists(os.path.join(run_dir, "checkpoints", "seed0", "step_0.training"))
    assert lines[-1].startswith("seed 1 step 2: ")


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_a_killed_run_resumes_to_the_records_of_an_uninterrupted_one(tmp_path, error):
    whole = state_of(toy()(toy_config(), str(tmp_path / "whole"), log=lambda *_: None))
    workdir = str(tmp_path / "killed")
    spec = toy(kill_at=(1, 1))
    if error is RuntimeError:
        spec = dataclasses.replace(spec, run_unit=_raising(spec.run_unit, (1, 1)))
    with pytest.raises((KeyboardInterrupt, RuntimeError)):
        spec(toy_config(), workdir, log=lambda *_: None)
    stopped = state_of(workdir)
    assert stopped["status"] == ("interrupted" if error is KeyboardInterrupt else "failed")
    assert stopped["last_completed"] == "seed 1 step 0" and len(stopped["records"]) == 4
    with pytest.raises(RunDirError, match="--resume"):
        toy()(toy_config(), workdir, log=lambda *_: None)
    calls = []
    toy(calls=calls)(toy_config(), workdir, resume=True, log=lambda *_: None)
    assert calls == [(1, 1), (1, 2)]  # the done-set: nothing recorded is redone
    resumed = state_of(workdir)
    assert resumed["status"] == "complete" and resumed["resumed"] == 1
    assert resumed["records"] == whole["records"] and resumed["summary"] == whole["summary"]


def _raising(run_unit, at):
    def wrapped(work, unit):
        if (work.seed, unit.fields["step"]) == at:
            raise RuntimeError("a fault")
        return run_unit(work, unit)
    return wrapped


def test_a_complete_run_is_not_redone_and_another_config_cannot_resume(tmp_path):
    workdir = str(tmp_path / "run")
    toy()(toy_config(), workdir, log=lambda *_: None)
    calls, lines = [], []
    toy(calls=calls)(toy_config(), workdir, resume=True, log=lines.append)
    assert calls == [] and "already complete" in lines[0]
    with pytest.raises(RunDirError, match="seeds"):
        toy()(toy_config(seeds=(0,)), workdir, resume=True, log=lambda *_: None)


def test_the_check_runs_before_the_workdir_is_touched(tmp_path):
    def refuse(config):
        raise ConfigError("steps: too many")

    spec = dataclasses.replace(toy(), check=refuse)
    with pytest.raises(ConfigError, match="too many"):
        spec(toy_config(), str(tmp_path / "run"), log=lambda *_: None)
    assert not (tmp_path / "run").exists()


def test_pooled_run_directories_refuse_a_seed_found_twice(tmp_path):
    first = toy()(toy_config(seeds=(0,)), str(tmp_path / "s0"), log=lambda *_: None)
    second = toy()(toy_config(seeds=(1,)), str(tmp_path / "s1"), log=lambda *_: None)
    key = (lambda state, config: state["pipeline"])
    (runs,) = engine.group_runs([first, second], kinds=("toy",), key=key)
    run_dir, state, config = engine.pool(runs)
    assert run_dir == first and config["seeds"] == [0, 1] and len(state["records"]) == 6
    assert state["status"] == "complete"
    with pytest.raises(ConfigError, match="seed 0 is in both"):
        engine.pool(engine.group_runs([first, first], key=key)[0])
    with pytest.raises(RunDirError, match="not other"):
        engine.read_run(first, kinds=("other",))


TOY_SCRIPT = textwrap.dedent("""
    import dataclasses, os, sys, time
    sys.path.insert(0, {tests!r})
    import tfsparse  # noqa: F401
    from test_engine import toy, toy_config

    spec = toy()
    slow = dataclasses.replace(spec, run_unit=lambda work, unit: (
        print("unit", unit.name, flush=True), time.sleep(0.5 if {slow} else 0), spec.run_unit(work, unit))[-1])
    slow(toy_config(), sys.argv[1], resume=len(sys.argv) > 2, log=lambda line: print(line, flush=True))
""")


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path):
    def script(slow):
        path = tmp_path / f"toy_{slow}.py"
        path.write_text(TOY_SCRIPT.format(tests=os.path.join(REPO, "tests"), slow=slow))
        return str(path)

    whole = toy()(toy_config(), str(tmp_path / "whole"), log=lambda *_: None)  # the same declaration, in process
    killed = str(tmp_path / "killed")
    process = subprocess.Popen([sys.executable, script(True), killed], stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("seed 0 step 2:"):  # three units recorded: kill -9 in the fourth
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert state_of(killed)["status"] == "running"  # killed: nobody wrote an end status
    subprocess.run([sys.executable, script(False), killed, "--resume"], check=True, capture_output=True, timeout=300)
    assert state_of(killed)["records"] == state_of(whole)["records"]
    assert np.isfinite([r["value"] for r in state_of(killed)["records"]]).all()


def test_plot_script_refuses_what_is_not_a_run_directory(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "plot.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "no readable results.json" in result.stderr, result.stderr[-500:]
