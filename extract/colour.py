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
# ffmpeg's colour-space names (stream header) -> matrix; anything else gets BT.601, as
# swscale does for unspecified or unsupported spaces
_FFMPEG_SPACES = {"bt709": "bt709", "fcc": "fcc", "bt470bg": "bt601", "smpte170m": "bt601",
                  "smpte240m": "smpte240m", "bt2020nc": "bt2020", "bt2020c": "bt2020"}


@dataclass(frozen=True)
class Colour:
    """How the YUV samples of a stream map to RGB."""
    matrix: str = "bt601"          # a key of _KR_KB, an ffmpeg out_color_matrix name too
    full_range: bool = False       # Y 0..255 ("pc"), else 16..235 / chroma 16..240 ("tv")

    @property
    def range_name(self) -> str:
        """ffmpeg's name of the range (``out_range``)."""
        return "pc" if self.full_range else "tv"


def declared_colour(pix_fmt: str, tags: str) -> Colour:
    """The colour a stream declares in ffmpeg's header, e.g. ``yuv420p`` with tags
    ``"tv, bt709/bt709/bt709, progressive"`` (range, space[/primaries/transfer], ...)."""
    matrix, full = "bt601", pix_fmt.startswith("yuvj")
    for token in (t.strip() for t in tags.split(",")):
        if token in ("pc", "tv"):
            full = full or token == "pc"
        elif token.split("/")[0] in _FFMPEG_SPACES:
            matrix = _FFMPEG_SPACES[token.split("/")[0]]
    return Colour(matrix, full)


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
