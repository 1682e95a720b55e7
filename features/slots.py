"""Two checksummed byte slots inside an HDF5 file, rewritten in place without HDF5.

An HDF5 file that is being written when its writer dies can be left unreadable, because
the library rewrites its own metadata (object headers, B-trees, free-space lists). Raw
data of a *contiguous* dataset is different: it is a fixed run of bytes at a fixed offset
(``H5Dget_offset``), and overwriting those bytes changes nothing else in the file. So a
small payload that must change often (the labels) is kept in two such datasets, each
``[magic, sequence number, length, crc32][payload]``:

- a write goes to the slot that does *not* hold the newest valid payload, with the next
  sequence number, in one ``pwrite`` followed by ``fsync``; the HDF5 library is not used;
- a read takes the valid slot with the higher sequence number.

Killed at any moment (or a torn write at power loss), the slot being written fails its
checksum and the other slot, untouched, is read: old payload or new, never a mix. A reader
that has the file open is never disturbed (it reads the slots once, through its own file
descriptor, when it opens the file).
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

MAGIC = b"ACLIPSL1"
_HEADER = struct.Struct("<8sQQI4x")          # magic, sequence, payload length, crc32: 32 bytes
_SEQ_LEN = struct.Struct("<QQ")
NAMES = ("slot0", "slot1")


class SlotFull(Exception):
    """The payload does not fit in a slot; the file must be rewritten with larger ones."""


@dataclass
class _Slot:
    offset: int
    size: int
    seq: int                   # -1: empty or invalid
    payload: bytes | None


def _crc(seq: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(_SEQ_LEN.pack(seq, len(payload))))


def _frame(seq: int, payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, seq, len(payload), _crc(seq, payload)) + payload


def create(group: h5py.Group, capacity: int, payload: bytes | None = None) -> None:
    """Add the two slots (contiguous, allocated now) to ``group`` of a file being written;
    ``payload``, when given, goes into the first one."""
    if payload is not None and _HEADER.size + len(payload) > capacity:
        raise SlotFull(f"{len(payload)} bytes do not fit in slots of {capacity}")
    for name in NAMES:
        data = np.zeros(capacity, np.uint8)
        if payload is not None and name == NAMES[0]:
            frame = _frame(1, payload)
            data[:len(frame)] = np.frombuffer(frame, np.uint8)
        group.create_dataset(name, data=data)          # no chunks: one contiguous run


def present(group: h5py.Group | None) -> bool:
    return group is not None and all(
        n in group and group[n].chunks is None and group[n].id.get_offset() is not None
        for n in NAMES)


def _reader(group: h5py.Group):
    """read(dataset, start, n) -> bytes. Through the open file's own descriptor (same inode,
    and never an HDF5 cache that predates a write), else (files HDF5 reads through a Python
    file object, being written) through h5py."""
    try:
        fd = group.file.id.get_vfd_handle()
    except RuntimeError:
        return lambda ds, start, n: ds[start:start + n].tobytes()
    return lambda ds, start, n: os.pread(fd, n, int(ds.id.get_offset()) + start)


def _inspect(group: h5py.Group) -> list[_Slot]:
    read = _reader(group)
    slots = []
    for name in NAMES:
        ds = group[name]
        offset, size = int(ds.id.get_offset()), int(ds.shape[0])
        seq, payload = -1, None
        magic, s, length, crc = _HEADER.unpack(read(ds, 0, _HEADER.size))
        if magic == MAGIC and _HEADER.size + length <= size:
            body = read(ds, _HEADER.size, length)
            if len(body) == length and _crc(s, body) == crc:
                seq, payload = s, body
        slots.append(_Slot(offset, size, seq, payload))
    return slots


def read(group: h5py.Group) -> bytes | None:
    """The newest valid payload of the slots in ``group``, or None when neither is valid."""
    newest = max(_inspect(group), key=lambda s: s.seq)
    return newest.payload if newest.seq >= 0 else None


def write(path: Path, group_name: str, payload: bytes) -> None:
    """Write ``payload`` into the older slot of ``group_name`` in the HDF5 file ``path``.

    The caller holds the file's writer lock (no one else writes it meanwhile)."""
    with h5py.File(path, "r") as h5:
        slots = _inspect(h5[group_name])
        ident = os.fstat(h5.id.get_vfd_handle())
    target = min(slots, key=lambda s: s.seq)
    if _HEADER.size + len(payload) > target.size:
        raise SlotFull(f"{len(payload)} bytes do not fit in slots of {target.size}")
    frame = _frame(max(s.seq for s in slots) + 1, payload)
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (ident.st_dev, ident.st_ino):
            raise RuntimeError(f"{path} was replaced while its slots were written")
        written = os.pwrite(fd, frame, target.offset)
        if written != len(frame):
            raise OSError(f"short write to {path}: {written} of {len(frame)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)
