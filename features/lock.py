"""One writer per feature file: a lock held for a whole extract, label or import run.

The lock is ``fcntl.flock`` on a sidecar ``<file>.lock`` (``features.h5.lock``) holding one
line of JSON about its holder (pid, host, command, start time), so a second writer can say
who it waits for. The kernel releases a flock when its holder dies, however it dies (kill
-9, power loss of a client), so a dead holder's lock is simply taken over; its record, left
behind, is reported. A clean release deletes the file; an opener that locked a file
deleted meanwhile notices (its inode is no longer the path's) and tries again.

The holder owns ``<file>.tmp`` (where whole-file rewrites are written): taking the lock
deletes the one a killed holder left. Readers never need the lock: whole files are
replaced by rename (a reader keeps the file it opened), and labels are written into the
slot no reader is using (``features/slots.py``).

Filesystems without kernel locks (flock fails with ENOLCK or EOPNOTSUPP, e.g. NFS mounted
with ``nolock`` and no lock daemon): the lock file is then created with O_EXCL and its
existence is the lock. A holder on this host whose pid is gone is detected and taken over;
one on another host cannot be checked, so the message names it and the file to delete if
that run is gone. NFSv4 and NFSv3 with lockd support flock (Linux maps it to POSIX locks
there), so the kernel lock is used on them, across hosts.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from .errors import UserError
from .safe_write import remove_quietly, storage_error, temp_path
from .schema import utc_now

log = logging.getLogger("pipeline")

_NO_KERNEL_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)
_POLL_S = 1.0


def lock_path(store: Path) -> Path:
    store = Path(store)
    return store.with_name(store.name + ".lock")


@dataclass
class Holder:
    pid: int
    host: str
    command: str
    started: str

    @classmethod
    def me(cls, command: str) -> "Holder":
        return cls(os.getpid(), socket.gethostname(), command, utc_now())

    @classmethod
    def parse(cls, text: str) -> "Holder | None":
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host} (`pipeline {self.command}`, started {self.started})"

    def gone(self) -> bool:
        """True when this holder ran on this host and its process no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False


@contextmanager
def store_lock(store: str | Path, command: str, wait: bool = False) -> Iterator[None]:
    """Hold the writer lock of the feature file ``store`` for the ``with`` block.

    A second writer gets a one-line UserError naming the holder, or with ``wait`` blocks
    until the holder is done. The lock is not re-entrant: a stage takes it once for its
    whole run (``extract --dataset`` labels under the extraction's lock), so a second
    ``store_lock`` of the same file, even in the same process, is a second writer.
    The store's folder is created when missing.
    """
    path = lock_path(Path(store)).absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise storage_error(err, Path(store), "create its folder",
                            "use a feature file on a writable disk") from None
    fd = _acquire(path, Path(store), command, wait)
    try:
        yield
    finally:
        _release(fd, path)


def _open(path: Path, store: Path) -> tuple[int, bool]:
    """(fd, created) of the lock file, created when absent."""
    flags = os.O_RDWR | os.O_CLOEXEC
    while True:
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            pass
        except OSError as err:
            raise storage_error(err, store, f"create its lock file {path.name}",
                                "use a feature file on a writable disk") from None
        try:
            return os.open(path, flags), False
        except FileNotFoundError:                  # released meanwhile: create it
            continue
        except OSError as err:
            raise storage_error(err, store, f"open its lock file {path.name}",
                                "use a feature file on a writable disk") from None


def _read(fd: int) -> Holder | None:
    try:
        return Holder.parse(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
    except OSError:
        return None


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _busy(store: Path, path: Path, holder: Holder | None, kernel: bool) -> UserError:
    who = str(holder) if holder else "another process (it is just starting)"
    hint = "" if kernel else (f"; if that run is gone (this filesystem has no kernel locks), "
                              f"delete {path}")
    return UserError(f"{store}: {who} is writing it; wait until it is done, or pass --wait to "
                     f"start then{hint}")


def _acquire(path: Path, store: Path, command: str, wait: bool) -> int:
    told = False
    while True:
        fd, created = _open(path, store)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            if not wait:
                os.close(fd)
                raise _busy(store, path, holder, kernel=True) from None
            if not told:
                log.warning("%s: %s is writing it; waiting until it is done", store,
                            holder or "another process")
                told = True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
        except OSError as err:
            if err.errno not in _NO_KERNEL_LOCKS:
                os.close(fd)
                raise
            if created:                              # no kernel locks: O_EXCL won the race
                return _claim(fd, path, store, command, None)
            holder = _read(fd)
            os.close(fd)
            if holder is not None and holder.gone():
                log.warning("%s: %s stopped without releasing its lock; taking over", store,
                            holder)
                path.unlink(missing_ok=True)
                continue
            if not wait:
                raise _busy(store, path, holder, kernel=False) from None
            time.sleep(_POLL_S)
            continue
        if not _same_file(fd, path):                 # released and deleted meanwhile
            os.close(fd)
            continue
        return _claim(fd, path, store, command, _read(fd))


def _claim(fd: int, path: Path, store: Path, command: str, previous: Holder | None) -> int:
    if previous is not None:
        log.warning("%s: %s stopped without releasing its lock; taking it over", store,
                    previous)
    try:
        remove_quietly(temp_path(store))       # a killed holder's half-written new version
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(asdict(Holder.me(command))) + "\n").encode(), 0)
    except OSError as err:
        _release(fd, path)
        raise storage_error(err, store, f"write its lock file {path.name}",
                            "use a feature file on a writable disk") from None
    except BaseException:
        _release(fd, path)
        raise
    return fd


def _release(fd: int, path: Path) -> None:
    try:
        if _same_file(fd, path):
            path.unlink(missing_ok=True)
    except OSError:
        pass
    finally:
        os.close(fd)
