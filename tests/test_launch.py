"""The localhost cluster launcher (tfsparse.launch, scripts/launch_local.py) on tiny Python children.

The children are ``python -c`` one-liners (no TensorFlow), so these tests take about a second
each; they check the environments each process receives, the exit-code rules, that a failing
or hanging process makes the launcher stop the rest, and that no process outlives a test.
"""

import io
import json
import os
import sys
import time

import pytest

from tfsparse import launch
from tfsparse.errors import UsageError

from cli_helpers import run_script


def python(code):
    return [sys.executable, "-c", code]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_worker_tasks_describe_one_cluster_with_worker_0_as_chief():
    tasks = launch.worker_tasks(3)
    configs = [json.loads(task.env["TF_CONFIG"]) for task in tasks]
    workers = configs[0]["cluster"]["worker"]
    assert len(set(workers)) == 3 and all(w.startswith("localhost:") for w in workers)
    assert all(c["cluster"] == {"worker": workers} for c in configs)
    assert [c["task"] for c in configs] == [{"type": "worker", "index": i} for i in range(3)]
    assert tasks[0].name == "worker 0 (chief)"


def test_tuner_tasks_are_a_chief_oracle_and_numbered_workers():
    tasks = launch.tuner_tasks(2)
    assert [t.env["KERASTUNER_TUNER_ID"] for t in tasks] == ["chief", "tuner0", "tuner1"]
    assert {t.env["KERASTUNER_ORACLE_IP"] for t in tasks} == {"127.0.0.1"}
    assert len({t.env["KERASTUNER_ORACLE_PORT"] for t in tasks}) == 1


def test_all_ok_and_output_prefixed():
    out = io.StringIO()
    outcomes = launch.launch(python("import os; print(os.environ['TF_CONFIG'][:1])"), launch.worker_tasks(2),
                             timeout=60, out=out)
    assert [o.describe() for o in outcomes] == ["worker 0 (chief): exit 0", "worker 1: exit 0"]
    assert sorted(out.getvalue().splitlines()) == ["[worker 0 (chief)] {", "[worker 1] {"]


def test_a_failing_worker_stops_the_others_and_leaves_no_process(tmp_path):
    # Worker 1 fails at once; worker 0 would sleep for a minute (like a chief blocked in a
    # collective) and ignores SIGTERM, so the launcher must escalate to SIGKILL after the grace.
    code = (
        "import json, os, signal, sys, time\n"
        "index = json.loads(os.environ['TF_CONFIG'])['task']['index']\n"
        f"open(os.path.join({str(tmp_path)!r}, f'pid{{index}}'), 'w').write(str(os.getpid()))\n"
        "if index == 1: time.sleep(0.5); sys.exit(3)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)\n"
    )
    started = time.monotonic()
    outcomes = launch.launch(python(code), launch.worker_tasks(2), timeout=60, grace=1.0, out=io.StringIO())
    assert time.monotonic() - started < 20
    assert [o.describe() for o in outcomes] == ["worker 0 (chief): killed by signal 9 (stopped by the launcher)",
                                                "worker 1: exit 3"]
    assert not any(o.ok for o in outcomes)
    pids = [int((tmp_path / f"pid{i}").read_text()) for i in range(2)]
    assert not any(alive(pid) for pid in pids)


def test_timeout_stops_everything_with_sigterm_first():
    out = io.StringIO()
    outcomes = launch.launch(python("import time; time.sleep(60)"), launch.worker_tasks(2), timeout=1.0,
                             grace=5.0, out=out)
    assert [o.returncode for o in outcomes] == [-15, -15] and all(o.stopped for o in outcomes)
    assert "timeout after 1 s" in out.getvalue()


def test_exit_code_passes_on_the_commands_bad_usage():
    ok, usage, failed = launch.Outcome("w0", 0), launch.Outcome("w0", 2), launch.Outcome("w0", 1)
    stopped = launch.Outcome("w1", -15, stopped=True)
    assert launch.exit_code([ok, ok]) == 0
    assert launch.exit_code([usage, stopped]) == 2
    assert launch.exit_code([failed, stopped]) == 1 and launch.exit_code([ok, stopped]) == 1


def test_bad_command_is_a_usage_error():
    with pytest.raises(UsageError, match="after '--'"):
        launch.command_line([])
    assert launch.command_line(["scripts/train.py", "--x"]) == [sys.executable, "scripts/train.py", "--x"]
    with pytest.raises(UsageError, match="cannot start"):
        launch.launch(["/nonexistent/program"], launch.worker_tasks(1), timeout=5, out=io.StringIO())


def test_script_reports_each_worker_and_fails_when_one_fails():
    result = run_script("launch_local.py", "--num_workers=2", "--timeout=60", "--", sys.executable, "-c",
                        "import json, os, sys; sys.exit(json.loads(os.environ['TF_CONFIG'])['task']['index'])")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-2:] == ["worker 0 (chief): exit 0", "worker 1: exit 1"]
