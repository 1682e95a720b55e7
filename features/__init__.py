"""The shared language of the pipeline: the HDF5 feature store, labels and the CLIP loader."""
from importlib.metadata import PackageNotFoundError, version

from .errors import UserError
from .labels import write_labels
from .store import FeatureStore, frame_labels, open_store

try:                                        # pyproject's version, the one place it is written
    __version__ = version("anomalyclip-pipeline")
except PackageNotFoundError:                # a bare checkout, not installed
    __version__ = "unknown"

__all__ = ["FeatureStore", "UserError", "frame_labels", "open_store", "write_labels", "__version__"]
