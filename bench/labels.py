"""What crash-safe labelling costs: labels in their slots vs a full copy of the file.

Writes a synthetic feature file once under bench/out/ (UCF-Crime's 1,900 videos, rows per
video chosen to reach ``--gib``), then, side by side in one run:

  disk      write + fsync throughput of this disk (a plain file of the same size)
  copy      the crash-safe full rewrite: copy the file, put the labels in, fsync, rename
            (what labelling costs if labels live among the videos; an extract merge costs
            this anyway); source read from the page cache, writes fsynced
  slots     the labels written into their slot in place (pwrite + fsync), as `pipeline label`
            does: a UCF-Crime label table (1,900 videos, splits, classes, intervals)
  in-place  format 1's way (attrs of 1,900 video groups rewritten through HDF5; not
            crash-safe: a kill leaves an unreadable file), for reference

and extrapolates the copy to the 14 GB of a UCF-Crime file (time and free disk needed).

    python bench/labels.py                 # 2 GiB file
    python bench/labels.py --gib 14        # the real size (writes 14 GiB once)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import OUT                                           # noqa: E402
from features.datasets import ucf_crime                               # noqa: E402
from features.schema import NORMAL_CLASS                              # noqa: E402
from features.labels import (LabelSet, VideoLabel, rewrite_with_labels,  # noqa: E402
                             put_slots, replace_labels)
from features.safe_write import atomic_write, fsync_path               # noqa: E402
from features.store import write_file_attrs, write_video               # noqa: E402

UCF_VIDEOS, UCF_GIB = 1900, 14.0
CLASSES = ucf_crime.ANOMALY_CLASSES


def bench_file(gib: float, videos: int) -> Path:
    path = OUT / f"labels_store_{videos}_{gib:g}gib.h5"
    if path.exists():
        return path
    rows = int(gib * 2**30 / videos / 1024)                  # 512-d float16: 1 KiB a row
    print(f"writing {path} ({videos} videos x {rows} rows, once)...", flush=True)
    block = np.random.default_rng(0).standard_normal((rows, 512)).astype(np.float16)
    OUT.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as h5:
            write_file_attrs(h5, {"model_id": "bench", "embed_dim": 512, "stride": 1,
                                  "source": "extracted"})
            for i in range(videos):
                index = np.arange(rows, dtype=np.int64)
                write_video(h5, f"v{i:04d}", np.roll(block, i, axis=0), index, index * 33.3,
                            {"n_frames": rows, "fps": 30.0, "stride": 1,
                             "source_path": f"v{i:04d}.mp4"})
            put_slots(h5)

    return atomic_write(path, write)


def label_set(videos: int, rows: int, seed: int) -> LabelSet:
    """A UCF-Crime-like label table: 950 normal, 950 abnormal, test intervals."""
    rng = np.random.default_rng(seed)
    entries = {}
    for i in range(videos):
        normal = i % 2 == 0
        split = "test" if i % 7 == 0 else "train"
        ivs = [] if normal or split != "test" else [[int(s), int(s) + rows // 4] for s in
                                                     sorted(rng.integers(0, rows // 2, 2))]
        entries[f"v{i:04d}"] = VideoLabel(split, NORMAL_CLASS if normal else CLASSES[i % 13], [],
                                          ivs, rows, f"v{i:04d}.mp4", None)
    attrs = {"dataset": "ucf-crime", "class_names": sorted(CLASSES + [NORMAL_CLASS]),
             "normal_class": NORMAL_CLASS, "labels_source": f"seed {seed}"}
    return LabelSet(attrs, entries)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def disk_write(path: Path, size: int) -> float:
    """Seconds to write ``size`` bytes and fsync them (a plain file, 64 MiB writes)."""
    chunk = os.urandom(64 * 2**20)
    t = time.perf_counter()
    with open(path, "wb") as fh:
        for _ in range(max(1, size // len(chunk))):
            fh.write(chunk)
    fsync_path(path)
    seconds = time.perf_counter() - t
    path.unlink()
    return seconds


def in_place_format1(path: Path, labels: LabelSet) -> None:
    with h5py.File(path, "r+") as h5:
        for vid, v in labels.videos.items():
            g = h5["videos"][vid]
            g.attrs.update({"split": v.split, "class_name": v.class_name,
                            "label": int(v.class_name != NORMAL_CLASS)})
            if "intervals" in g:
                del g["intervals"]
            if v.intervals:
                g.create_dataset("intervals", data=np.asarray(v.intervals, np.int64))
        h5.attrs["class_names"] = json.dumps(labels.file_attrs["class_names"])
    fsync_path(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gib", type=float, default=2.0, help="size of the feature file")
    ap.add_argument("--videos", type=int, default=UCF_VIDEOS)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    path = bench_file(args.gib, args.videos)
    size = path.stat().st_size
    rows = int(args.gib * 2**30 / args.videos / 1024)
    sets = [label_set(args.videos, rows, seed) for seed in range(2)]
    flip = iter(range(10**6))

    disk = timed(lambda: disk_write(OUT / "disk_probe.bin", size), 1)
    copy = timed(lambda: rewrite_with_labels(path, sets[next(flip) % 2]), args.repeats)
    slots = timed(lambda: replace_labels(path, sets[next(flip) % 2]), 5 * args.repeats)
    payload = len(sets[0].to_bytes())
    scratch = path.with_name("labels_format1_scratch.h5")
    os.replace(path, scratch)                       # the format-1 way on the same file
    try:
        old = timed(lambda: in_place_format1(scratch, sets[next(flip) % 2]), args.repeats)
    finally:
        os.replace(scratch, path)
    scale = UCF_GIB * 2**30 / size
    result = {"file_gib": size / 2**30, "videos": args.videos, "label_payload_kib": payload / 1024,
              "disk_write_mib_s": size / disk / 2**20, "copy_s": copy, "slots_s": slots,
              "format1_in_place_s": old, "copy_over_slots": copy / slots,
              "ucf_crime_copy_s": copy * scale, "ucf_crime_extra_disk_gib": UCF_GIB}
    print(f"file {size / 2**30:.2f} GiB, {args.videos} videos, labels {payload / 1024:.0f} KiB "
          f"of JSON; disk write+fsync {result['disk_write_mib_s']:.0f} MiB/s")
    print(f"{'':<34}{'seconds':>10}{'/ slots':>10}")
    for name, s in (("labels in their slot (pwrite+fsync)", slots),
                    ("full crash-safe copy", copy),
                    ("format 1 in place (not crash-safe)", old)):
        print(f"{name:<34}{s:>10.3f}{s / slots:>10.0f}")
    print(f"at UCF-Crime scale (14 GiB): a full copy ~{copy * scale:.0f} s and 14 GiB free disk "
          f"per labelling; the slot write stays ~{slots * 1000:.0f} ms")
    (OUT / "labels.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
