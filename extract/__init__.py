"""Stage one: videos -> frames (ffmpeg) -> CLIP embeddings -> the HDF5 feature store."""
from .result import ExtractResult
from .stage import extract_videos

__all__ = ["ExtractResult", "extract_videos"]
