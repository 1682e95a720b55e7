"""Stage one: videos -> frames (ffmpeg) -> CLIP embeddings -> the HDF5 feature store."""
