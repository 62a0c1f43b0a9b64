"""One run per run directory: a second process is refused naming the holder, a killed holder
leaves no lock that blocks ``--resume``, and the lock file is not part of the run.

The holder is a small process that opens a run with :class:`~tfsparse.pipelines._run.Run`, as
every pipeline does, and keeps it open until it is killed.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import ml_collections
import pytest
from cli_helpers import ENV
from cli_helpers import REPO
from cli_helpers import error_line
from cli_helpers import run_script

from tfsparse.errors import RunDirError
from tfsparse.runlock import LOCK_FILE
from tfsparse.pipelines._run import Run

CONFIG = {"seed": 7, "train": {"epochs": 1}}
HOLDER = textwrap.dedent(f"""
    import sys, time
    import ml_collections
    from tfsparse.pipelines._run import Run
    run = Run(sys.argv[1], ml_collections.ConfigDict({CONFIG!r}), "train").prepare()
    with run.start():
        run.update(last_completed="epoch 1")
        print("ready", flush=True)
        time.sleep(600)
""")


def config():
    return ml_collections.ConfigDict(CONFIG)


@pytest.fixture
def holder(tmp_path):
    """A process holding the run open in ``tmp_path / run``: ``(workdir, Popen)``."""
    workdir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(workdir)], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read()[-2000:]
        yield workdir, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)


def test_a_second_process_is_refused_naming_the_holder(holder):
    workdir, proc = holder
    with pytest.raises(RunDirError, match=f"in use by pid {proc.pid} on host ") as error:
        Run(workdir, config(), "train", resume=True).prepare()
    assert "\n" not in str(error.value)
    with pytest.raises(RunDirError, match=f"pid {proc.pid}"):
        Run(workdir, config(), "train").prepare()  # the fresh-start check does not get a word in first
    # The CLI: exit 2, one line naming the holder; the holder's run is untouched.
    refused = run_script("train.py", "--model=lenet300_100", "--epochs=1", f"--workdir={workdir}")
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert f"is in use by pid {proc.pid} on host" in error_line(refused)
    assert "Traceback" not in refused.stderr
    assert proc.poll() is None and (workdir / "results.json").read_text().count('"running"') == 1


def test_non_writer_workers_neither_take_nor_check_the_lock(holder):
    workdir, _ = holder
    worker = Run(workdir, config(), "train", resume=True, writer=False).prepare()
    assert worker.lock is None and worker.previous["last_completed"] == "epoch 1"
    with worker.start():
        worker.update(last_completed="epoch 2")
    assert "epoch 1" in (workdir / "results.json").read_text()


def test_a_killed_holder_does_not_block_resume(holder):
    workdir, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert (workdir / LOCK_FILE).exists()  # stale: its process is gone, so is its flock
    run = Run(workdir, config(), "train", resume=True).prepare()  # config.json compares equal
    assert run.previous["status"] == "running" and run.previous["last_completed"] == "epoch 1"
    with run.start():
        run.update(last_completed="epoch 2")
    run.close()
    assert sorted(os.listdir(workdir)) == ["config.json", "results.json"]


def test_a_folder_holding_only_a_stale_lock_file_is_free(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / LOCK_FILE).write_text("pid=1 host=elsewhere\n")
    with pytest.raises(RunDirError, match="holds no run to resume"):
        Run(workdir, config(), "train", resume=True).prepare()
    run = Run(workdir, config(), "train").prepare()
    with run.start():
        pass
    run.close()
    assert sorted(os.listdir(workdir)) == ["config.json", "results.json"]


def test_a_refused_prepare_leaves_nothing_and_one_process_reopens_its_own_run(tmp_path):
    workdir = tmp_path / "new"
    with pytest.raises(RunDirError, match="holds no run to resume"):
        Run(workdir, config(), "train", resume=True).prepare()
    assert not workdir.exists()
    # A failed run whose Run object is still referenced does not lock out its own resume.
    first = Run(workdir, config(), "train").prepare()
    with pytest.raises(RuntimeError):
        with first.start():
            raise RuntimeError("boom")
    again = Run(workdir, config(), "train", resume=True).prepare()
    assert again.previous["status"] == "failed"
    second = Run(workdir, config(), "train", resume=True)
    started = time.monotonic()
    assert second.prepare().lock is again.lock and time.monotonic() - started < 1
