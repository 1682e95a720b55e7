"""Stage one at scale: resume, crash safety (kill -9), bad input, Dask sharding."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from extract import extract_videos
from extract.commit import parts_dir
from extract.ffmpeg_bin import ffmpeg_exe
from features import UserError, open_store
from tests.dataset_files import assert_same_store as _assert_same_store
from tests.dataset_files import store_with
from tests.media import make_video
from tests.processes import cli as _cli

N_GOOD = 6


@pytest.fixture(scope="module")
def good_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    for i in range(N_GOOD):
        make_video(root / f"clip{i}.mp4", size="320x240", rate="25", seconds=2.0 + 0.2 * i,
                   source="testsrc2" if i % 2 else "testsrc")
    return root


@pytest.fixture(scope="module")
def clean_store(good_videos, tiny_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "clean.h5"
    result = extract_videos(good_videos, out=out, model=tiny_clip, progress=False)
    assert len(result.done) == N_GOOD and not result.failed
    return out


def _extract_until_first_commit(videos: Path, out: Path, model: str) -> subprocess.Popen:
    """`pipeline extract` in a subprocess, returned once its first video is committed."""
    proc = _cli("extract", "--videos", str(videos), "--out", str(out), "--model", model,
                "--workers", "1")
    deadline = time.time() + 120
    while time.time() < deadline and not list(parts_dir(out).glob("*.h5")):
        time.sleep(0.01)
    return proc


def test_kill_9_mid_run_then_rerun_equals_clean_run(good_videos, clean_store, tiny_clip,
                                                    tmp_path):
    out = tmp_path / "killed.h5"
    proc = _extract_until_first_commit(good_videos, out, tiny_clip)
    parts = parts_dir(out)
    assert proc.poll() is None, "run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = len(list(parts.glob("*.h5")))
    assert 1 <= committed < N_GOOD
    assert not out.exists() or open_store(out).close() is None    # never a broken file

    result = extract_videos(good_videos, out=out, model=tiny_clip, progress=False)
    assert result.skipped == committed and len(result.done) == N_GOOD - committed
    assert not parts.exists() and not list(tmp_path.glob("*.tmp"))
    _assert_same_store(clean_store, out)


def test_crash_during_merge_keeps_old_file_and_recovers(good_videos, clean_store, tiny_clip,
                                                        tmp_path, monkeypatch):
    import features.safe_write as safe_write

    out = store_with(good_videos, ["clip0.mp4", "clip1.mp4"], tmp_path / "merge.h5", tiny_clip)

    real_replace = safe_write.atomic_replace

    def die_before_final_rename(tmp, final):       # shards commit; the merged file does not
        if final == out:
            raise KeyboardInterrupt("power loss before the rename")
        real_replace(tmp, final)
    monkeypatch.setattr(safe_write, "atomic_replace", die_before_final_rename)
    with pytest.raises(KeyboardInterrupt):
        extract_videos(good_videos, out=out, model=tiny_clip, progress=False)
    monkeypatch.undo()
    with open_store(out) as store:                     # the old file, intact
        assert store.video_ids == ["clip0", "clip1"]
    assert len(list(parts_dir(out).glob("*.h5"))) == N_GOOD - 2

    result = extract_videos(good_videos, out=out, model=tiny_clip, progress=False)
    assert result.done == [] and result.skipped == N_GOOD
    _assert_same_store(clean_store, out)


def test_resume_skips_stored_and_redoes_only_touched(good_videos, clean_store, tiny_clip,
                                                     tmp_path):
    out = tmp_path / "resume.h5"
    folder = tmp_path / "videos"
    folder.mkdir()
    for p in good_videos.iterdir():
        os.link(p, folder / p.name)
    first = extract_videos(folder, out=out, model=tiny_clip, progress=False)
    assert len(first.done) == N_GOOD
    second = extract_videos(folder, out=out, model=tiny_clip, progress=False)
    assert second.done == [] and second.skipped == N_GOOD and second.rows == 0
    assert f"0 extracted, {N_GOOD} already stored" in second.summary()
    os.utime(folder / "clip3.mp4", ns=(time.time_ns(), time.time_ns()))
    third = extract_videos(folder, out=out, model=tiny_clip, progress=False)
    assert third.done == ["clip3"] and third.skipped == N_GOOD - 1
    _assert_same_store(clean_store, out)


def _bad_folder(root: Path, good_videos: Path) -> Path:
    folder = root / "mixed"
    folder.mkdir()
    for name in ("clip0.mp4", "clip1.mp4"):
        os.link(good_videos / name, folder / name)
    make_video(folder / "middecode.mp4", seconds=2.0)
    data = (good_videos / "clip2.mp4").read_bytes()
    (folder / "zero_bytes.mp4").write_bytes(b"")
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    mid = len(corrupt) // 2
    corrupt[mid:mid + 4000] = bytes((b * 7 + 13) % 256 for b in corrupt[mid:mid + 4000])
    (folder / "corrupt.mp4").write_bytes(bytes(corrupt))
    (folder / "not_a_video.mp4").write_text("hello, I am text\n" * 50)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=1",
                    "-c:a", "aac", str(folder / "audio_only.mp4")], check=True)
    (folder / "dangling.mp4").symlink_to(folder / "deleted_long_ago.mp4")
    (folder / "readme.txt").write_text("not a video, ignored by extension")
    return folder


def test_bad_inputs_reported_one_line_each_and_run_goes_on(good_videos, tiny_clip, tmp_path):
    folder = _bad_folder(tmp_path, good_videos)
    # an ffmpeg whose decode of one file stops half way but exits 0: a decoder dying mid-video
    wrapper = tmp_path / "ffmpeg_dies_midway.sh"
    wrapper.write_text(f"""#!/bin/sh
