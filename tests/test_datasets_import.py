"""Import of shared .npy features: every shape comes back unchanged through the reader."""
from __future__ import annotations

import numpy as np
import pytest

from extract import import_features, scan_features
from features.errors import UserError
from features.store import open_store
from tests.dataset_files import file_hash, write

MANIFEST = ("video,split,label,intervals\nn1,train,normal,\nn2,train,normal,\n"
            "a1,train,Theft,\na2,test,Theft,3-7\nn3,test,normal,\n")
LENGTHS = {"n1": 12, "n2": 9, "a1": 20, "a2": 15, "n3": 11}


def _fp16_values(rng, shape):
    """float32 arrays whose values are exactly representable in the store's float16."""
    return rng.standard_normal(shape).astype(np.float16).astype(np.float32)


def _write_features(root, shape_of, rng, per_crop=False):
    arrays = {}
    for i, (vid, t) in enumerate(LENGTHS.items()):
        arr = _fp16_values(rng, shape_of(t))
        arrays[vid] = arr
        folder = root / ("abnormal" if vid.startswith("a") else "normal") / f"part{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        if per_crop:
            for k in range(arr.shape[1]):
                np.save(folder / f"{vid}__{k}.npy", arr[:, k])
        else:
            np.save(folder / f"{vid}.npy", arr)
    return arrays


def _import(tmp_path, crop="mean", model="i3d-features-unknown", **kw):
    manifest = write(tmp_path / "manifest.csv", MANIFEST)
    return import_features(tmp_path / "feats", "csv", manifest, model=model,
                           out=tmp_path / "out" / "features.h5", crop=crop, **kw)


def test_single_crop_features_come_back_unchanged(tmp_path):
    arrays = _write_features(tmp_path / "feats", lambda t: (t, 16), np.random.default_rng(0))
    result = _import(tmp_path, stride=2, fps=25.0, val_fraction=0.0)
    assert sorted(result.imported) == sorted(LENGTHS) and result.model_sha256 == ""
    with open_store(result.out) as store:
        assert store.attrs["source"] == "imported" and store.attrs["model_id"] == "i3d-features-unknown"
        assert store.attrs["model_sha256"] == "" and store.embed_dim == 16 and store.n_crops is None
        for vid, arr in arrays.items():
            np.testing.assert_array_equal(store.load(vid), arr)
            np.testing.assert_array_equal(store.frame_index(vid), np.arange(len(arr)) * 2)
            np.testing.assert_allclose(store.timestamps_ms(vid), np.arange(len(arr)) * 80.0)
        meta = store.metadata().set_index("video_id")
    assert meta.loc["a1", "n_frames"] == 40 and meta.loc["a1", "fps"] == 25.0
    assert meta.loc["a2", "intervals"] == [(3, 7)] and meta.loc["a2", "split"] == "test"
    assert meta.loc["a1", "source_path"] == "abnormal/part0/a1.npy"
    assert not (tmp_path / "out" / "features.h5.tmp").exists()


@pytest.mark.parametrize("per_crop", [False, True], ids=["T-10-D", "file-per-crop"])
def test_ten_crop_features_all_crops_or_one(tmp_path, per_crop):
    arrays = _write_features(tmp_path / "feats", lambda t: (t, 10, 8), np.random.default_rng(1),
                             per_crop=per_crop)
    found = scan_features(tmp_path / "feats")
    assert {f.video_id: f.shape for f in found} == {v: a.shape for v, a in arrays.items()}
    result = _import(tmp_path, crop="all")
    with open_store(result.out) as store:
        assert store.n_crops == 10 and store.attrs["crop"] == "all"
        for vid, arr in arrays.items():
            np.testing.assert_array_equal(store.load(vid), arr)            # (T, 10, D)
        assert store.embeddings("a1").chunks[1:] == (10, 8)
    out3 = tmp_path / "crop3.h5"
    import_features(tmp_path / "feats", "csv", tmp_path / "manifest.csv", model="x", out=out3, crop=3)
    with open_store(out3) as store:
        assert store.n_crops is None
        for vid, arr in arrays.items():
            np.testing.assert_array_equal(store.load(vid), arr[:, 3])
    mean = tmp_path / "mean.h5"
    import_features(tmp_path / "feats", "csv", tmp_path / "manifest.csv", model="x", out=mean)
    with open_store(mean) as store:
        np.testing.assert_array_equal(store.load("a1"),
                                      arrays["a1"].mean(axis=1).astype(np.float16).astype(np.float32))


def test_model_that_loads_is_fingerprinted(tmp_path, tiny_clip):
    from features.clip_loader import load_clip

    _write_features(tmp_path / "feats", lambda t: (t, 512), np.random.default_rng(2))
    result = _import(tmp_path, model=tiny_clip)
    assert result.model_sha256 == load_clip(tiny_clip, "cpu").fingerprint
    with open_store(result.out) as store:
        assert store.attrs["model_sha256"] == result.model_sha256
    assert "model sha256 " + result.model_sha256[:12] in result.summary()


def test_import_extends_an_imported_store_and_keeps_it_on_failure(tmp_path):
    rng = np.random.default_rng(3)
    arrays = _write_features(tmp_path / "feats", lambda t: (t, 8), rng)
    first = tmp_path / "feats" / "normal" / "part0" / "n1.npy"
    kept = np.load(first)
    result = _import(tmp_path, val_fraction=0.0)
    np.save(first, kept + 1)                     # changed on disk: the stored copy is kept
    np.save(tmp_path / "feats" / "late.npy", _fp16_values(rng, (5, 8)))
    write(tmp_path / "manifest.csv", MANIFEST + "late,test,normal,\n")
    again = import_features(tmp_path / "feats", "csv", tmp_path / "manifest.csv",
                            model="i3d-features-unknown", out=result.out, val_fraction=0.0)
    assert again.imported == ["late"] and sorted(again.skipped) == sorted(arrays)
    with open_store(result.out) as store:
        assert len(store.video_ids) == 6 and store.metadata().set_index("video_id").loc[
            "late", "split"] == "test"
        np.testing.assert_array_equal(store.load("n1"), kept)
    before = file_hash(result.out)
    np.save(tmp_path / "feats" / "zz_bad.npy", np.full((4, 8), np.nan, np.float32))
    write(tmp_path / "manifest.csv", MANIFEST + "late,test,normal,\nzz_bad,train,normal,\n")
    with pytest.raises(UserError, match="zz_bad.npy: contains NaN"):
        import_features(tmp_path / "feats", "csv", tmp_path / "manifest.csv",
                        model="i3d-features-unknown", out=result.out)
    assert file_hash(result.out) == before
    assert not result.out.with_name("features.h5.tmp").exists()
