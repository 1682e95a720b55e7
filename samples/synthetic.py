"""A labelled synthetic feature store with known anomalies, for tests, benchmarks and demos.

Every video is a random walk around a scene: ``x_t = mu + scene + noise_t`` (AR(1) noise,
so neighbouring frames look alike, as consecutive CLIP frames do). Each video has its own
scene offset, or, with ``n_scenes``, one of that many shared ones (cameras that film both
normal and abnormal videos, so a scene says nothing about the label). An abnormal video of
class ``c`` adds ``strength * u`` inside its anomalous intervals, where ``u`` is one of the
class's ``directions_per_class`` directions (variants of one event family, each at cosine
``family_cos`` with the family direction ``f_c``). With ``align_to_text=True`` (default)
``f_c`` lies at cosine ``text_cos`` (default 1: exactly along) with the direction from the
scene mean to the CLIP text embedding of the class name, the property of CLIP space
AnomalyCLIP builds on ("anomalous frames move towards the text of their class"); with
``False`` it is a random unit vector (text-blind). ``distractor_fraction`` of the videos
(normal and abnormal) carry a normal event of the same strength, covering a
``distractor_share`` of the video, along one of four distractor directions, so "far from
the normal mean" is not the same as anomalous. Train abnormal videos carry
only the video-level label unless ``train_intervals=True``; val/test abnormal videos carry
their intervals.

The defaults are the friendly case (one direction per class exactly along its text, long
intervals, no distractors); :data:`REGIMES` names the two benchmark regimes, which differ
only in whether the event families follow the class text.

The file has the same schema and label contract as an extracted store (its attributes come
from the builders of ``features/schema.py``), including ``model_id`` / ``model_sha256`` /
``embed_dim`` of the CLIP whose text tower stage two loads, so every later stage runs on it
unchanged.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import pandas as pd

from features import schema
from features.datasets import ucf_crime
from features.labels import put_slots, write_labels
from features.safe_write import atomic_replace
from features.schema import NORMAL_CLASS
from features.store import write_file_attrs, write_video

DEFAULT_CLASSES = ("Arson", "Fighting", "Road_Accidents")
# The 13 UCF-Crime anomaly classes (as a custom dataset would name them).
UCF_CLASSES = tuple(ucf_crime.ANOMALY_CLASSES)

# The benchmark regimes: short anomalies (5-30% of a video), three variants per event
# family, distractor events covering 20-70% of 90% of the videos (so distance from the
# normal mean finds them as often as anomalies), normal variation (16 shared scenes, frame
# noise) that buries a shift unless its direction is known. Text-aligned: each variant at
# cosine ~0.6 with its class text (family along the text at 0.75, variants at 0.8 around
# it); text-blind: the same geometry around a random family direction.
_HARD = dict(classes=UCF_CLASSES, directions_per_class=3, family_cos=0.8,
             distractor_fraction=0.9, distractor_share=(0.2, 0.7),
             interval_share=(0.05, 0.3), strength=3.0,
             scene_spread=6.0, frame_noise=3.0, n_scenes=16)
REGIMES = {
    "text-aligned": dict(_HARD, align_to_text=True, text_cos=0.75),
    "text-blind": dict(_HARD, align_to_text=False),
}


def _class_text_embeddings(clip, class_names: Sequence[str]) -> np.ndarray:
    """(C, D) CLIP text embeddings of ``"<class name>."`` (underscores read as spaces)."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(_local_or_id(clip.model_id)))
    prompts = [name.replace("_", " ") + "." for name in class_names]
    batch = tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = clip.model.get_text_features(input_ids=batch.input_ids.to(clip.device),
                                           attention_mask=batch.attention_mask.to(clip.device))
    emb = out.pooler_output if hasattr(out, "pooler_output") else out
    return emb.float().cpu().numpy()


def _local_or_id(model_id: str):
    p = Path(model_id).expanduser()
    return p if p.exists() else model_id


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _around(rng: np.random.Generator, axis: np.ndarray, cos: float, n: int) -> np.ndarray:
    """(n, D) unit vectors at cosine ``cos`` with the unit vector ``axis`` (random otherwise)."""
    r = rng.standard_normal((n, axis.shape[0]))
    r = _unit(r - np.outer(r @ axis, axis))                  # orthogonal to axis
    return cos * axis + np.sqrt(1 - cos ** 2) * r


