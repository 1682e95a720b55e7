"""The feature file's schema has one owner (features/schema.py): every name each writer puts
in a file is declared and documented there, and label fields survive every rewrite."""
from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

import features.store
from extract import extract_videos
from features import schema
from extract import import_features
from features.datasets import label_store
from features.labels import read_labels, write_labels
from features.lock import store_lock
from features.store import open_store
from tests.dataset_files import write
from tests.media import make_video

FILE_DOC = Path(__file__).resolve().parents[1] / "docs" / "feature-file.md"
MANIFEST = ("video,split,label,intervals\nn1,train,normal,\nn2,train,normal,\n"
            "a1,train,Theft,\na2,test,Theft,3-7\nn3,test,normal,\n")


def _names_in_file(path: Path) -> dict[str, set[str]]:
    """Every name a feature file holds, by kind, read with plain h5py."""
    found = {"file": set(), "video": set(), "dataset": set(), "file label": set(),
             "video label": set()}
    with h5py.File(path, "r") as h5:
        found["file"] |= set(h5.attrs)
        for group in h5["videos"].values():
            found["video"] |= set(group.attrs)
            found["dataset"] |= set(group)
        labels = read_labels(h5)
    found["file label"] |= set(labels.file_attrs)
    for entry in labels.videos.values():
        found["video label"] |= set(entry.to_json())
    return found


def _declared() -> dict[str, dict]:
    return {"file": schema.FILE_ATTRS, "video": schema.VIDEO_ATTRS,
            "dataset": schema.VIDEO_DATASETS, "file label": schema.FILE_LABEL_FIELDS,
            "video label": {k: "" for k in schema.video_label_fields()}}


def _check_declared(path: Path, writer: str) -> None:
    for kind, names in _names_in_file(path).items():
        undeclared = names - set(_declared()[kind])
        assert not undeclared, f"{writer} writes undeclared {kind} names {sorted(undeclared)}"


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("schema_videos")
    for name in ("n1", "a1"):
        make_video(root / "first" / f"{name}.mp4", size="96x64", rate="10", seconds=1.0)
    make_video(root / "later" / "n2.mp4", size="96x64", rate="10", seconds=1.0, audio=True)
    return root


def test_every_writer_writes_only_declared_names(videos, tiny_clip, synthetic_store, tmp_path):
    # extract, then label, then a second extract merging a new video into the labelled file
    out = tmp_path / "extracted.h5"
    extract_videos(videos / "first", out=out, model=tiny_clip, progress=False)
    manifest = write(tmp_path / "m.csv", "video,split,label,intervals\nn1,train,normal,\n"
                                         "a1,test,Theft,2-5\n")
    label_store(out, "csv", manifest, val_fraction=0)
    extract_videos(videos / "later", out=out, model=tiny_clip, progress=False)
    _check_declared(out, "extract + label + merge")
    with h5py.File(out, "r") as h5:                     # what was asked of the writers is there
        assert {"encoder_dtype", "batch_size", "device", "updated_utc"} <= set(h5.attrs)
        assert {"color_matrix", "decoder", "source_root"} <= set(h5["videos/n2"].attrs)

    # import of .npy features, labelled
    rng = np.random.default_rng(0)
    (tmp_path / "feats").mkdir()
    for vid, rows in {"n1": 12, "n2": 9, "a1": 20, "a2": 15, "n3": 11}.items():
        np.save(tmp_path / "feats" / f"{vid}.npy", rng.standard_normal((rows, 3, 8)))
    imported = import_features(tmp_path / "feats", "csv", write(tmp_path / "i.csv", MANIFEST),
                               model="npy-model", out=tmp_path / "imported.h5", crop="all",
                               val_fraction=0.5).out
    _check_declared(imported, "import")
    with h5py.File(imported, "r") as h5:
        assert {"fps_assumed", "imported_from", "crop", "n_crops"} <= set(h5.attrs)

    # the synthetic store (tests, benchmarks), which builds its attrs by hand
    _check_declared(synthetic_store, "samples/synthetic.py")


