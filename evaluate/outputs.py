"""The output folder of one scoring: written aside, moved in whole, nothing stale left beside.

A scoring writes every file into ``<out>/.partial/``; only when all are written does
:meth:`OutputFolder.commit` move them into ``<out>`` (each one a rename), delete the files
of the previous scoring that this one did not write (the per-class table of a split that
now has no labels, plots of videos no longer scored, a CSV copy or a rendered video not
asked for again), and write ``metrics.json`` last, listing the files (``files``). That
list is how the next scoring knows what it may delete: a file it did not write is never
touched. An interrupted or failed scoring leaves the previous outputs as they were.

A folder belongs to one kind of scoring: a split's scores (``scores/test``) are never
overwritten by a single video's (``score --video test.mp4`` writes to
``scores/videos/test`` by default) or the other way round.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from features import paths
from features.errors import UserError

from . import tables

STAGING = ".partial"
# what a scoring of an earlier version (metrics.json without "files") may have written
_KNOWN = (tables.TABLE, tables.TABLE.replace(".parquet", ".csv"), tables.VIDEOS,
          tables.PER_CLASS, "summary.png")


def _describe(body: dict) -> str:
    return f"split {body['split']}" if "split" in body else f"video {body.get('video')}"


class OutputFolder:
    """``out`` checked and prepared for a scoring of ``target`` ({"split": name} or
    {"video": path}); used as ``with OutputFolder(...) as folder:``, write into
    :attr:`folder.stage`, then :meth:`commit`."""

    def __init__(self, out: Path, target: dict, option: str | None):
        self.out = paths.writable_dir(out, option)
        self.previous = self._read_previous()
        if self.previous is not None and ("split" in target) != ("split" in self.previous):
            raise UserError(
                f"{option or 'folder'} {out}: holds the scores of {_describe(self.previous)} "
                f"({tables.METRICS}); the scores of {_describe(target)} go to another folder: "
                f"pass another {option or '--out'}")
        self.stage = self.out / STAGING
        shutil.rmtree(self.stage, ignore_errors=True)      # left by an interrupted scoring
        self.stage.mkdir()

    def __enter__(self) -> "OutputFolder":
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)     # a failed scoring changes nothing

    def _read_previous(self) -> dict | None:
        try:
            body = json.loads((self.out / tables.METRICS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return body if isinstance(body, dict) else None

    def _previous_files(self) -> set[str]:
        listed = (self.previous or {}).get("files")
        if isinstance(listed, list):
            return {f for f in listed if isinstance(f, str)}
        if self.previous is None:
            return set()
        old = set(_KNOWN) | {f"plots/{p.name}" for p in (self.out / "plots").glob("*.png")}
        return old | {p.name for p in self.out.glob("*_scored.mp4")}

    def commit(self, body: dict) -> list[Path]:
        """Move the staged files into ``out``, delete the previous scoring's files that were
        not written again, write metrics.json (``body`` + ``files``) last. The top-level
        files written, in order."""
        new = sorted(p.relative_to(self.stage).as_posix()
                     for p in self.stage.rglob("*") if p.is_file())
        for name in new:
            target = self.out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.stage / name, target)
        for name in self._previous_files() - set(new) - {tables.METRICS}:
            stale = (self.out / name).resolve()
            if stale.parent in (self.out.resolve(), (self.out / "plots").resolve()):
                stale.unlink(missing_ok=True)           # only files a scoring writes
        shutil.rmtree(self.stage, ignore_errors=True)
        plots = self.out / "plots"
        if plots.is_dir() and not any(plots.iterdir()):
            plots.rmdir()
        tables.write_metrics(self.out / tables.METRICS,
                             {**body, "files": new + [tables.METRICS]})
        return [self.out / n for n in new if "/" not in n] + [self.out / tables.METRICS]
