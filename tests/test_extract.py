"""Stage one through the real code paths: ffmpeg decoding, the tiny CLIP, the HDF5 store."""
from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from extract import extract_videos
from features import open_store
from features.clip_loader import CLIP_MEAN, CLIP_STD, load_clip
from extract.probe import probe
from tests.media import (container_start_s, decode_full_frames, make_video, packet_pts,
                         reference_timestamps_ms)

CASES = {  # name: (file, make_video kwargs, native frames)
    "cfr25": ("cfr25.mp4", dict(size="320x240", rate="25", seconds=2.0), 50),
    "ntsc2997": ("ntsc2997.mp4", dict(size="176x144", rate="30000/1001", seconds=2.0), 60),
    # how many frames a VFR encode keeps varies by ffmpeg version: counted by ffmpeg below
    "vfr": ("vfr.mp4", dict(size="320x240", rate="25", seconds=2.0, vfr=True), None),
    # B-frames without an edit list: packets in decode order, dts != pts
    "bframes": ("bframes.mkv", dict(size="320x240", rate="25", seconds=2.0,
                                    extra=["-bf", "3"]), 50),
    # MPEG-TS starts its clock at 1.4 s: frame times count from the container's start
    "start_offset": ("start_offset.ts", dict(size="320x240", rate="25", seconds=2.0), 50),
    # packed MPEG-4 B-frames in AVI: packets carry no presentation time at all
    "avi_bframes": ("avi_bframes.avi", dict(size="320x240", rate="25", seconds=2.0,
                                            codec="mpeg4", extra=["-bf", "2"]), 50),
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for file, kw, _ in CASES.values():
        make_video(root / file, **kw)
    return root


@pytest.fixture(scope="module")
def stores(clips, tiny_clip, tmp_path_factory):
    """The clips extracted at stride 1 and 3."""
    out = tmp_path_factory.mktemp("stores")
    return {s: extract_videos(clips, out=out / f"s{s}.h5", model=tiny_clip, stride=s,
                              progress=False).out for s in (1, 3)}


@pytest.mark.parametrize("stride", [1, 3])
@pytest.mark.parametrize("name", list(CASES))
def test_rows_frame_index_and_timestamps_match_ffmpeg(stores, clips, name, stride):
    ref_ms = reference_timestamps_ms(clips / CASES[name][0])
    n_native = CASES[name][2] or len(ref_ms)
    assert len(ref_ms) == n_native > 40
    with open_store(stores[stride]) as store:
        rows = store.embeddings(name).shape[0]
        assert rows == math.ceil(n_native / stride)
        np.testing.assert_array_equal(store.frame_index(name), np.arange(0, n_native, stride))
        np.testing.assert_allclose(store.timestamps_ms(name), ref_ms[::stride], atol=0.01)
        a = store.video_attrs(name)
        assert a["n_frames"] == n_native and a["n_rows"] == rows and a["stride"] == stride
    if name == "vfr":   # second half is spaced twice as far apart: really variable
        gaps = np.diff(ref_ms)
        assert gaps.min() == pytest.approx(40, abs=0.01) and gaps.max() >= 80 - 0.01
    if name == "ntsc2997":
        assert ref_ms[30] == pytest.approx(30 * 1001 / 30, abs=0.01)


def test_the_timestamp_cases_are_what_they_claim(clips):
    """The clips above really have B-frames, a start offset, pts-less packets."""
    for name in ("cfr25", "bframes", "start_offset"):
        pts = packet_pts(clips / CASES[name][0])
        assert pts != sorted(pts), name                     # decode order != display order
    assert container_start_s(clips / "start_offset.ts") > 1.0
    assert probe(str(clips / "avi_bframes.avi")).frame_times_ms is None   # decoder reports
    assert probe(str(clips / "bframes.mkv")).frame_times_ms is not None


PIXEL_CASES = {  # name: make_video kwargs; every stored row is checked against PIL
    "qvga": dict(size="320x240"),
    "qcif_upscaled": dict(size="176x144"),
    "portrait_odd": dict(size="240x426"),                     # odd crop offset
    "anamorphic": dict(size="320x240", extra=["-aspect", "16:9"]),   # SAR 4:3
    "hd709": dict(size="1280x720", extra=["-colorspace", "bt709", "-color_range", "tv"]),
    "full_range": dict(size="320x240", extra=["-color_range", "pc"]),
}


@pytest.fixture(scope="module")
def pixel_store(tiny_clip, tmp_path_factory):
    root = tmp_path_factory.mktemp("pixels")
    for name, kw in PIXEL_CASES.items():
        make_video(root / "videos" / f"{name}.mp4", seconds=0.48, **kw)
    return root / "videos", extract_videos(root / "videos", out=root / "px.h5", model=tiny_clip,
                                           progress=False).out


def _reference_embeddings(tiny_clip, images, display_size):
    """Independent path: PIL bicubic resize of the decoded RGB frame (shorter displayed side
    to 224, pixel aspect applied by the same resize), centre crop, normalise, one frame at a
    time."""
    clip = load_clip(tiny_clip, "cpu")
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    w, h = display_size
    s = 224 / min(w, h)
    size = max(224, round(w * s)), max(224, round(h * s))
    left, top = (size[0] - 224) // 2, (size[1] - 224) // 2
    out = []
    for img in images:
        img = img.resize(size, resample=3).crop((left, top, left + 224, top + 224))  # BICUBIC
        x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255
        x = ((x - mean) / std).unsqueeze(0)
        with torch.inference_mode():
            out.append(clip.model.get_image_features(pixel_values=x).pooler_output[0].numpy())
    return np.stack(out)


@pytest.mark.parametrize("name", list(PIXEL_CASES))
def test_embeddings_match_independent_pil_reference(pixel_store, tiny_clip, name):
    """YUV from ffmpeg, RGB and CLIP's normalisation in torch: the same pixels as decoding to
    RGB and resizing with PIL, for every size, pixel aspect and colour tagging."""
    videos, store_path = pixel_store
    images, display_size = decode_full_frames(videos / f"{name}.mp4", max_frames=12)
    ref = _reference_embeddings(tiny_clip, images, display_size)
    with open_store(store_path) as store:
        ours = store.embeddings(name)[:12].astype(np.float32)
        attrs = store.video_attrs(name)
        assert "yuv444p" in store.attrs["preprocessing"]
    assert len(ours) == len(ref) == 12
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.9999, cos
    # and they are not trivially equal for all frames: the clip moves
    assert np.linalg.norm(ours[0] - ours[-1]) > 1e-3
    assert attrs["decoder"] == "cpu" and attrs["decoder_fallback"] == ""
    assert attrs["color_matrix"] == ("bt709" if name == "hd709" else "bt601")
    assert attrs["color_range"] == ("full" if name == "full_range" else "limited")


def test_extract_twice_gives_identical_arrays(clips, tiny_clip, tmp_path, stores):
    again = extract_videos(clips, out=tmp_path / "again.h5", model=tiny_clip, progress=False)
    with open_store(stores[1]) as a, open_store(again.out) as b:
        assert a.video_ids == b.video_ids == sorted(CASES)
        for vid in a.video_ids:
            np.testing.assert_array_equal(a.embeddings(vid)[()], b.embeddings(vid)[()])


def test_plain_h5py_sees_the_documented_schema(stores):
    with h5py.File(stores[3], "r") as h5:
        for key in ("model_id", "model_sha256", "model_revision", "embed_dim", "preprocessing",
                    "dtype", "stride", "package_version", "created_utc", "decoder", "format"):
            assert key in h5.attrs, key
        assert h5.attrs["dtype"] == "float16" and h5.attrs["stride"] == 3
        assert h5.attrs["embed_dim"] == 512 and len(h5.attrs["model_sha256"]) == 64
        g = h5["videos/cfr25"]
        assert g["embeddings"].dtype == np.float16 and g["embeddings"].shape == (17, 512)
        assert g["embeddings"].chunks == (64, 512)
        for key in ("fps", "n_frames", "duration_s", "source_path", "source_root", "source_size",
                    "source_mtime_ns", "width", "height", "rotation", "complete"):
            assert key in g.attrs, key
        assert h5["labels/slot0"].shape == h5["labels/slot1"].shape   # where labels will go
        assert g.attrs["fps"] == 25 and g.attrs["source_path"] == "cfr25.mp4"


def test_cli_mixed_sizes_rates_codecs_and_info(tmp_path, tiny_clip):
    """H.264 with audio at 1280x720 25 fps, 176x144 29.97 fps, MPEG-4 Part 2, a rotated
    phone clip and non-square pixels: one entry each, right row counts, info describes it."""
    from pipeline import cli

    vids = tmp_path / "videos"
    make_video(vids / "hd_audio.mp4", size="1280x720", rate="25", seconds=1.0, audio=True)
    make_video(vids / "qcif.mp4", size="176x144", rate="30000/1001", seconds=1.0)
    make_video(vids / "sub" / "mpeg4.avi", size="320x240", rate="25", seconds=1.0,
               codec="mpeg4")
    make_video(vids / "rotated.mp4", size="320x240", rate="25", seconds=1.0,
               rotate=90)
    make_video(vids / "anamorphic.mp4", size="320x240", rate="25", seconds=1.0,
               extra=["-aspect", "16:9"])
    (vids / "notes.txt").write_text("not a video")
    runner = CliRunner()
    res = runner.invoke(cli, ["extract", "--videos", str(vids), "--model", tiny_clip])
    assert res.exit_code == 0, res.output
    assert "5 extracted" in res.output and "1 non-video files ignored" in res.output
    with open_store(tmp_path / "pipeline_out" / "features.h5") as store:
        meta = store.metadata().set_index("video_id")
        assert meta.loc["hd_audio", "n_rows"] == 25 and meta.loc["qcif", "n_rows"] == 30
        assert meta.loc["mpeg4", "source_path"] == "sub/mpeg4.avi"
        assert store.video_attrs("hd_audio")["has_audio"]
        rot = store.video_attrs("rotated")
        assert rot["rotation"] in (90, 270) and rot["display_width"] == 240
        assert store.video_attrs("anamorphic")["display_width"] > 320
    info = runner.invoke(cli, ["info"])
    assert info.exit_code == 0
    for text in ("videos           5", "rows 130", tiny_clip, "hd_audio", "float16"):
        assert text in info.output, text


def test_cli_extract_labels_from_a_manifest_and_checks_it_first(tmp_path, tiny_clip, clips):
    from pipeline import cli

    manifest = tmp_path / "manifest.csv"
    manifest.write_text("video,split,label,intervals\ncfr25.mp4,train,normal,\n"
                        "vfr.mp4,train,Fighting,\nntsc2997.mp4,test,Fighting,10-29\n")
    runner = CliRunner()
    res = runner.invoke(cli, ["extract", "--videos", str(clips), "--model", tiny_clip,
                              "--dataset", "csv", "--annotations", str(manifest),
                              "--val-fraction", "0"])
    assert res.exit_code == 0, res.output
    with open_store(tmp_path / "pipeline_out" / "features.h5") as store:
        meta = store.metadata().set_index("video_id")
        assert meta.loc["ntsc2997", "split"] == "test"
        assert meta.loc["ntsc2997", "intervals"] == [(10, 29)]
        assert meta.loc["vfr", "class_name"] == "Fighting" and meta.loc["cfr25", "label"] == 0

    bad = tmp_path / "bad.csv"
    bad.write_text("video,split,label,intervals\ncfr25.mp4,train,normal,\nvfr.mp4,oops,x,\n")
    res = runner.invoke(cli, ["extract", "--videos", str(clips), "--model", tiny_clip,
                              "--out", str(tmp_path / "never.h5"), "--dataset", "csv",
                              "--annotations", str(bad)])
    assert res.exit_code == 2 and "bad.csv" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "never.h5").exists()        # refused before any extraction


def test_stream_copy_cut_with_edit_list_counts_only_shown_frames(tmp_path, tiny_clip):
    """`ffmpeg -ss 1 -i in -c copy out` keeps the GOP before the cut with packets flagged
    discard (mp4 edit list): they are no frames, and must not make the video look truncated."""
    import subprocess

    from extract.ffmpeg_bin import ffmpeg_exe

    full = make_video(tmp_path / "src" / "full.mp4", seconds=4.0, extra=["-g", "50"])
    cut = tmp_path / "videos" / "cut.mp4"
    cut.parent.mkdir()
    subprocess.run([ffmpeg_exe(), "-v", "error", "-ss", "1.0", "-i", str(full), "-c", "copy",
                    str(cut)], check=True)
    shown = len(reference_timestamps_ms(cut))
    assert 60 <= shown < 100
    res = extract_videos(cut.parent, out=tmp_path / "cut.h5", model=tiny_clip, progress=False)
    assert not res.failed, res.summary()
    with open_store(res.out) as store:
        assert store.embeddings("cut").shape[0] == shown == store.video_attrs("cut")["n_frames"]
