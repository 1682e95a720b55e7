"""Default locations shared by every stage, so later commands find earlier outputs.

Everything lives under one work directory: ``$PIPELINE_WORKDIR`` when set, else
``./pipeline_out`` (relative to where the command runs).

    pipeline_out/
      features.h5            stage one output (extract / import)
      features.failures.csv  videos that could not be extracted
      runs/                  stage two runs (one folder per run) + summary.csv
      scores/<split>/        frame scores, metrics.json and plots of a split
      scores/videos/<name>/  the same for one new video (`pipeline score --video`)
      models/tiny-clip/      the offline CLIP used by tests
      demo/                  `pipeline demo`, self-contained (its own models/, runs/, ...)
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UserError

ENV = "PIPELINE_WORKDIR"


def workdir() -> Path:
    """``$PIPELINE_WORKDIR`` (empty = unset) or ``pipeline_out``; a UserError when it names
    something that is not a folder, before any command reads or writes under it."""
    value = os.environ.get(ENV, "")
    path = Path(value) if value.strip() else Path("pipeline_out")
    if value.strip() and path.exists() and not path.is_dir():
        raise UserError(f"{ENV}={value}: is a file, not a folder; point {ENV} to a folder "
                        "(it is created when missing) or unset it to use ./pipeline_out")
    return path


def default_features() -> Path:
    return workdir() / "features.h5"


def default_runs() -> Path:
    return workdir() / "runs"


def default_scores() -> Path:
    return workdir() / "scores"


def default_video_scores(video_name: str) -> Path:
    """Where ``score --video NAME.mp4`` writes: never a split's folder (scores/test ...)."""
    return default_scores() / "videos" / video_name


def writable_dir(path: str | Path, option: str | None) -> Path:
    """Create the folder ``path`` (and its parents) and check a file can be written in it.

    ``option`` names the setting ``path`` came from (``--out``, ``--workdir``), None when it
    is a default under the work directory. A path that is a file, lies under a file, or
    cannot be written is one UserError naming the setting to change.
    """
    path = Path(path)
    where = f"{option} {path}" if option else f"{path} (under {ENV} or ./pipeline_out)"
    fix = f"pass another {option}" if option else f"point {ENV} to a writable folder"
    if path.exists() and not path.is_dir():
        raise UserError(f"{where}: is a file, not a folder; {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise UserError(f"{where}: cannot write there ({err.strerror or err}); {fix}") from None
    return path
