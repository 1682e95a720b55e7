"""The feature file's schema, declared once: every name a writer may put in a feature file.

Every module that writes or reads a feature file takes its names from here instead of
retyping them: the file attributes, the per-video attributes and datasets, and the label
fields (which live in the label slots, ``features/labels.py``, and which readers see as
attributes). Each name comes with the one line that documents it; the table of
the file (``pipeline info --schema`` prints it) is generated from these declarations,
and a test checks every writer (extract, import, labelling, the merge, the synthetic
store) against them.

Writers build their attribute dicts with :func:`file_attrs` and :func:`video_attrs`, which
refuse a name that is not declared here. A label field added here is stored, carried
through every rewrite of the file (merge, import) and shown to readers without another
line of code.
"""
from __future__ import annotations

from datetime import datetime, timezone

import h5py
import numpy as np

FORMAT = "anomalyclip-features"
# 2: labels live in /labels (two checksummed slots), not in the video groups' attrs
FORMAT_VERSION = 2
NORMAL_CLASS = "Normal"
SPLITS = ("train", "val", "test")
EMBED_DTYPE = "float16"
# the video files stage one takes; a video's id is its file name without one of these (a
# manifest's ``shop/cam1.mts`` names the video extraction stored as ``cam1``)
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
    ".mts", ".m2ts", ".3gp", ".ogv", ".asf", ".vob", ".dv", ".mxf", ".y4m"})
DEFAULT_FPS = 30.0       # frame rate assumed where none is known (imported .npy features)

# ------------------------------------------------------------------ attributes of "/"
FILE_ATTRS = {
    "format": f"always `{FORMAT}`: marks a feature file of this tool",
    "format_version": "2: labels in /labels (slots); 1: labels as attrs of the video groups",
    "dtype": f"dtype of every embeddings dataset ({EMBED_DTYPE})",
    "source": "where the embeddings come from: extracted, imported or synthetic",
    "model_id": "the CLIP that made the embeddings: a hub id or an absolute local folder",
    "model_sha256": "sha256 of that CLIP's weights (empty when an imported model did not load)",
    "model_revision": "the hub revision (commit) of that CLIP, when known",
    "embed_dim": "embedding width D (512 for ViT-B/16)",
    "stride": "every stride-th native frame has a row (1 = every frame)",
    "preprocessing": "how frames became CLIP input: decoder output, resize, crop, colour",
    "decoder": "the ffmpeg binary that decoded (each video's `decoder` says cpu or nvdec)",
    "encoder_dtype": "dtype the image encoder ran in (float32 on CPU, float16 on CUDA)",
    "batch_size": "frames per image-encoder batch",
    "device": "device type the image encoder ran on (cpu, cuda)",
    "package_version": "version of this tool that wrote the file",
    "created_utc": "when the file was first written (UTC, ISO 8601)",
    "updated_utc": "when videos were last added to it (UTC, ISO 8601)",
    "fps": "(import) frame rate assumed for every video's timestamps (`--fps`)",
    "fps_assumed": "(import) true: fps was given, not read from the videos",
    "imported_from": "(import) the `--features-dir` the .npy files came from",
    "crop": "(import) `--crop`: mean, all or a crop number",
    "source_crops": "(import) crops per row in the .npy files",
    "n_crops": "(import --crop all) crops kept per row: embeddings are (T, n_crops, D)",
    "synthetic": "(synthetic stores, tests and benchmarks) the generator's settings, JSON",
}

# --------------------------------------------------------- attributes of /videos/<video_id>
VIDEO_ATTRS = {
    "video_id": "the video's id (the group's name): its file name without extension",
    "source_path": "its source file relative to `--videos` (import: the .npy file)",
    "source_root": "the `--videos` folder that path is relative to (absolute)",
    "source_size": "size of the source file in bytes when it was extracted",
    "source_mtime_ns": "modification time of the source file (ns) when it was extracted",
    "fps": "average frame rate from the container header (import: assumed, `fps_assumed`)",
    "fps_assumed": "(import) true: fps was given with `--fps`",
    "n_frames": "native frames of the video (import: rows x stride)",
    "n_rows": "rows stored: ceil(n_frames / stride)",
    "duration_s": "container duration in seconds (0 when unknown)",
    "width": "coded width in pixels",
    "height": "coded height in pixels",
    "display_width": "width as shown: pixel aspect and rotation applied",
    "display_height": "height as shown: pixel aspect and rotation applied",
    "sar": "sample (pixel) aspect ratio, 1.0 = square pixels",
    "rotation": "display rotation in degrees (0, 90, 180, 270), applied before the resize",
    "codec": "the video stream's codec (h264, mpeg4, ...)",
    "has_audio": "whether the file also has an audio stream",
    "stride": "every stride-th native frame has a row",
    "decoder": "the decoder that made the rows: cpu or nvdec",
    "decoder_fallback": "why NVDEC was not used when asked for (empty otherwise)",
    "color_matrix": "YUV -> RGB matrix the stream declares (bt601 when it declares none)",
    "color_range": "the stream's YUV range: limited or full",
    "source_crops": "(import) crops per row in the video's .npy file(s)",
    "rows_crc32": "JSON {dataset: crc32 of its rows as stored}, written with them; checked "
                  "on every whole read and by `pipeline info --verify`",
    "complete": "true once every row is written; readers ignore groups without it",
}

