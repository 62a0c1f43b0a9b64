"""Local clusters of processes: ``tf.distribute`` workers and keras-tuner's chief/workers (scripts/launch_local.py).

A cluster is a list of :class:`Task`\\ s, each the same command with its own environment:

* :func:`worker_tasks` — ``N`` workers of a ``MultiWorkerMirroredStrategy`` on localhost: each
  gets ``TF_CONFIG`` = ``{"cluster": {"worker": [localhost:p0, ...]}, "task": {"type":
  "worker", "index": i}}`` with free ports; worker 0 is the chief (TensorFlow's rule when
  the cluster has no ``chief`` task);
* :func:`tuner_tasks` — keras-tuner's distributed mode: a chief (``KERASTUNER_TUNER_ID=chief``)
  that serves the oracle on ``KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT`` and ``N`` workers
  (``tuner0`` … ``tuner{N-1}``) that ask it for trials.

:func:`launch` starts them, prefixes their output lines with the task name, waits, and
returns one :class:`Outcome` per task. It never leaves a process behind: when one task
fails, the time runs out, or the launcher itself is interrupted (Ctrl-C, SIGTERM), every
task still running gets SIGTERM (a tfsparse run records ``status: interrupted``) and, after
``grace`` seconds, SIGKILL — each task runs in its own process group, so its children go
too. Pure Python (no TensorFlow), a ground-floor module.
"""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from tfsparse.errors import UsageError


