"""One writer per feature file: a second extract, label or import is told who writes it (or
waits with --wait); a dead writer's lock is taken over; the result equals a clean run."""
from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import threading

import numpy as np
import pytest

import features.lock as lock
from extract import extract_videos
from features import UserError
from features.datasets import label_store
from features.lock import lock_path, store_lock
from tests.dataset_files import assert_same_store, make_store, store_with, write
from tests.media import make_video
from tests.processes import cli, hold_lock, holds_lock

MANIFEST = "video,split,label,intervals\na,train,normal,\nb,test,Theft,3-9\n"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for i in range(4):
        make_video(root / f"clip{i}.mp4", size="160x120", seconds=1.6 + 0.2 * i,
                   source="testsrc2" if i % 2 else "testsrc")
    return root


@pytest.fixture(scope="module")
def clean(clips, tiny_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "clean.h5"
    assert len(extract_videos(clips, out=out, model=tiny_clip, progress=False).done) == 4
    return out


def test_two_extracts_at_once_on_a_store_with_videos_equal_a_clean_run(clips, clean, tiny_clip,
                                                                        tmp_path):
    out = store_with(clips, ["clip0.mp4", "clip1.mp4"], tmp_path / "f.h5", tiny_clip)
    args = ["extract", "--videos", clips, "--out", out, "--model", tiny_clip, "--workers", "1"]
    first = cli(*args)
    assert holds_lock(out, first)
    first.send_signal(signal.SIGSTOP)               # paused while it writes the store
    try:
        refused = cli(*args)
        _, told = refused.communicate(timeout=120)
        assert refused.returncode == 2 and told.count("\n") == 1 and "--wait" in told, told
        waiting = cli(*args, "--wait")
        told_too = waiting.stderr.readline()         # says whom it waits for, then waits
    finally:
        first.send_signal(signal.SIGCONT)
    for line in (told, told_too):
        assert f"pid {first.pid} on {socket.gethostname()} (`pipeline extract`" in line, line
    out_1, err_1 = first.communicate(timeout=300)
    assert first.returncode == 0 and "2 extracted, 2 already stored" in out_1, err_1
    out_2, err_2 = waiting.communicate(timeout=300)
    assert waiting.returncode == 0 and "0 extracted, 4 already stored" in out_2, err_2
    assert_same_store(clean, out)
    assert not lock_path(out).exists() and not list(tmp_path.glob("*.tmp"))


def test_second_writer_is_told_who_writes_then_waits(tmp_path, caplog):
    store = make_store(tmp_path / "f.h5", {"a": 100, "b": 100})
    manifest = write(tmp_path / "m.csv", MANIFEST)
    holder = hold_lock(store, "import")
    try:
        with pytest.raises(UserError) as err:
            label_store(store, "csv", manifest)
        message = str(err.value)
        assert f"pid {holder.pid} on {socket.gethostname()} (`pipeline import`, started " in \
            message and "pass --wait" in message and "\n" not in message
        (tmp_path / "feats").mkdir()
        np.save(tmp_path / "feats" / "a.npy", np.zeros((4, 8), np.float32))
        proc = cli("import", "--features-dir", tmp_path / "feats", "--dataset", "csv",
                   "--annotations", manifest, "--model", "m", "--out", store)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2 and stderr.startswith("error: ") and \
            stderr.count("\n") == 1 and f"pid {holder.pid}" in stderr, stderr
        done = []
        waiting = threading.Thread(target=lambda: done.append(
            label_store(store, "csv", manifest, val_fraction=0, wait=True)))
        with caplog.at_level(logging.WARNING, logger="pipeline"):
            waiting.start()
            waiting.join(timeout=1.0)
            assert waiting.is_alive() and not done     # it waits ...
    finally:
        holder.stdin.close()                           # ... until the holder is done
        holder.wait(timeout=60)
    waiting.join(timeout=60)
    assert len(done) == 1 and "waiting until it is done" in caplog.text
    assert not lock_path(store).exists()


def test_lock_of_a_killed_writer_is_taken_over(tmp_path, caplog):
    store = make_store(tmp_path / "f.h5", {"a": 100, "b": 100})
    holder = hold_lock(store, "extract")
    holder.kill()
    holder.wait()
    assert json.loads(lock_path(store).read_text())["pid"] == holder.pid     # left behind
    (tmp_path / "f.h5.tmp").write_bytes(b"half a merge")                    # and its garbage
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        label_store(store, "csv", write(tmp_path / "m.csv", MANIFEST), val_fraction=0)
    assert f"pid {holder.pid} on" in caplog.text and "taking it over" in caplog.text
    assert not lock_path(store).exists() and not (tmp_path / "f.h5.tmp").exists()


def test_the_lock_is_taken_once_and_released_on_error(tmp_path):
    """Not re-entrant: a second store_lock of the same file, even in this process, is a
    second writer (extract --dataset labels under the one lock of the extraction)."""
    store = tmp_path / "f.h5"
    with store_lock(store, "extract"):
        with pytest.raises(UserError, match=f"pid {os.getpid()} .*pipeline extract"):
            with store_lock(store, "label"):
                pass
        assert lock_path(store).exists()
    assert not lock_path(store).exists()
    with pytest.raises(RuntimeError):
        with store_lock(store, "label"):
            raise RuntimeError("boom")
    with store_lock(store, "label"):                 # released: can be taken again
        pass


def test_without_kernel_locks_the_lock_file_itself_is_the_lock(tmp_path, monkeypatch, caplog):
    """E.g. NFS mounted with nolock: flock fails with ENOLCK; O_EXCL creation decides."""
    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(lock.fcntl, "flock", no_flock)
    store = tmp_path / "f.h5"
    here = socket.gethostname()
    with store_lock(store, "extract"):               # the first one creates the file: holds it
        with pytest.raises(UserError, match="is writing it"):
            lock._acquire(lock_path(store).absolute(), store, "label", wait=False)
    assert not lock_path(store).exists()

    def left_by(pid, host):
        lock_path(store).write_text(json.dumps(
            {"pid": pid, "host": host, "command": "extract", "started": "then"}))
    left_by(os.getppid(), here)                      # alive on this host: still holding
    with pytest.raises(UserError, match=f"pid {os.getppid()} on {here}.*delete .*f.h5.lock"):
        with store_lock(store, "label"):
            pass
    left_by(2 ** 22 + 12345, "another-host")         # elsewhere: cannot tell, so refused
    with pytest.raises(UserError, match="another-host"):
        with store_lock(store, "label"):
            pass
    dead = cli("--help")
    dead.communicate()
    left_by(dead.pid, here)                          # gone on this host: taken over
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        with store_lock(store, "label"):
            assert json.loads(lock_path(store).read_text())["pid"] == os.getpid()
    assert f"pid {dead.pid}" in caplog.text and not lock_path(store).exists()
