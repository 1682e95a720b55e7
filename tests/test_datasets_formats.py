"""Fake copies of each dataset's official files label a store with the right rows."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tests.dataset_files import (SH_FRAMES, UCF_FRAMES, XD_FRAMES, make_store, sh_files, ucf_files,
                           write, xd_files)

from features.datasets import carve_validation, label_store, read_annotations, video_key
from features.store import open_store


def _meta(path):
    with open_store(path) as store:
        return store.metadata().set_index("video_id"), store.class_names, store.attrs


def test_video_key_strips_extensions_paths_and_crops_only():
    assert video_key("Abuse/Abuse001_x264.mp4") == "Abuse001_x264"
    assert video_key("/d/RGB/v=x__#1_label_A__3.npy") == "v=x__#1_label_A"
    assert video_key("A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A") == \
        "A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A"
    assert video_key("C:\\videos\\01_0014.avi") == "01_0014"


def test_ucf_crime_official_files(tmp_path):
    store = make_store(tmp_path / "f.h5", UCF_FRAMES)
    summary = label_store(store, "ucf-crime", ucf_files(tmp_path / "ann"), val_fraction=0.5)
    meta, classes, attrs = _meta(store)
    assert len(meta) == 12 and meta["split"].notna().all()
    assert len(classes) == 14 and "Normal" in classes and "RoadAccidents" in classes
    assert attrs["dataset"] == "ucf-crime"
    test = meta[meta["split"] == "test"]
    assert sorted(test.index) == ["Arson011_x264", "Burglary005_x264", "Normal_Videos_003_x264"]
    assert test.loc["Arson011_x264", "intervals"] == [(150, 420), (680, 1267)]
    assert test.loc["Burglary005_x264", "intervals"] == [(4710, 5040)]
    assert test.loc["Normal_Videos_003_x264", "intervals"] == []
    assert test.loc["Normal_Videos_003_x264", "class_name"] == "Normal"
    assert test.loc["Arson011_x264", "label"] == 1 and test.loc["Normal_Videos_003_x264", "label"] == 0
    train_val = meta[meta["split"] != "test"]
    assert train_val["class_name"].value_counts().to_dict() == {
        "Normal": 4, "Abuse": 2, "Arson": 2, "RoadAccidents": 1}
    # half of each training class (at least one kept in train): Normal 2, Abuse 1, Arson 1
    assert (train_val["split"] == "val").sum() == 4
    assert train_val[train_val["split"] == "val"]["class_name"].value_counts().to_dict() == {
        "Normal": 2, "Abuse": 1, "Arson": 1}
    assert meta.loc["RoadAccidents001_x264", "split"] == "train"
    assert (train_val["intervals"].map(len) == 0).all()
    text = str(summary)
    assert "labelled 12 videos" in text and "test" in text and "14 classes" in text


def test_ucf_crime_temporal_file_alone_labels_the_test_videos(tmp_path):
    ann = ucf_files(tmp_path / "ann")
    store = make_store(tmp_path / "f.h5", {k: UCF_FRAMES[k] for k in
                                           ("Arson011_x264", "Burglary005_x264",
                                            "Normal_Videos_003_x264")})
    label_store(store, "ucf-crime", ann / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt")
    meta, _, _ = _meta(store)
    assert (meta["split"] == "test").all()
    assert meta["class_name"].to_dict() == {"Arson011_x264": "Arson", "Burglary005_x264": "Burglary",
                                            "Normal_Videos_003_x264": "Normal"}


def test_xd_violence_names_lists_and_multi_label(tmp_path):
    store = make_store(tmp_path / "f.h5", XD_FRAMES)
    label_store(store, "xd-violence", xd_files(tmp_path / "ann"), val_fraction=0.0)
    meta, classes, _ = _meta(store)
    assert classes == ["Abuse", "Car_accident", "Explosion", "Fighting", "Normal", "Riot", "Shooting"]
    assert len(meta) == 7
    assert meta["split"].value_counts().to_dict() == {"train": 4, "test": 3}
    multi = meta.loc["Bad.Boys.1995__#01-11-55_01-17-25_label_B2-G-0"]
    assert multi["class_name"] == "Shooting" and multi["class_names_all"] == ["Shooting", "Explosion"]
    assert multi["label"] == 1 and multi["intervals"] == []
    assert meta.loc["v=-0ZdIvaLDNo__#1_label_B1-0-0", "class_name"] == "Fighting"
    assert meta.loc["A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A", "class_name"] == "Normal"
    assert meta.loc["v=abc__#1_label_G-0-0", "intervals"] == [(30, 85), (120, 199)]
    deadpool = meta.loc["Deadpool.2016__#00-40-00_00-41-10_label_B6-B1-0"]
    assert deadpool["class_name"] == "Car_accident" and deadpool["intervals"] == [(0, 240)]
    assert deadpool["class_names_all"] == ["Car_accident", "Fighting"]
    assert meta.loc["v=def__#00-01-00_00-02-00_label_A", "intervals"] == []
    with open_store(store) as s:
        raw = s.video_attrs("Bad.Boys.1995__#01-11-55_01-17-25_label_B2-G-0")["class_names_all"]
    assert json.loads(raw) == ["Shooting", "Explosion"]


def test_shanghaitech_lists_masks_and_class_map(tmp_path):
    store = make_store(tmp_path / "f.h5", SH_FRAMES, stride=10)
    label_store(store, "shanghaitech", sh_files(tmp_path / "ann"), val_fraction=0.0)
    meta, classes, _ = _meta(store)
    # the map's spellings (Running, Throwing Object) become the reference's 17 names' one
    assert classes == ["Normal", "chasing", "running", "throwing_object"]
    assert meta["split"].value_counts().to_dict() == {"train": 5, "test": 3}
    assert meta.loc["01_0014", "class_name"] == "running" and meta.loc["01_0014", "intervals"] == []
    assert meta.loc["03_0031", "class_name"] == "chasing"
    assert meta.loc["01_001", "class_name"] == "Normal" and meta.loc["04_001", "label"] == 0
    assert meta.loc["01_0015", "intervals"] == [(10, 19), (200, 249)]
    assert meta.loc["05_0017", "intervals"] == [(60, 61)]
    assert meta.loc["05_0017", "class_name"] == "throwing_object"


def test_shanghaitech_without_class_map_is_detection_only(tmp_path):
    store = make_store(tmp_path / "f.h5", SH_FRAMES, stride=10)
    label_store(store, "shanghaitech", sh_files(tmp_path / "ann", class_map=None), val_fraction=0.0)
    meta, classes, _ = _meta(store)
    assert classes == ["Anomaly", "Normal"]
    assert meta["class_name"].value_counts().to_dict() == {"Normal": 4, "Anomaly": 4}


def test_csv_manifest_with_own_val_split(tmp_path):
    store = make_store(tmp_path / "f.h5", {"cam1_day": 900, "cam1_fight": 800, "cam2_night": 700,
                                           "cam2_fight": 1000, "cam3": 500})
    manifest = write(tmp_path / "manifest.csv", "video,split,label,intervals\n"
                     "site/cam1_day.mp4,train,normal,\n"
                     "site/cam1_fight.mp4,train,Fighting,\n"
                     "site/cam2_night.mp4,val,Normal,\n"
                     "site/cam2_fight.mp4,test,Fighting,150-420;680-999\n"
                     "site/cam3.avi,test,normal,\n")
    summary = label_store(store, "csv", manifest)
    meta, classes, attrs = _meta(store)
    assert classes == ["Fighting", "Normal"]
    assert meta["split"].to_dict() == {"cam1_day": "train", "cam1_fight": "train", "cam2_fight": "test",
                                       "cam2_night": "val", "cam3": "test"}
    assert meta.loc["cam2_fight", "intervals"] == [(150, 420), (680, 999)]
    assert not attrs["val_carved"] and "as given" in str(summary)


def test_parquet_manifest_reads_like_csv(tmp_path):
    store = make_store(tmp_path / "f.h5", {"a": 100, "b": 100, "c": 100})
    path = tmp_path / "m.parquet"
    pd.DataFrame({"video": ["a.mp4", "b.mp4", "c.mp4"], "split": ["train", "train", "test"],
                  "label": ["normal", "Theft", "Theft"],
                  "intervals": [None, None, "5-9"]}).to_parquet(path)
    label_store(store, "csv", path, val_fraction=0.0)
    meta, classes, _ = _meta(store)
    assert classes == ["Normal", "Theft"] and meta.loc["c", "intervals"] == [(5, 9)]


def test_validation_split_is_stratified_seeded_and_spares_test(tmp_path):
    rows = [(f"{c}{i}", "train", c) for c in ("Normal", "Arson", "Theft") for i in range(8)]
    rows += [("lonely", "train", "Riot"), ("t1", "test", "Arson"), ("t2", "test", "Normal")]
    labels = pd.DataFrame(rows, columns=["video_id", "split", "class_name"])
    a = carve_validation(labels, 0.25, seed=3)
    b = carve_validation(labels, 0.25, seed=3)
    c = carve_validation(labels, 0.25, seed=4)
    assert a.equals(b) and not a.equals(c)
    val = a[a["split"] == "val"]
    assert val["class_name"].value_counts().to_dict() == {"Normal": 2, "Arson": 2, "Theft": 2}
    assert a.set_index("video_id").loc[["lonely", "t1", "t2"], "split"].tolist() == \
        ["train", "test", "test"]
    # a class's draw does not depend on the other classes
    more = pd.concat([labels, pd.DataFrame([("x", "train", "Theft")], columns=labels.columns)])
    d = carve_validation(more, 0.25, seed=3)
    assert set(d[(d.split == "val") & (d.class_name == "Arson")].video_id) == \
        set(val[val.class_name == "Arson"].video_id)


def test_relabelling_replaces_labels_and_clears_unlisted_videos(tmp_path):
    store = make_store(tmp_path / "f.h5", {"a": 100, "b": 100, "c": 100})
    first = write(tmp_path / "one.csv", "video,split,label,intervals\na,train,normal,\n"
                  "b,train,Theft,\nc,test,Theft,1-5\n")
    label_store(store, "csv", first, val_fraction=0.0)
    second = write(tmp_path / "two.csv", "video,split,label\na,train,normal\nb,train,Arson\n")
    summary = label_store(store, "csv", second, val_fraction=0.0)
    meta, classes, _ = _meta(store)
    assert classes == ["Arson", "Normal"] and meta.loc["b", "class_name"] == "Arson"
    assert pd.isna(meta.loc["c", "split"]) and pd.isna(meta.loc["c", "class_name"])
    assert meta.loc["c", "intervals"] == [] and meta.loc["c", "class_names_all"] == []
    assert summary.unlabelled == ["c"] and "stay unlabelled: c" in str(summary)


@pytest.mark.parametrize("dataset,maker", [("ucf-crime", ucf_files), ("xd-violence", xd_files),
                                           ("shanghaitech", sh_files)])
def test_adapters_give_one_row_per_video(tmp_path, dataset, maker):
    ann = read_annotations(dataset, maker(tmp_path / "ann"))
    table = ann.table()
    expected = {"ucf-crime": UCF_FRAMES, "xd-violence": XD_FRAMES, "shanghaitech": SH_FRAMES}[dataset]
    assert sorted(table["video_id"]) == sorted(expected) and table["video_id"].is_unique
    assert set(table["split"]) == {"train", "test"}
    assert all(np.all(np.diff(np.asarray(iv).reshape(-1, 2), axis=1) >= 0)
               for iv in table["intervals"])
