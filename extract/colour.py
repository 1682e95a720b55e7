"""YUV -> RGB exactly as ffmpeg's swscale does it, fused with CLIP's normalisation.

ffmpeg hands frames over as full-chroma YUV (``yuv444p``) in the matrix and range the
stream declares; the conversion to RGB happens in torch on the encoder's device. Both it
and CLIP's normalisation are affine per pixel, and swscale clips RGB to 0..255 in
between, so the whole preprocessing of a pixel is one 3x3 matrix, one offset and one
clamp (:func:`fused_normalisation`).

The matrix follows swscale's choice: the stream's colour matrix tag, BT.601 when there
is none (no guess from the resolution), limited ("tv") range unless the stream says full
("pc", or a ``yuvj*`` pixel format). The CPU decoder also asks ffmpeg for its output in
exactly that matrix and range (``out_color_matrix`` / ``out_range``), so should a frame
carry other tags than the header, ffmpeg converts it and these numbers still hold.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# luma weights (Kr, Kb) of the matrices swscale knows
_KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "fcc": (0.30, 0.11),
          "smpte240m": (0.212, 0.087), "bt2020": (0.2627, 0.0593)}
# FFmpeg's AVColorSpace codes (the stream header's colorspace) -> matrix; anything else
# gets BT.601, as swscale does for unspecified or unsupported spaces
_SPACES = {1: "bt709", 4: "fcc", 5: "bt601", 6: "bt601", 7: "smpte240m", 9: "bt2020",
           10: "bt2020"}
_FULL_RANGE = 2                    # AVCOL_RANGE_JPEG ("pc"); 1 is "tv", 0 unspecified


@dataclass(frozen=True)
class Colour:
    """How the YUV samples of a stream map to RGB."""
    matrix: str = "bt601"          # a key of _KR_KB, an ffmpeg out_color_matrix name too
    full_range: bool = False       # Y 0..255 ("pc"), else 16..235 / chroma 16..240 ("tv")

    @property
    def range_name(self) -> str:
        """ffmpeg's name of the range (``out_range``)."""
        return "pc" if self.full_range else "tv"


def stream_colour(pix_fmt: str, colorspace: int, color_range: int) -> Colour:
    """The colour a stream declares in its header: FFmpeg's colour-space and range codes
    (PyAV's ``codec_context.colorspace`` / ``color_range``); ``yuvj*`` formats are full
    range whatever the range says."""
    full = pix_fmt.startswith("yuvj") or color_range == _FULL_RANGE
    return Colour(_SPACES.get(int(colorspace or 0), "bt601"), full)


def yuv_to_rgb(colour: Colour) -> tuple[np.ndarray, np.ndarray]:
    """(M, o): RGB = M @ YUV + o, all in 0..255 units (8-bit samples), before clipping."""
    kr, kb = _KR_KB[colour.matrix]
    kg = 1.0 - kr - kb
    if colour.full_range:
        y_gain, c_gain, y_black = 1.0, 255.0 / 255.0, 0.0
    else:
        y_gain, c_gain, y_black = 255.0 / 219.0, 255.0 / 224.0, 16.0
    m = np.array([
        [y_gain, 0.0, 2 * (1 - kr) * c_gain],
        [y_gain, -2 * kb * (1 - kb) / kg * c_gain, -2 * kr * (1 - kr) / kg * c_gain],
        [y_gain, 2 * (1 - kb) * c_gain, 0.0]])
    return m, -m @ np.array([y_black, 128.0, 128.0])


def fused_normalisation(colour: Colour, mean, std):
    """(A, b, lo, hi) with ``clamp(A @ yuv + b, lo, hi)`` == CLIP's input for each pixel:
    ``(clip(M @ yuv + o, 0, 255) / 255 - mean) / std``. ``std`` > 0, so the clamp moves
    through the per-channel scale unchanged."""
    m, o = yuv_to_rgb(colour)
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    scale = 1.0 / (255.0 * std)                     # per RGB channel
    a = m * scale[:, None]
    b = o * scale - mean / std
    return a, b, -mean / std, (1.0 - mean) / std
