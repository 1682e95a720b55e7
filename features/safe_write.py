"""Writing files so that nothing is lost: atomic replace, and disk errors as one clear line.

A file is replaced by writing ``NAME.tmp``, fsyncing it and renaming it over ``NAME`` (atomic
on one filesystem), then fsyncing the folder: :func:`atomic_write`, used by every writer.

Disk errors (full, read-only) must never reach the HDF5 library: a write that fails inside
it leaves a file handle that crashes the process (segmentation fault) when it is closed,
even at interpreter exit (h5py issue 914, still so with HDF5 2.0). :class:`H5Writer` opens
an HDF5 file for writing through a Python file object that keeps the first disk error for
itself and drops later writes; HDF5 closes the (now useless) file cleanly, then the error is
raised as an ordinary ``OSError``. :func:`storage_problem` recognises such errors, and the
``RuntimeError`` texts h5py builds from them (``... errno = 28 ...``), so callers can name
the file and the fix in one line.
"""
from __future__ import annotations

import errno
import io
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import h5py

from .errors import UserError, one_line

# errnos that mean "this place cannot take the write", with what to tell the user
_STORAGE = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
            errno.EFBIG: "file too large for the filesystem",
            errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted"}
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_ERRNO_IN_TEXT = re.compile(r"errno\s*=\s*(\d+)")
# torch.save's zip writer reports a failed write without an errno ("[enforce fail at
# inline_container.cc:672] . unexpected pos ...", "PytorchStreamWriter failed writing file")
_TORCH_WRITE = re.compile(r"inline_container\.cc|PytorchStreamWriter failed writing")
# what any writer's disk error tells the user when no caller says more
WRITE_FIX = "write elsewhere (another --out), then run the same command again"


class StorageError(UserError):
    """The one-line error of a write that met a full or read-only disk; ``err`` is the
    original error, ``written`` the bytes the failed write had put down (a lower bound of
    what it needed), ``generic`` marks the message :func:`atomic_write` makes, which an
    enclosing :func:`storage_errors` replaces by its own (it knows what was being written)."""

    def __init__(self, message: str, err: BaseException, written: int | None = None,
                 generic: bool = False):
        super().__init__(message)
        self.err, self.written, self.generic = err, written, generic


def temp_path(path: Path, keep_suffix: bool = False) -> Path:
    """Where a new version of ``path`` is written before it replaces ``path``: ``NAME.tmp``,
    or with ``keep_suffix`` ``STEM.tmp.SUFFIX`` (for tools that pick a format by the file
    name, such as ffmpeg). Only the holder of a feature file's writer lock writes its
    ``.tmp``; the lock deletes a dead holder's leftover."""
    path = Path(path)
    if keep_suffix:
        return path.with_name(f"{path.stem}.tmp{path.suffix}")
    return path.with_name(path.name + ".tmp")


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_mode() -> int:
    """The permissions a new file gets here: 0666 less the umask (some writers, such as
    safetensors, create 0600 files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)          # no /proc: read the mask by setting it, then restore it
    os.umask(mask)
    return 0o666 & ~mask


def atomic_replace(tmp: Path, final: Path) -> None:
    """Make ``tmp`` durable with normal permissions, then rename it over ``final`` (atomic on
    one filesystem) and make the rename durable. A folder ``tmp`` has every file in it made
    durable first; an existing folder ``final`` is removed just before the rename (a folder
    cannot be renamed over a non-empty one), so ``final`` is then missing or complete."""
    tmp, final = Path(tmp), Path(final)
    if tmp.is_dir():
        for item in sorted(tmp.rglob("*")):
            if item.is_file():
                os.chmod(item, file_mode())
                fsync_path(item)
        fsync_path(tmp)
        if final.is_dir():
            shutil.rmtree(final)
    else:
        os.chmod(tmp, file_mode())
        fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(final.parent)


def atomic_write(final: str | Path, write, keep_suffix: bool = False) -> Path:
    """``write(tmp)`` next to ``final``, then :func:`atomic_replace`: readers see the old file
    or the complete new one, never part of it. The temporary file (or folder) goes on
    failure. ``keep_suffix``: see :func:`temp_path`. The one way this project replaces a
    file::

        atomic_write(path, lambda tmp: tmp.write_text(text))
    """
    final = Path(final)
    tmp = temp_path(final, keep_suffix)
    remove_quietly(tmp)                      # left by a write that was killed
    try:
        write(tmp)
        atomic_replace(tmp, final)
    except BaseException as err:
        written = disk_usage(tmp)
        remove_quietly(tmp)
        if isinstance(err, StorageError) or not storage_problem(err):
            raise
        raise storage_error(err, final, "write it", WRITE_FIX, needed=written or None,
                            at_least=True, generic=True) from None
    return final


def disk_usage(path: Path) -> int:
    """Bytes in the file ``path`` or in every file under the folder ``path`` (0: none)."""
    path = Path(path)
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size if path.exists() else 0
    except OSError:
        return 0


@contextmanager
def storage_errors(path: Path, doing: str, fix: str, needed=None, at_least: bool = False):
    """Turn a full or read-only disk met inside the block into the one-line
    :func:`storage_error` for ``path``; ``needed``: a function giving the bytes the write
    needed (called only then; without it, what the failed write had put down, as a lower
    bound; ``at_least``: ``needed`` is such a bound too). The generic line of an
    :func:`atomic_write` inside is replaced by this one."""
    try:
        yield
    except StorageError as err:
        if not err.generic:
            raise
        size = needed() if needed else None
        raise storage_error(err.err, path, doing, fix, needed=size or err.written,
                            at_least=at_least or not size) from None
    except (OSError, RuntimeError) as err:
        if storage_problem(err):
            raise storage_error(err, path, doing, fix, needed=needed() if needed else None,
                                at_least=at_least) from None
        raise


def remove_quietly(path: Path) -> None:
    """Delete the file (or folder) ``path`` if it exists; a failure to delete is not worth a
    second error."""
    path = Path(path)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def error_errno(err: BaseException) -> int | None:
    """The errno of an OSError, or the one h5py wrote into a RuntimeError's text."""
    number = getattr(err, "errno", None)
    if isinstance(number, int):
        return number
    found = _ERRNO_IN_TEXT.search(str(err))
    if found:
        return int(found.group(1))
    if isinstance(err, RuntimeError) and _TORCH_WRITE.search(str(err)):
        return errno.ENOSPC                # the one way such a write fails on a sound disk
    cause = err.__cause__ or err.__context__
    return error_errno(cause) if isinstance(cause, (OSError, RuntimeError)) else None


