"""Default locations shared by every stage, so later commands find earlier outputs.

Everything lives under one work directory: ``$PIPELINE_WORKDIR`` when set, else
``./pipeline_out`` (relative to where the command runs).

    pipeline_out/
      features.h5            stage one output (extract / import)
      features.failures.csv  videos that could not be extracted
      runs/                  stage two runs (one folder per run) + summary.csv
      scores/                frame scores, metrics.json and plots
      models/tiny-clip/      the offline CLIP used by tests and the demo
"""
from __future__ import annotations

import os
from pathlib import Path


def workdir() -> Path:
    return Path(os.environ.get("PIPELINE_WORKDIR", "pipeline_out"))


def default_features() -> Path:
    return workdir() / "features.h5"


def default_runs() -> Path:
    return workdir() / "runs"


def default_scores() -> Path:
    return workdir() / "scores"


def default_tiny_clip() -> Path:
    return workdir() / "models" / "tiny-clip"
