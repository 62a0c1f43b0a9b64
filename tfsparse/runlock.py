"""An exclusive, process-lifetime lock on a run directory, so two processes never write one run.

The lock is an ``flock`` on ``.lock`` inside the run directory, held open by the process for
the life of the run: the kernel drops it when the process ends, however it ends, so a run
killed with ``kill -9`` leaves no lock that blocks ``--resume``. ``.lock`` holds the holder's
pid and host for the refusal message only; it is not part of the run (a directory holding
nothing else is free: :func:`run_files`).
"""

import fcntl
import os
import socket
import time
import weakref

from tfsparse.errors import RunDirError

LOCK_FILE = ".lock"


def run_files(path):
    """The entries of run directory ``path`` other than its lock file ([] if it does not exist)."""
    if not os.path.isdir(path):
        return []
    return [name for name in os.listdir(path) if name != LOCK_FILE]


def _holder(lock_path):
    """``pid N on host H`` read from a lock file, for the refusal message."""
    for _ in range(5):  # the holder writes its line right after taking the lock
        try:
            with open(lock_path, encoding="utf-8") as handle:
                fields = dict(part.split("=", 1) for part in handle.read().split() if "=" in part)
        except OSError:
            fields = {}
        if "pid" in fields:
            return f"pid {fields['pid']} on host {fields.get('host', '?')}"
        time.sleep(0.05)
    return "another process (pid unknown)"


# Locks this process holds, by run directory: a second Run on the same directory in the same
# process (a resume after a failed run whose Run object a traceback still references) shares
# the lock instead of being refused by itself; flock excludes per open file, not per process.
_HELD = weakref.WeakValueDictionary()


class RunLock:
    """An exclusive, process-lifetime lock on a run directory (``flock`` on ``path/.lock``).

    Use :meth:`acquire`. Released by :meth:`release`, when the object is collected, or when
    the process ends (by the kernel, also after ``kill -9``).
    """

    def __init__(self, path, fd, created):
        self.path = path
        self._finalizer = weakref.finalize(self, _release, path, fd, created)

    @classmethod
    def acquire(cls, path):
        """Locks run directory ``path`` (creating it); returns the lock.

        Raises:
          RunDirError: another process holds it (naming its pid and host), or ``path`` cannot
            be created or written.
        """
        path = os.path.abspath(path)
        held = _HELD.get(path)
        if held is not None and held.held:
            return held
        created = not os.path.exists(path)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as error:
            raise RunDirError(f"--workdir {path}: cannot create it ({error.strerror}); choose another --workdir") \
                from None
        lock_path = os.path.join(path, LOCK_FILE)
        while True:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:
                raise RunDirError(f"--workdir {path}: cannot write in it ({error.strerror}); "
                                  "choose a writable --workdir") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise RunDirError(f"run directory {path} is in use by {_holder(lock_path)} (a run is going on "
                                  "there); wait for it to end, or stop it, or choose another --workdir") from None
            # The lock file may have been removed by a holder releasing it between our open and
            # our flock; then we locked a file nobody else sees: try again on the current one.
            try:
                current = os.stat(lock_path)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid={os.getpid()} host={socket.gethostname()} since={time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
                 .encode())
        lock = cls(path, fd, created)
        _HELD[path] = lock
        return lock

    @property
    def held(self):
        return self._finalizer.alive

    def release(self):
        """Removes the lock file and unlocks (and removes the directory if it created it and
        nothing else was written there)."""
        self._finalizer()


def _release(path, fd, created):
    try:
        os.unlink(os.path.join(path, LOCK_FILE))  # while still locked, so no one locks the removed file
    except OSError:
        pass
    os.close(fd)
    if created:
        try:
            os.rmdir(path)  # only if empty: the run never started
        except OSError:
            pass
