"""The shared language of the pipeline: the HDF5 feature store, labels and the CLIP loader."""
from .errors import UserError
from .store import FeatureStore, frame_labels, open_store, write_labels

__version__ = "0.1.0"

__all__ = ["FeatureStore", "UserError", "frame_labels", "open_store", "write_labels", "__version__"]
