"""Disk full, read-only places, unreadable inputs, broken HDF5: one line naming the file and
the fix, a non-zero exit, no temporary file left, no crash, and nothing finished lost."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import features.safe_write as safe_write
from extract import extract_videos
from extract.commit import parts_dir
from features import UserError
from extract import import_features
from features.datasets import label_store
from features.safe_write import temp_path
from features.store import open_store
from tests.dataset_files import assert_same_store, make_store, store_with, write
from tests.media import make_video
from tests.processes import cli
from tests.train_helpers import TINY
from evaluate.stage import score_split
from train.stage import train

MANIFEST = "video,split,label,intervals\nclip0,train,normal,\nclip1,test,Theft,3-9\n"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for i in range(3):
        make_video(root / f"clip{i}.mp4", size="160x120", seconds=1.0 + 0.2 * i)
    return root


@pytest.fixture(scope="module")
def clean(clips, tiny_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "clean.h5"
    extract_videos(clips, out=out, model=tiny_clip, progress=False)
    return out


def _no_temporary_files(root: Path):
    left = [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    assert not left, left


@contextmanager
def _disk_fills(monkeypatch, budget: int, where):
    """HDF5 files whose path matches ``where`` get ENOSPC once ``budget`` bytes are written
    into them (what a full disk does to h5py's writes)."""
    real, used = safe_write._KeepErrors.write, [0]

    def write(self, buffer):
        if where(self.path):
            n = memoryview(buffer).nbytes
            if self.error is None and used[0] + n > budget:
                self._keep(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
            used[0] += n
        return real(self, buffer)
    monkeypatch.setattr(safe_write._KeepErrors, "write", write)
    yield
    monkeypatch.undo()


def test_disk_full_while_writing_shards(clips, clean, tiny_clip, tmp_path, monkeypatch):
    out = tmp_path / "f.h5"
    with _disk_fills(monkeypatch, 200_000, lambda p: p.parent == parts_dir(out)):
        with pytest.raises(UserError) as err:
            extract_videos(clips, out=out, model=tiny_clip, workers=1, progress=False)
    message = str(err.value)
    assert message.startswith(f"{out}: cannot write features into {parts_dir(out)}: no space "
                              "left on device") and "\n" not in message, message
    assert "free space there or choose another --out, then run the same command again" in message
    _no_temporary_files(tmp_path)
    kept = len(list(parts_dir(out).glob("*.h5"))) + (
        len(open_store(out).video_ids) if out.exists() else 0)
    assert kept >= 1                                   # what finished is kept
    again = extract_videos(clips, out=out, model=tiny_clip, progress=False)
    assert again.skipped == kept and len(again.done) == 3 - kept
    assert_same_store(clean, out)


def test_disk_full_during_the_merge_keeps_the_old_file_and_the_shards(clips, clean, tiny_clip,
                                                                      tmp_path, monkeypatch):
    out = store_with(clips, ["clip0.mp4"], tmp_path / "f.h5", tiny_clip)
    before = out.read_bytes()
    with _disk_fills(monkeypatch, 200_000, lambda p: p == temp_path(out)):
        with pytest.raises(UserError) as err:
            extract_videos(clips, out=out, model=tiny_clip, progress=False)
    message = str(err.value)
    assert message.startswith(f"{out}: cannot write the merged feature file: no space left on "
                              "device (needs ~") and "\n" not in message, message
    assert f"the 2 finished videos wait in {parts_dir(out)}" in message
    assert out.read_bytes() == before and len(list(parts_dir(out).glob("*.h5"))) == 2
    _no_temporary_files(tmp_path)
    again = extract_videos(clips, out=out, model=tiny_clip, progress=False)
    assert again.done == [] and again.skipped == 3
    assert_same_store(clean, out)


@contextmanager
def _mount(tmp_path: Path, name: str, size: str, fill_from: Path | None = None,
           read_only: bool = False):
    """A tmpfs of ``size`` (filled with a copy of ``fill_from``), possibly read-only. Needs
    root and mount rights; the test is skipped elsewhere."""
    point = tmp_path / name
    point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}",
                                            "tmpfs", str(point)]).returncode != 0:
        pytest.skip("needs root and mount rights for a real tmpfs")
    try:
        if fill_from is not None:
            shutil.copytree(fill_from, point, dirs_exist_ok=True)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


