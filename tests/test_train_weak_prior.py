"""Stage two when CLIP's text prior is weak: the selection diagnostics and the chance
warning, the options that learn anyway (data directions, blended selection, MIL ranking),
and the custom preset sized to the dataset."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from features.store import open_store
from samples.synthetic import DEFAULT_CLASSES, REGIMES, make_synthetic_store
from tests.train_helpers import TINY, split_metrics
from train.model.centroid import class_contrasts, event_contrast
from train.config import build_config
from train.diagnose import at_chance, chance_warning
from train.model.directions import data_shift, text_directions
from train.model.losses import rank_hinge, select_segments
from train.presets import CUSTOM, custom_schedule
from train.run import train_run
from train.stage import resolve_config
from train.validate import segment_peaks, selector_video_auc

# The benchmark regimes on 3 classes and few short videos; val with intervals.
SMALL = dict(classes=DEFAULT_CLASSES, n_train_normal=30, n_train_abnormal=30, n_val_normal=30,
             n_val_abnormal=30, n_test_normal=15, n_test_abnormal=15, n_rows=(64, 160))
OPTIONS = dict(select_by="selector", direction_init="text+data", lambda_rank=0.0)
FAITHFUL = dict(select_by="selector", direction_init="text", lambda_rank=0.0)


@pytest.fixture(scope="module")
def regime_stores(tiny_clip, tmp_path_factory):
    root = tmp_path_factory.mktemp("regimes")
    return {r: make_synthetic_store(root / f"{r}.h5", tiny_clip, **{**REGIMES[r], **SMALL},
                                    seed=2) for r in REGIMES}


# -- diagnostics -------------------------------------------------------------------------

def test_selector_video_auc_ranks_each_class_against_normal_videos():
    # S columns: Arson, Fighting. Arson videos peak on column 0, normal videos do not.
    S = {"a1": [[0, 0], [5, 0]], "a2": [[4, 1], [4, 1]], "n1": [[1, 9], [1, 9]],
         "n2": [[2, 0], [2, 0]], "f1": [[0, 0], [0, 0]]}
    peaks = [segment_peaks(np.array(S[v], float), seg_length=2) for v in S]
    np.testing.assert_allclose(peaks[0], [2.5, 0])                 # mean over 2 rows
    classes = ["Arson", "Arson", "Normal", "Normal", "Fighting"]
    names = ["Arson", "Fighting", "Normal"]
    # Arson: 2 positives above both normals -> 1; Fighting: 0 below 9 and 0 (tie) -> 0.25
    assert selector_video_auc(peaks, classes, names, "Normal") == pytest.approx((1 + 0.25) / 2)
    assert np.isnan(selector_video_auc(peaks[:2], classes[:2], names, "Normal"))


def test_chance_is_judged_on_the_defined_diagnostics():
    assert at_chance({"selector_video_auc": 0.62, "video_auc": 0.41})
    assert not at_chance({"selector_video_auc": 0.55, "video_auc": 0.7})
    assert not at_chance({"selector_video_auc": float("nan"), "video_auc": float("nan")})
    line = chance_warning({"selector_video_auc": 0.52, "video_auc": 0.48}, epoch=6)
    assert "\n" not in line and "epoch 6" in line and "selector_video_auc 0.52" in line
    assert "direction_init=text+data" in line and "When a run sits at chance" in line
    assert chance_warning({"selector_video_auc": 0.9, "video_auc": 0.5}, 6) is None
    # a run that already starts from the data at lr 1e-3 is told what to look at next
    custom = build_config("custom")
    line = chance_warning({"selector_video_auc": 0.52, "video_auc": 0.48}, 6, custom)
    assert "check the labels" in line and "--preset custom" not in line
    faithful = build_config("custom", overrides={"direction_init": "text"})
    assert "--preset custom" in chance_warning({"selector_video_auc": 0.52}, 6, faithful)


def test_diagnostics_warn_on_a_text_blind_store_and_not_on_an_aligned_one(regime_stores,
                                                                         tmp_path, caplog):
    config = build_config(overrides={**TINY, **FAITHFUL, "epochs": 2, "warmup_epochs": 1})
    seen = {}
    for regime, store in regime_stores.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="pipeline"):
            run = train_run(store, config, tmp_path / regime, progress=False)
        row = run.history.iloc[-1]
        seen[regime] = row
        warned = [r.getMessage() for r in caplog.records if "no better than chance" in
                  r.getMessage()]
        assert len(warned) == (1 if regime == "text-blind" else 0), (regime, warned, row)
    for key in ("val_selector_auc", "val_selector_video_auc", "val_video_top1_accuracy"):
        assert all(key in row for row in seen.values())
    print({r: row[["val_selector_video_auc", "val_video_auc"]].to_dict()
           for r, row in seen.items()})
    assert seen["text-aligned"]["val_selector_video_auc"] >= 0.9      # S finds the anomalies
    assert seen["text-blind"]["val_selector_video_auc"] < 0.6         # S picks at random


# -- the options ---------------------------------------------------------------------------

def test_option_learns_on_a_text_blind_store_where_the_faithful_method_does_not(
        regime_stores, tmp_path):
    """32 steps: the faithful method's S still picks (nearly) random segments and
    recognition sits near chance; the option's directions start between text and data.
    Measured (reversible temporal model) over store seeds 2, 3 x run seeds 0-2: mAUC
    0.94-0.99 (option) vs 0.51-0.73 (faithful), gap >= 0.26; selector video AUC 0.96-0.99
    vs 0.52-0.77, gap >= 0.20. Frame AUC is 0.64-0.74 vs 0.50-0.69 at this budget (the
    temporal model has barely started), gap 0.05-0.18, too close to assert;
    bench/weak_prior.py measures it at full length."""
    from train.rundir import load_run

    store = regime_stores["text-blind"]
    base = {**TINY, "epochs": 8, "warmup_epochs": 1}
    results = {}
    for name, options in (("faithful", FAITHFUL), ("option", OPTIONS)):
        run = train_run(store, build_config(overrides={**base, **options}), tmp_path / name,
                        progress=False)
        results[name] = split_metrics(load_run(run.run_dir)[0], store, "test")
    print(results)
    option, faithful = results["option"], results["faithful"]
    assert option["mauc"] >= 0.78 and option["mauc"] >= faithful["mauc"] + 0.15
    assert option["selector_video_auc"] >= 0.9
    assert option["selector_video_auc"] >= faithful["selector_video_auc"] + 0.15


def test_class_contrasts_point_at_each_class_and_not_at_normal_events():
    rng = np.random.default_rng(0)
    d = 16
    u = np.eye(d)[:2] * 3                                   # class events along e0, e1
    distractor = np.eye(d)[2] * 3                          # a normal event along e2, in all

    def video(event=None):
        x = rng.standard_normal((100, d)) * 0.1 + rng.standard_normal(d)   # own scene
        x[60:75] += distractor
        if event is not None:
            x[20:30] += event
        return x

    class Store:
        embed_dim = d
        data = {f"a{i}": video(u[0]) for i in range(4)} | {f"b{i}": video(u[1]) for i in range(4)}
        data |= {f"n{i}": video() for i in range(4)}

        def rows(self, vid):                                # FeatureStore.rows: checked rows
            return self.data[vid]

    one = event_contrast(Store.data["a0"])
    assert one[0] > 1 and abs(one[2]) > 1                   # both events, scene removed
    classes = {v: {"a": "A", "b": "B", "n": "Normal"}[v[0]] for v in Store.data}
    c = class_contrasts(Store(), classes, ["A", "B", "C"], "Normal").numpy()
    assert c.shape == (3, d) and not c[2].any()             # a class without videos: zeros
    unit = c[:2] / np.linalg.norm(c[:2], axis=1, keepdims=True)
    print(np.round(unit[:, :3], 2))
    for k in (0, 1):                      # towards its own event, never towards the normal
        assert unit[k, k] > 0.6 and unit[k, 2] < 0.05 and abs(unit[k, 1 - k]) < 0.2


def test_data_shift_starts_directions_at_the_data_or_between_data_and_text():
    g = torch.Generator().manual_seed(0)
    text, m = torch.randn(3, 8, generator=g), torch.randn(8, generator=g)  # Normal at 1
    data = torch.randn(2, 8, generator=g)
    data[1] = 0                                             # no videos: keeps the text
    t = text_directions(text, m, normal_index=1)
    for keep_text in (False, True):
        shift = data_shift(text, m, data, normal_index=1, keep_text=keep_text)
        assert not shift[1].any()
        d = text_directions(text + shift, m, normal_index=1)
        want = data[0] / data[0].norm()
        if keep_text:
            want = (want + t[0]) / (want + t[0]).norm()
        torch.testing.assert_close(d[0], want)
        torch.testing.assert_close(d[1], t[1])
        torch.testing.assert_close((text + shift - m)[0].norm(), (text - m)[0].norm())


def test_blend_and_temporal_selection_rank_by_the_temporal_score():
    n, l = 8, 4
    S = torch.zeros(2, n, l, 3)
    S[0, :, :, 1] = torch.arange(n, dtype=torch.float).view(n, 1)   # S favours late segments
    logits = torch.zeros(2, n, l)
    logits[:, :3] = 10.0                                             # temporal: early ones
    y = torch.tensor([1, 2])                                         # Fighting, Normal
    sel = select_segments(S, y, 2, 3, 1.0, logits=logits, select_by="temporal")
    assert sorted(sel.top_abn[0].tolist()) == [0, 1, 2] == sorted(sel.top_nor[0].tolist())
    by_s = select_segments(S, y, 2, 3, 1.0, logits=logits, select_by="selector")
    assert sorted(by_s.top_abn[0].tolist()) == [5, 6, 7]
    blend = select_segments(S, y, 2, 3, 1.0, logits=logits, select_by="blend")

    def z(v):
        return (v - v.mean()) / v.std(ddof=1)
    both = z(S[0, :, :, 1].sum(1).numpy()) + z(logits[0].sum(1).numpy())
    assert sorted(blend.top_abn[0].tolist()) == sorted(np.argsort(-both)[:3].tolist())
    assert set(blend.top_abn[0].tolist()) not in ({0, 1, 2}, {5, 6, 7})    # a mix of both
    s = torch.sigmoid(logits)
    hinge = rank_hinge(s, y != 2, sel)
    assert hinge.item() == pytest.approx(1.0, abs=1e-4)             # both top-k at s ~ 1


# -- the custom preset -----------------------------------------------------------------------

def test_custom_schedule_aims_at_a_fixed_number_of_steps():
    assert custom_schedule(5) == {"epochs": 60, "warmup_epochs": 6.0, "val_every": 2}
    assert custom_schedule(6)["epochs"] == 50                       # 400 videos: 300 steps
    assert custom_schedule(25)["epochs"] == 20                      # at least 20 epochs
    assert custom_schedule(1)["epochs"] == 200                      # at most 200
    assert custom_schedule(5, epochs=7) == {"epochs": 7, "warmup_epochs": 0.7, "val_every": 1}


def test_stores_of_other_datasets_get_the_custom_preset_sized_to_them(synthetic_store):
    config = resolve_config(synthetic_store, settings={"device": "cpu"})
    with open_store(synthetic_store) as store:
        assert store.attrs["dataset"] == "synthetic"
    # 24 + 24 training videos, 20% carved: 19 / 18 left, 32 per class and step -> 1 step
    assert config.preset == CUSTOM and config.epochs == 200 and config.val_every == 8
    assert (config.select_by, config.direction_init, config.lambda_rank) == \
        ("selector", "residual", 0.0)
    assert config.concat_selector and config.selector_logit
    assert config.lr == 1e-3
    mine = resolve_config(synthetic_store, settings={"epochs": 7, "lr": 1e-4,
                                                     "batch_size": 8})
    assert (mine.epochs, mine.lr, mine.warmup_epochs, mine.val_every) == (7, 1e-4, 0.7, 1)
    sized = resolve_config(synthetic_store, settings={"batch_size": 8})     # 5 steps an epoch
    assert (sized.epochs, sized.warmup_epochs, sized.val_every) == (60, 6.0, 2)
    paper = resolve_config(synthetic_store, preset="ucf-crime")
    assert (paper.lr, paper.epochs, paper.select_by, paper.direction_init,
            paper.lambda_rank) == (1e-5, 50, "selector", "text", 0.0)
    assert not paper.concat_selector and not paper.selector_logit
