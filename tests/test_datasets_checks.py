"""Every bad input gives its one-line message and leaves the store byte for byte as it was."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from click.testing import CliRunner

from features import UserError
from extract import import_features
from features.datasets import label_store
from features.store import open_store
from pipeline import cli
from tests.dataset_files import (SH_FRAMES, UCF_FRAMES, UCF_TEMPORAL, UCF_TRAIN, XD_ANNOTATIONS,
                                 XD_FRAMES, file_hash, make_store, sh_files, sh_mask, ucf_files,
                                 write, xd_files)

TEMPORAL = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"


def _fails(store, dataset, annotations, match, **kw):
    """label_store raises a one-line UserError matching ``match``; the store is unchanged."""
    before = file_hash(store)
    with pytest.raises(UserError) as err:
        label_store(store, dataset, annotations, **kw)
    message = str(err.value)
    assert "\n" not in message
    assert match in message, message
    assert file_hash(store) == before
    return message


@pytest.fixture
def ucf_store(tmp_path):
    return make_store(tmp_path / "f.h5", UCF_FRAMES)


def test_unparsable_ucf_temporal_line_names_file_and_line(tmp_path, ucf_store):
    ann = ucf_files(tmp_path / "ann", temporal=UCF_TEMPORAL.replace("4710  5040", "4710"))
    msg = _fails(ucf_store, "ucf-crime", ann, f"{TEMPORAL}:2: cannot parse")
    assert "6 fields" in msg


def test_non_numeric_xd_frame_names_file_and_line(tmp_path):
    store = make_store(tmp_path / "f.h5", XD_FRAMES)
    ann = xd_files(tmp_path / "ann", annotations=XD_ANNOTATIONS.replace("0 240", "0 24O"))
    _fails(store, "xd-violence", ann, "annotations.txt:2: cannot parse frame '24O'")


def test_bad_csv_interval_names_line(tmp_path):
    store = make_store(tmp_path / "f.h5", {"a": 100, "b": 100})
    manifest = write(tmp_path / "m.csv", "video,split,label,intervals\na,train,normal,\n"
                     "b,test,Theft,10-20;30-x\n")
    _fails(store, "csv", manifest, "m.csv:3: cannot parse interval '30-x'")


def test_bad_split_and_missing_column(tmp_path):
    store = make_store(tmp_path / "f.h5", {"a": 100})
    _fails(store, "csv", write(tmp_path / "m.csv", "video,split,label\na,training,normal\n"),
           "m.csv:2: split 'training' is not one of train, val, test")
    _fails(store, "csv", write(tmp_path / "n.csv", "video,label\na,normal\n"),
           "manifest has no column split")


def test_missing_features_are_all_reported_and_need_allow_missing(tmp_path, caplog):
    gone = [f"Normal_Videos{100 + i}_x264" for i in range(12)]
    train = UCF_TRAIN + "".join(f"Training_Normal_Videos_Anomaly/{v}.mp4\n" for v in gone)
    ann = ucf_files(tmp_path / "ann", train=train)
    store = make_store(tmp_path / "f.h5", UCF_FRAMES)
    msg = _fails(store, "ucf-crime", ann, "12 of 24 videos listed in")
    assert "Normal_Videos100_x264" in msg and "(+2 more)" in msg and "--allow-missing" in msg
    listed = (tmp_path / "f.missing.txt").read_text().split()
    assert listed == gone
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        summary = label_store(store, "ucf-crime", ann, allow_missing=True)
    assert summary.missing == gone and len(summary.labels) == 12
    assert "skipped 12 listed videos" in str(summary)
    assert any("12 listed videos have no features" in r.message for r in caplog.records)


def test_no_name_matching_at_all_says_how_names_differ(tmp_path):
    store = make_store(tmp_path / "f.h5", {f"{v}_i3d": n for v, n in SH_FRAMES.items()})
    msg = _fails(store, "shanghaitech", sh_files(tmp_path / "ann"), "no listed name matches")
    assert "'01_0014_i3d'" in msg or "_i3d'" in msg


def test_features_without_label_are_warned_and_listed(tmp_path, caplog):
    store = make_store(tmp_path / "f.h5", {**UCF_FRAMES, "Extra001_x264": 100, "Extra002": 50})
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        summary = label_store(store, "ucf-crime", ucf_files(tmp_path / "ann"))
    assert summary.unlabelled == ["Extra001_x264", "Extra002"]
    assert any("2 videos of" in r.message and "Extra001_x264, Extra002" in r.message
               for r in caplog.records)
    with open_store(store) as s:
        assert s.video_attrs("Extra002").get("split") is None


def test_interval_beyond_frame_count_names_line(tmp_path):
    frames = dict(UCF_FRAMES, Arson011_x264=1200)        # annotation ends at 1267
    store = make_store(tmp_path / "f.h5", frames)
    msg = _fails(store, "ucf-crime", ucf_files(tmp_path / "ann"),
                 f"{TEMPORAL}:1: interval end 1267 of Arson011_x264 is beyond its 1200 frames")
    assert "last frame 1199" in msg


def test_mask_longer_than_video_names_mask(tmp_path):
    store = make_store(tmp_path / "f.h5", dict(SH_FRAMES, **{"01_0015": 240}), stride=10)
    _fails(store, "shanghaitech", sh_files(tmp_path / "ann"), "01_0015.npy: interval end 249")


@pytest.mark.parametrize("dataset,case,match", [
    ("ucf-crime", "folder", "Anomaly_Train.txt:2: unknown class 'Abusee'"),
    ("ucf-crime", "temporal", f"{TEMPORAL}:1: unknown class 'Arsonn'"),
    ("xd-violence", "code", "rgbtest.list:1: unknown class code 'B3'"),
    ("csv", "spelling", "m.csv:3: class 'fighting' differs only in spelling from 'Fighting'"),
    ("csv", "number", "m.csv:2: label '1' is a number"),
    ("shanghaitech", "map", "abnormal video 01_0014"),
])
def test_unknown_class_names(tmp_path, dataset, case, match):
    if dataset == "ucf-crime":
        store = make_store(tmp_path / "f.h5", UCF_FRAMES)
        ann = ucf_files(tmp_path / "ann", train=UCF_TRAIN.replace("Abuse/Abuse002", "Abusee/Abuse002")
                        ) if case == "folder" else ucf_files(
            tmp_path / "ann", temporal=UCF_TEMPORAL.replace("  Arson  ", "  Arsonn  "))
    elif dataset == "xd-violence":
        store = make_store(tmp_path / "f.h5", XD_FRAMES)
        ann = xd_files(tmp_path / "ann")
        lines = (ann / "rgbtest.list").read_text().replace("label_G-0-0", "label_B3-0-0")
        write(ann / "rgbtest.list", lines)
    elif dataset == "csv":
        store = make_store(tmp_path / "f.h5", {"a": 100, "b": 100})
        ann = write(tmp_path / "m.csv", "video,split,label\na,train,Fighting\nb,train,fighting\n"
                    if case == "spelling" else "video,split,label\na,train,1\nb,train,normal\n")
    else:
        store = make_store(tmp_path / "f.h5", SH_FRAMES, stride=10)
        ann = sh_files(tmp_path / "ann", class_map="video,class_name\n01_0015,Running\n")
    _fails(store, dataset, ann, match)


def test_video_in_two_splits_and_bad_fraction(tmp_path, ucf_store):
    ann = ucf_files(tmp_path / "ann", train=UCF_TRAIN + "Arson/Arson011_x264.mp4\n")
    _fails(ucf_store, "ucf-crime", ann, "Anomaly_Test.txt:1: video Arson011_x264 is already listed")
    _fails(ucf_store, "ucf-crime", ucf_files(tmp_path / "ok"), "--val-fraction 1.0",
           val_fraction=1.0)
    _fails(ucf_store, "nope", tmp_path / "ok", "--dataset nope: unknown dataset")
    _fails(ucf_store, "ucf-crime", tmp_path / "absent", "no such annotations file or folder")


def test_abnormal_test_video_without_intervals(tmp_path, ucf_store):
    ann = ucf_files(tmp_path / "ann", temporal=UCF_TEMPORAL.replace(
        "Burglary005_x264.mp4  Burglary  4710  5040  -1  -1\n", ""))
    _fails(ucf_store, "ucf-crime", ann, "abnormal test video Burglary005_x264 has no line")


def test_bad_mask_names_mask_file(tmp_path):
    store = make_store(tmp_path / "f.h5", SH_FRAMES, stride=10)
    ann = sh_files(tmp_path / "ann")
    np.save(ann / "test_frame_mask" / "05_0017.npy", sh_mask(400, [(1, 2)]) * 2)
    _fails(store, "shanghaitech", ann, "05_0017.npy: a frame mask must be a 1-D array of 0/1")


def test_import_feature_dims_that_differ(tmp_path):
    feats = tmp_path / "feats"
    feats.mkdir()
    np.save(feats / "a.npy", np.zeros((5, 8), np.float32))
    np.save(feats / "b.npy", np.zeros((5, 6), np.float32))
    manifest = write(tmp_path / "m.csv", "video,split,label\na,train,normal\nb,train,normal\n")
    with pytest.raises(UserError, match=r"b.npy: features are 6-dim but .*a.npy is 8-dim"):
        import_features(feats, "csv", manifest, model="m", out=tmp_path / "new.h5")
    assert not (tmp_path / "new.h5").exists()
    # an existing store of another dim is left as it was
    (feats / "b.npy").unlink()
    existing = tmp_path / "old.h5"
    import_features(feats, "csv", write(tmp_path / "one.csv", "video,split,label\na,train,normal\n"),
                    model="m", out=existing)
    np.save(feats / "a.npy", np.zeros((5, 6), np.float32))
    before = file_hash(existing)
    with pytest.raises(UserError, match="old.h5: the store's features are 8-dim, these are 6-dim"):
        import_features(feats, "csv", tmp_path / "one.csv", model="m", out=existing)
    assert file_hash(existing) == before


def test_import_bad_shapes_and_crops(tmp_path):
    feats = tmp_path / "feats"
    feats.mkdir()
    manifest = write(tmp_path / "m.csv", "video,split,label\nv,train,normal\n")
    np.save(feats / "v.npy", np.zeros((5,), np.float32))
    with pytest.raises(UserError, match=r"v.npy: shape \(5,\) is not \(T, D\)"):
        import_features(feats, "csv", manifest, model="m", out=tmp_path / "o.h5")
    (feats / "v.npy").unlink()
    np.save(feats / "v__0.npy", np.zeros((5, 4), np.float32))
    np.save(feats / "v__2.npy", np.zeros((5, 4), np.float32))
    with pytest.raises(UserError, match="v__2.npy: crop files of v must be numbered __0 to __2; "
                                        "missing __1"):
        import_features(feats, "csv", manifest, model="m", out=tmp_path / "o.h5")
    np.save(feats / "v__1.npy", np.zeros((5, 4), np.float32))
    with pytest.raises(UserError, match="--crop 7: the features have 3 crop"):
        import_features(feats, "csv", manifest, model="m", out=tmp_path / "o.h5", crop=7)
    assert not (tmp_path / "o.h5").exists()


def test_cli_label_prints_one_line_error_and_labels(tmp_path, ucf_store):
    runner = CliRunner()
    bad = ucf_files(tmp_path / "bad", temporal=UCF_TEMPORAL.replace("150", "1x0"))
    before = file_hash(ucf_store)
    res = runner.invoke(cli, ["label", str(ucf_store), "--dataset", "ucf-crime",
                              "--annotations", str(bad)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.output.strip().startswith("error:") and len(res.output.strip().splitlines()) == 1
    assert f"{TEMPORAL}:1" in res.output and file_hash(ucf_store) == before
    res = runner.invoke(cli, ["label", str(ucf_store), "--dataset", "ucf-crime", "--annotations",
                              str(ucf_files(tmp_path / "ann")), "--val-fraction", "0.5",
                              "--val-seed", "1"])
    assert res.exit_code == 0, res.output
    assert "labelled 12 videos" in res.output
    with open_store(ucf_store) as s:
        assert s.attrs["val_seed"] == 1 and (s.metadata()["split"] == "val").sum() == 4


def test_cli_import(tmp_path):
    feats = tmp_path / "feats"
    feats.mkdir()
    for vid in ("a", "b", "c"):
        np.save(feats / f"{vid}.npy", np.ones((4, 10, 8), np.float32))
    manifest = write(tmp_path / "m.csv", "video,split,label,intervals\na,train,normal,\n"
                     "b,train,Theft,\nc,test,Theft,0-1\n")
    out = tmp_path / "imp.h5"
    res = CliRunner().invoke(cli, ["import", "--features-dir", str(feats), "--dataset", "csv",
                                   "--annotations", str(manifest), "--model", "someone/i3d",
                                   "--out", str(out), "--crop", "all", "--fps", "24"])
    assert res.exit_code == 0, res.output
    assert "imported 3 videos" in res.output and "model not loadable" in res.output
    with open_store(out) as s:
        assert s.load("a").shape == (4, 10, 8) and s.attrs["fps"] == 24.0
