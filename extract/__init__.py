"""Stage one: videos -> frames (ffmpeg) -> CLIP embeddings -> the HDF5 feature store; and the
second way in, features extracted elsewhere (``.npy``, :func:`import_features`)."""
from .display import rgb_frames
from .ffmpeg_bin import ffmpeg_exe
from .importer import import_features, scan_features
from .result import ExtractResult
from .stage import extract_videos

__all__ = ["ExtractResult", "extract_videos", "ffmpeg_exe", "import_features", "rgb_frames",
           "scan_features"]
