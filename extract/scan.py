"""Find the videos to extract and name them: the ``video_id`` is the file stem."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from features.errors import UserError

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
    ".mts", ".m2ts", ".3gp", ".ogv", ".asf", ".vob", ".dv", ".mxf", ".y4m"})


@dataclass(frozen=True)
class VideoSource:
    path: Path          # absolute path on this machine (never stored)
    relpath: str        # path relative to the scanned folder, '/'-separated (stored)
    video_id: str       # file stem; with duplicate stems, the relative path with '/' -> '__'
    size: int           # bytes
    mtime_ns: int

    def signature(self) -> tuple[int, int]:
        """What must match for a stored video to count as already extracted."""
        return self.size, self.mtime_ns


@dataclass
class Scan:
    videos: list[VideoSource]
    ignored: int        # files skipped by extension (e.g. .txt)


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
    out = []
    for p, r in zip(chosen, rel):
        vid = p.stem if stems[p.stem] == 1 else r.rsplit(".", 1)[0].replace("/", "__")
        try:
            st = p.stat()
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:                       # dangling link etc.: reported as a failure later
            size, mtime = -1, 0
        out.append(VideoSource(p.resolve() if p.exists() else p.absolute(), r, vid, size, mtime))
    return Scan(out, ignored)


def unreadable_reason(src: VideoSource) -> str | None:
    """Why a file cannot even be opened, or None."""
    if src.size < 0:
        return "file cannot be accessed (dangling link or removed)"
    if src.size == 0:
        return "empty file (0 bytes)"
    if not os.access(src.path, os.R_OK):
        return "permission denied (file is not readable)"
    return None
