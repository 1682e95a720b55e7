"""Find the videos to extract and name them: the ``video_id`` is the file stem.

Two files whose stems collide get their relative path as id (``a/b.mp4`` -> ``a__b``).
When ids still collide (``a/b.mp4`` beside ``a__b.mp4``, or ``dup.mp4`` beside
``dup.avi``), or a name cannot be an HDF5 name (``..mp4`` has stem ``.``, names that are
not UTF-8 or hold control characters), those files are refused, each with one line naming
the other file: never is one silently dropped or stored under another's name.
"""
from __future__ import annotations

import os
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from features.errors import UserError
from features.schema import VIDEO_EXTENSIONS


@dataclass(frozen=True)
class VideoSource:
    path: Path          # absolute path on this machine (never stored)
    relpath: str        # path relative to the scanned folder, '/'-separated (stored)
    video_id: str       # file stem; with duplicate stems, the relative path with '/' -> '__'
    size: int           # bytes
    mtime_ns: int


@dataclass
class Refused:
    video_id: str
    relpath: str
    reason: str


@dataclass
class Scan:
    videos: list[VideoSource]
    ignored: int        # files skipped by extension (e.g. .txt)
    root: Path = Path(".")          # the folder relative paths start from (absolute)
    refused: list[Refused] = field(default_factory=list)   # files whose name cannot be an id


def printable(text: str) -> str:
    """``text`` safe for a one-line message and a UTF-8 CSV (bad bytes and control
    characters escaped)."""
    text = os.fsencode(text).decode("utf-8", "backslashreplace")    # bytes as \xff
    return "".join(repr(c)[1:-1] if unicodedata.category(c) == "Cc" else c for c in text)


def id_problem(video_id: str) -> str | None:
    """Why ``video_id`` cannot name a video in the feature file, or None."""
    if video_id in ("", "."):
        return f"its name gives the video_id {video_id!r}, which HDF5 cannot hold"
    try:
        video_id.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    if any(unicodedata.category(c) == "Cc" for c in video_id):
        return "its name holds control characters (such as a line break)"
    return None


def scan_videos(videos: str | Path) -> Scan:
    """All files with a video extension under ``videos`` (a folder, recursive, or one file)."""
    root = Path(videos).expanduser()
    if not root.exists():
        raise UserError(f"--videos {videos}: no such file or folder")
    if root.is_file():
        files, base = [root], root.parent
    else:
        files = sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())
        base = root
    chosen = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
    ignored = len(files) - len(chosen)
    if not chosen:
        raise UserError(f"--videos {videos}: no video files found (extensions: "
                        f"{', '.join(sorted(VIDEO_EXTENSIONS)[:8])}, ...)")
    rel = [p.relative_to(base).as_posix() for p in chosen]
    stems = Counter(p.stem for p in chosen)
    ids = [p.stem if stems[p.stem] == 1 else r.rsplit(".", 1)[0].replace("/", "__")
           for p, r in zip(chosen, rel)]
    named: dict[str, list[str]] = defaultdict(list)
    for vid, r in zip(ids, rel):
        named[vid].append(r)
    out, refused = [], []
    for p, r, vid in zip(chosen, rel, ids):
        why = id_problem(vid)
        if why is None and len(named[vid]) > 1:
            others = ", ".join(printable(o) for o in named[vid] if o != r)
            why = (f"its video_id {vid} is also the id of {others}; rename one of them so "
                   "each video has its own id")
        if why is not None:
            refused.append(Refused(printable(vid), printable(r),
                                   why if "rename" in why else f"{why}; rename it"))
            continue
        try:
            st = p.stat()
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:                       # dangling link etc.: reported as a failure later
            size, mtime = -1, 0
        out.append(VideoSource(p.resolve() if p.exists() else p.absolute(), r, vid, size, mtime))
    return Scan(out, ignored, base.resolve(), refused)


def unreadable_reason(src: VideoSource) -> str | None:
    """Why a file cannot even be opened, or None."""
    if src.size < 0:
        return "file cannot be accessed (dangling link or removed)"
    if src.size == 0:
        return "empty file (0 bytes)"
    if not os.access(src.path, os.R_OK):
        return "permission denied (file is not readable)"
    return None
