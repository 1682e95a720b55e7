"""The reference implementation's feature bundles: the annotation files they ship with.

The AnomalyCLIP authors' downloadable bundles (UCF-Crime, XD-Violence, ShanghaiTech; what
most people use to reproduce the paper) carry their own annotation files, found anywhere
below ``--annotations`` by name (UCF-Crime keeps the temporal file next to
``Annotations/``, XD-Violence inside it, ShanghaiTech all four at its root):

- ``Anomaly_Train_Abnormal.txt``, ``Anomaly_Train_Normal.txt`` (split ``train``) and
  ``Anomaly_Test.txt`` (``test``): one video per line, ``<path without .npy> <first frame>
  <last frame> <label id> [more label ids]``, last frame inclusive, e.g.
  ``Abuse/Abuse028_x264 0 1411 0``. The video_id is the path's last part;
- ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``: ``<video> <class> s1 e1 [s2 e2
  ...]``, inclusive native frames, ``-1 -1`` for none. As in the reference, only the
  frame numbers are read (the class column is not), and only lines of test videos count;
- the features, ``.npy`` (T, 512) under ``Image-Features/`` (``features/`` for
  ShanghaiTech): ``pipeline import --features-dir`` reads them as any other ``.npy``.

Label ids are rows of the reference's label tables (``ucf_labels.csv``, ``xd_labels.csv``,
``sht_labels.csv``: ``id,name``), built in here for the three datasets: each lists its
classes in case-insensitive alphabetical order, so normal is id 7 (UCF-Crime), 4
(XD-Violence) and 8 (ShanghaiTech). Another dataset in this layout (``--dataset bundle``)
or another table needs ``--labels FILE.csv`` with the same two columns. A line with several
ids (multi-label XD-Violence videos) keeps all their classes in ``class_names_all``, in line
order; the class it trains with is the first. Feature row ``i`` is native frame ``first +
i``, so intervals are shifted by ``-first`` (the bundles start at 0).

The layout is recognised by its list names (:func:`detect`), so ``pipeline import`` and
``pipeline label`` with ``--dataset ucf-crime|xd-violence|shanghaitech`` read a bundle as
readily as the datasets' official files.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..schema import NORMAL_CLASS
from . import shanghaitech, ucf_crime, xd_violence
from .base import (Annotations, check_class_spelling, find_file, interval_pairs,
                   is_normal_name, parse_int, read_csv_rows, read_lines, read_tokens,
                   video_key)

NAME = "bundle"
LISTS = (("Anomaly_Train_Abnormal.txt", "train", "abnormal"),
         ("Anomaly_Train_Normal.txt", "train", "normal"),
         ("Anomaly_Test.txt", "test", None))
TEMPORAL = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
# id -> class: the reference's label csv files list the classes in case-insensitive
# alphabetical order (normal: UCF-Crime 7, XD-Violence 4, ShanghaiTech 8)
LABEL_TABLES = {module.NAME: tuple(sorted(module.CLASS_NAMES, key=str.lower))
                for module in (ucf_crime, xd_violence, shanghaitech)}


def detect(path: Path) -> bool:
    """True when ``path`` is a folder with a bundle training list below it, or a test list
    in the bundle's line format (``Anomaly_Test.txt`` is also an official UCF-Crime name,
    with one path per line)."""
    if not path.is_dir():
        return False
    if any(find_file(path, (name,)) for name, _, kind in LISTS if kind):
        return True
    test = find_file(path, (LISTS[-1][0],))
    first = next(read_lines(test), (0, ""))[1] if test else ""
    return len(first.split()) >= 4


def read_label_table(path: Path) -> dict[int, str]:
    """{id: class name} from an ``id,name`` CSV (header optional), normal -> ``Normal``."""
    table: dict[int, str] = {}
    seen: dict[str, str] = {}
    for number, where, row in read_csv_rows(path, "the --labels table (an id,name CSV)"):
        if number == 1 and [c.lower() for c in row] == ["id", "name"]:
            continue
        if len(row) != 2 or not row[1]:
            raise UserError(f"{where}: cannot parse {','.join(row)!r}: expected 'id,name'")
        label_id = parse_int(row[0], where, "label id")
        if label_id in table:
            raise UserError(f"{where}: label id {label_id} again (first {table[label_id]}); "
                            "one line per id")
        name = NORMAL_CLASS if is_normal_name(row[1]) else row[1]
        if name in seen:
            raise UserError(f"{where}: class {name} again (first at {seen[name]}); one id per "
                            "class")
        table[label_id], seen[name] = name, where
    if NORMAL_CLASS not in seen:
        raise UserError(f"--labels {path}: no class named normal; the bundle needs one id for "
                        "normal videos")
    check_class_spelling(seen, path)
    return table


def _label_table(dataset: str, labels: Path | None) -> dict[int, str]:
    if labels is not None:
        table = read_label_table(Path(labels).expanduser())
    elif dataset in LABEL_TABLES:
        table = dict(enumerate(LABEL_TABLES[dataset]))
    else:
        raise UserError(f"--dataset {dataset}: label ids of a bundle of another dataset need "
                        "--labels FILE.csv (id,name, as the reference's ucf_labels.csv)")
    if dataset == shanghaitech.NAME:
        table = {i: shanghaitech.canonical_class(n) for i, n in table.items()}
    return table


def _classes(ids: list[int], table: dict[int, str], where: str, video_id: str) -> tuple:
    names: list[str] = []
    for label_id in ids:
        if label_id not in table:
            raise UserError(f"{where}: label id {label_id} of {video_id} is not in the label "
                            f"table (ids {min(table)}-{max(table)}); pass the bundle's "
                            "table with --labels FILE.csv")
        if table[label_id] not in names:
            names.append(table[label_id])
    if NORMAL_CLASS in names and len(names) > 1:
        raise UserError(f"{where}: {video_id} is labelled both normal and "
                        f"{', '.join(n for n in names if n != NORMAL_CLASS)}")
    return tuple(names)


def read(path: Path, dataset: str, labels: str | Path | None = None) -> Annotations:
    """Parse the bundle annotations below ``path`` with the label ids of ``dataset``."""
    if not path.is_dir():
        raise UserError(f"{path}: pass the bundle folder holding Annotations/ (or the four "
                        "annotation files) as --annotations")
    table = _label_table(dataset, labels)
    ann = Annotations(dataset, path, sorted(set(table.values())))
    first_frame: dict[str, int] = {}
    found = False
    for name, split, kind in LISTS:
        list_path = find_file(path, (name,))
        if list_path is None:
            continue
        found = True
        for where, line, tokens in read_tokens(list_path):
            if len(tokens) < 4:
                raise UserError(f"{where}: cannot parse {line!r}: expected '<path> <first frame> "
                                "<last frame> <label id> [more ids]'")
            vid = video_key(tokens[0])
            first, last = (parse_int(t, where, "frame") for t in tokens[1:3])
            if not 0 <= first <= last:
                raise UserError(f"{where}: frames {first}-{last} of {vid} are not a range "
                                "(need 0 <= first <= last)")
            names = _classes([parse_int(t, where, "label id") for t in tokens[3:]], table,
                             where, vid)
            if kind == "normal" and names != (NORMAL_CLASS,):
                raise UserError(f"{where}: {vid} is labelled {', '.join(names)} in the list of "
                                "normal training videos; fix its label id")
            if kind == "abnormal" and NORMAL_CLASS in names:
                raise UserError(f"{where}: {vid} is labelled normal in the list of abnormal "
                                "training videos; fix its label id")
            ann.add(vid, split, names[0], where, names)
            first_frame[vid] = first
    if not found:
        raise UserError(f"{path}: none of {', '.join(n for n, _, _ in LISTS)} below this "
                        "folder; pass the bundle folder holding Annotations/")
    temporal = find_file(path, (TEMPORAL,))
    if temporal is not None:
        _read_temporal(temporal, ann, first_frame)
    ann.require_test_intervals(temporal, TEMPORAL, lacks="intervals")
    return ann


def _read_temporal(path: Path, ann: Annotations, first_frame: dict[str, int]) -> None:
    for where, line, tokens in read_tokens(path):
        if len(tokens) < 4:
            raise UserError(f"{where}: cannot parse {line!r}: expected '<video> <class> s1 e1 "
                            "[s2 e2 ...]' (-1 -1 for none)")
        vid = video_key(tokens[0])
        pairs = interval_pairs([parse_int(t, where, "frame") for t in tokens[2:]], where)
        entry = ann.entries.get(vid)
        if entry is None or entry.split != "test":
            continue                    # the reference reads intervals of test videos only
        if entry.intervals_where:
            raise UserError(f"{where}: {vid} already has intervals at {entry.intervals_where}; "
                            "keep one line per video")
        if entry.class_name == NORMAL_CLASS and pairs:
            raise UserError(f"{where}: {vid} is normal at {entry.where} but has anomalous "
                            "intervals; use -1 -1")
        if entry.class_name != NORMAL_CLASS and not pairs:
            raise UserError(f"{where}: abnormal video {vid} has no interval (all -1); give at "
                            "least one start/end pair")
        start = first_frame.get(vid, 0)
        entry.intervals = [(max(s - start, 0), e - start) for s, e in pairs if e >= start]
        entry.intervals_where = where
