"""The method (docs/method.md), one small module per part: the normal centroid
(``centroid``), the CoOp prompt learner over the frozen CLIP text tower (``prompts``), the
class directions (``directions``), the selector S (``selector``), the axial temporal model
(``temporal``, on the reversible coupling of ``reversible``), the whole model
(``model``), the losses (``losses``) and whole-video inference (``inference``).

This is the only part of ``train/`` that scoring (``evaluate/``) imports, with the run
folder's owner ``train/rundir.py``; the run engine (config, windows, loop, resume, Dask)
lives beside it in ``train/``.
"""
from .centroid import class_contrasts, normal_centroid
from .directions import data_shift, text_directions
from .inference import predict_video, predict_videos
from .losses import TERMS, anomaly_clip_loss
from .model import FROZEN_TOWER, AnomalyCLIP
from .prompts import PromptLearner, load_text_tower

__all__ = ["FROZEN_TOWER", "TERMS", "AnomalyCLIP", "PromptLearner",
           "anomaly_clip_loss", "class_contrasts", "data_shift", "load_text_tower",
           "normal_centroid", "predict_video", "predict_videos", "text_directions"]
