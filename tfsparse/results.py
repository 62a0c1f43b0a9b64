"""Atomic result files and run metadata (SPEC §11): the ground floor every layer may write with.

Every file is written to a temporary name in the same directory and renamed into place,
so a crash never leaves a half-written result. Run directories and their lifecycle live
in :mod:`tfsparse.pipelines._run`.
"""

import contextlib
import csv
import datetime
import io
import json
import os
import shutil
import subprocess
import tempfile
import threading

from tfsparse import errors
from tfsparse._version import __version__


_UMASK_LOCK = threading.Lock()


def umask():
    """The process umask, read without changing it where the system allows.

    Linux reports it in ``/proc/self/status``; elsewhere it is read the only portable way,
    by setting and restoring it, under a lock so two threads of ours never race.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(path):
    """Yields a new folder beside ``path``, renamed to ``path`` when the block succeeds.

    The folder has a unique name (``<name>.partial-XXXXXXXX``) created here, so no folder of
    the user's (say an existing ``<name>.partial``) is ever written into or deleted; on an
    error only that folder is removed and ``path`` is left as it was. Its mode is what
    ``os.makedirs`` would give (0777 less the umask), not ``mkdtemp``'s 0700. ``path`` must
    not exist or be an empty folder (``os.replace`` moves a folder only onto an empty one).
    """
    path = os.path.abspath(path)
    tmp = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=os.path.basename(path) + ".partial-")
    try:
        os.chmod(tmp, 0o777 & ~umask())  # what os.makedirs would give
        yield tmp
        errors.raise_if_stopped()  # a stop swallowed inside the block must not commit its output
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)


def probe_writable(directory):
    """Why no file can be created in ``directory``, found by creating (and removing) one; None if it can.

    ``os.access`` reads the permission bits only, and says yes to root wherever the bits do,
    also where the write itself is refused: a pseudo file system (``/sys``), a root-squashed
    NFS or a FUSE mount. A run checked that way did all its work and then lost its results
    (issue 30, item 8), so an output location is probed by a real write before any work.
    """
    try:
        fd, path = tempfile.mkstemp(dir=directory, prefix=".tfsparse-probe-")
    except OSError as error:
        return error.strerror or type(error).__name__
    os.close(fd)
    os.remove(path)
    return None


def file_mode():
    """The mode ``open(path, "w")`` gives a new file: 0666 less the umask (0644 under umask 022)."""
    return 0o666 & ~umask()


def atomic_write_text(path, text):
    """Writes ``text`` to ``path`` via a temporary file and ``os.replace``.

    The file gets :func:`file_mode` (``mkstemp`` alone makes it 0600, which colleagues on a
    shared machine cannot read), also when it replaces an older file of another mode.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), file_mode())
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=json_default) + "\n")


def write_csv(path, records):
    """Writes a list of flat dicts as CSV (columns = union of keys, in first-seen order)."""
    columns = []
    for record in records:
        columns.extend(key for key in record if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(path, buffer.getvalue())


def metadata():
    """Version, git commit (when run from a checkout) and library versions for results."""
    import numpy as np

    from tfsparse.compat import tf

    commit = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=os.path.dirname(os.path.abspath(__file__)),
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "tfsparse_version": __version__,
        "git_commit": commit,
        "tensorflow_version": tf.__version__,
        "numpy_version": np.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def json_default(value):
    """JSON encoding of NumPy scalars and arrays (``json.dumps(default=...)``)."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