def test_a_really_full_disk_is_one_line_and_no_crash(clips, tiny_clip, tmp_path):
    with _mount(tmp_path, "small", "200k") as disk:
        proc = cli("extract", "--videos", clips, "--out", disk / "f.h5", "--model", tiny_clip)
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 2, stderr          # not 139: HDF5 never saw the error
        last = stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: {disk / 'f.h5'}: cannot write") and \
            "no space left on device" in last and "Traceback" not in stderr, stderr
        _no_temporary_files(disk)


def _read_only(tmp_path: Path, content: Path):
    """``content`` copied into a place that refuses writes: a read-only mount (as root), or
    a folder without write permission (as anyone else)."""
    if os.geteuid() == 0:
        return _mount(tmp_path, "ro", "4m", content, read_only=True)

    @contextmanager
    def chmodded():
        folder = tmp_path / "ro"
        shutil.copytree(content, folder)
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
    return chmodded()


def test_read_only_places_are_one_line_each(clips, clean, tiny_clip, tmp_path):
    content = tmp_path / "content"
    content.mkdir()
    store = shutil.copy(clean, content / "f.h5")
    manifest = write(tmp_path / "m.csv", MANIFEST)
    np.save(tmp_path / "clip0.npy", np.zeros((4, 512), np.float32))
    with _read_only(tmp_path, content) as ro:
        before = (ro / "f.h5").read_bytes()
        calls = {
            "extract new": lambda: extract_videos(clips, out=ro / "new.h5", model=tiny_clip),
            "extract existing": lambda: extract_videos(clips, out=ro / "f.h5", model=tiny_clip),
            "label": lambda: label_store(ro / "f.h5", "csv", manifest),
            "import": lambda: import_features(tmp_path, "csv", manifest, "m",
                                              out=ro / "i.h5", allow_missing=True),
        }
        for what, call in calls.items():
            with pytest.raises(UserError) as err:
                call()
            message = str(err.value)
            assert "\n" not in message and ("read-only file system" in message or
                                            "permission denied" in message), (what, message)
            assert "make it writable or use a feature file on a writable disk" in message
        proc = cli("label", ro / "f.h5", "--dataset", "csv", "--annotations", manifest)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2 and stderr.count("\n") == 1, stderr
        assert (ro / "f.h5").read_bytes() == before and sorted(os.listdir(ro)) == ["f.h5"]
    assert store.exists()


