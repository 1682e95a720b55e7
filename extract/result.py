"""What an extraction run did: counts, speed, failures (a CSV next to the output)."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from features.datasets import LabelSummary
from features.safe_write import atomic_write


@dataclass
class Failure:
    video_id: str
    path: str
    reason: str


@dataclass
class ExtractResult:
    out: Path
    found: int = 0                 # video files in the folder
    ignored: int = 0               # non-video files skipped by extension
    skipped: int = 0               # already stored with the same size and mtime
    done: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    rows: int = 0                  # embeddings written this run
    seconds: float = 0.0           # the whole call
    encode_seconds: float = 0.0    # decoding + encoding only (no scan, model load or merge)
    videos_in_store: int = 0
    failures_csv: Path | None = None
    model: str = ""
    labels: LabelSummary | None = None     # with --dataset: the labels written at the end

    @property
    def fps(self) -> float:
        """Frames per second of the decode + encode phase."""
        return self.rows / self.encode_seconds if self.encode_seconds > 0 else 0.0

    def summary(self) -> str:
        lines = [
            f"{'output':<12} {self.out}  ({self.videos_in_store} videos)",
            f"{'model':<12} {self.model}",
            f"{'videos':<12} {self.found} found, {len(self.done)} extracted, {self.skipped} "
            f"already stored (skipped), {len(self.failed)} failed, {self.ignored} non-video "
            f"files ignored",
            f"{'frames':<12} {self.rows:,} in {self.encode_seconds:.1f} s ({self.fps:,.1f} "
            f"frames/s); {self.seconds:.1f} s in all",
        ]
        if self.failed:
            lines.append(f"{'failures':<12} {self.failures_csv}")
            lines += [f"  FAILED {f.path}: {f.reason}" for f in self.failed]
        if self.labels is not None:
            lines.append(str(self.labels))
        return "\n".join(lines)


def write_failures(path: Path, failures: list[Failure]) -> Path:
    """The failures of this run (a later successful run writes an empty table)."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["video_id", "path", "reason"])
            for f in failures:
                writer.writerow([f.video_id, f.path, f.reason])

    return atomic_write(path, write)
