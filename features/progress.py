"""Progress of a long loop: a bar on a terminal, a plain line every N items anywhere else.

tqdm redraws its bar with carriage returns; written to a log file (``pipeline demo > log``)
those redraws pile up into one endless line. So the rule lives here, once: when stderr is
a terminal, tqdm's bar; otherwise one ``pipeline`` log line per ``every`` items and one at
the end (``videos 12/36 (33%) in 4.1 s, 2.9 videos/s``); with ``show=False``, nothing.
Extraction and scoring count videos with it; training can count epochs the same way.
"""
from __future__ import annotations

import logging
import math
import sys
import time

log = logging.getLogger("pipeline")

LINES = 10          # about this many lines for a whole loop off a terminal


def on_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):          # replaced or closed stderr
        return False


class Progress:
    """``with Progress(total, "videos", "video") as p: ... p.update(1)``.

    ``show``: None or True = a bar on a terminal, lines elsewhere; False = silent.
    ``every``: items between two lines off a terminal (default: a tenth of ``total``);
    ``lines=False`` keeps a counter that only makes sense as a bar (frames) silent there.
    Extra keyword arguments go to tqdm (``unit_scale``, ``leave``, ``smoothing``).
    """

    def __init__(self, total: int, desc: str, unit: str, show: bool | None = None,
                 every: int | None = None, lines: bool = True, **bar_options):
        self.total, self.desc, self.unit = int(total), desc, unit
        self.n = 0
        self._t0 = time.perf_counter()
        self._bar = None
        self.mode = "silent"              # or "bar" (a terminal) or "lines"
        if show is not False and on_terminal():
            from tqdm.auto import tqdm

            self.mode = "bar"
            self._bar = tqdm(total=self.total, desc=desc, unit=unit, **bar_options)
        elif show is not False and lines:
            self.mode = "lines"
            self.every = every or max(1, math.ceil(self.total / LINES))
            self._next = self.every
        self._open = True

    @property
    def silent(self) -> bool:
        """True when neither a bar nor lines are shown."""
        return self.mode == "silent"

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "lines" and self._next <= self.n < self.total:
            self._line()
            self._next = (self.n // self.every + 1) * self.every

    def _line(self) -> None:
        seconds = time.perf_counter() - self._t0
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        rate = f", {self.n / seconds:.1f} {self.unit}s/s" if seconds > 0 else ""
        log.info("%s %d/%d%s in %.1f s%s", self.desc, self.n, self.total, share, seconds, rate)

    def close(self) -> None:
        """Close the bar, or print the last line (once)."""
        if not self._open:
            return
        self._open = False
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "lines" and (self.total or self.n):
            self._line()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
