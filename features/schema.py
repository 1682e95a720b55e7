"""The names the feature file's writers and readers share, declared once.

Every module that writes or reads a feature file imports these instead of retyping them:
the format tag, which attributes are labels (and so live in the label slots, see
``features/labels.py``), and how h5py attribute values become plain Python values.
"""
from __future__ import annotations

import h5py
import numpy as np

FORMAT = "anomalyclip-features"
# 2: labels live in /labels (two checksummed slots), not in the video groups' attrs
FORMAT_VERSION = 2
NORMAL_CLASS = "Normal"
SPLITS = ("train", "val", "test")

# per-video label attrs (``intervals`` is a dataset beside them in format 1)
VIDEO_LABEL_ATTRS = ("split", "class_name", "label", "class_names_all")
# file attrs written by labelling
FILE_LABEL_ATTRS = ("dataset", "class_names", "normal_class", "labels_source", "val_fraction",
                    "val_seed", "val_carved", "labelled_utc")


def attr_value(value):
    """Convert numpy scalars / bytes from h5py attrs to plain Python values."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_attrs(obj: h5py.HLObject) -> dict:
    return {k: attr_value(v) for k, v in obj.attrs.items()}