@dataclasses.dataclass(frozen=True)
class Task:
    """One process of a cluster: its display name, the environment it adds, and optionally a
    localhost port it serves: the tasks after it start once that port accepts connections."""

    name: str
    env: dict
    serves: int = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a task ended: ``returncode`` (negative: killed by that signal), and ``stopped`` when
    the launcher stopped it (another task failed, the timeout, or an interrupt)."""

    name: str
    returncode: int
    stopped: bool = False

    @property
    def ok(self):
        return self.returncode == 0 and not self.stopped

    def describe(self):
        """One line: ``worker 1: exit 1`` / ``worker 1: killed by signal 9 (stopped by the launcher)``."""
        code = self.returncode
        text = f"exit {code}" if code >= 0 else f"killed by signal {-code}"
        return f"{self.name}: {text}" + (" (stopped by the launcher)" if self.stopped else "")


def exit_code(outcomes):
    """The launcher's exit code: 0 when every task succeeded; 2 when the tasks that failed by
    themselves all reported bad usage (exit 2: the command's flags or config are wrong, and
    each said so in one line); 1 otherwise (a failure, a kill, the timeout)."""
    if all(outcome.ok for outcome in outcomes):
        return 0
    own = [outcome.returncode for outcome in outcomes if not outcome.ok and not outcome.stopped]
    return 2 if own and all(code == 2 for code in own) else 1


def free_ports(count, host="127.0.0.1"):
    """``count`` distinct TCP ports free on ``host`` now (all held open while choosing)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def worker_tasks(num_workers, ports=None):
    """The tasks of a localhost ``MultiWorkerMirroredStrategy`` cluster, worker 0 = chief."""
    ports = ports or free_ports(num_workers)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    return [
        Task(f"worker {i}" + (" (chief)" if i == 0 else ""),
             {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
        for i in range(num_workers)
    ]


def tuner_tasks(num_workers, port=None, host="127.0.0.1"):
    """keras-tuner's distributed mode on localhost: the oracle chief, then ``tuner0`` … workers."""
    port = port or free_ports(1, host)[0]
    oracle = {"KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(port)}
    ids = ["chief"] + [f"tuner{i}" for i in range(num_workers)]
    # The workers start once the oracle listens: a worker whose first request finds no server
    # waits out gRPC's reconnect back-off and may join after the other took every trial.
    return [Task(tuner_id, {**oracle, "KERASTUNER_TUNER_ID": tuner_id}, port if tuner_id == "chief" else None)
            for tuner_id in ids]


# The flags that ask an absl script for its help (scripts answer them before importing TensorFlow).
HELP_FLAGS = ("--help", "-h", "--helpshort", "--helpfull", "-?")


def show_help(command):
    """Runs ``command`` once, as itself, when it asks for its help; returns its exit code, or None.

    ``launch_local.py -- scripts/train.py --help`` wants train.py's help, once: not the
    launcher's (absl leaves the words after ``--`` alone), and not one copy per worker.
    """
    if not any(arg in HELP_FLAGS for arg in command[1:]):
        return None
    return subprocess.run(command, check=False).returncode


def command_line(args):
    """The argv of the command to run (what follows ``--`` on the launcher's command line).

    A command whose first word is a ``.py`` file runs with this Python interpreter.

    Raises:
      UsageError: when ``args`` is empty.
    """
    if not args:
        raise UsageError("name the command after '--', e.g. -- scripts/train.py --config.distribute=multi_worker ...")
    return [sys.executable, *args] if args[0].endswith(".py") else list(args)


def _pump(stream, name, out, lock):
    for line in stream:
        with lock:
            out.write(f"[{name}] {line}" if line.endswith("\n") else f"[{name}] {line}\n")
            out.flush()


def _signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(procs, grace):
    """SIGTERM to every running task's group, SIGKILL after ``grace`` s; returns the names stopped."""
    running = [(name, proc) for name, proc in procs if proc.poll() is None]
    for _, proc in running:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for _, proc in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # Still alive and not reaped, so its group id is certainly still this task's.
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    return {name for name, _ in running}


def launch(command, tasks, *, timeout, grace=10.0, cwd=None, out=None, poll=0.1):
    """Runs ``command`` once per task, waits for all, stops all on the first failure.

    Args:
      command: argv list, the same for every task.
      tasks: :class:`Task` list (names must differ).
      timeout: seconds for the whole cluster; then every task still running is stopped.
      grace: seconds between SIGTERM and SIGKILL when stopping.
      cwd: working directory of the tasks.
      out: text stream for the tasks' prefixed output (default ``sys.stdout``).
      poll: seconds between checks.

    Returns:
      One :class:`Outcome` per task, in order. A task that exits non-zero stops the others;
      a task that exits 0 lets the others run on (keras-tuner workers finish before the chief).

    Raises:
      UsageError: (after stopping the tasks already started) when the command cannot start.
      KeyboardInterrupt: (after stopping every task) when the launcher is interrupted; SIGTERM
        to the launcher is turned into one while it waits.
    """
    out = out or sys.stdout
    deadline = time.monotonic() + timeout
    lock = threading.Lock()
    procs, pumps, stopped = [], [], set()
    previous = signal.getsignal(signal.SIGTERM)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread and previous in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for task in tasks:
            # Unbuffered: the tasks' lines reach the terminal when written, not at exit.
            env = {**os.environ, "PYTHONUNBUFFERED": "1", **task.env}
            try:
                proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
            except OSError as error:
                raise UsageError(f"cannot start {command[0]!r}: {error.strerror}; "
                                 "check the command after '--'") from None
            procs.append((task.name, proc))
            pump = threading.Thread(target=_pump, args=(proc.stdout, task.name, out, lock), daemon=True)
            pump.start()
            pumps.append(pump)
            if task.serves:
                _wait_for_port(task.serves, proc, deadline)
        while any(proc.poll() is None for _, proc in procs):
            if any(proc.poll() not in (None, 0) for _, proc in procs):
                break
            if time.monotonic() > deadline:
                with lock:
                    out.write(f"launcher: timeout after {timeout:g} s; stopping the tasks still running\n")
                break
            time.sleep(poll)
    finally:
        stopped = _stop(procs, grace)
        for pump in pumps:
            pump.join(timeout=5)
        if in_main_thread and previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return [Outcome(name, proc.returncode, name in stopped) for name, proc in procs]


def _wait_for_port(port, proc, deadline, host="127.0.0.1"):
    """Returns once ``host:port`` accepts a connection, ``proc`` has exited, or the deadline passed."""
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.2)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