def storage_problem(err: BaseException) -> str | None:
    """"no space left on device", "read-only file system", ... or None for other errors."""
    if not isinstance(err, (OSError, RuntimeError)):
        return None
    return _STORAGE.get(error_errno(err))


def is_disk_full(err: BaseException) -> bool:
    return error_errno(err) in _FULL


def storage_error(err: BaseException, path: Path, doing: str, fix: str,
                  needed: int | None = None, at_least: bool = False,
                  generic: bool = False) -> StorageError:
    """The one-line error for a write to ``path`` that failed with a storage problem:
    ``path: cannot <doing>: <problem> [(needs ~X MiB, Y MiB free)]; <fix>`` (``at_least``:
    ``needs more than X``, when only what the write had put down is known)."""
    problem = storage_problem(err) or one_line(err)
    space = ""
    if is_disk_full(err):
        free = free_bytes(Path(path).parent)
        need = (f"needs {'more than ' if at_least else '~'}{_size(needed)}, "
                if needed else "")
        space = f" ({need}{_size(free)} free)" if free is not None else ""
        fix = f"free space there or {fix}"
    elif error_errno(err) in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = f"make it writable or {fix}"
    return StorageError(f"{path}: cannot {doing}: {problem}{space}; {fix}", err,
                        written=needed, generic=generic)


def _size(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:,.1f} GiB"
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{max(n, 1) / 2**10:,.0f} KiB"


def free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


class _KeepErrors(io.RawIOBase):
    """A read/write file for h5py's ``fileobj`` driver that never raises: the first OSError
    is kept in ``error``, later writes are dropped, reads past the data return zeros. Every
    write is complete (h5py ignores short writes), every read fills its buffer."""

    def __init__(self, path: Path, create: bool):
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT | os.O_TRUNC if create else 0)
        self.path = path
        self._fd = os.open(path, flags, 0o644)
        self._pos = 0
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        self._pos = os.lseek(self._fd, pos, whence) if whence != os.SEEK_SET else pos
        return self._pos

    def tell(self) -> int:
        return self._pos

    def _keep(self, err: OSError) -> None:
        if self.error is None:
            self.error = err

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self.error is None:
            try:
                n = os.preadv(self._fd, [view[done:]], self._pos + done)
            except OSError as err:
                self._keep(err)
                break
            if n == 0:
                break
            done += n
        view[done:] = bytes(len(view) - done)
        self._pos += len(view)
        return len(view)

    def write(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self.error is None:
            try:
                done += os.pwrite(self._fd, view[done:], self._pos + done)
            except OSError as err:
                self._keep(err)
        self._pos += len(view)
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self._fd, size)
            except OSError as err:
                self._keep(err)
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class H5Writer:
    """An HDF5 file open for writing (``mode`` "w": new, "r+": an existing private copy),
    whose disk errors never reach the HDF5 library (see the module docstring)::

        with H5Writer(tmp) as h5:      # h5 is an h5py.File
            ...                        # a full disk raises OSError(ENOSPC) at the end

    ``failed`` tells early that writes are being dropped, so a long write can stop."""

    def __init__(self, path: str | Path, mode: str = "w"):
        if mode not in ("w", "r+"):
            raise ValueError(f"H5Writer mode {mode!r}: use 'w' or 'r+'")
        self._io = _KeepErrors(Path(path), create=mode == "w")
        try:
            self.h5 = h5py.File(self._io, mode)
        except BaseException:
            self._io.close()
            raise

    @property
    def failed(self) -> OSError | None:
        return self._io.error

    def close(self) -> None:
        """Close; raise the kept disk error, if any."""
        try:
            if self.h5.id.valid:
                self.h5.close()
        finally:
            self._io.close()
        if self._io.error is not None:
            raise self._io.error

    def __enter__(self) -> h5py.File:
        return self.h5

    def __exit__(self, kind, value, tb) -> None:
        try:
            self.close()
        except OSError:
            if value is None or storage_problem(self._io.error):
                raise                                  # the disk error explains the rest
