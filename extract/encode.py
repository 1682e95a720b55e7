"""uint8 YUV frames -> CLIP image embeddings, with all the preprocessing done in torch on the
device: YUV -> RGB and CLIP's normalisation as one fused matrix + offset + clamp."""
from __future__ import annotations

import logging
import threading

import numpy as np
import torch

from features.clip_loader import CLIP_MEAN, CLIP_STD, IMAGE_SIZE, LoadedClip

from .colour import Colour, fused_normalisation

log = logging.getLogger("pipeline")


class FrameEncoder:
    """Encode (B, 3, 224, 224) uint8 planar YUV frames of one stream into (B, D) float32
    embeddings.

    ``get_image_features(...).pooler_output``: after the visual projection, not
    L2-normalised. uint8 goes to the device (4x less traffic than float, from pinned host
    buffers on CUDA: :meth:`host_buffer`); there each pixel becomes CLIP's input in a few
    passes (uint8 -> float, 3x3 matrix, offset, clamp). Threads decoding different videos
    share one encoder: the model runs one batch at a time (a lock); on the CPU each thread
    converts its own frames before, in parallel, into buffers it reuses.
    """

    def __init__(self, clip: LoadedClip, batch_size: int):
        self.clip, self.batch_size = clip, batch_size
        self.device = clip.device
        self._lock = threading.Lock()
        self._fused: dict[Colour, tuple[torch.Tensor, ...]] = {}
        self._local = threading.local()      # CPU: each thread's float buffers
        # frames converted at a time: on the CPU a tile (2.4 MB as float) stays in cache
        # across the passes, halving their cost; a GPU takes the whole batch in one go
        self._tile = 4 if self.device.type == "cpu" else 1 << 30

    def host_buffer(self, shape: tuple[int, ...]) -> torch.Tensor:
        """uint8 host memory for decoded frames: pinned when feeding a GPU (the copy to the
        device then runs asynchronously, with no staging copy; torch caches pinned blocks,
        so a buffer freed after one video is handed to the next)."""
        return torch.empty(shape, dtype=torch.uint8, pin_memory=self.device.type == "cuda")

    def _constants(self, colour: Colour) -> tuple[torch.Tensor, ...]:
        if colour not in self._fused:
            a, b, lo, hi = fused_normalisation(colour, CLIP_MEAN, CLIP_STD)
            self._fused[colour] = tuple(
                torch.tensor(v, dtype=torch.float32, device=self.device)
                for v in (a, b.reshape(3, 1), lo.reshape(3, 1), hi.reshape(3, 1)))
        return self._fused[colour]

    def _buffers(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(float YUV of one tile, CLIP's input for ``n`` frames). On the CPU the calling
        thread's own, reused; on a GPU from torch's caching allocator (recycled there)."""
        rows = max(n, self.batch_size)
        shape = (rows, 3, IMAGE_SIZE * IMAGE_SIZE)
        if self.device.type != "cpu":
            return (torch.empty((min(n, self._tile), *shape[1:]), device=self.device),
                    torch.empty((n, *shape[1:]), device=self.device))
        work = getattr(self._local, "work", None)
        if work is None or work[1].shape[0] < n:
            work = self._local.work = (torch.empty((self._tile, *shape[1:])),
                                       torch.empty(shape))
        return work[0], work[1][:n]

    @torch.inference_mode()
    def pixels(self, frames: torch.Tensor, colour: Colour) -> torch.Tensor:
        """(B, 3, 224, 224) uint8 YUV on the device -> CLIP's (B, 3, 224, 224) input, in the
        model's dtype. On the CPU it lives in the calling thread's buffer until its next
        call, and is made a few frames at a time so the passes over a pixel hit the cache."""
        a, b, lo, hi = self._constants(colour)
        n = frames.shape[0]
        yuv, rgb = self._buffers(n)
        frames = frames.reshape(n, 3, -1)
        for start in range(0, n, self._tile):
            k = min(self._tile, n - start)
            tile, out = yuv[:k], rgb[start:start + k]
            tile.copy_(frames[start:start + k])           # uint8 -> float32
            torch.matmul(a, tile, out=out)                # (3, 3) @ (k, 3, H*W)
            out.add_(b)
            torch.maximum(out, lo, out=out)               # swscale's clip to 0..255,
            torch.minimum(out, hi, out=out)               # normalised
        return rgb.view(n, 3, IMAGE_SIZE, IMAGE_SIZE).to(self.clip.dtype)

    @torch.inference_mode()
    def __call__(self, frames: torch.Tensor | np.ndarray, colour: Colour = Colour()) -> np.ndarray:
        x = torch.as_tensor(frames)
        if self.device.type == "cpu":       # convert outside the lock, in this thread
            pixels = self.pixels(x, colour)
            with self._lock:
                return self._embed(pixels)
        with self._lock:                    # GPU: one stream, work queued in order
            return self._embed(self.pixels(x.to(self.device, non_blocking=True), colour))

    def _embed(self, pixels: torch.Tensor) -> np.ndarray:
        out = self.clip.model.get_image_features(pixel_values=pixels)
        emb = out.pooler_output if hasattr(out, "pooler_output") else out   # (B, D)
        return emb.float().cpu().numpy()


def default_batch_size(device: torch.device) -> int:
    return 256 if device.type == "cuda" else 64


def fit_batch_size(encoder: FrameEncoder, start: int) -> int:
    """On CUDA, halve the batch until a full batch runs without running out of memory; the
    encoder keeps the batch that fits."""
    if encoder.device.type != "cuda":
        return start
    batch = start
    while batch >= 1:
        try:
            encoder(torch.zeros((batch, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8))
            torch.cuda.synchronize(encoder.device)
            encoder.batch_size = batch
            return batch
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            log.warning("batch %d does not fit in GPU memory; trying %d", batch, batch // 2)
            batch //= 2
    raise RuntimeError("not even one frame fits in GPU memory")
