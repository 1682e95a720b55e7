"""Stage two: AnomalyCLIP model parts, losses, window sampling, runs and Dask orchestration.

Entry points: :func:`train.stage.train` (one run or many, what ``pipeline train`` calls),
:func:`train.run.train_run` (one run), :func:`train.checkpoint.load_run` and
:func:`train.checkpoint.find_best_run` (for scoring).
"""
from .stage import train

__all__ = ["train"]
