"""Progress of a long loop: a bar on a terminal, a plain line every N items anywhere else.

tqdm redraws its bar with carriage returns; written to a log file (``pipeline demo > log``)
those redraws pile up into one endless line. So the rule lives here, once: when stderr is
a terminal, tqdm's bar; otherwise one ``pipeline`` log line per ``every`` items and one at
the end (``videos 12/36 (33%) in 4.1 s, 2.9 videos/s``); with ``show=False``, nothing.
Extraction and scoring count videos with it. Training counts steps on the bar and, off a
terminal, writes one line per epoch through :meth:`Progress.note` (``every=0``: no lines by
count) with the epoch's loss, lr and validation metric, the time so far and the ETA.
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
    ``every``: items between two lines off a terminal (default: a tenth of ``total``; 0:
    lines only from :meth:`note`); ``lines=False`` keeps a counter that only makes sense as
    a bar (frames) silent there. ``initial``: items done before (a resumed loop). Extra
    keyword arguments go to tqdm (``unit_scale``, ``leave``, ``smoothing``).
    """

    def __init__(self, total: int, desc: str, unit: str, show: bool | None = None,
                 every: int | None = None, lines: bool = True, initial: int = 0,
                 **bar_options):
        self.total, self.desc, self.unit = int(total), desc, unit
        self.n = self._n0 = self._shown = int(initial)
        self._t0 = time.perf_counter()
        self._bar = None
        self.mode = "silent"              # or "bar" (a terminal) or "lines"
        if show is not False and on_terminal():
            from tqdm.auto import tqdm

            self.mode = "bar"
            self._bar = tqdm(total=self.total, desc=desc, unit=unit, initial=self.n,
                             **bar_options)
        elif show is not False and lines:
            self.mode = "lines"
            self.every = max(1, math.ceil(self.total / LINES)) if every is None else every
            self._next = (self.n // self.every + 1) * self.every if self.every else math.inf
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

    def set_postfix(self, **values) -> None:
        """Values shown beside the bar (a terminal only; off one, :meth:`note` says them)."""
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def note(self, **values) -> None:
        """Off a terminal, one line now: the count, ``values`` (``key value``), the time so
        far and the ETA; on a terminal or silent, nothing (the bar shows the count)."""
        if self.mode != "lines":
            return
        seconds = time.perf_counter() - self._t0
        done = self.n - self._n0
        eta = f", ETA {seconds / done * (self.total - self.n):.1f} s" if done > 0 else ""
        said = ", ".join(f"{k} {v}" for k, v in values.items())
        log.info("%s %d/%d %ss%s: %.1f s%s", self.desc, self.n, self.total, self.unit,
                 f", {said}" if said else "", seconds, eta)
        self._shown = self.n

    def _line(self) -> None:
        seconds = time.perf_counter() - self._t0
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        done = self.n - self._n0
        rate = f", {done / seconds:.1f} {self.unit}s/s" if seconds > 0 else ""
        log.info("%s %d/%d%s in %.1f s%s", self.desc, self.n, self.total, share, seconds, rate)
        self._shown = self.n

    def close(self) -> None:
        """Close the bar, or print the last line (once)."""
        if not self._open:
            return
        self._open = False
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "lines" and (self.total or self.n) and self._shown != self.n:
            self._line()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
