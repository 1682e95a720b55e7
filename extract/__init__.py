"""Stage one: videos -> frames (ffmpeg) -> CLIP embeddings -> the HDF5 feature store."""
from .run import extract_videos

__all__ = ["extract_videos"]
