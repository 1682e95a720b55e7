"""Small fake copies of the datasets' official annotation files, and tiny feature stores.

Used by tests/test_datasets_*.py. The stores hold random (T, D) rows with ``stride``
rows apart, so a video of thousands of native frames costs a few rows.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import h5py
import numpy as np

from features.labels import read_labels, replace_labels
from features.store import open_store, write_file_attrs, write_video


def make_store(path: Path, videos: dict[str, int], dim: int = 8, stride: int = 50) -> Path:
    """A feature store with one video per ``{video_id: native frame count}``."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        write_file_attrs(h5, {"model_id": "test-model", "model_sha256": "", "embed_dim": dim,
                              "stride": stride, "source": "extracted"})
        for vid, n in videos.items():
            index = np.arange(0, n, stride, dtype=np.int64)
            write_video(h5, vid, rng.standard_normal((len(index), dim)).astype(np.float16),
                        index, index * (1000 / 30), {"n_frames": n, "fps": 30.0, "stride": stride,
                                                     "source_path": f"{vid}.mp4",
                                                     "duration_s": n / 30})
    return path


def edit_labels(path: Path, change) -> Path:
    """Edit the labels of the store at ``path``: ``change(LabelSet)`` alters the table
    `pipeline label` wrote (``.file_attrs``, ``.videos[video_id].split`` ...)."""
    with h5py.File(path, "r") as h5:
        labels = read_labels(h5)
    change(labels)
    replace_labels(Path(path), labels)
    return path


def store_with(videos: Path, names: list[str], out: Path, model: str) -> Path:
    """``out`` holding the videos ``names`` of the folder ``videos`` (extracted from a folder
    of links to them), as a store that already has videos before a test's run."""
    from extract import extract_videos

    first = out.with_name(out.stem + "_first")
    first.mkdir()
    for name in names:
        os.link(videos / name, first / name)
    extract_videos(first, out=out, model=model, progress=False)
    return out


def assert_same_store(a_path: Path, b_path: Path, bitwise: bool = True):
    """Same videos, rows, timestamps and arrays. ``bitwise=False`` for runs with another
    torch thread count (Dask workers): fp32 sums then differ in the last bits, which can
    flip the last bit of a few fp16 values; allow that much and no more."""
    with open_store(a_path) as a, open_store(b_path) as b:
        assert a.video_ids == b.video_ids
        for vid in a.video_ids:
            x, y = a.embeddings(vid)[()], b.embeddings(vid)[()]
            if bitwise:
                np.testing.assert_array_equal(x, y)
            else:
                assert x.shape == y.shape and (x == y).mean() > 0.999
                np.testing.assert_allclose(x, y, rtol=2 ** -10, atol=2 ** -14)
            np.testing.assert_array_equal(a.timestamps_ms(vid), b.timestamps_ms(vid))
            assert a.video_attrs(vid)["n_frames"] == b.video_attrs(vid)["n_frames"]


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------- UCF-Crime
UCF_TRAIN = """\
Abuse/Abuse001_x264.mp4
Abuse/Abuse002_x264.mp4
Arson/Arson001_x264.mp4
Arson/Arson002_x264.mp4
RoadAccidents/RoadAccidents001_x264.mp4
Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4
Training_Normal_Videos_Anomaly/Normal_Videos002_x264.mp4
Training_Normal_Videos_Anomaly/Normal_Videos003_x264.mp4
Training_Normal_Videos_Anomaly/Normal_Videos004_x264.mp4
"""
UCF_TEST = """\
Arson/Arson011_x264.mp4
Burglary/Burglary005_x264.mp4
Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4
"""
UCF_TEMPORAL = """\
Arson011_x264.mp4  Arson  150  420  680  1267
Burglary005_x264.mp4  Burglary  4710  5040  -1  -1
Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1
"""
UCF_FRAMES = {"Abuse001_x264": 2000, "Abuse002_x264": 900, "Arson001_x264": 3000,
              "Arson002_x264": 1200, "RoadAccidents001_x264": 800, "Normal_Videos001_x264": 1500,
              "Normal_Videos002_x264": 1000, "Normal_Videos003_x264": 1100,
              "Normal_Videos004_x264": 1300, "Arson011_x264": 1500, "Burglary005_x264": 6000,
              "Normal_Videos_003_x264": 2500}


