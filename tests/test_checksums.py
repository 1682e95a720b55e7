"""Bytes flipped on disk in a feature file are named, never read as real rows: every video
dataset carries fletcher32; `info --verify` names the damaged video, train and score refuse
it with one line; files written before the checksums still read."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from evaluate.stage import score_split
from features.describe import verify_file
from features.integrity import DamagedVideo, has_checksums
from features.store import open_store
from tests.processes import cli
from tests.train_helpers import TINY
from train.stage import train


def _flip_bytes(path: Path, video_id: str, dataset: str = "embeddings") -> None:
    """Invert 16 bytes in the middle of the rows held by the first chunk of one video's
    dataset (as the hostile pass did), found with h5py's get_chunk_info."""
    with h5py.File(path, "r") as h5:
        ds = h5[f"videos/{video_id}/{dataset}"]
        info = ds.id.get_chunk_info(0)
        used = min(ds.shape[0], ds.chunks[0]) * ds.dtype.itemsize * int(np.prod(ds.shape[1:]))
    middle = info.byte_offset + used // 2                # not the chunk's unused tail
    with open(path, "r+b") as f:
        f.seek(middle)
        data = f.read(16)
        f.seek(middle)
        f.write(bytes(b ^ 0xFF for b in data))


@pytest.fixture(scope="module")
def victim(synthetic_store):
    """A training video of the synthetic store (the one the pass damaged was train_Arson_00)."""
    with open_store(synthetic_store) as store:
        meta = store.metadata()
    return str(meta[(meta["split"] == "train") & (meta["label"] == 1)]["video_id"].iloc[0])


@pytest.fixture(scope="module")
def damaged(synthetic_store, victim, tmp_path_factory):
    copy = Path(shutil.copy(synthetic_store, tmp_path_factory.mktemp("damaged") / "f.h5"))
    _flip_bytes(copy, victim)
    return copy


@pytest.fixture(scope="module")
def run(synthetic_store, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    train(synthetic_store, settings=TINY, epochs=1, out=runs, progress=False)
    return runs


def test_every_video_dataset_has_checksums_and_a_clean_file_verifies(synthetic_store):
    with h5py.File(synthetic_store, "r") as h5:
        groups = list(h5["videos"].values())
        assert groups and all(has_checksums(g) for g in groups)
        assert all(ds.fletcher32 for g in groups for ds in g.values())
    found = verify_file(synthetic_store, progress=False)
    assert found.error() is None and not found.damaged and not found.unchecked
    assert len(found.checked) == len(groups)


def test_info_verify_names_the_damaged_video_and_only_it(damaged, victim):
    found = verify_file(damaged, progress=False)
    assert list(found.damaged) == [victim]
    assert "fletcher32" in found.damaged[victim] and len(found.checked) > 10
    proc = cli("info", damaged, "--verify")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, (stdout, stderr)
    assert f"damaged          {victim}: its rows fail their fletcher32 checksum" in stdout
    assert "Traceback" not in stderr and stderr.splitlines()[-1] + "\n" == (
        f"error: {damaged}: 1 damaged video(s): {victim}; re-extract {victim}: "
                      "touch its source video and run the same `pipeline extract` again "
                      "(imported features: import them into a new --out); `pipeline info "
                      "--verify` lists every damaged video\n")
    plain = cli("info", damaged)                       # without --verify: no full read
    assert plain.wait(timeout=120) == 0


def test_damage_in_the_frame_index_is_found_too(synthetic_store, victim, tmp_path):
    copy = Path(shutil.copy(synthetic_store, tmp_path / "f.h5"))
    _flip_bytes(copy, victim, "frame_index")
    with open_store(copy) as store:
        with pytest.raises(DamagedVideo) as err:
            store.frame_index(victim)
        other = next(v for v in store.video_ids if v != victim)
        assert len(store.frame_index(other)) == store.rows(other).shape[0] > 0  # others read
        assert store.rows(victim).shape[0] > 0          # its embeddings were not touched
    assert err.value.video_id == victim and "\n" not in str(err.value)


def test_train_refuses_the_damaged_video_in_one_line(damaged, victim, tmp_path):
    with pytest.raises(DamagedVideo) as err:
        train(damaged, settings=TINY, epochs=1, out=tmp_path / "runs", progress=False)
    message = str(err.value)
    assert message.startswith(f"{damaged}: video {victim} is damaged (its rows fail their "
                              "fletcher32 checksum); re-extract") and "\n" not in message


def test_score_refuses_a_damaged_video_and_keeps_the_previous_scoring(synthetic_store, run,
                                                                      damaged, victim,
                                                                      tmp_path):
    out = tmp_path / "scores"
    score_split(synthetic_store, run=run, split="train", out=out, plots_per_video=False,
                progress=False, thumbnails=False)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    proc = cli("score", "--features", damaged, "--run", run, "--split", "train", "--out", out)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith(
        f"error: {damaged}: video {victim} is damaged (its rows fail their fletcher32 checksum)")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_file_without_checksums_still_reads_and_says_so(synthetic_store, tmp_path):
    old = tmp_path / "old.h5"
    with h5py.File(synthetic_store, "r") as src, h5py.File(old, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for name in ("labels",):
            src.copy(src[name], dst, name=name)
        for vid, group in src["videos"].items():       # as written before fletcher32
            g = dst.create_group(f"videos/{vid}")
            for key, value in group.attrs.items():
                g.attrs[key] = value
            for name, ds in group.items():
                g.create_dataset(name, data=ds[()], chunks=ds.chunks, maxshape=ds.maxshape)
    with open_store(old) as store:
        vid = store.video_ids[0]
        assert np.array_equal(store.rows(vid), open_store(synthetic_store).rows(vid))
    found = verify_file(old, progress=False)
    assert found.error() is None and not found.checked and len(found.unchecked) > 10
    assert any("no checksums" in line and "re-extract to add them" in line
               for line in found.lines())


def test_crc32_finds_what_fletcher32_misses(synthetic_store, victim, tmp_path):
    """Fletcher32 sums 16-bit words modulo 65535: a zero word inverted to 0xFFFF (the high
    bytes of a small int64 frame number) passes it; the recorded crc32 does not."""
    copy = Path(shutil.copy(synthetic_store, tmp_path / "f.h5"))
    with h5py.File(copy, "r") as h5:
        ds = h5[f"videos/{victim}/frame_index"]
        at = ds.id.get_chunk_info(0).byte_offset + 5 * 8 + 6   # row 5, its top two bytes
        assert ds[5] < 2**48
    with open(copy, "r+b") as f:
        f.seek(at)
        f.write(b"\xff\xff")
    with h5py.File(copy, "r") as h5:
        assert h5[f"videos/{victim}/frame_index"][5] < 0     # fletcher32 let it through
    with open_store(copy) as store:
        with pytest.raises(DamagedVideo) as err:
            store.frame_index(victim)
    assert "its frame_index differ from the crc32 recorded when they were written" in str(err.value)
    assert list(verify_file(copy, progress=False).damaged) == [victim]