@contextmanager
def _read_only_file(path: Path):
    """``path`` made unwritable: a read-only bind mount of it (as root, whom file modes do
    not stop), else mode 0444."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        yield
        path.chmod(0o644)
        return
    if subprocess.run(["mount", "--bind", str(path), str(path)]).returncode != 0:
        pytest.skip("needs mount rights for a read-only bind mount")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_label_on_a_read_only_file_is_one_line(tmp_path):
    store = make_store(tmp_path / "f.h5", {"clip0": 100, "clip1": 100})
    manifest = write(tmp_path / "m.csv", MANIFEST)
    label_store(store, "csv", manifest)                # format 2, with label slots
    before = store.read_bytes()
    with _read_only_file(store):
        with pytest.raises(UserError) as err:
            label_store(store, "csv", manifest, val_seed=1)
    message = str(err.value)
    assert message.startswith(f"{store}: cannot write its labels: ") and "\n" not in message
    assert "make it writable or copy the file to a writable disk and label the copy" in message
    assert store.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "f.h5", "m.csv"]


@pytest.mark.parametrize("name, content, why", [
    ("empty", b"", "empty file (0 bytes)"),
    ("cut", None, "not a readable .npy array"),
    ("garbage", b"this is not numpy" * 10, "not a readable .npy array"),
    ("ints", np.arange(24, dtype=np.int64).reshape(3, 8), "dtype int64 (integer); features must "
                                                          "be float arrays"),
    ("flags", np.ones((3, 8), bool), "dtype bool (not numeric)"),
    ("objects", np.array([[None] * 8] * 3, dtype=object), "not a readable .npy array"),
])
def test_unreadable_or_integer_npy_is_one_line_naming_it(tmp_path, name, content, why):
    feats = tmp_path / "feats"
    feats.mkdir()
    np.save(feats / "good.npy", np.zeros((3, 8), np.float32))
    bad = feats / f"{name}.npy"
    if content is None:                                # a valid header, half the data
        np.save(bad, np.ones((100, 8), np.float32))
        bad.write_bytes(bad.read_bytes()[:1000])
    elif isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        np.save(bad, content, allow_pickle=True)
    manifest = write(tmp_path / "m.csv", "video,split,label\ngood,train,normal\n")
    with pytest.raises(UserError) as err:
        import_features(feats, "csv", manifest, "m", out=tmp_path / "o.h5")
    assert str(err.value).startswith(f"{bad}: ") and why in str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "o.h5").exists()
    if name == "empty":                                # was "Aborted!" without a name
        proc = cli("import", "--features-dir", feats, "--dataset", "csv", "--annotations",
                   manifest, "--model", "m", "--out", tmp_path / "o.h5")
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2 and stderr == f"error: {bad}: not a readable .npy array " \
            "(empty file (0 bytes)); save features with numpy.save as float arrays\n"


def test_a_broken_hdf5_file_is_one_line(clips, clean, tmp_path):
    broken = tmp_path / "f.h5"
    broken.write_bytes(clean.read_bytes()[:3000])
    proc = cli("info", broken)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"error: {broken}: not a readable HDF5 file (")
    with pytest.raises(UserError) as err:
        extract_videos(clips, out=broken)
    assert "\n" not in str(err.value) and "cannot be read as HDF5" in str(err.value)


def _remount(point: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(point)], check=True)


def _used(point: Path) -> int:
    return shutil.disk_usage(point).used


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_error(proc, where) -> str:
    """The last line of a CLI that failed on a full disk; ``where``: the path it must name
    (a function giving it, called once the command ended)."""
    _, stderr = proc.communicate(timeout=600)
    where = where() if callable(where) else where
    assert proc.returncode == 2 and "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {where}: cannot ") and "no space left on device" in last, \
        stderr
    return last


TINY_SET = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]


def test_disk_full_while_training_is_one_line_and_resumable(synthetic_store, tmp_path):
    """Finding 4: torch.save of the resume state on a 1.5 MiB disk was an inline_container
    RuntimeError; now one line, and once there is room the same command finishes."""
    with _mount(tmp_path, "runs", "1500k") as disk:
        args = ["train", "--features", synthetic_store, "--out", disk, "--epochs", "2",
                *TINY_SET]
        last = _one_line_error(cli(*args), lambda: next(disk.iterdir()))
        assert "cannot write the training run" in last and "needs " in last, last
        assert "it resumes from the last saved epoch" in last
        _no_temporary_files(disk)
        _remount(disk, "8m")
        proc = cli(*args)
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr
        run = next(p for p in disk.iterdir() if p.is_dir())
        assert (run / "model.safetensors").exists() and (run / "result.json").exists()


def test_disk_full_while_scoring_is_one_line_and_keeps_the_previous_scoring(
        synthetic_store, tmp_path):
    """Finding 3: PIL's save on a full --out was a traceback; now one line naming the
    folder, the previous scoring byte for byte as it was, nothing staged left."""
    runs = tmp_path / "runs"
    train(synthetic_store, settings=TINY, epochs=1, out=runs, progress=False)
    with _mount(tmp_path, "scores", "4m") as disk:
        score_split(synthetic_store, run=runs, out=disk, plots_per_video=False,
                    progress=False, thumbnails=False)
        before = _files(disk)
        _remount(disk, f"{(_used(disk) + 300 * 1024) // 1024}k")
        proc = cli("score", "--features", synthetic_store, "--run", runs, "--out", disk,
                   "--no-thumbnails")
        last = _one_line_error(proc, disk)
        assert "cannot write the scoring" in last and "needs more than " in last, last
        assert "the previous scoring there is intact" in last
        assert _files(disk) == before                      # no .partial/, nothing changed
        _no_temporary_files(disk)


def test_disk_full_while_importing_is_one_line(tmp_path):
    feats = tmp_path / "feats"
    feats.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        np.save(feats / f"v{i}.npy", rng.standard_normal((400, 512)).astype(np.float32))
    manifest = write(tmp_path / "m.csv", "video,split,label\n" + "".join(
        f"v{i},train,normal\n" for i in range(4)))
    with _mount(tmp_path, "small", "300k") as disk:
        proc = cli("import", "--features-dir", feats, "--dataset", "csv", "--annotations",
                   manifest, "--model", "m", "--out", disk / "f.h5")
        last = _one_line_error(proc, disk / "f.h5")
        assert "cannot write the imported features" in last
        assert os.listdir(disk) == [] or sorted(os.listdir(disk)) == ["f.h5.lock"], \
            os.listdir(disk)