def test_every_declared_name_is_documented_in_the_docs_and_the_store_docstring():
    table = schema.markdown()
    page = FILE_DOC.read_text(encoding="utf-8")
    assert table in page, ("docs/feature-file.md's table of the file differs from the "
                           "declarations: paste the output of `pipeline info --schema` into it")
    doc = features.store.__doc__
    for kind, names in _declared().items():
        for name in names:
            assert re.search(rf"\b{name}\b", doc), f"{kind} name {name} missing in store.py"
            assert f"`{name}`" in table
    for kind in ("file", "video", "dataset", "file label"):
        for name, about in _declared()[kind].items():
            assert about.strip() and "\n" not in about, f"{name}: one line, please"


def test_a_writer_cannot_write_an_undeclared_name():
    with pytest.raises(schema.UndeclaredAttr, match="frame_rate"):
        schema.video_attrs(n_frames=10, frame_rate=25.0)
    with pytest.raises(schema.UndeclaredAttr, match="gpu_name"):
        schema.file_attrs(source="extracted", model_id="m", model_sha256="", model_revision="",
                          embed_dim=8, stride=1, preprocessing="", decoder="", gpu_name="x")
    with pytest.raises(schema.UndeclaredAttr, match="reviewer"):
        schema.label_attrs(dataset="csv", reviewer="ann")


def test_a_label_field_declared_later_is_kept_by_a_re_extraction(videos, tiny_clip, tmp_path,
                                                                   monkeypatch):
    """Declare two new label fields (one per file, one per video): labelling stores them,
    readers see them, and an extract that merges a new video into the file keeps them and
    every other label field, because no writer lists the fields itself."""
    monkeypatch.setitem(schema.FILE_LABEL_FIELDS, "reviewer", "who checked the labels")
    monkeypatch.setitem(schema.VIDEO_LABEL_ATTRS, "severity", "how bad the event is, 0-3")
    out = tmp_path / "f.h5"
    extract_videos(videos / "first", out=out, model=tiny_clip, progress=False)
    manifest = write(tmp_path / "m.csv", "video,split,label,intervals\nn1,train,normal,\n"
                                         "a1,test,Theft,2-5\n")
    label_store(out, "csv", manifest, val_fraction=0)
    with open_store(out) as store:
        standard = {k: v for k, v in store.labels.file_attrs.items()
                    if k not in ("class_names", "normal_class", "dataset")}
        table = store.metadata()[["video_id", "split", "class_name", "intervals"]]
    table["severity"] = table["video_id"].map({"a1": 3})          # n1: none (NaN)
    with store_lock(out, "label"):
        write_labels(out, table, ["Normal", "Theft"], "csv", {**standard, "reviewer": "ann"})
    with h5py.File(out, "r") as h5:
        before = read_labels(h5)

    extract_videos(videos / "later", out=out, model=tiny_clip, progress=False)   # merge
    with h5py.File(out, "r") as h5:
        after = read_labels(h5)
    assert after.file_attrs == before.file_attrs and after.file_attrs["reviewer"] == "ann"
    assert {"labels_source", "val_fraction", "val_seed", "val_carved",
            "labelled_utc"} <= set(after.file_attrs)
    assert {v: e.to_json() for v, e in after.videos.items()} == \
        {v: e.to_json() for v, e in before.videos.items()}
    with open_store(out) as store:
        assert store.video_ids == ["a1", "n1", "n2"]
        assert store.attrs["reviewer"] == "ann"
        assert store.video_attrs("a1")["severity"] == 3
        assert "severity" not in store.video_attrs("n1")
        assert store.metadata().set_index("video_id").loc["a1", "severity"] == 3
        assert "severity" not in store.video_attrs("n2")          # not labelled
        assert "severity" not in after.videos["n1"].to_json()
        assert json.loads(store.attrs["class_names"]) == ["Normal", "Theft"]
        assert store.intervals("a1").tolist() == [[2, 5]]
