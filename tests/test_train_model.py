"""Stage two, model parts: shapes, the centroid, directions, prompts, gradients, windows,
inference grids and the loss selection, on the tiny CLIP and a synthetic store."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from features.store import open_store
from train.model.centroid import normal_centroid
from train.model.directions import text_directions
from train.model.inference import grid_rows, predict_video
from train.model.losses import anomaly_clip_loss, select_segments
from train.model.model import AnomalyCLIP, class_log_probs
from train.model.prompts import PromptLearner, load_text_tower
from train.model.selector import Selector
from train.model.temporal import TemporalModel
from train.windows import BalancedBatches, read_window, window_rows

CLASSES = ["Arson", "Fighting", "Normal", "Road_Accidents"]     # store order, Normal at 2
N, L, D = 8, 4, 512


@pytest.fixture(scope="module")
def tower(tiny_clip):
    return load_text_tower(tiny_clip, None)


@pytest.fixture(scope="module")
def model(tower):
    torch.manual_seed(0)
    prompts = PromptLearner(tower, CLASSES, n_ctx=8)
    centroid = torch.randn(D)
    return AnomalyCLIP(CLASSES, 2, D, N, L, width=32, depth=2, heads=4,
                       concat_selector=True, centroid=centroid, prompt_learner=prompts)


def test_centroid_is_mean_of_normal_training_frames(synthetic_store):
    with open_store(synthetic_store) as store:
        meta = store.metadata()
        normal = list(meta[(meta.split == "train") & (meta.class_name == "Normal")].video_id)
        rows = np.concatenate([store.load(v, np.float64) for v in normal])
        m = normal_centroid(store, normal)
    assert m.shape == (D,)
    np.testing.assert_allclose(m.numpy(), rows.mean(0), rtol=1e-5, atol=1e-5)


def test_prompt_learner_is_clip_text_tower_on_the_prompt(tower):
    """With the context vectors set to the embedding of 'X', T equals CLIP's own text
    features of 'X X X X X X X X <class name>.' (underscores read as spaces)."""
    prompts = PromptLearner(tower, CLASSES, n_ctx=8)
    tok, clip = tower.tokenizer, tower.clip.model
    x_id = tok("X", add_special_tokens=False)["input_ids"]
    assert len(x_id) == 1
    with torch.no_grad():
        prompts.ctx.copy_(clip.text_model.embeddings.token_embedding.weight[x_id[0]]
                          .expand_as(prompts.ctx))
        T = prompts()
        texts = ["X X X X X X X X " + c.replace("_", " ") + "." for c in CLASSES]
        batch = tok(texts, padding=True, return_tensors="pt")
        ref = clip.get_text_features(**batch).pooler_output
    assert T.shape == (len(CLASSES), D)
    torch.testing.assert_close(T, ref, rtol=1e-4, atol=1e-4)


def test_directions_are_unit_vectors_without_the_normal_row():
    text, m = torch.randn(4, D) * 5, torch.randn(D)
    d = text_directions(text, m, normal_index=2)
    assert d.shape == (3, D)
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(3))
    expected = (text[3] - m) / (text[3] - m).norm()
    torch.testing.assert_close(d[2], expected)           # Road_Accidents after dropping Normal


def test_selector_is_batchnormed_scalar_projection():
    sel = Selector(3)
    x, d = torch.randn(2, N, L, D), torch.nn.functional.normalize(torch.randn(3, D), dim=-1)
    S = sel(x, d)
    assert S.shape == (2, N, L, 3)
    proj = (x @ d.T).reshape(-1, 3)
    expected = (proj - proj.mean(0)) / torch.sqrt(proj.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(S.reshape(-1, 3), expected, rtol=1e-4, atol=1e-4)
    assert not list(sel.parameters())                     # no learnable parameters
    assert sel.norm.num_batches_tracked.item() == 1      # running statistics updated


def test_temporal_model_shapes_and_attention_axes():
    torch.manual_seed(0)
    tm = TemporalModel(in_dim=20, width=32, depth=1, heads=4, num_segments=N, seg_length=L)
    x = torch.randn(2, N, L, 20)
    assert tm(x).shape == (2, N, L)
    attn, ffs = tm.layers.blocks[0], tm.layers.blocks[1]   # (f, g): (segment, frame), (ff, ff)
    segment_attn, frame_attn, ff_list = attn.f, attn.g, [ffs.f, ffs.g]
    h = torch.randn(2, N, L, 32)
    h2 = h.clone()
    h2[0, 3, 1] += 5 * torch.randn(32)       # perturb segment 3, frame 1 of video 0
    seg = (segment_attn(h2) - segment_attn(h)).abs().amax(-1) > 1e-6  # (2, N, L)
    frm = (frame_attn(h2) - frame_attn(h)).abs().amax(-1) > 1e-6
    expect_seg = torch.zeros(2, N, L, dtype=torch.bool)
    expect_seg[0, :, 1] = True               # same frame position, every segment
    expect_frm = torch.zeros(2, N, L, dtype=torch.bool)
    expect_frm[0, 3, :] = True               # same segment, every frame
    assert torch.equal(seg, expect_seg) and torch.equal(frm, expect_frm)
    for ff in ff_list:
        conv = (ff(h2) - ff(h)).abs().amax(-1) > 1e-6
        assert conv[0, 2:5, 0:3].all() and not conv[0, 6:].any() and not conv[1].any()  # 3x3


def test_model_forward_shapes_and_probabilities(model):
    model.train()
    out = model(torch.randn(4, N, L, D) * 3)
    assert out["p_anomaly"].shape == (4, N, L)
    assert out["S"].shape == (4, N, L, 3)
    assert out["class_probs"].shape == (4, N, L, 4)
    P, s = out["class_probs"], out["p_anomaly"]
    torch.testing.assert_close(P.sum(-1), torch.ones(4, N, L))
    torch.testing.assert_close(P[..., 2], 1 - s)                              # Normal column
    soft = torch.softmax(out["S"], -1) * s.unsqueeze(-1)
    torch.testing.assert_close(P[..., [0, 1, 3]], soft, rtol=1e-5, atol=1e-6)


def test_class_log_probs_are_stable_for_saturated_scores():
    S = torch.tensor([[50.0, -50.0]])
    logits = torch.tensor([60.0])
    lp = class_log_probs(S, logits, normal_index=0)
    assert torch.isfinite(lp).all()
    assert lp[0, 0] < -50                   # log(1 - s) for s ~ 1 is not -inf


def test_gradients_reach_only_trainable_parameters(model):
    model.train()
    model.zero_grad(set_to_none=True)
    x = torch.randn(8, N, L, D) * 3
    y = torch.tensor([0, 1, 3, 0, 2, 2, 2, 2])
    loss, terms = anomaly_clip_loss(model(x), y, 2, _LossConfig(), torch.Generator().manual_seed(0))
    assert set(terms) == {"dir_abn", "dir_nor", "topk_abn", "bottomk_abn", "topk_nor",
                          "smooth", "sparse"}
    loss.backward()
    with_grad = {n for n, p in model.named_parameters()
                 if p.grad is not None and p.grad.abs().sum() > 0}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"prompt_learner.ctx", "prompt_learner.text_projection.weight"} <= with_grad
    assert any(n.startswith("temporal.") for n in with_grad)
    assert with_grad <= trainable
    frozen = [n for n, p in model.named_parameters() if n.startswith("prompt_learner.encoder.")]
    assert frozen and all(model.get_parameter(n).grad is None for n in frozen)
    assert not any(n.startswith("selector.") for n in trainable)     # BN stats only
    assert {"selector.norm.running_mean", "centroid", "text_features"} <= set(model.state_dict())


class _LossConfig:
    topk, keep_prob = 3, 0.3
    lambda_dir_abn = lambda_dir_nor = lambda_topk_abn = lambda_bottomk_abn = 1.0
    lambda_topk_nor = 1.0
    lambda_smooth, lambda_sparse = 8e-4, 8e-3


def test_selection_picks_from_kept_segments_on_the_class_column():
    S = torch.zeros(2, N, L, 3)
    S[0, :, :, 1] = torch.arange(N, dtype=torch.float).view(N, 1)    # abnormal video, class col 1
    S[1] = torch.arange(N, dtype=torch.float).view(N, 1, 1)          # normal video
    y = torch.tensor([1, 2])                                         # Fighting, Normal (index 2)
    sel = select_segments(S, y, normal_index=2, k=3, keep_prob=1.0)
    assert sorted(sel.top_abn[0].tolist()) == [5, 6, 7]
    assert sorted(sel.bottom_abn[0].tolist()) == [0, 1, 2]
    assert sorted(sel.top_nor[0].tolist()) == [5, 6, 7]
    g = torch.Generator().manual_seed(1)
    sel = select_segments(S, y, normal_index=2, k=3, keep_prob=0.5, generator=g)
    g = torch.Generator().manual_seed(1)
    keep = torch.rand(2, N, generator=g) < 0.5
    kept = keep[0].nonzero().flatten().tolist()
    assert set(sel.top_abn[0].tolist()) <= set(kept)
    assert sorted(sel.top_abn[0].tolist()) == sorted(kept)[-3:]
    assert len(kept) > 3 and sorted(sel.bottom_abn[0].tolist()) == sorted(kept)[:3]   # one mask
    kept_n = keep[1].nonzero().flatten().tolist()
    assert sorted(sel.top_nor[0].tolist()) == sorted(kept_n)[-3:]


def test_window_rows_follow_the_sampling_rule():
    rng = np.random.default_rng(0)
    for t in (400, 1000, 4003):
        for _ in range(20):
            rows = window_rows(t, 32, 16, rng)
            assert rows.shape == (32, 16)
            dist = (t - 15) // 32
            starts = rows[:, 0]
            jitter = starts - np.arange(32) * dist
            assert ((0 <= jitter) & (jitter <= dist - 15)).all() if t >= 512 else True
            assert (np.diff(rows, axis=1) == 1).all() if t >= 512 else True
            assert rows.max() < t
    # shorter than N x L: sampled as if 512 rows long, dist (512 - 15) // 32 = 15, so
    # segment i is rows 15 i ... 15 i + 15 (one row shared with the next), modulo T
    expected = (np.arange(32)[:, None] * 15 + np.arange(16))
    for t in (100, 400, 511):
        for _ in range(5):
            np.testing.assert_array_equal(window_rows(t, 32, 16, rng), expected % t)
    np.testing.assert_array_equal(window_rows(512, 32, 16, rng), expected)   # the same rule
    dist = (4003 - 15) // 32                                         # 124: jitter in [0, 109]
    jitter = np.stack([window_rows(4003, 32, 16, rng)[:, 0] - np.arange(32) * dist
                       for _ in range(200)])                          # (draws, N)
    assert jitter.min() == 0 and jitter.max() == dist - 15           # the whole range is drawn
    assert len(np.unique(jitter[0])) > 16                            # per segment, not shared


@pytest.mark.parametrize("t", [100, 300, 2000])
def test_read_window_matches_plain_indexing(tmp_path, t):
    data = np.random.default_rng(0).standard_normal((t, 16)).astype(np.float16)
    with h5py.File(tmp_path / "x.h5", "w") as h5:
        h5.create_dataset("e", data=data, chunks=(64, 16))
    with h5py.File(tmp_path / "x.h5", "r") as h5:
        for seed in range(3):
            rows = window_rows(t, 8, 16, np.random.default_rng(seed))     # 128-row windows
            np.testing.assert_array_equal(read_window(h5["e"], rows), data[rows])


def test_balanced_batches_are_half_abnormal_and_deterministic():
    b = BalancedBatches(abnormal=[0, 1, 2], normal=[3, 4, 5, 6, 7], half=2, steps=3, seed=5)
    b.set_epoch(1)
    first = list(b)
    assert len(first) == 3 and all(len(batch) == 4 for batch in first)
    for batch in first:
        assert all(v in (0, 1, 2) for v, _ in batch[:2])
        assert all(v >= 3 for v, _ in batch[2:])
    b.set_epoch(1)
    assert list(b) == first
    b.set_epoch(2)
    assert list(b) != first


@pytest.mark.parametrize("t", [1, 31, 32, 33, 100, 129])
def test_inference_grids_cover_every_row_once_per_padded_slot(t):
    idx = grid_rows(t, N, L)
    k = idx.shape[0]
    assert idx.shape == (k, N, L) and k * N * L >= t > (k - 1) * N * L
    flat = np.empty(k * N * L, dtype=int)
    for j in range(k):                        # grid j, segment i spans the whole video
        for i in range(N):
            flat[i * k * L + j * L: i * k * L + (j + 1) * L] = idx[j, i]
    np.testing.assert_array_equal(flat, np.arange(k * N * L) % t)


def test_predict_video_matches_window_forward(model):
    model.eval()
    x = torch.randn(N * L, D) * 3
    with torch.no_grad():
        direct = model(x.view(1, N, L, D))
    out = predict_video(model, x.numpy())
    np.testing.assert_allclose(out["p_anomaly"], direct["p_anomaly"].reshape(-1).numpy(),
                               rtol=1e-5, atol=1e-6)
    assert out["class_probs"].shape == (N * L, 4)
    long = predict_video(model, np.random.default_rng(0).standard_normal((77, D)))
    assert long["p_anomaly"].shape == (77,) and long["class_probs"].shape == (77, 4)


def test_learning_rate_warms_up_linearly_then_decays_to_zero():
    from train.run import lr_factor

    f = [lr_factor(s, 10, warmup_epochs=5, epochs=50) for s in range(500)]
    np.testing.assert_allclose(f[:50], np.arange(1, 51) / 50)           # linear warm-up
    assert f[50] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[50:], f[51:]))                  # cosine, decreasing
    assert f[-1] < 1e-3 and f[275] == pytest.approx(0.5, abs=0.01)      # half-way: 0.5


def test_seven_loss_terms_follow_their_definitions_and_weights():
    """Each term against its docs/method.md definition, computed by hand on a small batch
    (keep_prob 1: every segment selectable), with distinct weights so a swapped weight shows."""
    g = torch.Generator().manual_seed(0)
    B, C1 = 4, 3                                            # 2 abnormal + 2 normal videos
    S = torch.randn(B, N, L, C1, generator=g)
    logits = torch.randn(B, N, L, generator=g)
    out = {"S": S, "p_anomaly": torch.sigmoid(logits),
           "log_probs": class_log_probs(S, logits, normal_index=2)}
    y = torch.tensor([3, 0, 2, 2])                          # Road_Accidents, Arson, Normal x2

    class Cfg:
        topk, keep_prob = 3, 1.0
        lambda_dir_abn, lambda_dir_nor, lambda_topk_abn = 1.0, 2.0, 3.0
        lambda_bottomk_abn, lambda_topk_nor = 5.0, 7.0
        lambda_smooth, lambda_sparse = 8e-4, 8e-3

    total, terms = anomaly_clip_loss(out, y, 2, Cfg())
    Sn, lp, s = S.numpy().astype(np.float64), out["log_probs"].numpy(), out["p_anomaly"].numpy()
    col = {3: 2, 0: 0}                                      # store class -> S column
    dir_abn, top_abn, bottom_abn, smooth, sparse = [], [], [], 0.0, []
    for b in (0, 1):
        seg = Sn[b, :, :, col[int(y[b])]].sum(1)            # (N,) segment scores on its class
        top, bottom = np.argsort(-seg)[:3], np.argsort(seg)[:3]
        dir_abn += list(Sn[b, top, :, col[int(y[b])]].ravel())
        top_abn += list(lp[b, top, :, int(y[b])].ravel())
        bottom_abn += list(lp[b, bottom, :, 2].ravel())
        seq = s[b].ravel()
        smooth += float(((seq[1:] - seq[:-1]) ** 2).sum())
        sparse += list(seq)
    top_nor = []
    for b in (2, 3):
        top = np.argsort(-Sn[b].sum((1, 2)))[:3]            # sum over all classes
        top_nor += list(lp[b, top, :, 2].ravel())
    expected = {"dir_abn": -np.mean(dir_abn),
                "dir_nor": 2.0 * Sn[2:].max(-1).mean(),
                "topk_abn": 3.0 * -np.mean(top_abn),
                "bottomk_abn": 5.0 * -np.mean(bottom_abn),
                "topk_nor": 7.0 * -np.mean(top_nor),
                "smooth": 8e-4 * smooth,
                "sparse": 8e-3 * np.mean(sparse)}
    assert set(terms) == set(expected)
    for k, v in expected.items():
        assert terms[k] == pytest.approx(v, rel=1e-5, abs=1e-7), k
    assert total.item() == pytest.approx(sum(expected.values()), rel=1e-5)
