"""Which devices encode, and which encoder each video goes to: one encoder per GPU.

``--device auto`` (or ``cuda``) takes every visible GPU, ``cuda:1`` one of them,
``cuda:0,cuda:2`` a list; without a GPU, ``auto`` is the CPU. Each video is encoded whole
on one device (its numbers never depend on where its neighbours went), the one with the
fewest videos in flight when it starts.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

from features.clip_loader import resolve_device
from features.errors import UserError

from .encode import FrameEncoder


def encoder_devices(spec: str = "auto") -> list[torch.device]:
    """The devices ``spec`` names (see the module docstring), each checked to exist."""
    spec = spec.strip()
    if spec in ("auto", "cuda"):
        if torch.cuda.is_available():
            return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        return [resolve_device(spec)]          # auto: cpu; cuda: one-line error
    devices = [resolve_device(part.strip()) for part in spec.split(",")]
    for d in devices:
        if d.type == "cuda" and (d.index or 0) >= torch.cuda.device_count():
            raise UserError(f"--device {spec}: {d} does not exist here "
                            f"({torch.cuda.device_count()} GPUs visible)")
    if len(set(devices)) != len(devices):
        raise UserError(f"--device {spec}: a device is named twice")
    return devices


class EncoderPool:
    """Lends each video the encoder with the fewest videos in flight (ties: the first)."""

    def __init__(self, encoders: Sequence[FrameEncoder]):
        self.encoders = list(encoders)
        self._busy = [0] * len(self.encoders)
        self._lock = threading.Lock()

    @contextmanager
    def take(self) -> Iterator[FrameEncoder]:
        with self._lock:
            i = min(range(len(self.encoders)), key=self._busy.__getitem__)
            self._busy[i] += 1
        try:
            yield self.encoders[i]
        finally:
            with self._lock:
                self._busy[i] -= 1
