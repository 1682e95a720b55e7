"""The hard synthetic benchmark (samples/hard.py) and the training-free baselines
(train/baselines.py): the generator's knobs do what they say, and the baselines find what
they can."""
from __future__ import annotations

import numpy as np
import pytest

from features.schema import NORMAL_CLASS
from features.store import open_store
from samples.hard import FAMILIES, REGIMES, class_directions, make_hard_store
from samples.synthetic import UCF_CLASSES, _unit
from train.baselines import baseline_metrics, fit_baselines
from train.validate import row_labels

SMALL = dict(n_train_normal=26, n_train_abnormal=52, n_test_normal=13, n_test_abnormal=26,
             n_rows=(100, 200))


def _rows_and_split(path):
    with open_store(path) as s:
        meta = s.metadata()
        rows = {v: s.embeddings(v)[()] for v in meta["video_id"]}
        frames = {v: s.frame_index(v) for v in meta["video_id"]}
    return meta, rows, frames


def _baselines(path):
    meta, rows, frames = _rows_and_split(path)
    train = meta[meta["split"] == "train"]
    test = meta[meta["split"] == "test"].reset_index(drop=True)
    model = fit_baselines(rows, dict(zip(train["video_id"], train["class_name"])),
                          sorted(UCF_CLASSES), NORMAL_CLASS, rank=16)
    labels = {r.video_id: row_labels(r, frames[r.video_id], False, NORMAL_CLASS)
              for r in test.itertuples(index=False)}
    return baseline_metrics(model, rows, test, labels, NORMAL_CLASS)


def test_class_directions_follow_the_family_and_text_knobs():
    rng = np.random.default_rng(0)
    text = _unit(rng.standard_normal((13, 512)))
    names = sorted(UCF_CLASSES)
    for fam_cos, align in ((0.5, 0.0), (0.5, 0.6), (0.8, 0.6)):
        u = class_directions(np.random.default_rng(1), text, fam_cos, align)
        np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1, atol=1e-6)
        cos = u @ u.T
        a, b = names.index("Abuse"), names.index("Fighting")       # one family
        c = names.index("Arson")                                    # another
        assert cos[a, c] < 0.25
        if align == 0:
            assert cos[a, b] == pytest.approx(fam_cos, abs=0.1)
            assert np.abs((u * text).sum(1)).max() < 0.25          # text-blind
        else:
            np.testing.assert_allclose((u * text).sum(1), align, atol=1e-6)
            # the text parts of two classes are unrelated here: the family share is what is left
            assert cos[a, b] == pytest.approx((1 - align ** 2) * fam_cos, abs=0.1)
    assert sorted(c for f in FAMILIES for c in f) == names


def test_hard_store_hides_anomalies_from_novelty_and_the_prototype_finds_classes(tiny_clip,
                                                                                 tmp_path):
    hard = make_hard_store(tmp_path / "hard.h5", tiny_clip, **REGIMES["text-blind"], **SMALL,
                           seed=3)
    meta, rows, frames = _rows_and_split(hard)
    train = meta[meta["split"] == "train"]
    test = meta[meta["split"] == "test"]
    assert sorted(set(meta["class_name"])) == sorted(set(UCF_CLASSES) | {NORMAL_CLASS})
    assert all(len(iv) == 0 for iv in train["intervals"])           # weak labels only
    abnormal = test[test["class_name"] != NORMAL_CLASS]
    shares = [sum(e - s + 1 for s, e in r.intervals) / r.n_frames
              for r in abnormal.itertuples(index=False)]
    assert all(1 <= len(r.intervals) <= 2 for r in abnormal.itertuples(index=False))
    assert 0.03 <= min(shares) and max(shares) <= 0.22              # short anomalies
    got = _baselines(hard)
    print(got)
    assert got["novelty_auc"] < 0.7 and got["residual_auc"] < 0.72
    # the same store with strong anomalies and no distractors: every baseline works
    easy = make_hard_store(tmp_path / "easy.h5", tiny_clip, **{**REGIMES["text-blind"],
                           "strength": 12.0, "distractor_rate": 0.0}, **SMALL, seed=3)
    easy_got = _baselines(easy)
    print(easy_got)
    assert easy_got["residual_auc"] > 0.9 and easy_got["prototype_top1"] >= 0.8


def test_baselines_line_names_each_metric_the_run_does_not_beat():
    from train.baselines import baselines_line

    base = {"novelty_video_auc": 0.6, "residual_video_auc": 0.7, "prototype_top1": 0.88,
            "novelty_auc": float("nan")}
    assert baselines_line({"video_auc": 0.9, "video_top1_accuracy": 0.95}, base) is None
    line = baselines_line({"video_auc": 0.65, "video_top1_accuracy": 0.5, "auc": 0.9}, base)
    assert "\n" not in line
    assert "video_auc 0.650 vs residual_video_auc 0.700" in line
    assert "video_top1_accuracy 0.500 vs prototype_top1 0.880" in line
    assert "auc 0.9" not in line                    # nothing defined to compare with


def test_a_run_records_the_baselines_and_says_when_it_is_no_better(synthetic_store, tmp_path,
                                                                   caplog):
    import json
    import logging

    from evaluate.stage import baselines_note
    from tests.train_helpers import TINY
    from train.config import build_config
    from train.rundir import read_config
    from train.run import train_run

    config = build_config(overrides={**TINY, "epochs": 1, "lr": 1e-6})     # learns nothing
    with caplog.at_level(logging.INFO, logger="pipeline"):
        run = train_run(synthetic_store, config, tmp_path / "run", progress=False)
    result = json.loads((run.run_dir / "result.json").read_text())
    base = result["baselines"]
    assert set(base) >= {"novelty_auc_videolabel", "residual_video_auc", "prototype_top1"}
    assert 0 <= base["prototype_top1"] <= 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("training-free baselines on the validation videos" in m for m in messages)
    said = [m for m in messages if "no better than a training-free baseline" in m]
    worse = [k for k, b in (("video_auc", "residual_video_auc"),
                            ("auc_videolabel", "residual_auc_videolabel"),
                            ("video_top1_accuracy", "prototype_top1"))
             if run.best[k] <= max(base[b], base.get("novelty_" + k, -1))]
    assert len(said) == (1 if worse else 0)
    cfg = read_config(run.run_dir)
    assert cfg["baselines"] == base
    note = baselines_note(cfg)
    assert len(note) == 1 and "prototype_top1" in note[0] and "video_auc" in note[0]
