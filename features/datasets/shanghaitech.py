"""ShanghaiTech Campus, weakly-supervised split of Zhong et al. (2019): 238 train / 199 test.

``--annotations`` is a folder holding:

- a train list and a test list directly in it (``.txt`` / ``.list`` with "train" / "test"
  in the name, e.g. ``SH_Train.txt``, ``SH_Test.txt``): one video per line (``01_0014``,
  ``01_0014.avi`` or a feature path);
- the per-frame test masks, one ``<video>.npy`` per video anywhere under the folder (the
  dataset's ``test_frame_mask/``): a 1-D array of 0/1, one value per native frame;
- optionally a class map: one ``.csv`` directly in the folder, two columns ``video,class_name``
  (header optional), one line per abnormal video (17 classes for the full dataset).

A video is abnormal when its mask has a 1 (or the class map gives it a class); test
videos get their intervals from the mask runs. Train videos keep only their video-level
label (weak supervision), even when a mask exists. Without a class map every abnormal
video is of class ``Anomaly`` (detection only).

The 17 anomaly classes are those of the reference implementation (``ANOMALY_CLASSES``);
a class map (or a reference bundle, :mod:`.reference_bundle`) that names them in another
spelling (``Throwing Object``, ``throwing object``) gets this one (``throwing_object``:
prompts read ``_`` as a space, so the text is the same), so every route gives one store.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..schema import NORMAL_CLASS
from .base import (Annotations, check_class_spelling, find_list, first_names, is_normal_name,
                   read_csv_rows, read_tokens, video_key)

NAME = "shanghaitech"
GENERIC_CLASS = "Anomaly"
ANOMALY_CLASSES = ["car", "chasing", "circuit", "fall", "fighting", "hurdle", "jumping",
                   "monocycle", "push", "robbery", "running", "skateboard", "step", "stoop",
                   "throwing_object", "vaudeville", "vehicle"]
CLASS_NAMES = sorted(ANOMALY_CLASSES + [NORMAL_CLASS])


def canonical_class(name: str) -> str:
    """A known ShanghaiTech class in its one spelling (case, spaces, ``_`` ignored); other
    names unchanged; normal -> ``Normal``."""
    if is_normal_name(name):
        return NORMAL_CLASS
    key = re.sub(r"[\s_]+", "", name).lower()
    return next((c for c in ANOMALY_CLASSES if c.replace("_", "") == key), name)


def mask_intervals(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) frame runs where a 0/1 mask is 1."""
    padded = np.concatenate([[0], mask.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))          # starts at even, ends+1 at odd positions
    return [(int(s), int(e) - 1) for s, e in zip(edges[::2], edges[1::2])]


def _load_mask(path: Path) -> np.ndarray:
    try:
        mask = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read this frame mask ({err}); masks are .npy arrays "
                        "of 0/1, one per native frame") from None
    if mask.ndim != 1 or not np.isin(mask, (0, 1)).all():
        raise UserError(f"{path}: a frame mask must be a 1-D array of 0/1 (got shape "
                        f"{mask.shape}, values {first_names(map(str, np.unique(mask)[:5]), 5)})")
    return mask


def _read_class_map(path: Path) -> dict[str, tuple[str, str]]:
    """{video_id: (class name, "file:line")} from a two-column CSV."""
    found: dict[str, tuple[str, str]] = {}
    for number, where, row in read_csv_rows(path, "the class map"):
        if len(row) != 2 or not row[0] or not row[1]:
            raise UserError(f"{where}: cannot parse {','.join(row)!r}: expected 'video,class_name'")
        if number == 1 and row[1].lower() in ("class", "class_name", "label"):
            continue                                 # header
        vid = video_key(row[0])
        if vid in found:
            raise UserError(f"{where}: {vid} already has a class at {found[vid][1]}")
        found[vid] = (canonical_class(row[1]), where)
    return found


def read(path: Path) -> Annotations:
    if not path.is_dir():
        raise UserError(f"{path}: for shanghaitech pass the folder holding the train/test lists, "
                        "the frame masks (.npy) and optionally a class map (.csv)")
    lists = {"train": find_list(path, "train"), "test": find_list(path, "test")}
    if lists["train"] is None and lists["test"] is None:
        raise UserError(f"{path}: no train or test list (a .txt/.list file with 'train' or "
                        "'test' in its name, one video per line)")
    maps = sorted(path.glob("*.csv"))
    if len(maps) > 1:
        raise UserError(f"{path}: several .csv files ({first_names(p.name for p in maps)}); keep "
                        "one class map (video,class_name)")
    class_map = _read_class_map(maps[0]) if maps else {}
    check_class_spelling({c: w for c, w in class_map.values()}, maps[0] if maps else path)
    masks: dict[str, Path] = {}
    for mask in sorted(path.rglob("*.npy")):
        if video_key(mask.name) in masks:
            raise UserError(f"{mask}: a second mask for {video_key(mask.name)} (first: "
                            f"{masks[video_key(mask.name)]}); keep one per video")
        masks[video_key(mask.name)] = mask
    if lists["test"] is not None and not masks:
        raise UserError(f"{path}: no frame masks (<video>.npy) under this folder; copy the "
                        "dataset's test_frame_mask/ folder here")

    classes = {c for c, _ in class_map.values()} if class_map else {GENERIC_CLASS}
    ann = Annotations(NAME, path, sorted(classes | {NORMAL_CLASS}))
    for split, list_path in lists.items():
        if list_path is None:
            continue
        for where, line, tokens in read_tokens(list_path):
            if len(tokens) != 1:
                raise UserError(f"{where}: cannot parse {line!r}: expected one video per line")
            vid = video_key(line)
            mask = _load_mask(masks[vid]) if vid in masks else None
            mapped, map_where = class_map.get(vid, (None, ""))
            abnormal = (mask is not None and mask.any()) or (
                mapped is not None and mapped != NORMAL_CLASS)
            if mask is not None and not mask.any() and mapped not in (None, NORMAL_CLASS):
                raise UserError(f"{map_where}: {vid} has class {mapped} but its mask "
                                f"{masks[vid]} has no anomalous frame; fix one of the two")
            if abnormal and class_map and mapped in (None, NORMAL_CLASS):
                raise UserError(f"{where}: abnormal video {vid} (mask {masks[vid]}) has no "
                                f"anomaly class in {maps[0]}; add a line '{vid},<class>'")
            name = (mapped or GENERIC_CLASS) if abnormal else NORMAL_CLASS
            entry = ann.add(vid, split, name, where)
            if split == "test" and abnormal:
                if mask is None:
                    raise UserError(f"{where}: abnormal test video {vid} has no frame mask "
                                    f"{vid}.npy under {path}; add it")
                entry.intervals, entry.intervals_where = mask_intervals(mask), str(masks[vid])
    return ann
