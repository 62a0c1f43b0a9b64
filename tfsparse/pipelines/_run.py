"""The run directory and its lifecycle: status, last completed unit, resume, refusal to overwrite.

Every pipeline opens a :class:`Run` before it loads anything heavy:

1. :meth:`Run.prepare` (before any work) locks the workdir (:class:`RunLock`: one run per
   directory; another live process holding it is refused, naming its pid and host) and checks
   it: free (or, with ``resume``, holding a run of the same config that did not complete) and
   writable. Bad input ends here with a one-line :class:`~tfsparse.errors.RunDirError` and
   nothing written but the lock file.
2. :meth:`Run.start` creates the directory, writes ``config.json`` (resolved config and
   metadata) and ``results.json`` with ``status: running``.
3. The pipeline calls :meth:`Run.update` after every completed unit of work (an epoch, a
   pruning round, a table row); ``results.json`` is rewritten atomically each time with
   ``last_completed`` naming that unit, so a killed run tells how far it got.
4. Leaving the ``with run:`` block sets ``complete``; Ctrl-C / SIGTERM set ``interrupted``
   (partial results kept) and any error sets ``failed`` with the error's first line.

``results.json`` always carries ``status`` and ``last_completed``; ``--resume`` needs
nothing else (plus the pipeline's own checkpoints under the run directory).

The lock is :class:`tfsparse.runlock.RunLock` (``flock`` on ``.lock``, dropped by the kernel
however the process ends, so a ``kill -9`` leaves nothing that blocks ``--resume``).
"""

import json
import os

from tfsparse import errors
from tfsparse import results
from tfsparse.errors import RunDirError
from tfsparse.runlock import RunLock
from tfsparse.runlock import run_files

STATUSES = ("running", "complete", "interrupted", "failed")
CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _damage(path):
    """Why the JSON file at ``path`` cannot be read (e.g. truncated), or None when it is absent or fine."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except OSError as error:
        return f"unreadable: {error.strerror}"
    except ValueError as error:
        return f"not valid JSON, e.g. truncated: {error}"
    return None if isinstance(value, dict) else f"holds a {type(value).__name__}, not a record"


def check_writable(path, what="--workdir"):
    """Raises RunDirError unless ``path`` (a file or folder to create) can be created.

    Checked before any work, so a bad output location never costs a finished computation.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise RunDirError(f"{what} {path}: {parent} is a file, not a folder; choose another path")
    reason = results.probe_writable(parent)  # a real write: os.access says yes to root (results.py)
    if reason:
        raise RunDirError(f"{what} {path}: cannot write in {parent} ({reason}); choose a writable location")
    return path


