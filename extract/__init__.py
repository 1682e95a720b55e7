"""Stage one: videos -> frames (ffmpeg) -> CLIP embeddings -> the HDF5 feature store."""
from .display import rgb_frames
from .ffmpeg_bin import ffmpeg_exe
from .result import ExtractResult
from .stage import extract_videos

__all__ = ["ExtractResult", "extract_videos", "ffmpeg_exe", "rgb_frames"]
