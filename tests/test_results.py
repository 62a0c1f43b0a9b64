"""tfsparse.results: atomic result files get the mode the user's umask allows (issue 30, item 6).

``tempfile.mkstemp`` creates 0600 files, and the atomic writers renamed them into place as
they were: results.json / .csv / .md were unreadable to colleagues on a shared machine, and
``--overwrite`` turned a 0644 file into 0600.
"""

import contextlib
import os
import stat
import subprocess

import pytest
from cli_helpers import ENV
from cli_helpers import REPO
from cli_helpers import script_command

from tfsparse import results


@contextlib.contextmanager
def umask(mask):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


WRITERS = {
    "results.json": lambda path: results.write_json(path, {"accuracy": 0.5}),
    "results.csv": lambda path: results.write_csv(path, [{"a": 1, "b": 2}]),
    "results.md": lambda path: results.atomic_write_text(path, "| a |\n"),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_new_files_follow_the_umask(tmp_path, name, mask, expected):
    with umask(mask):
        WRITERS[name](str(tmp_path / name))
    assert mode(tmp_path / name) == expected
    assert os.listdir(tmp_path) == [name]  # no temporary file left


@pytest.mark.parametrize("name", sorted(WRITERS))
@pytest.mark.parametrize("before", [0o644, 0o600])  # 0600: a file the old writers left
def test_an_overwritten_file_gets_the_umask_mode(tmp_path, name, before):
    path = tmp_path / name
    path.write_text("old")
    os.chmod(path, before)
    with umask(0o022):
        WRITERS[name](str(path))
    assert mode(path) == 0o644 and path.read_text() != "old"


def test_umask_is_read_without_changing_it():
    with umask(0o027):
        assert results.umask() == 0o027
        assert os.umask(0o027) == 0o027  # still set as it was
    assert results.file_mode() == 0o666 & ~results.umask()


def test_a_real_run_writes_files_others_can_read(tmp_path):
    """scripts/train.py under umask 022: every file of the run directory is 0644, every folder 0755."""
    workdir = tmp_path / "run"
    with umask(0o022):  # the child inherits it
        result = subprocess.run(
            script_command("train.py", "--model=lenet300_100", "--dataset=mnist", "--num_train=256",
                           "--epochs=1", "--config.verbose=0", f"--workdir={workdir}"),
            cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert mode(workdir / "results.json") == mode(workdir / "config.json") == 0o644
    found = []
    for root, dirs, files in os.walk(workdir):
        found += [(os.path.join(root, name), 0o755) for name in dirs]
        found += [(os.path.join(root, name), 0o644) for name in files]
    wrong = [(os.path.relpath(path, workdir), oct(mode(path))) for path, want in found if mode(path) != want]
    assert not wrong


def test_atomic_dir_does_not_commit_after_a_stop_request(tmp_path):
    # A SIGTERM swallowed inside the block (issue 30, item 7) must not let the output appear.
    from tfsparse import errors

    target = tmp_path / "ship"
    try:
        with pytest.raises(errors.Interrupted):
            with results.atomic_dir(str(target)) as folder:
                (tmp_path / "ship.partial").mkdir()  # a folder of the user's, beside
                with contextlib.suppress(errors.Interrupted):
                    errors.request_stop(15)
                open(os.path.join(folder, "model.tflite"), "w").close()
    finally:
        errors.clear_stop()
    assert sorted(os.listdir(tmp_path)) == ["ship.partial"]