def check_output_file(path, overwrite=False, what="--output", overwrite_flag="--overwrite"):
    """Checks an output file before any work: writable, and existing only with ``overwrite``.

    ``overwrite_flag``: the caller's flag that allows replacing the file, suggested in the
    message; None for a caller that has none (report.py), so no message names a missing flag.

    Raises:
      RunDirError: if ``path`` exists (without ``overwrite``), is a folder, or cannot be written.
    """
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise RunDirError(f"{what} {path} is a folder; name a file, e.g. {os.path.join(path, 'results.json')}")
    if os.path.exists(path) and not overwrite:
        alternative = f" or pass {overwrite_flag}" if overwrite_flag else " (or remove this one)"
        raise RunDirError(f"{what} {path} already exists; choose a new file{alternative}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise RunDirError(f"{what} {path} is not writable; choose another file")
    return check_writable(path, what)


def describe(workdir):
    """One line on what ``workdir`` holds (status and last completed unit), for messages."""
    state = _read_json(os.path.join(workdir, RESULTS_FILE)) or {}
    status = state.get("status", "unknown: no status in results.json")
    if status == "running":
        status = "running (or killed)"
    last = state.get("last_completed")
    return f"status {status}" + (f", last completed: {last}" if last else ", nothing completed")


class Run:
    """A run directory with a status. Use :meth:`prepare`, then ``with run.start(...):``.

    Args:
      workdir: the run directory.
      config: the resolved ``ConfigDict`` (stored in ``config.json``; ``--resume`` requires
        the same one).
      kind: the pipeline name, stored as ``pipeline`` in ``results.json``.
      resume: continue an interrupted/failed run in ``workdir`` instead of refusing it.
      writer: False for the non-chief workers of a multi-worker run: they read the run
        (``previous``, the checkpoints under it) but never write, lock or check it — the
        chief does all three, and a worker's check would race with the chief's first files.

    The writer holds the run directory's :class:`RunLock` from :meth:`prepare` until
    :meth:`close`, an error or interrupt leaving the ``with`` block, or the end of the process.
    """

    def __init__(self, workdir, config, kind, *, resume=False, writer=True):
        self.path = os.path.abspath(workdir)
        self.config = config
        self.kind = kind
        self.resume = bool(resume)
        self.writer = bool(writer)
        self.state = {}
        self.previous = None  # results.json of the run being resumed
        self.metadata = None
        self.lock = None

    def file(self, *parts):
        """A path inside the run directory."""
        return os.path.join(self.path, *parts)

    def prepare(self):
        """Checks the workdir before any work; returns self.

        Without ``resume`` the workdir must not hold files; the error says whether the run
        there is complete or how to continue it. With ``resume`` it must hold a run of this
        pipeline with the same config; a complete one is reported and not redone (check
        :attr:`already_complete`).

        Raises:
          RunDirError: naming the workdir, its state and what to do; or naming the process
            (pid, host) whose run holds it.
        """
        path = self.path
        if not self.writer:
            self.previous = _read_json(self.file(RESULTS_FILE)) if self.resume else None
            return self
        if os.path.exists(path) and not os.path.isdir(path):
            raise RunDirError(f"--workdir {path} is a file; choose a new --workdir")
        if not os.path.exists(path):
            check_writable(path)
        # Locked before the checks, so two processes cannot both find the directory free.
        self.lock = RunLock.acquire(path)
        try:
            return self._check()
        except BaseException:
            self.close()
            raise

    def _check(self):
        path = self.path
        taken = bool(run_files(path))
        for name in (RESULTS_FILE, CONFIG_FILE):
            damage = _damage(self.file(name))
            if damage:  # the same answer with and without --resume: neither can go on from it
                raise RunDirError(f"run directory {path} has a damaged {name} ({damage}), so its state is unknown "
                                  f"and it cannot be resumed; start again with a new --workdir (or restore {name} "
                                  "from a backup)")
        if not self.resume:
            if taken:
                state = _read_json(self.file(RESULTS_FILE)) or {}
                hint = ("choose a new --workdir" if state.get("status") == "complete"
                        else "continue it with --resume (same flags) or choose a new --workdir")
                raise RunDirError(f"run directory {path} already exists ({describe(path)}); {hint}")
            check_writable(path)
            return self
        if not taken:
            raise RunDirError(f"--resume: {path} holds no run to resume; drop --resume to start one there")
        stored = _read_json(self.file(CONFIG_FILE))
        previous = _read_json(self.file(RESULTS_FILE))
        if stored is None or previous is None:
            raise RunDirError(f"--resume: {path} has no readable {CONFIG_FILE}/{RESULTS_FILE}; "
                              "it is not a tfsparse run directory")
        if previous.get("pipeline") != self.kind:
            raise RunDirError(f"--resume: {path} holds a {previous.get('pipeline')!r} run, not {self.kind!r}")
        now = json.loads(json.dumps(self.config.to_dict(), default=results.json_default))
        differing = sorted(_differences(stored.get("config", {}), now))
        if differing:
            raise RunDirError(f"--resume needs the flags of the original run; these config keys differ: "
                              f"{', '.join(differing[:5])}")
        reason = results.probe_writable(path)
        if reason:
            raise RunDirError(f"--resume: cannot write in {path} ({reason}); make it writable, or copy the run "
                              "elsewhere and resume there")
        if previous.get("status") != "complete":
            check_checkpoints(path)
        self.previous = previous
        self.metadata = stored.get("metadata")
        return self

    @property
    def already_complete(self):
        """True when resuming a run that had already completed."""
        return bool(self.previous) and self.previous.get("status") == "complete"

    def start(self, **fields):
        """Creates the directory and writes ``config.json`` and a ``running`` ``results.json``.

        On resume the previous results are kept (``fields`` are added) and ``resumed``
        counts the restarts. Returns self, a context manager that records the end status.
        """
        if not self.writer:
            return self
        if self.lock is None or not self.lock.held:
            self.lock = RunLock.acquire(self.path)
        if self.previous is None:
            self.metadata = results.metadata()
            results.write_json(self.file(CONFIG_FILE), {"config": self.config.to_dict(), "metadata": self.metadata})
            self.state = {"pipeline": self.kind, "status": "running", "last_completed": None}
        else:
            self.state = dict(self.previous)
            self.state["resumed"] = int(self.state.get("resumed", 0)) + 1
            self.state.pop("error", None)
            self.state["status"] = "running"
        self.state.update(fields)
        self._write()
        return self

    def update(self, last_completed=None, **fields):
        """Merges ``fields`` into ``results.json`` and rewrites it; names the completed unit."""
        self.state.update(fields)
        if last_completed is not None:
            self.state["last_completed"] = last_completed
        self._write()

    def _write(self):
        if not self.writer:
            return
        ordered = {"pipeline": self.kind, "status": self.state["status"],
                   "last_completed": self.state.get("last_completed")}
        ordered.update({k: v for k, v in self.state.items() if k not in ordered and k != "metadata"})
        ordered["metadata"] = self.metadata
        results.write_json(self.file(RESULTS_FILE), ordered)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is None:
            self.state["status"] = "complete"
        elif issubclass(kind, KeyboardInterrupt) or errors.stop_requested() is not None:
            self.state["status"] = "interrupted"
        else:
            self.state["status"] = "failed"
            first_line = (str(error).strip().splitlines() or [kind.__name__])[0]
            self.state["error"] = f"{kind.__name__}: {first_line}"
        self._write()
        if kind is not None:  # the run has ended; a clean end may still write its outputs
            self.close()
        return False

    def close(self):
        """Releases the run directory's lock (idempotent); the run writes nothing after it."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def check_checkpoints(path):
    """Reads the latest TF checkpoint of every checkpoint folder under run directory ``path``, whole.

    A truncated checkpoint made ``--resume`` end in an ``OpError`` traceback from deep inside
    the restore (issue 30, item 8); read here, before any work, it is one line naming the file.
    A folder is one a ``tf.train.CheckpointManager`` keeps (its ``checkpoint`` state file); each
    variable is read, so a cut data file is found as well as a damaged index.

    Raises:
      RunDirError: naming the damaged checkpoint and what to do.
    """
    from tfsparse.compat import tf

    for folder, _, names in os.walk(path):
        if "checkpoint" not in names:
            continue
        latest = None
        try:
            latest = tf.train.latest_checkpoint(folder)
            if latest is None:
                raise ValueError("its 'checkpoint' state file names no checkpoint that exists")
            reader = tf.train.load_checkpoint(latest)
            for name in reader.get_variable_to_shape_map():
                reader.get_tensor(name)
        except (tf.errors.OpError, ValueError, OSError, IndexError) as error:
            damaged = os.path.relpath(latest or os.path.join(folder, "checkpoint"), path)
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise RunDirError(f"--resume: the checkpoint {damaged} in {path} is damaged ({first}), so the run "
                              "cannot go on from it; start again with a new --workdir (or restore the checkpoint "
                              "files from a backup)") from None


def _differences(stored, now, prefix=""):
    """Dotted keys whose values differ between two nested dicts."""
    keys = set(stored) | set(now)
    for key in keys:
        a, b = stored.get(key), now.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            yield from _differences(a, b, f"{name}.")
        elif a != b:
            yield name