def _intervals(rng: np.random.Generator, n_frames: int,
               share: tuple[float, float] = (0.2, 0.45)) -> list[tuple[int, int]]:
    """One or two anomalous intervals covering a ``share`` (min, max) of the video."""
    k = 1 if n_frames < 120 or rng.random() < 0.6 else 2
    total = int(n_frames * rng.uniform(*share))
    out = []
    for j in range(k):
        length = max(total // k, 2)
        lo, hi = j * n_frames // k, (j + 1) * n_frames // k
        start = int(rng.integers(lo, max(hi - length, lo + 1)))
        out.append((start, min(start + length - 1, n_frames - 1)))
    return out


def _video_rows(rng, mu, n_rows, scene_spread, frame_noise, rho, scene=None) -> np.ndarray:
    """(n_rows, D) normal-looking rows: scene mean plus stationary AR(1) frame noise; the
    scene offset is drawn here unless given."""
    from scipy.signal import lfilter

    d = mu.shape[0]
    if scene is None:
        scene = rng.standard_normal(d) * scene_spread / np.sqrt(d)
    eps = rng.standard_normal((n_rows, d)) * frame_noise / np.sqrt(d)
    c = np.sqrt(1 - rho ** 2)
    eps[0] /= c                                 # noise[0] = eps[0]: already stationary
    noise = lfilter([c], [1.0, -rho], eps, axis=0)   # noise[t] = rho noise[t-1] + c eps[t]
    return mu + scene + noise


def _add_event(x: np.ndarray, frame_index: np.ndarray, intervals, shift: np.ndarray) -> None:
    """Add ``shift`` (D,) to the rows of ``x`` whose native frame lies in ``intervals``."""
    for start, end in intervals:
        x[(frame_index >= start) & (frame_index <= end)] += shift


def make_synthetic_store(path: str | Path, model_id: str, *,
                         classes: Sequence[str] = DEFAULT_CLASSES,
                         n_train_normal: int = 24, n_train_abnormal: int = 24,
                         n_val_normal: int = 0, n_val_abnormal: int = 0,
                         n_test_normal: int = 8, n_test_abnormal: int = 8,
                         n_rows: tuple[int, int] = (48, 160), stride: int = 1,
                         fps: float = 30.0, strength: float = 4.0, scene_spread: float = 1.5,
                         n_scenes: int | None = None,
                         frame_noise: float = 1.0, rho: float = 0.9,
                         align_to_text: bool = True, text_cos: float = 1.0,
                         directions_per_class: int = 1, family_cos: float = 1.0,
                         distractor_fraction: float = 0.0,
                         distractor_share: tuple[float, float] = (0.2, 0.45),
                         interval_share: tuple[float, float] = (0.2, 0.45),
                         train_intervals: bool = False, dataset: str = "synthetic",
                         seed: int = 0) -> Path:
    """Write a labelled synthetic store to ``path`` (atomically) and return the path.

    ``classes`` are the anomaly classes (``Normal`` is added); ``n_rows`` the (min, max)
    number of stored rows per video; norms of the scene offset, frame noise and anomaly
    shift are ``scene_spread``, ``frame_noise`` and ``strength`` (CLIP features have norm
    ~22). Abnormal videos cycle through the classes; each draws one of its class's
    ``directions_per_class`` directions. ``text_cos``, ``family_cos`` (module docstring)
    draw random numbers only below 1, ``distractor_fraction`` only above 0, ``n_scenes``
    only when set: the defaults give the same store as before they existed."""
    from features.clip_loader import load_clip

    path = Path(path)
    rng = np.random.default_rng(seed)
    clip = load_clip(model_id, device="cpu")
    class_names = sorted(set(classes) | {NORMAL_CLASS})
    anomaly_classes = [c for c in class_names if c != NORMAL_CLASS]
    world = _draw_world(rng, _class_text_embeddings(clip, anomaly_classes), align_to_text,
                        text_cos, directions_per_class, family_cos, distractor_fraction,
                        n_scenes, scene_spread)
    plan = _plan(anomaly_classes, {"train": (n_train_normal, n_train_abnormal),
                                   "val": (n_val_normal, n_val_abnormal),
                                   "test": (n_test_normal, n_test_abnormal)})
    video = _VideoRecipe(anomaly_classes, n_rows, stride, fps, strength, scene_spread,
                         frame_noise, rho, distractor_fraction, distractor_share,
                         interval_share, train_intervals)
    recipe = {"seed": seed, "strength": strength, "align_to_text": align_to_text,
              "text_cos": text_cos, "directions_per_class": directions_per_class,
              "family_cos": family_cos, "distractor_fraction": distractor_fraction,
              "distractor_share": list(distractor_share), "scene_spread": scene_spread,
              "frame_noise": frame_noise, "n_scenes": n_scenes,
              "interval_share": list(interval_share)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(tmp, "w") as h5:
        write_file_attrs(h5, schema.file_attrs(
            source="synthetic", model_id=clip.model_id, model_sha256=clip.fingerprint,
            model_revision=clip.revision, embed_dim=clip.embed_dim, stride=stride,
            preprocessing="synthetic", decoder="synthetic", synthetic=json.dumps(recipe)))
        labels = [_write_video(h5, rng, world, video, *item) for item in plan]
        put_slots(h5)
    write_labels(tmp, pd.DataFrame(labels), class_names, dataset)
    atomic_replace(tmp, path)
    return path


def _plan(anomaly_classes: list[str], counts: dict) -> list[tuple[str, str, int]]:
    """(split, class, number) of every video: per split its normal videos, then its
    abnormal ones cycling through the classes (``counts``: split -> (normal, abnormal))."""
    plan = []
    for split, (n_nor, n_abn) in counts.items():
        plan += [(split, NORMAL_CLASS, i) for i in range(n_nor)]
        plan += [(split, anomaly_classes[i % len(anomaly_classes)], i) for i in range(n_abn)]
    return plan


@dataclass
class _World:
    """What every video of one store shares: the scene mean, the class directions."""
    mu: np.ndarray                      # (D,) the normal scene mean
    variants: np.ndarray                # (C-1, K, D) directions of each class family
    distractors: np.ndarray | None      # (4, D) directions of normal events, or None
    scenes: np.ndarray | None           # (n_scenes, D) scene offsets, or None


@dataclass
class _VideoRecipe:
    """The per-video settings of :func:`make_synthetic_store`."""
    anomaly_classes: list[str]
    n_rows: tuple[int, int]
    stride: int
    fps: float
    strength: float
    scene_spread: float
    frame_noise: float
    rho: float
    distractor_fraction: float
    distractor_share: tuple[float, float]
    interval_share: tuple[float, float]
    train_intervals: bool


def _draw_world(rng, text: np.ndarray, align_to_text: bool, text_cos: float,
                directions_per_class: int, family_cos: float, distractor_fraction: float,
                n_scenes: int | None, scene_spread: float) -> _World:
    """The store's scene mean and directions from the class texts ``text`` (C-1, D)."""
    d = text.shape[1]
    # Scene mean near the texts' mean, so each class text is its own direction from it.
    mu = text.mean(0) + _unit(rng.standard_normal(d)) * 0.5 * np.linalg.norm(
        text - text.mean(0), axis=1).mean()
    if align_to_text:
        directions = _unit(text - mu)                                       # (C-1, D)
        if text_cos < 1:
            directions = np.stack([_around(rng, t, text_cos, 1)[0] for t in directions])
    else:
        directions = _unit(rng.standard_normal((len(text), d)))
    # variants (C-1, K, D) of each family; the family itself when K = 1 and family_cos = 1
    variants = directions[:, None, :]
    if directions_per_class > 1 or family_cos < 1:
        variants = np.stack([_around(rng, f, family_cos, directions_per_class)
                             for f in directions])
    distractors = _unit(rng.standard_normal((4, d))) if distractor_fraction > 0 else None
    scenes = (rng.standard_normal((n_scenes, d)) * scene_spread / np.sqrt(d)
              if n_scenes else None)
    return _World(mu, variants, distractors, scenes)


def _write_video(h5, rng, world: _World, r: _VideoRecipe, split: str, class_name: str,
                 i: int) -> dict:
    """Draw one video's rows and events, write it into ``h5``; its label row."""
    video_id = f"{split}_{class_name.lower()}_{i:03d}"
    rows = int(rng.integers(r.n_rows[0], r.n_rows[1] + 1))
    n_frames = (rows - 1) * r.stride + 1 + int(rng.integers(0, r.stride))
    scene = world.scenes[int(rng.integers(len(world.scenes)))] \
        if world.scenes is not None else None
    x = _video_rows(rng, world.mu, rows, r.scene_spread, r.frame_noise, r.rho, scene)
    frame_index = np.arange(rows, dtype=np.int64) * r.stride
    ivs = []
    if class_name != NORMAL_CLASS:
        ivs = _intervals(rng, n_frames, r.interval_share)
        family = world.variants[r.anomaly_classes.index(class_name)]
        u = family[int(rng.integers(len(family)))] if len(family) > 1 else family[0]
        _add_event(x, frame_index, ivs, r.strength * rng.uniform(0.7, 1.3) * u)
    if world.distractors is not None and rng.random() < r.distractor_fraction:
        event = _intervals(rng, n_frames, r.distractor_share)
        u = world.distractors[int(rng.integers(len(world.distractors)))]
        _add_event(x, frame_index, event, r.strength * rng.uniform(0.7, 1.3) * u)
    write_video(h5, video_id, x.astype(np.float16), frame_index, frame_index * 1000.0 / r.fps,
                schema.video_attrs(source_path=f"synthetic/{video_id}.mp4", fps=r.fps,
                                   n_frames=n_frames, duration_s=n_frames / r.fps,
                                   stride=r.stride, width=320, height=240, rotation=0))
    keep = ivs if (split != "train" or r.train_intervals) else []
    return {"video_id": video_id, "split": split, "class_name": class_name, "intervals": keep}
