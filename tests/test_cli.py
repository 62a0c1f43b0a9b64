"""tfsparse.cli.run's exit-code contract, in-process (SPEC §10).

``cli.run`` goes through ``absl.app.run`` with tfsparse's flag parser; ``sys.argv`` is set
to a bare program name so the parser sees no flags. absl initialises once per process and
re-parses the flags on later calls, so several ``run`` calls in one pytest process work.
``run`` installs a SIGTERM handler; the fixture puts the previous one back, and makes an
interrupted run end with ``SystemExit`` (a script process ends with ``os._exit``).
"""

import os
import signal
import sys
import time

import pytest

from tfsparse import cli
from tfsparse.errors import ConfigError
from tfsparse.errors import DataError
from tfsparse.errors import Interrupted


@pytest.fixture(autouse=True)
def _argv_and_sigterm(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["prog"])
    monkeypatch.setattr(cli, "_end_process", sys.exit)  # a real script ends with os._exit
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def _exit_code(main, capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.run(main)
    return excinfo.value.code, capsys.readouterr().err


def test_success_exits_0(capsys):
    seen = []
    code, err = _exit_code(lambda argv: seen.append(list(argv)), capsys)
    assert code in (None, 0) and seen == [["prog"]]
    assert "error:" not in err


@pytest.mark.parametrize("error", [ConfigError("prune.rate 1.5 must be in [0, 1)\nsecond line"),
                                   DataError("no such dataset 'foo'")])
def test_usage_error_exits_2_with_one_error_line(capsys, error):
    def main(argv):
        raise error

    code, err = _exit_code(main, capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == [f"error: {str(error).splitlines()[0]}"]
    assert "Traceback" not in err and "second line" not in err


def test_failure_propagates_for_exit_1(capsys):
    # absl re-raises any other exception (after its exception handlers); the interpreter then
    # prints the traceback and exits 1. In-process the exception itself comes out of run().
    def main(argv):
        raise RuntimeError("boom in the work")

    with pytest.raises(RuntimeError, match="boom in the work"):
        cli.run(main)
    assert "error:" not in capsys.readouterr().err


def test_keyboard_interrupt_exits_130(capsys):
    def main(argv):
        raise KeyboardInterrupt

    code, err = _exit_code(main, capsys)
    assert code == 130 and "interrupted (Ctrl-C)" in err


def test_interrupted_exception_exits_128_plus_signal(capsys):
    def main(argv):
        raise Interrupted(15)

    code, err = _exit_code(main, capsys)
    assert code == 143 and "interrupted by signal 15" in err


class _NoHandler(Exception):
    pass


def _sentinel(signum, frame):
    raise _NoHandler("cli.run did not install its SIGTERM handler")


def test_a_real_sigterm_exits_143(capsys):
    # run() installs the SIGTERM handler; a real signal to this process, delivered while main
    # works, must end the run with 143 (128 + 15). A sentinel handler stands in before run(),
    # so a missing handler fails the test instead of terminating pytest.
    signal.signal(signal.SIGTERM, _sentinel)

    def main(argv):
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return 0

    code, err = _exit_code(main, capsys)
    assert code == 143 and "interrupted by signal 15" in err


def _sigterm_then(after):
    # A real SIGTERM that the work turns into another error or swallows, as TensorFlow's C++
    # code does when the handler fires inside a callback (a SystemError, or a caught
    # exception in a converter's fallback).
    def main(argv):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except Interrupted as error:
            return after(error)
        return 0

    return main


def _raise_system_error(error):
    raise SystemError("<built-in method> returned a result with an exception set") from error


@pytest.mark.parametrize("after", [_raise_system_error, lambda error: 0], ids=["as SystemError", "swallowed"])
def test_a_sigterm_the_work_loses_still_exits_143(capsys, after):
    code, err = _exit_code(_sigterm_then(after), capsys)
    assert code == 143 and "interrupted by signal 15" in err and "Traceback" not in err


def test_the_stop_record_does_not_outlive_its_command(capsys):
    code, _ = _exit_code(_sigterm_then(lambda error: 0), capsys)
    assert code == 143
    code, err = _exit_code(lambda argv: 0, capsys)
    assert code in (None, 0) and "interrupted" not in err


def test_interrupt_message_offers_resume_only_where_the_script_has_it(capsys):
    def main(argv):
        raise Interrupted(15)

    code, err = _exit_code(main, capsys)
    advice = "resume with --resume" if "resume" in cli.flags.FLAGS else "nothing was written"
    assert code == 143 and advice in err


def test_unexpected_positional_argument_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["prog", "stray"])
    called = []
    code, err = _exit_code(lambda argv: called.append(argv), capsys)
    assert code == 2 and called == []
    assert [line for line in err.splitlines() if line.startswith("error:")][0].startswith(
        "error: unexpected arguments ['stray']")


def test_start_up_noise_is_dropped_and_everything_else_kept(capfd, monkeypatch):
    # Issue 30, item 11: TensorFlow's C++ start-up lines go straight to fd 2.
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    with cli._start_up_noise_dropped():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"I0000 00:00:1.0  1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
                    b"not be used.\nE0000 00:00:1.0  1 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
                    b"I0000 00:00:1.0  1 port.cc:153] oneDNN custom operations are on. You may see slightly "
                    b"different numerical results due to floating-point round-off errors.\n"
                    b"a real problem\n")
        sys.stderr.write("a Python warning\n")
    assert sorted(capfd.readouterr().err.splitlines()) == ["a Python warning", "a real problem"]


def test_start_up_logs_are_kept_when_the_user_asks_for_them(capfd, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    with cli._start_up_noise_dropped():
        os.write(2, b"I0000 cudart_stub.cc:31] Could not find cuda drivers on your machine\n")
    assert "cudart_stub" in capfd.readouterr().err


def test_a_script_starts_without_tensorflows_start_up_lines():
    import subprocess

    from cli_helpers import REPO
    from cli_helpers import script_command

    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES")}
    result = subprocess.run(script_command("train.py", "--print_config", "--workdir=unused"), cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stderr == "", result.stderr
