"""One list of video extensions (features/schema.py VIDEO_EXTENSIONS): a manifest row names
the video that extraction stored, whatever accepted extension the file has (a camera's
``shop/cam1.mts`` once keyed as ``cam1.mts`` while extraction stored ``cam1``)."""
from __future__ import annotations

import pytest

from extract import extract_videos
from extract.scan import scan_videos
from features.datasets import video_key
from features.errors import UserError
from features.schema import VIDEO_EXTENSIONS
from features.store import open_store
from tests.dataset_files import write
from tests.media import make_video


@pytest.mark.parametrize("ext", sorted(VIDEO_EXTENSIONS))
def test_a_list_line_names_the_id_extraction_gives(ext, tmp_path):
    stem = f"cam1_{ext[1:]}"
    (tmp_path / "shop").mkdir()
    for name in (f"{stem}{ext}", f"{stem}_upper{ext.upper()}"):
        (tmp_path / "shop" / name).write_bytes(b"")          # scanning reads only names
    ids = sorted(v.video_id for v in scan_videos(tmp_path).videos)
    assert ids == sorted([stem, f"{stem}_upper"])
    assert video_key(f"shop/{stem}{ext}") == stem
    assert video_key(f"shop/{stem}_upper{ext.upper()}") == f"{stem}_upper"


def test_an_mts_manifest_row_labels_the_extracted_video_in_one_call(tiny_clip, tmp_path):
    videos = tmp_path / "videos"
    make_video(videos / "shop" / "cam1.mts", size="96x64", rate="10", seconds=1.0,
               extra=["-f", "mpegts"])
    make_video(videos / "shop" / "cam2.mp4", size="96x64", rate="10", seconds=1.0)
    manifest = write(tmp_path / "m.csv", "video,split,label,intervals\n"
                                         "shop/cam1.mts,train,normal,\n"
                                         "shop/cam2.mp4,test,Theft,2-5\n")
    out = tmp_path / "f.h5"
    result = extract_videos(videos, out=out, model=tiny_clip, progress=False, dataset="csv",
                            annotations=manifest, val_fraction=0)
    assert not result.failed and result.labels is not None
    assert not result.labels.missing and not result.labels.unlabelled
    assert "labelled 2 videos" in result.summary()
    with open_store(out) as store:
        assert store.video_ids == ["cam1", "cam2"]
        assert store.video_attrs("cam1")["split"] == "train"
        assert store.video_attrs("cam1")["class_name"] == "Normal"
        assert store.intervals("cam2").tolist() == [[2, 5]]


def test_a_bad_manifest_fails_before_any_video_is_decoded(tiny_clip, tmp_path):
    make_video(tmp_path / "videos" / "cam1.mp4", size="96x64", rate="10", seconds=1.0)
    bad = write(tmp_path / "m.csv", "video,split,label,intervals\ncam1.mp4,nowhere,normal,\n")
    out = tmp_path / "f.h5"
    with pytest.raises(UserError, match="m.csv"):
        extract_videos(tmp_path / "videos", out=out, model=tiny_clip, progress=False,
                       dataset="csv", annotations=bad)
    assert not out.exists()
    with pytest.raises(UserError, match="go together"):
        extract_videos(tmp_path / "videos", out=out, model=tiny_clip, dataset="csv")
    assert not out.exists()