case "$*" in
  *middecode*rawvideo*) "{ffmpeg_exe()}" "$@" | head -c {224 * 224 * 3 * 20}; exit 0;;
esac
exec "{ffmpeg_exe()}" "$@"
""")
    wrapper.chmod(0o755)
    out = tmp_path / "mixed.h5"
    proc = _cli("extract", "--videos", str(folder), "--out", str(out), "--model", tiny_clip,
                env={"PIPELINE_FFMPEG": str(wrapper)})
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert "2 extracted" in stdout and "7 failed" in stdout and "1 non-video" in stdout
    table = pd.read_csv(tmp_path / "mixed.failures.csv").set_index("video_id")["reason"]
    assert sorted(table.index) == sorted(["zero_bytes", "truncated", "corrupt", "not_a_video",
                                          "audio_only", "dangling", "middecode"])
    assert table["zero_bytes"] == "empty file (0 bytes)"
    assert table["audio_only"] == "no video stream (audio only)"
    assert "not a readable video" in table["not_a_video"]
    assert "dangling" in table["dangling"] or "cannot be accessed" in table["dangling"]
    assert "decoding stopped after 20 of 50 rows" in table["middecode"]
    for vid in ("truncated", "corrupt"):
        assert "corrupt or truncated" in table[vid] or "not a readable video" in table[vid]
    for vid, reason in table.items():       # each failure is one line in the summary
        assert f"FAILED {vid}.mp4: {reason}" in stdout
    with open_store(out) as store:          # the partial decode is not stored as complete
        assert store.video_ids == ["clip0", "clip1"]
    assert not parts_dir(out).exists()


def test_existing_file_with_other_model_or_stride_is_refused(good_videos, clean_store,
                                                             tmp_path):
    from samples.tiny_clip import make_tiny_clip

    other = make_tiny_clip(tmp_path / "other-clip", seed=1)
    with pytest.raises(UserError, match="holds features of model"):
        extract_videos(good_videos, out=clean_store, model=str(other), progress=False)
    with pytest.raises(UserError, match="at stride 1, not 2"):
        extract_videos(good_videos, out=clean_store, stride=2, progress=False)


def test_dask_local_cluster_equals_single_process(good_videos, clean_store, tiny_clip,
                                                  tmp_path):
    from dask.distributed import LocalCluster

    out = tmp_path / "dask.h5"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        result = extract_videos(good_videos, out=out, model=tiny_clip, progress=False,
                                scheduler=cluster.scheduler_address)
    assert len(result.done) == N_GOOD and not result.failed
    _assert_same_store(clean_store, out, bitwise=False)


def test_ctrl_c_keeps_finished_videos_in_the_file_and_says_so(good_videos, tiny_clip,
                                                               tmp_path):
    out = tmp_path / "interrupted.h5"
    proc = _extract_until_first_commit(good_videos, out, tiny_clip)
    parts = parts_dir(out)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted: finished work is kept" in stderr and "Traceback" not in stderr
    with open_store(out) as store:                    # merged before stopping
        kept = store.video_ids
    assert 1 <= len(kept) < N_GOOD and not list(parts.glob("*.h5.tmp"))
    again = extract_videos(good_videos, out=out, model=tiny_clip, progress=False)
    assert again.skipped == len(kept) and len(again.done) == N_GOOD - len(kept)
