"""What is checked before a run trains: its folders can be written, it has not finished already, and no other
process trains it (a lock beside the run folder holding the pid and host of the process that holds it).

    <runs>/<task>/<run_id>/        the run folder (checkpoint, metrics.jsonl, plots)
    <runs>/<task>/<run_id>.lock    while a process trains it: "<pid> <host>"
"""
from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import socket
import tempfile
import time
from pathlib import Path

from .errors import RunRefused, UserError

HELD = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)        # lockf says EACCES where flock says EWOULDBLOCK
UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def lock_exclusive(fd: int, path: Path) -> None:
    """flock, else (a filesystem without it: some NFS mounts and FUSE file systems) a POSIX lockf, which NFS
    carries between hosts; an OSError with a HELD errno when another process holds the lock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except OSError as e:
        if e.errno not in UNSUPPORTED:
            raise
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in UNSUPPORTED:
            raise UserError(f"the file system of {path.parent} supports no file locks (flock and lockf refused: "
                            f"{os.strerror(e.errno)}), so mixsuite cannot tell whether another process trains this "
                            "run; put the runs folder on a local disk or a file system with locks (--runs-dir, "
                            "$MIXSUITE_RUNS)") from None
        raise


def check_writable(folder: Path, what: str) -> None:
    """Write a probe file in `folder`, or in its nearest existing parent when it does not exist yet (nothing is
    created), or refuse the run naming the folder and why."""
    folder = Path(folder).absolute()
    existing = next(p for p in [folder, *folder.parents] if p.exists())
    why = f"{existing} is a file, not a folder" if not existing.is_dir() else None
    if why is None:
        try:
            fd, probe = tempfile.mkstemp(dir=existing, prefix=".write-probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            why = e.strerror or str(e)
    if why is not None:
        raise RunRefused(f"the {what} {folder} cannot be written ({why}); nothing was trained. Pass another "
                         f"folder, or make this one writable")


def finished_record(path: Path) -> dict | None:
    """The record at `path` if it is a readable record of a finished run, else None."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("status") == "finished" else None


def set_aside(path: Path) -> Path:
    """Rename a record to `<name>.<UTC time>.old` beside it (tables read only *.json) and return the new path."""
    path = Path(path)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.{stamp}.old")
    os.replace(path, aside)
    return aside


class RunInProgress(RunRefused):
    """Another live process holds the run's lock."""


class RunLock:
    """An exclusive lock (fcntl.flock, else lockf) on a run: one process trains a run folder at a time.

    The kernel drops a lock when its process dies, so a lock file left by a killed run is simply taken over
    (and said so). The file holds "<pid> <host>" of the holder, which a refused process reports.
    """

    def __init__(self, path: Path, log=print):
        self.path, self.log, self.fd, self.made = Path(path), log, None, []

    def holder(self) -> str:
        try:
            pid, host = (self.path.read_text().split() + ["?", "?"])[:2]
        except OSError:
            return "an unknown process"
        return f"pid {pid} on host {host}"

    def acquire(self, wait: bool = False) -> "RunLock":
        announced = False
        while True:
            self._make_parent()   # again each time: a releasing holder removes the folders it made
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except FileNotFoundError:
                continue
            try:
                lock_exclusive(fd, self.path)
            except OSError as e:
                os.close(fd)
                if e.errno not in HELD:
                    raise
                if not wait:
                    raise RunInProgress(
                        f"this run is in progress in another process ({self.holder()}; lock {self.path}). Wait for "
                        "it, or pass --wait-lock to start when it ends") from None
                if not announced:
                    self.log(f"waiting for {self.holder()}, which holds {self.path}")
                    announced = True
                time.sleep(1.0)
                continue
            if self._same_file(fd):
                break
            os.close(fd)  # the previous holder removed the file between our open and our lock: try again
        previous = os.read(fd, 200).decode(errors="replace").split()
        if previous and previous[:2] != [str(os.getpid()), socket.gethostname()]:
            self.log(f"took over the lock {self.path} left by pid {previous[0]}"
                     f"{' on host ' + previous[1] if len(previous) > 1 else ''}, which no longer holds it")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        self.fd = fd
        return self

    def _make_parent(self) -> None:
        missing = [p for p in [self.path.parent, *self.path.parent.parents] if not p.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.made += [p for p in missing if p not in self.made]

    def _same_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it, so no one locks a file about to vanish
        finally:
            os.close(self.fd)
            self.fd = None
        for folder in self.made:   # the folders made for the lock, if the run left them empty (it stopped early)
            try:
                folder.rmdir()
            except OSError:
                break

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
