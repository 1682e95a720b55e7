"""UCF-Crime (Sultani et al., 2018): 13 anomaly classes + Normal, official split files.

``--annotations`` is the folder the official files are in (searched recursively, so the
dataset root works) or one of the files itself:

- ``Anomaly_Train.txt`` / ``Anomaly_Test.txt``: one video per line, ``Abuse/Abuse001_x264.mp4``
  or ``Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4``. The class is the folder
  (any folder with "Normal" in its name is Normal); a bare name takes the letters it
  starts with (``Arson011_x264.mp4`` -> Arson).
- ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``: ``Arson011_x264.mp4  Arson  150
  420  680  1267``: video, class, two inclusive frame intervals, ``-1 -1`` when absent.
  Its videos are test videos; its class must agree with ``Anomaly_Test.txt``.

Any subset of the three may be given; every abnormal test video needs its line in the
temporal file.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError
from ..schema import NORMAL_CLASS
from .base import (Annotations, check_class, find_file, interval_pairs, parse_int,
                   read_tokens, video_key)

NAME = "ucf-crime"
ANOMALY_CLASSES = ["Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting",
                   "RoadAccidents", "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism"]
CLASS_NAMES = sorted(ANOMALY_CLASSES + [NORMAL_CLASS])
TRAIN_LIST, TEST_LIST = "Anomaly_Train.txt", "Anomaly_Test.txt"
TEMPORAL = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
_FILES = (TRAIN_LIST, TEST_LIST, TEMPORAL)


def _class_of(line: str, video_id: str, where: str) -> str:
    parts = re.split(r"[\\/]", line)
    folder = parts[-2] if len(parts) > 1 else ""
    if "normal" in folder.lower() or video_id.lower().startswith("normal"):
        return NORMAL_CLASS
    name = folder or re.match(r"[A-Za-z]*", video_id).group(0)
    return check_class(name, CLASS_NAMES, where, video_id)


def _files(path: Path) -> dict[str, Path]:
    if path.is_file():
        if path.name.lower() not in {f.lower() for f in _FILES}:
            raise UserError(f"{path}: not a UCF-Crime annotation file; pass the folder holding "
                            f"{', '.join(_FILES)}")
        return {f: path for f in _FILES if f.lower() == path.name.lower()}
    found = {f: find_file(path, (f,)) for f in _FILES}
    found = {f: p for f, p in found.items() if p is not None}
    if not found:
        raise UserError(f"{path}: none of {', '.join(_FILES)} found in this folder; pass the "
                        "folder of the official UCF-Crime split and annotation files")
    return found


def read(path: Path) -> Annotations:
    files = _files(path)
    ann = Annotations(NAME, path, CLASS_NAMES)
    for split, key in (("train", TRAIN_LIST), ("test", TEST_LIST)):
        if key not in files:
            continue
        for where, line, tokens in read_tokens(files[key]):
            if len(tokens) != 1:
                raise UserError(f"{where}: cannot parse {line!r}: expected one video path per "
                                "line such as Abuse/Abuse001_x264.mp4")
            vid = video_key(line)
            ann.add(vid, split, _class_of(line, vid, where), where)
    if TEMPORAL in files:
        _read_temporal(files[TEMPORAL], ann)
    ann.require_test_intervals(files.get(TEMPORAL), TEMPORAL)
    return ann


def _read_temporal(path: Path, ann: Annotations) -> None:
    for where, line, tokens in read_tokens(path):
        if len(tokens) != 6:
            raise UserError(f"{where}: cannot parse {line!r}: expected 'video class s1 e1 s2 "
                            "e2' (6 fields, -1 -1 for an absent interval)")
        vid = video_key(tokens[0])
        cls = NORMAL_CLASS if tokens[1].lower() == "normal" else tokens[1]
        check_class(cls, CLASS_NAMES, where, vid)
        pairs = interval_pairs([parse_int(t, where, "frame") for t in tokens[2:]], where)
        entry = ann.entries.get(vid)
        if entry is None:
            entry = ann.add(vid, "test", cls, where)
        elif entry.split != "test":
            raise UserError(f"{where}: {vid} has temporal annotations but is a {entry.split} "
                            f"video at {entry.where}; only test videos carry intervals")
        elif entry.class_name != cls:
            raise UserError(f"{where}: class {cls} of {vid} differs from {entry.class_name} at "
                            f"{entry.where}; fix one of the two lines")
        if cls == NORMAL_CLASS and pairs:
            raise UserError(f"{where}: normal video {vid} has anomalous intervals; use -1 -1")
        if cls != NORMAL_CLASS and not pairs:
            raise UserError(f"{where}: abnormal video {vid} has no interval (all -1); "
                            "give at least one start/end pair")
        if entry.intervals_where:
            raise UserError(f"{where}: {vid} already has intervals at {entry.intervals_where}; "
                            "keep one line per video")
        entry.intervals, entry.intervals_where = pairs, where
