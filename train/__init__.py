"""Stage two: AnomalyCLIP model parts, losses, window sampling, runs and Dask orchestration.

Entry points: :func:`train.stage.train` (one run or many, what ``pipeline train`` calls),
:func:`train.run.train_run` (one run); the method is :mod:`train.model`, the run folder's
one owner :mod:`train.rundir` (:func:`train.rundir.load_run`, :func:`train.rundir.find_best_run`
for scoring).
"""
from .stage import train

__all__ = ["train"]
