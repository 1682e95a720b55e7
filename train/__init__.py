"""Stage two: the AnomalyCLIP model parts, losses, window sampling, training runs and Dask orchestration."""
