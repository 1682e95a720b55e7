"""Checksums of the feature file: damaged bytes are named, never read as real rows.

Every chunked dataset a writer creates (a video's ``embeddings``, ``frame_index`` and
``timestamps_ms``: :class:`features.store.VideoWriter`, used by extract, import and the
synthetic stores; the merge copies the datasets with their filters) carries HDF5's
fletcher32 filter: a 32-bit checksum per chunk, computed on write and checked by the
library on every read of that chunk. A chunk whose bytes changed on disk fails its read.

:func:`reading` turns such a failure (or any other read error of a video's rows) into one
line naming the file, the video and the fix, raised wherever rows are read for training
or scoring; :func:`verify_store` reads every chunk of every video (``pipeline info
--verify``). Fletcher32 cannot tell a 16-bit word 0x0000 from 0xFFFF (inverted zero bytes,
common in int64 frame numbers and in a chunk's unused tail), so each video also records the
crc32 of each dataset's rows at write time (:class:`Digest`, the video attr ``rows_crc32``),
compared whenever a whole dataset is read. Training and scoring refuse a damaged video rather than skip it: a model
trained without one of its videos is another model, and a scoring without one of its test
videos reports other numbers. Files written before the checksums read as before; their
videos are listed as having none.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import json
import zlib

import h5py
import numpy as np

from .errors import UserError, one_line
from .progress import Progress

# creation options every chunked dataset of a video gets (h5py's create_dataset keywords)
CHECKSUM = {"fletcher32": True}
# the video attr holding {dataset: crc32 of its rows as stored} (declared in schema.py)
DIGEST_ATTR = "rows_crc32"
_VERIFY_ROWS = 16384            # rows read at a time by verify_store (whole chunks)


class DamagedVideo(UserError):
    """A video's stored rows fail their checksum (or cannot be read at all)."""

    def __init__(self, path: Path, video_id: str, detail: str):
        self.video_id = video_id
        super().__init__(f"{path}: video {video_id} is damaged ({detail}); {fix(video_id)}")


def fix(video_id: str) -> str:
    """What to do about a damaged video, in words."""
    return (f"re-extract {video_id}: touch its source video and run the same `pipeline extract` "
            f"again (imported features: import them into a new --out); `pipeline info --verify` "
            f"lists every damaged video")


@contextmanager
def reading(path: Path, video_id: str):
    """Read rows of ``video_id`` inside the block; a read that fails (a checksum mismatch,
    broken chunk metadata) becomes :class:`DamagedVideo`."""
    try:
        yield
    except OSError as err:
        raise DamagedVideo(Path(path), video_id, _detail(err)) from None


def _detail(err: OSError) -> str:
    text = one_line(err)
    if "filter returned failure" in text or "checksum" in text.lower():
        return "its rows fail their fletcher32 checksum"
    # (DamagedVideo from check_digest passes through: it is a UserError, not an OSError)
    return f"its rows cannot be read: {text}"


class Digest:
    """crc32 of each dataset's rows, accumulated as they are written (fletcher32 misses a
    16-bit word inverted between 0x0000 and 0xFFFF, common in int64 frame numbers)."""

    def __init__(self):
        self.crc: dict[str, int] = {}

    def add(self, name: str, rows: np.ndarray, restart: bool = False) -> None:
        start = 0 if restart else self.crc.get(name, 0)
        self.crc[name] = zlib.crc32(_bytes(rows), start)

    def attr(self) -> str:
        return json.dumps(self.crc, sort_keys=True)


def _bytes(rows: np.ndarray) -> memoryview:
    return memoryview(np.ascontiguousarray(rows)).cast("B")


def check_digest(path: Path, video_id: str, group: h5py.Group, name: str,
                 rows: np.ndarray) -> None:
    """Compare the whole dataset ``name`` as read with the crc32 recorded at write time
    (nothing to compare in files written before it)."""
    stored = group.attrs.get(DIGEST_ATTR)
    want = json.loads(stored).get(name) if stored is not None else None
    if want is not None and zlib.crc32(_bytes(rows)) != int(want):
        raise DamagedVideo(Path(path), video_id, f"its {name} differ from the crc32 recorded "
                                                 "when they were written")


def has_checksums(group: h5py.Group) -> bool:
    """True when every chunked dataset of the video group carries fletcher32 and the group
    its crc32 digest."""
    chunked = [ds for ds in group.values() if isinstance(ds, h5py.Dataset) and ds.chunks]
    return bool(chunked) and all(ds.fletcher32 for ds in chunked) and DIGEST_ATTR in group.attrs


@dataclass
class Verified:
    """What :func:`verify_store` found: videos whose every chunk passed, videos without
    checksums (read, but nothing to check against), and damaged ones with why."""
    path: Path
    checked: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"  {'checksums':<16} {len(self.checked)} videos verified (fletcher32 on every "
               f"chunk), {len(self.damaged)} damaged"]
        if self.unchecked:
            shown = ", ".join(self.unchecked[:5]) + (" ..." if len(self.unchecked) > 5 else "")
            out.append(f"  {'no checksums':<16} {len(self.unchecked)} videos ({shown}): "
                       "written before checksums; re-extract to add them")
        out += [f"  {'damaged':<16} {vid}: {why}" for vid, why in self.damaged.items()]
        return out

    def error(self) -> UserError | None:
        """The one line that ends ``info --verify`` when something is damaged."""
        if not self.damaged:
            return None
        names = list(self.damaged)
        shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
        what = "re-extract them" if len(names) > 1 else fix(names[0])
        return UserError(f"{self.path}: {len(names)} damaged video(s): {shown}; {what}")


def verify_video(path: Path, group: h5py.Group) -> None:
    """Read every chunk of every dataset of one video group (the library checks each
    chunk's fletcher32) and compare each dataset's crc32; raise :class:`DamagedVideo`."""
    video_id = group.name.rsplit("/", 1)[-1]
    stored = group.attrs.get(DIGEST_ATTR)
    want = json.loads(stored) if stored is not None else {}
    with reading(path, video_id):
        for name, ds in group.items():
            if not isinstance(ds, h5py.Dataset):
                continue
            crc = 0
            for start in range(0, ds.shape[0], _VERIFY_ROWS) if ds.shape else [None]:
                rows = ds[()] if start is None else ds[start:start + _VERIFY_ROWS]
                crc = zlib.crc32(_bytes(rows), crc)
            if name in want and crc != int(want[name]):
                raise DamagedVideo(Path(path), video_id, f"its {name} differ from the crc32 "
                                                         "recorded when they were written")


def verify_store(store, progress: bool | None = None) -> Verified:
    """Read every row of every complete video of an open FeatureStore, checking checksums."""
    found = Verified(store.path)
    videos = store.h5.get("videos")
    with Progress(len(store.video_ids), "verify", "video", show=progress) as bar:
        for vid in store.video_ids:
            group = videos[vid]
            try:
                verify_video(store.path, group)
            except DamagedVideo as err:
                found.damaged[vid] = str(err).split(" is damaged (", 1)[1].split(");", 1)[0]
            else:
                (found.checked if has_checksums(group) else found.unchecked).append(vid)
            bar.update(1)
    return found
