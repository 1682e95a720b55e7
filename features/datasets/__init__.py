"""Dataset labels for the feature store, and import of features extracted elsewhere.

One adapter per dataset reads its official annotation files (``ucf_crime``,
``xd_violence``, ``shanghaitech``, ``csv_manifest``); ``labelling`` matches them to the
store's videos by file stem, checks everything, carves the validation split
(``validation``) and writes the labels; ``importer`` turns a folder of ``.npy`` features
into a store.

    label_store("features.h5", "ucf-crime", "UCF_Crimes/Anomaly_Detection_splits")
    import_features("feats/", "xd-violence", "xd_lists/", model="openai/clip-vit-base-patch16")
"""
from .base import Annotations, Entry, video_key
from .importer import import_features, scan_features
from .labelling import DATASETS, LabelSummary, label_store, plan_labels, read_annotations
from .validation import carve_validation

__all__ = ["Annotations", "DATASETS", "Entry", "LabelSummary", "carve_validation",
           "import_features", "label_store", "plan_labels", "read_annotations", "scan_features",
           "video_key"]
