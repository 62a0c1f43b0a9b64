"""tfsparse.cli.run's exit-code contract, in-process (SPEC §10).

``cli.run`` goes through ``absl.app.run`` with tfsparse's flag parser; ``sys.argv`` is set
to a bare program name so the parser sees no flags. absl initialises once per process and
re-parses the flags on later calls, so several ``run`` calls in one pytest process work.
``run`` installs a SIGTERM handler; the fixture puts the previous one back.
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
