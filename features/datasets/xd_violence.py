"""XD-Violence (Wu et al., 2020): 6 violence classes + Normal, labels in the file names.

``--annotations`` is a folder holding, directly in it:

- a train list and a test list: ``.txt`` / ``.list`` files with "train" / "test" in their
  names (``train.list``, ``test.list``; the peers' ``rgb.list`` counts as the train list).
  One video per line, as a name or any path, with or without extension; peers' crop
  feature lines (``.../v=x__#1_label_A__3.npy``) fold into one video.
- ``annotations.txt`` (the official test annotation): ``<video> s1 e1 s2 e2 ...``,
  inclusive native frames. Lines of videos in neither list are ignored.

Labels come from the file name: ``..._label_B1-0-0`` is Fighting, ``..._label_A`` Normal,
``..._label_B2-G-0`` is Shooting and Explosion. Codes: A Normal, B1 Fighting, B2 Shooting,
B4 Riot, B5 Abuse, B6 Car_accident, G Explosion. A multi-label video keeps all its classes
(``class_names_all``, in name order); the one class it trains with (``class_name``) is the
FIRST listed, the one the XD-Violence authors put first.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError
from ..schema import NORMAL_CLASS
from .base import (Annotations, find_list, interval_pairs, parse_int, read_tokens,
                   video_key)

NAME = "xd-violence"
CODES = {"A": NORMAL_CLASS, "B1": "Fighting", "B2": "Shooting", "B4": "Riot", "B5": "Abuse",
         "B6": "Car_accident", "G": "Explosion"}
CLASS_NAMES = sorted(CODES.values())
ANNOTATION_FILE = "annotations.txt"
_LABEL = re.compile(r"_label_([A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)$")


def classes_from_name(video_id: str, where: str) -> tuple[str, ...]:
    """All classes a video's name encodes, in name order (``0`` fills unused slots)."""
    match = _LABEL.search(video_id)
    if not match:
        raise UserError(f"{where}: cannot read a label from the name {video_id!r}; XD-Violence "
                        "names end in _label_<codes> such as _label_A or _label_B1-0-0")
    names: list[str] = []
    for code in match.group(1).split("-"):
        if code == "0":
            continue
        if code.upper() not in CODES:
            raise UserError(f"{where}: unknown class code {code!r} in {video_id}; known codes: "
                            + ", ".join(f"{c} {n}" for c, n in CODES.items()))
        name = CODES[code.upper()]
        if name not in names:
            names.append(name)
    if not names or (NORMAL_CLASS in names and len(names) > 1):
        raise UserError(f"{where}: label {match.group(1)!r} of {video_id} is neither A (normal) "
                        "nor a list of violence codes")
    return tuple(names)


def read(path: Path) -> Annotations:
    if not path.is_dir():
        raise UserError(f"{path}: for xd-violence pass the folder holding train/test lists and "
                        f"{ANNOTATION_FILE}")
    ann = Annotations(NAME, path, CLASS_NAMES)
    lists = {"train": find_list(path, "train", ("rgb.list",), exclude=(ANNOTATION_FILE,)),
             "test": find_list(path, "test", exclude=(ANNOTATION_FILE,))}
    if lists["train"] is None and lists["test"] is None:
        raise UserError(f"{path}: no train or test list (a .txt/.list file with 'train' or "
                        "'test' in its name, one video per line); write one, e.g. "
                        "`ls videos/train > train.list`")
    for split, list_path in lists.items():
        if list_path is None:
            continue
        for where, line, _ in read_tokens(list_path):
            vid = video_key(line)
            names = classes_from_name(vid, where)
            ann.add(vid, split, names[0], where, names)
    intervals_file = path / ANNOTATION_FILE
    if intervals_file.exists():
        _read_intervals(intervals_file, ann)
    ann.require_test_intervals(intervals_file, ANNOTATION_FILE)
    return ann


def _read_intervals(path: Path, ann: Annotations) -> None:
    for where, line, tokens in read_tokens(path):
        if len(tokens) < 3:
            raise UserError(f"{where}: cannot parse {line!r}: expected '<video> s1 e1 [s2 e2 ...]'")
        vid = video_key(tokens[0])
        pairs = interval_pairs([parse_int(t, where, "frame") for t in tokens[1:]], where)
        entry = ann.entries.get(vid)
        if entry is None:
            continue                    # not part of this labelling (in neither list)
        if entry.split != "test":
            raise UserError(f"{where}: {vid} has test intervals but is a {entry.split} video at "
                            f"{entry.where}; only test videos carry intervals")
        if entry.class_name == NORMAL_CLASS:
            raise UserError(f"{where}: {vid} is normal by its name (label_A) but has intervals")
        if entry.intervals_where:
            raise UserError(f"{where}: {vid} already has intervals at {entry.intervals_where}; "
                            "keep one line per video")
        if not pairs:
            raise UserError(f"{where}: abnormal video {vid} has no interval; give at least one "
                            "start/end pair")
        entry.intervals, entry.intervals_where = pairs, where