# ---------------------------------------------------------- datasets of /videos/<video_id>
VIDEO_DATASETS = {
    "embeddings": "(T, D) float16 CLIP image embeddings, not normalised; chunks of 64 rows",
    "frame_index": "(T,) int64: native frame number of each row",
    "timestamps_ms": "(T,) float64: presentation time of each row in ms",
}

# ------------------------------------------- labels: JSON in /labels/slot0, slot1
# file-level label fields; readers see them among the file's attrs
FILE_LABEL_FIELDS = {
    "dataset": "annotation format the labels were read in (ucf-crime, csv, ...)",
    "class_names": "every class, Normal included, sorted (a JSON list as an attr)",
    "normal_class": f"name of the normal class ({NORMAL_CLASS})",
    "labels_source": "the annotations file or folder the labels were read from",
    "val_fraction": "share of each training class carved out as split=val",
    "val_seed": "seed of that validation draw (`--val-seed`)",
    "val_carved": "true when labelling drew the val split (false: the annotations had one)",
    "labelled_utc": "when the labels were written (UTC, ISO 8601)",
}
# per-video label fields readers see among the video's attrs (video_attrs, metadata)
VIDEO_LABEL_ATTRS = {
    "split": "train, val or test",
    "class_name": f"the class the video trains with: {NORMAL_CLASS} or an anomaly class",
    "label": f"1 for an anomaly class, 0 for {NORMAL_CLASS} (derived from class_name)",
    "class_names_all": "every class of a multi-label video, JSON list, class_name first",
}
# per-video label fields kept beside those, read through their own accessors
LABEL_ENTRY_FIELDS = {
    "intervals": "anomalous native frames, inclusive [start, end] pairs (`intervals()`)",
    "n_frames": "the frame count the intervals were checked against (stale when it changes)",
    "source_path": "the source file the entry was labelled against (stale when it changes)",
    "source_root": "the folder of that source file, when known",
}
# attrs a reader derives instead of reading them from a stored field
DERIVED_LABEL_ATTRS = ("label",)


class UndeclaredAttr(KeyError):
    """A writer tried to write a name this module does not declare: declare it (and its
    one-line description) in features/schema.py first."""


def _checked(values: dict, declared: dict, kind: str) -> dict:
    unknown = [k for k in values if k not in declared]
    if unknown:
        raise UndeclaredAttr(f"{', '.join(unknown)}: not a declared {kind}; declare it in "
                             "features/schema.py")
    return dict(values)


def utc_now() -> str:
    """Now, UTC, ISO 8601 to the second: every time stamp this tool writes."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def file_attrs(*, source: str, model_id: str, model_sha256: str, model_revision: str,
               embed_dim: int, stride: int, preprocessing: str, decoder: str,
               **more) -> dict:
    """The attrs of a new feature file: what every source records (model, width, stride,
    how frames were made, the tool's version, the time), plus ``more`` (declared names)."""
    from . import __version__

    return _checked({"source": source, "model_id": model_id, "model_sha256": model_sha256,
                     "model_revision": model_revision, "embed_dim": int(embed_dim),
                     "stride": int(stride), "preprocessing": preprocessing, "decoder": decoder,
                     "package_version": __version__, "created_utc": utc_now(), **more},
                    FILE_ATTRS, "file attribute")


def video_attrs(**values) -> dict:
    """A video group's attrs; every name must be declared in :data:`VIDEO_ATTRS`."""
    return _checked(values, VIDEO_ATTRS, "video attribute")


def label_attrs(**values) -> dict:
    """File-level label fields; every name must be declared in :data:`FILE_LABEL_FIELDS`."""
    return _checked(values, FILE_LABEL_FIELDS, "label field")


def video_label_fields() -> tuple[str, ...]:
    """Names a label entry stores for a video (read now, so a field declared later counts)."""
    return tuple(k for k in (*VIDEO_LABEL_ATTRS, *LABEL_ENTRY_FIELDS)
                 if k not in DERIVED_LABEL_ATTRS)


def attr_value(value):
    """Convert numpy scalars / bytes from h5py attrs to plain Python values."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_attrs(obj: h5py.HLObject) -> dict:
    return {k: attr_value(v) for k, v in obj.attrs.items()}


def markdown() -> str:
    """The table (docs/feature-file.md) of every name in a feature file, from the declarations."""
    sections = [("`/` attribute", FILE_ATTRS), ("`/videos/<video_id>` attribute", VIDEO_ATTRS),
                ("`/videos/<video_id>` dataset", VIDEO_DATASETS),
                ("label, file level", FILE_LABEL_FIELDS),
                ("label, per video (among its attrs)", VIDEO_LABEL_ATTRS),
                ("label, per video (own accessor)", LABEL_ENTRY_FIELDS)]
    lines = ["| where | name | what |", "| --- | --- | --- |"]
    for where, table in sections:
        lines += [f"| {where} | `{name}` | {about} |" for name, about in table.items()]
    return "\n".join(lines)
