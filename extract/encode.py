"""uint8 frames -> CLIP image embeddings, with the preprocessing done in torch on the device."""
from __future__ import annotations

import logging

import numpy as np
import torch

from features.clip_loader import CLIP_MEAN, CLIP_STD, IMAGE_SIZE, LoadedClip

log = logging.getLogger("pipeline")


class FrameEncoder:
    """Encode (B, 224, 224, 3) uint8 RGB frames into (B, D) float32 embeddings.

    ``get_image_features(...).pooler_output``: after the visual projection, not
    L2-normalised. uint8 goes to the device (4x less traffic than float, from pinned memory
    on CUDA) and is converted and normalised there.
    """

    def __init__(self, clip: LoadedClip, batch_size: int):
        self.clip, self.batch_size = clip, batch_size
        self.device = clip.device
        mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)
        # (x / 255 - mean) / std  ==  x * scale + shift
        self._scale = 1.0 / (255.0 * std)
        self._shift = -mean / std

    def to_device(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(frames)
        if self.device.type == "cuda":
            return x.pin_memory().to(self.device, non_blocking=True)
        return x

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        x = self.to_device(frames).permute(0, 3, 1, 2).float()      # (B, 3, 224, 224)
        x = (x * self._scale + self._shift).to(self.clip.dtype)
        out = self.clip.model.get_image_features(pixel_values=x)
        emb = out.pooler_output if hasattr(out, "pooler_output") else out   # (B, D)
        return emb.float().cpu().numpy()


def default_batch_size(device: torch.device) -> int:
    return 256 if device.type == "cuda" else 64


def fit_batch_size(encoder: FrameEncoder, start: int) -> int:
    """On CUDA, halve the batch until a full batch runs without running out of memory."""
    if encoder.device.type != "cuda":
        return start
    batch = start
    while batch >= 1:
        try:
            encoder(np.zeros((batch, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8))
            torch.cuda.synchronize()
            return batch
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            log.warning("batch %d does not fit in GPU memory; trying %d", batch, batch // 2)
            batch //= 2
    raise RuntimeError("not even one frame fits in GPU memory")
