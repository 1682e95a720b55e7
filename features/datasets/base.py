"""The label table every dataset adapter produces, and the parsing helpers they share.

An adapter reads a dataset's official files and returns :class:`Annotations`: one
:class:`Entry` per video (video_id, split, class_name, all classes, intervals) plus the
dataset's full class list. Every entry remembers the ``file:line`` it came from, so any
later check can name the line to fix. Nothing here touches a feature store.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import UserError
from ..schema import NORMAL_CLASS
from ..schema import VIDEO_EXTENSIONS

# extensions stripped from names in lists: the videos stage one takes, and features (.npy)
# as peers' lists name them
_NAME_EXTENSIONS = VIDEO_EXTENSIONS | {".npy"}
_CROP_SUFFIX = re.compile(r"__\d+$")       # name__3.npy: crop 3 of video "name"
SHOWN = 10                                 # names shown in a one-line message


def video_key(name: str) -> str:
    """The video_id a list line, path or file name stands for.

    ``Abuse/Abuse001_x264.mp4`` -> ``Abuse001_x264``; ``/feat/v=x__#1_label_A__3.npy`` ->
    ``v=x__#1_label_A``. Only known video / feature extensions are stripped, so names with
    dots (``A.Beautiful.Mind.2001__#00-25-20_...``) survive; a crop suffix ``__N`` goes.
    """
    base = re.split(r"[\\/]", name.strip())[-1]
    suffix = Path(base).suffix
    if suffix.lower() in _NAME_EXTENSIONS:
        base = base[: -len(suffix)]
    return _CROP_SUFFIX.sub("", base)


def first_names(names, n: int = SHOWN) -> str:
    """``a, b, c, ... (+7 more)`` for a one-line message."""
    names = list(names)
    shown = ", ".join(names[:n])
    return shown + (f", ... (+{len(names) - n} more)" if len(names) > n else "")


def read_lines(path: Path):
    """Yield (line number, stripped text) of the non-blank lines of a text file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file (not UTF-8); pass the annotation list "
                        "as downloaded") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror}); check the path") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


def read_tokens(path: Path):
    """Yield ("file:line", stripped text, its whitespace-separated tokens) of the non-blank
    lines of a text file (the shape of every annotation list)."""
    for number, line in read_lines(path):
        yield f"{path}:{number}", line, line.split()


def read_csv_rows(path: Path, what: str):
    """Yield (line number, "file:line", stripped cells) of the non-blank rows of a small CSV
    (``what`` names the file in the error when it cannot be read)."""
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read {what} ({err})") from None
    for number, row in enumerate(rows, start=1):
        row = [c.strip() for c in row]
        if any(row):
            yield number, f"{path}:{number}", row


