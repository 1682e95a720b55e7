"""A hard synthetic benchmark in UCF-Crime's classes, where novelty does not find anomalies.

Features are written directly (no video), 512-d with the offline tiny CLIP, in the same
store schema and label contract as ``samples/synthetic.py`` (any later stage runs on it).
What makes it hard (issue 24), each with its knob:

* normal videos move slowly (AR(1), ``rho``) on a low-rank normal manifold (``rank``
  directions of spread ``manifold_spread``) around a per-video scene offset
  (``scene_spread``), plus frame noise (``frame_noise``): most of the variation between
  frames and videos is normal;
* a ``distractor_rate`` of the videos (normal and abnormal alike) carry a harmless event
  along one of ``n_distractors`` directions of their own, as strong as an anomaly and as
  long as ``distractor_share`` of the video, so "unusual" is not "anomalous";
* an abnormal video adds its class direction (``strength``, +-30%) during one or two short
  intervals covering ``interval_share`` of it;
* the 13 classes form the 5 UCF-Crime families of :data:`FAMILIES`; two classes of a family
  are at cosine ``family_cos``;
* ``text_alignment``: each class direction's cosine with the direction from the normal mean
  to the CLIP text embedding of ``"<class name>."`` (0: text-blind; 0.6: aligned).

:data:`REGIMES` are the two benchmark settings (text-blind, text-aligned), calibrated so
that distance to the normal centroid scores frame AUC <= 0.65 and the MIL ranking baseline
>= 0.7 (``bench/weak_prior.py`` prints both).

    from samples.hard import REGIMES, make_hard_store
    make_hard_store("hard.h5", "path/to/clip", **REGIMES["text-blind"], seed=1)
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from features import schema
from features.labels import put_slots, write_labels
from features.schema import NORMAL_CLASS
from features.store import atomic_replace, write_file_attrs, write_video
from samples.synthetic import UCF_CLASSES, _class_text_embeddings, _intervals, _unit

# UCF-Crime's 13 anomaly classes in 5 families of related events.
FAMILIES = (("Abuse", "Assault", "Fighting"), ("Arrest", "Robbery", "Shooting"),
            ("Burglary", "Stealing", "Shoplifting"), ("Arson", "Explosion", "Vandalism"),
            ("RoadAccidents",))
_FAMILY_OF = {c: k for k, fam in enumerate(FAMILIES) for c in fam}

HARD = dict(distractor_rate=0.5, family_cos=0.5, interval_share=(0.05, 0.2),
            strength=3.5, scene_spread=7.0, manifold_spread=8.0, frame_noise=2.0)
REGIMES = {"text-blind": dict(HARD, text_alignment=0.0),
           "text-aligned": dict(HARD, text_alignment=0.6)}
SIZES = {"full": dict(n_train_normal=200, n_train_abnormal=200, n_test_normal=60,
                      n_test_abnormal=60),
         "quick": dict(n_train_normal=100, n_train_abnormal=100, n_test_normal=30,
                       n_test_abnormal=30)}


def class_directions(rng: np.random.Generator, text_dirs: np.ndarray, family_cos: float,
                     text_alignment: float) -> np.ndarray:
    """(C-1, D) unit class directions: classes of a family share a component (cosine
    ``family_cos`` between two of them), each at cosine ``text_alignment`` with its row of
    ``text_dirs`` (unit text directions, classes in alphabetical order)."""
    n, d = text_dirs.shape
    names = sorted(UCF_CLASSES)
    family = _unit(rng.standard_normal((len(FAMILIES), d)))
    own = _unit(rng.standard_normal((n, d)))
    w = np.stack([np.sqrt(family_cos) * family[_FAMILY_OF[c]] + np.sqrt(1 - family_cos) * own[i]
                  for i, c in enumerate(names)])
    if text_alignment <= 0:
        return _unit(w)
    w = w - (w * text_dirs).sum(1, keepdims=True) * text_dirs          # orthogonal to text
    return text_alignment * text_dirs + np.sqrt(1 - text_alignment ** 2) * _unit(w)


def normal_rows(rng, mu, basis, n_rows, scene_spread, manifold_spread, frame_noise, rho):
    """(n_rows, D) rows of a normal-looking video: mean + scene offset + slow AR(1) walk
    on the manifold ``basis`` (r, D) + white frame noise (norms as named)."""
    from scipy.signal import lfilter

    r, d = basis.shape
    scene = rng.standard_normal(d) * rng.uniform(0.5, 1.5) * scene_spread / np.sqrt(d)
    eps = rng.standard_normal((n_rows, r)) * manifold_spread / np.sqrt(r)
    c = np.sqrt(1 - rho ** 2)
    eps[0] /= c
    z = lfilter([c], [1.0, -rho], eps, axis=0)                      # stationary AR(1)
    noise = rng.standard_normal((n_rows, d)) * frame_noise / np.sqrt(d)
    return mu + scene + z @ basis + noise


def _add(x, intervals, shift):
    for start, end in intervals:
        x[start:end + 1] += shift


def make_hard_store(path: str | Path, model_id: str, *, n_train_normal: int = 200,
                    n_train_abnormal: int = 200, n_test_normal: int = 60,
                    n_test_abnormal: int = 60, n_rows: tuple[int, int] = (100, 400),
                    fps: float = 30.0, strength: float = 4.0, scene_spread: float = 6.0,
                    manifold_spread: float = 6.0, frame_noise: float = 2.0,
                    rank: int = 16, rho: float = 0.98, distractor_rate: float = 0.5,
                    n_distractors: int = 6, distractor_share: tuple = (0.05, 0.3),
                    family_cos: float = 0.5, interval_share: tuple = (0.05, 0.2),
                    text_alignment: float = 0.0, train_intervals: bool = False,
                    dataset: str = "hard-synthetic", seed: int = 0) -> Path:
    """Write the store (atomically; stride 1, train + test splits); train videos carry their
    video label only unless ``train_intervals`` (an oracle's labels). Returns the path."""
    from features.clip_loader import load_clip

    path = Path(path)
    rng = np.random.default_rng(seed)
    clip = load_clip(model_id, device="cpu")
    d = clip.embed_dim
    names = sorted(UCF_CLASSES)
    text = _class_text_embeddings(clip, names)
    mu = text.mean(0) + _unit(rng.standard_normal(d)) * 0.5 * np.linalg.norm(
        text - text.mean(0), axis=1).mean()
    directions = class_directions(rng, _unit(text - mu), family_cos, text_alignment)
    basis = np.linalg.qr(rng.standard_normal((d, rank)))[0].T          # (r, D) orthonormal
    distractors = _unit(rng.standard_normal((n_distractors, d)))
    knobs = dict(strength=strength, scene_spread=scene_spread, manifold_spread=manifold_spread,
                 frame_noise=frame_noise, rank=rank, rho=rho, distractor_rate=distractor_rate,
                 family_cos=family_cos, interval_share=list(interval_share), seed=seed,
                 text_alignment=text_alignment)
    plan = []
    for split, n_nor, n_abn in (("train", n_train_normal, n_train_abnormal),
                                ("test", n_test_normal, n_test_abnormal)):
        plan += [(split, NORMAL_CLASS, i) for i in range(n_nor)]
        plan += [(split, names[i % len(names)], i) for i in range(n_abn)]
    tmp = path.with_name(path.name + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    labels = []
    with h5py.File(tmp, "w") as h5:
        write_file_attrs(h5, schema.file_attrs(
            source="synthetic", model_id=clip.model_id, model_sha256=clip.fingerprint,
            model_revision=clip.revision, embed_dim=d, stride=1, preprocessing="synthetic",
            decoder="synthetic", synthetic=json.dumps(knobs)))
        for split, name, i in plan:
            vid = f"{split}_{name.lower()}_{i:03d}"
            t = int(rng.integers(n_rows[0], n_rows[1] + 1))
            x = normal_rows(rng, mu, basis, t, scene_spread, manifold_spread, frame_noise, rho)
            ivs = []
            if name != NORMAL_CLASS:
                ivs = _intervals(rng, t, interval_share)
                _add(x, ivs, strength * rng.uniform(0.7, 1.3) * directions[names.index(name)])
            if rng.random() < distractor_rate:
                u = distractors[int(rng.integers(n_distractors))]
                _add(x, _intervals(rng, t, distractor_share), strength * rng.uniform(0.7, 1.3) * u)
            frames = np.arange(t, dtype=np.int64)
            write_video(h5, vid, x.astype(np.float16), frames, frames * 1000.0 / fps,
                        schema.video_attrs(source_path=f"synthetic/{vid}.mp4", fps=fps,
                                           n_frames=t, duration_s=t / fps, stride=1,
                                           width=320, height=240, rotation=0))
            keep = ivs if split != "train" or train_intervals else []
            labels.append({"video_id": vid, "split": split, "class_name": name, "intervals": keep})
        put_slots(h5)
    write_labels(tmp, pd.DataFrame(labels), sorted(set(names) | {NORMAL_CLASS}), dataset)
    atomic_replace(tmp, path)
    return path
