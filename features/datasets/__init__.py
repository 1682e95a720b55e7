"""Dataset labels for the feature store (the import of .npy features lives in extract/).

One adapter per dataset reads its official annotation files (``ucf_crime``,
``xd_violence``, ``shanghaitech``, ``csv_manifest``); ``labelling`` matches them to the
store's videos by file stem, checks everything, carves the validation split
(``validation``) and writes the labels.

    label_store("features.h5", "ucf-crime", "UCF_Crimes/Anomaly_Detection_splits")
"""
from .base import Annotations, Entry, video_key
from .labelling import DATASETS, LabelSummary, label_store, plan_labels, read_annotations
from .validation import carve_validation

__all__ = ["Annotations", "DATASETS", "Entry", "LabelSummary", "carve_validation",
           "label_store", "plan_labels", "read_annotations", "video_key"]