def parse_int(token: str, where: str, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise UserError(f"{where}: cannot parse {what} {token!r} as a whole number "
                        "(frame numbers are integers)") from None


def interval_pairs(numbers: list[int], where: str) -> list[tuple[int, int]]:
    """Inclusive (start, end) pairs from ``s1 e1 s2 e2 ...``; ``-1 -1`` pairs mean absent."""
    if len(numbers) % 2:
        raise UserError(f"{where}: {len(numbers)} frame numbers, expected start/end pairs")
    pairs = []
    for start, end in zip(numbers[::2], numbers[1::2]):
        if start == -1 and end == -1:
            continue
        if start < 0 or end < start:
            raise UserError(f"{where}: interval {start}-{end} is not a valid inclusive frame "
                            "range (need 0 <= start <= end, or -1 -1 for none)")
        pairs.append((start, end))
    return pairs


def find_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The one file under ``folder`` (recursively) whose name is one of ``names``
    (case-insensitive); None when absent; an error when several match."""
    wanted = {n.lower() for n in names}
    hits = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower() in wanted)
    if len(hits) > 1:
        raise UserError(f"{folder}: several files named {names[0]} ({first_names(map(str, hits))});"
                        " pass the folder that holds the one to use")
    return hits[0] if hits else None


def find_list(folder: Path, word: str, extra_names: tuple[str, ...] = (),
              exclude: tuple[str, ...] = ()) -> Path | None:
    """The one ``.txt``/``.list`` file directly in ``folder`` whose name contains ``word``
    (or is one of ``extra_names``), ignoring ``exclude``; None when there is none."""
    skip = {n.lower() for n in exclude}
    hits = sorted(p for p in folder.iterdir() if p.is_file()
                  and p.suffix.lower() in (".txt", ".list") and p.name.lower() not in skip
                  and (word in p.name.lower() or p.name.lower() in extra_names))
    if len(hits) > 1:
        raise UserError(f"{folder}: several {word} lists ({first_names(p.name for p in hits)}); "
                        f"keep one file with '{word}' in its name in the folder")
    return hits[0] if hits else None


@dataclass
class Entry:
    video_id: str
    split: str                                   # train | val | test
    class_name: str                              # the training class (first of all)
    where: str                                   # "file:line" the video was listed at
    class_names_all: tuple[str, ...] = ()        # all classes (multi-label XD videos)
    intervals: list[tuple[int, int]] = field(default_factory=list)
    intervals_where: str = ""                    # "file:line" the intervals came from


@dataclass
class Annotations:
    """What a dataset's annotation files say, before any feature store is involved."""
    dataset: str
    source: Path
    class_names: list[str]                       # every class incl. Normal
    entries: dict[str, Entry] = field(default_factory=dict)

    def add(self, video_id: str, split: str, class_name: str, where: str,
            class_names_all: tuple[str, ...] = ()) -> Entry:
        """Add a video; listing it again in the same split with the same class (crop
        lines of peers' lists) is ignored, in another split or class it is an error."""
        old = self.entries.get(video_id)
        if old is not None:
            if old.split == split and old.class_name == class_name:
                return old
            raise UserError(f"{where}: video {video_id} is already listed at {old.where} "
                            f"({old.split}, {old.class_name}); a video has one split and class, "
                            "remove one of the lines")
        entry = Entry(video_id, split, class_name, where, class_names_all or (class_name,))
        self.entries[video_id] = entry
        return entry

    def require_test_intervals(self, intervals_file: Path | None, name: str,
                               lacks: str = "line") -> None:
        """A UserError naming the first abnormal test video no annotation line gave
        intervals to (the metrics need them): it has no ``lacks`` (a line, intervals) in
        ``intervals_file``, or (None) the dataset's interval file ``name`` was not found."""
        missing = [e for e in self.entries.values()
                   if e.split == "test" and e.class_name != NORMAL_CLASS and not e.intervals_where]
        if not missing:
            return
        first = missing[0]
        if intervals_file is None:
            raise UserError(f"{first.where}: abnormal test videos need {name} for their "
                            "intervals; put it in the folder passed as --annotations")
        raise UserError(f"{first.where}: abnormal test video {first.video_id} has no {lacks} in "
                        f"{intervals_file} ({len(missing)} such videos: "
                        f"{first_names(e.video_id for e in missing)}); add its intervals")

    def table(self) -> pd.DataFrame:
        """One row per video: video_id, split, class_name, class_names_all, intervals, where."""
        cols = ["video_id", "split", "class_name", "class_names_all", "intervals", "where",
                "intervals_where"]
        rows = [{c: getattr(e, c) for c in cols} for e in self.entries.values()]
        return pd.DataFrame(rows, columns=cols)


def check_class(name: str, known: list[str], where: str, video_id: str) -> str:
    if name not in known:
        raise UserError(f"{where}: unknown class {name!r} for video {video_id}; known classes: "
                        f"{', '.join(known)}")
    return name


def check_class_spelling(names: dict[str, str], source: Path) -> None:
    """Error when two class names differ only in case, spaces or underscores (a typo that
    would silently make two classes); ``names`` maps each class name to where it was seen."""
    seen: dict[str, str] = {}
    for name, where in names.items():
        key = re.sub(r"[\s_]+", "", name).lower()
        if key in seen and seen[key] != name:
            raise UserError(f"{where}: class {name!r} differs only in spelling from "
                            f"{seen[key]!r} in {source}; use one spelling for one class")
        seen.setdefault(key, name)


def is_normal_name(name: str) -> bool:
    return name.strip().lower() == NORMAL_CLASS.lower()
