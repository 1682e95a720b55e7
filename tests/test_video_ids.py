"""A video_id names one video: names that collide in a folder, or with what the store holds
from another file, are refused with one line naming both; labels never move onto another
video, and a re-extracted video whose frame count changed loses its intervals visibly."""
from __future__ import annotations

import logging
import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from extract import extract_videos
from extract.scan import scan_videos
from features.datasets import label_store
from features.describe import describe
from features.store import open_store
from tests.dataset_files import edit_labels, write
from tests.media import make_video


def _clip(path, seconds=1.0, source="testsrc2"):
    return make_video(path, size="160x120", seconds=seconds, source=source)


def test_scan_refuses_ids_that_collide_or_cannot_be_stored(tmp_path):
    for name in ("a/b.mp4", "a__b.mp4", "b.mp4", "dup.mp4", "dup.avi", "..mp4", "ok.mp4",
                 "line\nbreak.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    with open(os.path.join(os.fsencode(tmp_path), b"bad\xff.mp4"), "wb") as fh:
        fh.write(b"x")                                  # a name that is not UTF-8
    scan = scan_videos(tmp_path)
    assert sorted(v.video_id for v in scan.videos) == ["b", "ok"]
    why = {r.relpath: r.reason for r in scan.refused}
    assert "is also the id of a__b.mp4" in why["a/b.mp4"]
    assert "is also the id of a/b.mp4" in why["a__b.mp4"]
    assert "dup is also the id of dup.avi" in why["dup.mp4"]
    assert "dup is also the id of dup.mp4" in why["dup.avi"]
    assert "HDF5 cannot hold" in why["..mp4"]
    assert "not valid UTF-8" in why["bad\\xff.mp4"]
    assert "control characters" in why["line\\nbreak.mp4"]
    assert all("\n" not in r.reason + r.relpath and "rename" in r.reason for r in scan.refused)


def test_extract_stores_the_rest_and_says_why_for_each_refused_file(tiny_clip, tmp_path):
    folder = tmp_path / "v"
    for name in ("a/b.mp4", "a__b.mp4", "b.mp4", "dup.mp4", "dup.avi", "..mp4"):
        _clip(folder / name)
    out = tmp_path / "f.h5"
    for _ in range(2):                                 # and again: refused again, not redone
        result = extract_videos(folder, out=out, model=tiny_clip, progress=False)
        assert result.found == 6 and len(result.failed) == 5
        summary = result.summary()
        assert "FAILED dup.avi: its video_id dup is also the id of dup.mp4" in summary
        assert "FAILED a/b.mp4: its video_id a__b is also the id of a__b.mp4" in summary
        with open_store(out) as store:
            assert store.video_ids == ["b"]
    assert result.done == [] and result.skipped == 1


def test_same_id_from_another_folder_is_refused_while_its_file_exists(tiny_clip, tmp_path, caplog):
    first, second = tmp_path / "A", tmp_path / "B"
    _clip(first / "clip1.mp4", source="testsrc")
    _clip(second / "clip1.mp4", seconds=1.4)
    out = tmp_path / "f.h5"
    extract_videos(first, out=out, model=tiny_clip, progress=False)
    label_store(out, "csv", write(tmp_path / "m.csv", "video,split,label,intervals\n"
                                  "clip1,test,Theft,3-9\n"), val_fraction=0)
    with open_store(out) as store:
        kept = store.load("clip1")
    result = extract_videos(second, out=out, model=tiny_clip, progress=False)
    assert result.done == [] and len(result.failed) == 1
    assert f"already names another video in f.h5, from {first / 'clip1.mp4'}" in \
        result.failed[0].reason
    with open_store(out) as store:                     # the first clip1 and its labels stay
        np.testing.assert_array_equal(store.load("clip1"), kept)
        assert store.video_attrs("clip1")["split"] == "test"
    shutil.move(first, tmp_path / "A_moved_away")      # its file gone: B's clip1 replaces it
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        result = extract_videos(second, out=out, model=tiny_clip, progress=False)
    assert result.done == ["clip1"] and "no longer there" in caplog.text
    assert "labels of clip1" in caplog.text            # ... without the other video's labels
    with open_store(out) as store:
        assert store.video_attrs("clip1").get("split") is None
        assert "its source is now" in store.stale_labels["clip1"]
        assert store.load("clip1").shape[0] == 35


def test_labels_survive_a_merge_and_are_set_aside_when_the_frame_count_changes(
        tiny_clip, tmp_path, caplog):
    folder = tmp_path / "v"
    _clip(folder / "v.mp4", seconds=2.0)               # 50 frames
    _clip(folder / "n.mp4", source="testsrc")
    out = tmp_path / "f.h5"
    extract_videos(folder, out=out, model=tiny_clip, progress=False)
    label_store(out, "csv", write(tmp_path / "m.csv", "video,split,label,intervals\n"
                                  "v,test,Theft,36-45\nn,train,normal,\n"), val_fraction=0)
    edit_labels(out, lambda labels: labels.videos["v"].class_names_all.extend(["Theft", "Arson"]))
    with open_store(out) as store:
        meta, attrs = store.metadata(), store.attrs
    _clip(folder / "w.mp4", seconds=1.2)               # a merge: every label attr stays
    extract_videos(folder, out=out, model=tiny_clip, progress=False)
    with open_store(out) as store:
        merged = store.metadata()
        pd.testing.assert_frame_equal(merged[merged["video_id"] != "w"].reset_index(drop=True),
                                      meta, check_dtype=False)     # label: 1.0 beside a NaN
        assert {k: store.attrs[k] for k in ("dataset", "class_names", "labels_source",
                                             "val_fraction", "labelled_utc")} == \
            {k: attrs[k] for k in ("dataset", "class_names", "labels_source", "val_fraction",
                                   "labelled_utc")}
        assert store.video_attrs("v")["class_names_all"] == '["Theft", "Arson"]'
    original = tmp_path / "v_original.mp4"
    shutil.copy2(folder / "v.mp4", original)
    _clip(folder / "v.mp4", seconds=0.64)              # replaced by a 16-frame clip
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        extract_videos(folder, out=out, model=tiny_clip, progress=False)
    assert "labels of v (re-extracted with 16 frames, labelled with 50" in caplog.text
    with open_store(out) as store:
        meta = store.metadata().set_index("video_id")
        assert pd.isna(meta.loc["v", "split"]) and meta.loc["v", "intervals"] == []
        assert meta.loc["n", "split"] == "train"       # same frames: its labels apply
    assert "1 videos read as unlabelled until `pipeline label` runs again (v: re-extracted " \
        "with 16 frames" in describe(out)
    shutil.copy(original, folder / "v.mp4")            # the labelled video back: labels back
    os.utime(folder / "v.mp4", ns=(time.time_ns(), time.time_ns()))
    extract_videos(folder, out=out, model=tiny_clip, progress=False)
    with open_store(out) as store:
        assert store.metadata().set_index("video_id").loc["v", "intervals"] == [(36, 45)]
        assert not store.stale_labels


@pytest.mark.parametrize("rows", ["v,test,Theft,36-45\nv,test,Theft,1-5\n",
                                  "v,train,normal,\nclips/v.mp4,test,Theft,1-5\n"])
def test_a_manifest_listing_a_video_twice_is_refused_naming_both_lines(tmp_path, rows):
    from features import UserError
    from tests.dataset_files import make_store

    store = make_store(tmp_path / "f.h5", {"v": 100})
    manifest = write(tmp_path / "m.csv", "video,split,label,intervals\n" + rows)
    with pytest.raises(UserError, match=r"m\.csv:3: video v is already listed at .*m\.csv:2;"):
        label_store(store, "csv", manifest)