def ucf_files(folder: Path, temporal: str = UCF_TEMPORAL, train: str = UCF_TRAIN,
              test: str = UCF_TEST) -> Path:
    """The official layout: split lists in one subfolder, the temporal file in another."""
    write(folder / "UCF_Crimes-Train-Test-Split" / "Anomaly_Detection_splits" / "Anomaly_Train.txt",
          train)
    write(folder / "UCF_Crimes-Train-Test-Split" / "Anomaly_Detection_splits" / "Anomaly_Test.txt",
          test)
    write(folder / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt", temporal)
    return folder


# ---------------------------------------------------------------- XD-Violence
XD_TRAIN_VIDEOS = ["v=-0ZdIvaLDNo__#1_label_B1-0-0", "v=1WfW3yNDAqs__#1_label_A",
                   "Bad.Boys.1995__#01-11-55_01-17-25_label_B2-G-0",
                   "A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A"]
XD_TEST_VIDEOS = ["v=abc__#1_label_G-0-0", "Deadpool.2016__#00-40-00_00-41-10_label_B6-B1-0",
                  "v=def__#00-01-00_00-02-00_label_A"]
XD_ANNOTATIONS = """\
v=abc__#1_label_G-0-0 30 85 120 199
Deadpool.2016__#00-40-00_00-41-10_label_B6-B1-0.mp4 0 240
Some.Other.Film__#1_label_B4-0-0 5 10
"""
XD_FRAMES = {v: 600 for v in XD_TRAIN_VIDEOS + XD_TEST_VIDEOS}


def xd_files(folder: Path, annotations: str = XD_ANNOTATIONS) -> Path:
    """Peer-style lists: feature paths, five crop lines per video (rgb.list / rgbtest.list)."""
    train = "".join(f"/data/xd/RGB/{v}__{k}.npy\n" for v in XD_TRAIN_VIDEOS for k in range(5))
    write(folder / "rgb.list", train)
    write(folder / "rgbtest.list", "".join(f"/data/xd/RGBTest/{v}.mp4\n" for v in XD_TEST_VIDEOS))
    write(folder / "annotations.txt", annotations)
    return folder


# ---------------------------------------------------------------- ShanghaiTech
SH_TRAIN = ["01_001", "01_002", "02_001", "01_0014", "03_0031"]
SH_TEST = ["04_001", "01_0015", "05_0017"]
SH_FRAMES = {"01_001": 700, "01_002": 500, "02_001": 400, "01_0014": 300, "03_0031": 350,
             "04_001": 600, "01_0015": 250, "05_0017": 400}


def sh_mask(n: int, runs) -> np.ndarray:
    mask = np.zeros(n, dtype=np.int8)
    for start, end in runs:
        mask[start:end + 1] = 1
    return mask


def sh_files(folder: Path, class_map: str | None = "video,class_name\n01_0014,Running\n"
             "03_0031,Chasing\n01_0015,Running\n05_0017,Throwing Object\n") -> Path:
    write(folder / "SH_Train.txt", "\n".join(SH_TRAIN) + "\n")
    write(folder / "SH_Test.txt", "\n".join(f"{v}.avi" for v in SH_TEST) + "\n")
    masks = folder / "test_frame_mask"
    masks.mkdir(parents=True, exist_ok=True)
    np.save(masks / "01_0014.npy", sh_mask(300, [(100, 150)]))
    np.save(masks / "03_0031.npy", sh_mask(350, [(0, 20)]))
    np.save(masks / "01_0015.npy", sh_mask(250, [(10, 19), (200, 249)]))
    np.save(masks / "05_0017.npy", sh_mask(400, [(60, 61)]))
    if class_map is not None:
        write(folder / "classes.csv", class_map)
    return folder
