"""Custom datasets: one manifest table (CSV or Parquet), one row per video.

Columns:

- ``video``: the video's path relative to your videos folder (only its file name without
  extension is used: it is the video_id of the store);
- ``split``: ``train``, ``val`` or ``test`` (when any row says ``val``, no validation split
  is carved: yours is used);
- ``label``: the class name, ``normal`` / ``Normal`` for normal videos;
- ``intervals`` (optional): anomalous native-frame intervals, inclusive, as
  ``150-420;680-1267``; empty for normal and training videos.

The class list is every label found plus Normal. Labels that differ only in case, spaces
or underscores (``Fighting`` / ``fighting``) are an error, not two classes, and so is a
video listed on two rows (which row should win is a guess).
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import UserError, first_line
from ..schema import NORMAL_CLASS, SPLITS
from .base import Annotations, check_class_spelling, is_normal_name, video_key

NAME = "csv"
REQUIRED = ("video", "split", "label")
_PAIR = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def _table(path: Path) -> tuple[pd.DataFrame, str]:
    """The manifest as strings, and how its rows are named in messages ('line' or 'row')."""
    if path.is_dir():
        raise UserError(f"{path}: for --dataset csv pass the manifest file (.csv or .parquet), "
                        "not a folder")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path)
            table = table.astype(object).where(table.notna(), "").astype(str)
            return table, "row"
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True), "line"
    except FileNotFoundError:
        raise UserError(f"{path}: no such manifest; pass --annotations MANIFEST.csv") from None
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        first = first_line(err)
        raise UserError(f"{path}: cannot read the manifest ({first}); it must be a CSV with a "
                        "header line (video,split,label[,intervals]) or a Parquet file") from None


def parse_intervals(text: str, where: str) -> list[tuple[int, int]]:
    """``"150-420;680-1267"`` -> [(150, 420), (680, 1267)]."""
    pairs = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        match = _PAIR.match(part)
        if not match:
            raise UserError(f"{where}: cannot parse interval {part!r}: expected start-end in "
                            "native frames, several joined by ';' (150-420;680-1267)")
        start, end = int(match.group(1)), int(match.group(2))
        if end < start:
            raise UserError(f"{where}: interval {part} ends before it starts")
        pairs.append((start, end))
    return pairs


def read(path: Path) -> Annotations:
    table, unit = _table(path)
    table.columns = [str(c).strip().lower() for c in table.columns]
    absent = [c for c in REQUIRED if c not in table.columns]
    if absent:
        raise UserError(f"{path}: manifest has no column {', '.join(absent)} (columns: "
                        f"{', '.join(table.columns)}); the header must be video,split,label"
                        "[,intervals]")
    first_row = 2 if unit == "line" else 1            # CSV line 1 is the header
    seen: dict[str, str] = {}
    listed: dict[str, str] = {}                       # video_id -> where it was first listed
    rows = []
    for i, rec in enumerate(table.to_dict("records")):
        where = f"{path}:{i + first_row}" if unit == "line" else f"{path}:row {i + first_row}"
        video, split, label = (str(rec[c]).strip() for c in REQUIRED)
        if not video or not label:
            raise UserError(f"{where}: empty {'video' if not video else 'label'}; every row "
                            "needs video, split and label")
        if split.lower() not in SPLITS:
            raise UserError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
        if re.fullmatch(r"[-+]?\d+(\.\d*)?", label):
            raise UserError(f"{where}: label {label!r} is a number, not a class name; write "
                            "normal for normal videos and the anomaly's class name otherwise")
        name = NORMAL_CLASS if is_normal_name(label) else label
        seen.setdefault(name, where)
        vid = video_key(video)
        if vid in listed:
            raise UserError(f"{where}: video {vid} is already listed at {listed[vid]}; a video "
                            "has one row (put all its intervals there, joined by ';')")
        listed[vid] = where
        rows.append((where, vid, split.lower(), name,
                     parse_intervals(str(rec.get("intervals", "") or ""), where)))
    check_class_spelling(seen, path)
    ann = Annotations(NAME, path, sorted(set(seen) | {NORMAL_CLASS}))
    for where, vid, split, name, pairs in rows:
        entry = ann.add(vid, split, name, where)
        if pairs and name == NORMAL_CLASS:
            raise UserError(f"{where}: normal video {vid} has anomalous intervals; leave "
                            "intervals empty or give the anomaly's class as label")
        if split == "test" and name != NORMAL_CLASS and not pairs:
            raise UserError(f"{where}: abnormal test video {vid} has no intervals; give them "
                            "(e.g. 150-420;680-1267), or every frame would count as normal")
        entry.intervals, entry.intervals_where = pairs, (where if pairs else "")
    return ann
