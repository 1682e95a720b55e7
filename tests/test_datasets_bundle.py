"""The reference implementation's feature bundles: generated bundles of the three datasets
(and of another one, with --labels) imported as downloaded."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from extract import import_features
from features.datasets import read_annotations
from features.datasets import shanghaitech, ucf_crime, xd_violence
from features.datasets.reference_bundle import LABEL_TABLES
from features.errors import UserError
from features.store import open_store
from pipeline import cli
from tests.dataset_files import write
from train.presets import PRESETS, check_classes

# (list, path without .npy, label ids, rows); intervals by video in TEMPORAL
TRAIN_NORMAL = "Training_Normal_Videos_Anomaly"
UCF = [("Anomaly_Train_Abnormal.txt", "Abuse/Abuse001_x264", "0", 40),
       ("Anomaly_Train_Abnormal.txt", "Arson/Arson002_x264", "2", 30),
       ("Anomaly_Train_Normal.txt", f"{TRAIN_NORMAL}/Normal_Videos001_x264", "7", 50),
       ("Anomaly_Train_Normal.txt", f"{TRAIN_NORMAL}/Normal_Videos002_x264", "7", 35),
       ("Anomaly_Test.txt", "Arson/Arson011_x264", "2", 60),
       ("Anomaly_Test.txt", "RoadAccidents/RoadAccidents004_x264", "8", 25),
       ("Anomaly_Test.txt", "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264", "7", 45)]
UCF_TEMPORAL = """\
Arson011_x264.mp4  Arson  5  12  30  40
RoadAccidents004_x264.mp4  RoadAccidents  0  9  -1  -1
Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1
"""
XD = [("Anomaly_Train_Abnormal.txt", "train/v=abc__#1_label_B1-0-0", "3", 40),
      ("Anomaly_Train_Abnormal.txt", "train/Bad.Boys.1995__#01-11-55_01-17-25_label_B2-G-0",
       "6 2", 30),
      ("Anomaly_Train_Normal.txt", "train/v=def__#1_label_A", "4", 50),
      ("Anomaly_Test.txt", "test/Deadpool.2016__#00-40-00_00-41-10_label_B6-B1-0", "1 3", 70),
      ("Anomaly_Test.txt", "test/v=ghi__#1_label_A", "4", 20)]
XD_TEMPORAL = "Deadpool.2016__#00-40-00_00-41-10_label_B6-B1-0 Car_accident 0 24 50 60\n"
SHT = [("Anomaly_Train_Abnormal.txt", "01_0014", "11", 30),
       ("Anomaly_Train_Abnormal.txt", "03_0031", "1", 35),
       ("Anomaly_Train_Normal.txt", "01_001", "8", 40),
       ("Anomaly_Train_Normal.txt", "02_001", "8", 30),
       ("Anomaly_Test.txt", "05_0017", "15", 40),
       ("Anomaly_Test.txt", "01_0015", "11", 25),
       ("Anomaly_Test.txt", "04_001", "8", 30)]
SHT_TEMPORAL = "05_0017 throwing_object 6 9\n01_0015 running 2 5 20 24\n04_001 normal -1 -1\n"
# where each bundle keeps its files, as downloaded
LAYOUT = {"ucf-crime": (UCF, UCF_TEMPORAL, "Annotations", "", "Image-Features"),
          "xd-violence": (XD, XD_TEMPORAL, "Annotations", "Annotations", "Image-Features"),
          "shanghaitech": (SHT, SHT_TEMPORAL, "", "", "features")}


def make_bundle(root, dataset, lines=None, temporal=None):
    """A bundle in the reference layout with random (T, 16) features; returns the root."""
    default_lines, default_temporal, lists_dir, temporal_dir, feats_dir = LAYOUT[dataset]
    rng = np.random.default_rng(0)
    texts: dict[str, str] = {}
    for list_name, path, ids, rows in lines or default_lines:
        texts[list_name] = texts.get(list_name, "") + f"{path} 0 {rows - 1} {ids}\n"
        npy = root / feats_dir / f"{path}.npy"
        npy.parent.mkdir(parents=True, exist_ok=True)
        np.save(npy, rng.standard_normal((rows, 16)).astype(np.float32))
    for list_name, text in texts.items():
        write(root / lists_dir / list_name, text)
    write(root / temporal_dir / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
          default_temporal if temporal is None else temporal)
    return root


def _import(tmp_path, dataset, **kw):
    root = make_bundle(tmp_path / "bundle", dataset)
    feats = root / LAYOUT[dataset][4]
    result = import_features(feats, dataset, root, model="ViT-B/16-features", val_fraction=0.0,
                             out=tmp_path / "f.h5", **kw)
    with open_store(result.out) as store:
        return store.metadata().set_index("video_id"), store.class_names, store.attrs


def test_label_tables_are_the_references_ids():
    assert LABEL_TABLES["ucf-crime"] == (
        "Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting", "Normal",
        "RoadAccidents", "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism")
    assert LABEL_TABLES["xd-violence"] == (
        "Abuse", "Car_accident", "Explosion", "Fighting", "Normal", "Riot", "Shooting")
    assert LABEL_TABLES["shanghaitech"] == (
        "car", "chasing", "circuit", "fall", "fighting", "hurdle", "jumping", "monocycle",
        "Normal", "push", "robbery", "running", "skateboard", "step", "stoop",
        "throwing_object", "vaudeville", "vehicle")
    assert [t.index("Normal") for t in LABEL_TABLES.values()] == [7, 4, 8]


def test_ucf_crime_bundle(tmp_path):
    meta, classes, attrs = _import(tmp_path, "ucf-crime")
    assert classes == ucf_crime.CLASS_NAMES and attrs["dataset"] == "ucf-crime"
    assert meta["split"].value_counts().to_dict() == {"train": 4, "test": 3}
    assert meta.loc["Abuse001_x264", "class_name"] == "Abuse"
    assert meta.loc["Normal_Videos002_x264", "class_name"] == "Normal"
    assert meta.loc["RoadAccidents004_x264", "class_name"] == "RoadAccidents"       # id 8
    assert meta.loc["Arson011_x264", "intervals"] == [(5, 12), (30, 40)]
    assert meta.loc["RoadAccidents004_x264", "intervals"] == [(0, 9)]
    assert meta.loc["Normal_Videos_003_x264", "intervals"] == []
    assert meta.loc["Arson011_x264", "n_frames"] == 60
    check_classes(PRESETS["ucf-crime"], classes, "f.h5")


def test_xd_violence_bundle_keeps_every_class_of_a_multi_label_line(tmp_path):
    meta, classes, _ = _import(tmp_path, "xd-violence")
    assert classes == xd_violence.CLASS_NAMES
    boys = meta.loc["Bad.Boys.1995__#01-11-55_01-17-25_label_B2-G-0"]
    assert boys["class_name"] == "Shooting" and boys["split"] == "train"
    assert list(boys["class_names_all"]) == ["Shooting", "Explosion"]          # ids 6 2
    deadpool = meta.loc["Deadpool.2016__#00-40-00_00-41-10_label_B6-B1-0"]
    assert deadpool["class_name"] == "Car_accident" and deadpool["split"] == "test"
    assert list(deadpool["class_names_all"]) == ["Car_accident", "Fighting"]
    assert deadpool["intervals"] == [(0, 24), (50, 60)]
    assert meta.loc["v=ghi__#1_label_A", "class_name"] == "Normal"
    assert meta.loc["v=abc__#1_label_B1-0-0", "class_name"] == "Fighting"
    check_classes(PRESETS["xd-violence"], classes, "f.h5")


def test_shanghaitech_bundle_has_the_17_named_classes(tmp_path):
    meta, classes, _ = _import(tmp_path, "shanghaitech")
    assert classes == shanghaitech.CLASS_NAMES and len(classes) == 18
    assert meta.loc["05_0017", "class_name"] == "throwing_object"              # id 15
    assert meta.loc["01_0014", "class_name"] == "running"                      # id 11
    assert meta.loc["03_0031", "class_name"] == "chasing" and meta.loc["04_001", "label"] == 0
    assert meta.loc["01_0015", "intervals"] == [(2, 5), (20, 24)]
    assert meta.loc["05_0017", "intervals"] == [(6, 9)]
    assert meta["split"].value_counts().to_dict() == {"train": 4, "test": 3}
    check_classes(PRESETS["shanghaitech"], classes, "f.h5")
    with pytest.raises(UserError, match="not in preset shanghaitech"):
        check_classes(PRESETS["shanghaitech"], [c.replace("hurdle", "theft") for c in classes],
                      "f.h5")


def test_another_dataset_with_its_label_table_through_the_cli(tmp_path):
    lines = [("Anomaly_Train_Abnormal.txt", "theft/t1", "2", 30),
             ("Anomaly_Train_Normal.txt", "normal/n1", "0", 30),
             ("Anomaly_Test.txt", "theft/t2", "2", 30),
             ("Anomaly_Test.txt", "graffiti/g1", "1", 30)]
    root = make_bundle(tmp_path / "b", "ucf-crime", lines,
                       "t2.mp4 Theft 3 8 -1 -1\ng1 x 10 12\n")
    labels = write(tmp_path / "labels.csv", "id,name\n0,normal\n1,Graffiti\n2,Theft\n")
    args = ["import", "--features-dir", str(root / "Image-Features"), "--annotations",
            str(root), "--model", "m", "--out", str(tmp_path / "f.h5"), "--val-fraction", "0"]
    result = CliRunner().invoke(cli, args + ["--dataset", "bundle", "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    with open_store(tmp_path / "f.h5") as store:
        meta = store.metadata().set_index("video_id")
        assert store.class_names == ["Graffiti", "Normal", "Theft"]
    assert meta.loc["g1", "intervals"] == [(10, 12)] and meta.loc["t1", "class_name"] == "Theft"
    no_table = CliRunner().invoke(cli, args + ["--dataset", "bundle"])
    assert no_table.exit_code == 2 and "need --labels FILE.csv" in no_table.output


@pytest.mark.parametrize("dataset, lines, temporal, message", [
    ("ucf-crime", [("Anomaly_Train_Abnormal.txt", "Abuse/Abuse001_x264", "14", 10)], "",
     "Anomaly_Train_Abnormal.txt:1: label id 14 of Abuse001_x264 is not in the label table"),
    ("ucf-crime", [("Anomaly_Train_Abnormal.txt", "Abuse/Abuse001_x264", "7", 10)], "",
     "Anomaly_Train_Abnormal.txt:1: Abuse001_x264 is labelled normal in the list of abnormal"),
    ("xd-violence", [("Anomaly_Train_Normal.txt", "v=a__#1_label_B1-0-0", "3", 10)], "",
     "Anomaly_Train_Normal.txt:1: v=a__#1_label_B1-0-0 is labelled Fighting in the list of "
     "normal"),
    ("xd-violence", [("Anomaly_Test.txt", "v=a__#1_label_B1-0-0", "4 3", 10)], "",
     "Anomaly_Test.txt:1: v=a__#1_label_B1-0-0 is labelled both normal and Fighting"),
    ("shanghaitech", [("Anomaly_Test.txt", "01_0015", "11", 10)], "01_0016 x 1 2\n",
     "Anomaly_Test.txt:1: abnormal test video 01_0015 has no intervals"),
    ("shanghaitech", [("Anomaly_Test.txt", "04_001", "8", 10)], "04_001 normal 1 2\n",
     "Temporal_Anomaly_Annotation_for_Testing_Videos.txt:1: 04_001 is normal"),
])
def test_bundle_errors_name_the_line(tmp_path, dataset, lines, temporal, message):
    root = make_bundle(tmp_path / "b", dataset, lines, temporal)
    with pytest.raises(UserError) as err:
        read_annotations(dataset, root)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_labels_file_is_only_for_bundles(tmp_path):
    manifest = write(tmp_path / "m.csv", "video,split,label,intervals\nn1,train,normal,\n")
    with pytest.raises(UserError, match="--labels .*: label ids are read only from the reference"):
        read_annotations("csv", manifest, labels=tmp_path / "labels.csv")
    bad = write(tmp_path / "labels.csv", "id,name\n0,Theft\n1,Arson\n")
    root = make_bundle(tmp_path / "b", "ucf-crime", [("Anomaly_Test.txt", "x", "0", 5)],
                       "x a 1 2\n")
    with pytest.raises(UserError, match="no class named normal"):
        read_annotations("bundle", root, labels=bad)
