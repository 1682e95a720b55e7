"""What the feature file's checksums cost: writing and reading rows with and without them.

Side by side in one process, on the same rows (N videos x T rows of 512-d float16, in a
temporary folder, best of --repeat):
  write   plain: h5py datasets as files before checksums had them (same chunks, no filter);
          checked: features.store.VideoWriter (fletcher32 on every chunk + crc32 per dataset)
  read    plain: h5py reads of the same rows; checked: FeatureStore.rows / frame_index /
          timestamps_ms (fletcher32 checked by HDF5, crc32 compared), the calls training
          and scoring make
  verify  `pipeline info --verify` of the checked file (every chunk of every dataset)
A row costs 1 KiB; for scale: decoding + CLIP encoding runs at ~4 frames/s on 2 CPU cores,
~500 fr/s for decoding alone (docs/benchmarks.md), training reads each row once per run.

    python bench/checksums.py                   # 200 videos x 2,000 rows (400 k rows, 400 MB)
    python bench/checksums.py --videos 20 --rows 500
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.integrity import verify_store                          # noqa: E402
from features.store import (CHUNK_ROWS, VideoWriter, open_store,     # noqa: E402
                            write_file_attrs)


def _rows(videos: int, rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 512)).astype(np.float16)
    index = np.arange(rows, dtype=np.int64)
    return [(f"v{i:04d}", x, index, index * (1000 / 30)) for i in range(videos)]


def _attrs(h5):
    write_file_attrs(h5, {"model_id": "bench", "model_sha256": "", "embed_dim": 512,
                          "stride": 1, "source": "synthetic"})


def write_plain(path: Path, data) -> None:
    with h5py.File(path, "w") as h5:
        _attrs(h5)
        for vid, x, index, times in data:
            g = h5.create_group(f"videos/{vid}")
            g.create_dataset("embeddings", data=x, chunks=(CHUNK_ROWS, 512), maxshape=(None, 512))
            g.create_dataset("frame_index", data=index, chunks=(4096,), maxshape=(None,))
            g.create_dataset("timestamps_ms", data=times, chunks=(4096,), maxshape=(None,))
            g.attrs["complete"] = True


def write_checked(path: Path, data) -> None:
    with h5py.File(path, "w") as h5:
        _attrs(h5)
        for vid, x, index, times in data:
            writer = VideoWriter(h5, vid, 512)
            writer.append(x, index, times)
            writer.finish({})


def read_plain(path: Path) -> int:
    n = 0
    with h5py.File(path, "r") as h5:
        for g in h5["videos"].values():
            for name in ("embeddings", "frame_index", "timestamps_ms"):
                rows = g[name][()]
            n += len(rows)
    return n


def read_checked(path: Path) -> int:
    n = 0
    with open_store(path) as store:
        for vid in store.video_ids:
            store.rows(vid), store.frame_index(vid)
            n += len(store.timestamps_ms(vid))
    return n


def verify(path: Path) -> int:
    with open_store(path) as store:
        found = verify_store(store, progress=False)
    assert not found.damaged and not found.unchecked
    return len(found.checked)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = _rows(args.videos, args.rows)
    total = args.videos * args.rows
    with tempfile.TemporaryDirectory() as tmp:
        plain, checked = Path(tmp) / "plain.h5", Path(tmp) / "checked.h5"
        w_plain = best(lambda: write_plain(plain, data), args.repeat)
        w_checked = best(lambda: write_checked(checked, data), args.repeat)
        read_plain(plain), read_checked(checked)                   # warm the page cache
        r_plain = best(lambda: read_plain(plain), args.repeat)
        r_checked = best(lambda: read_checked(checked), args.repeat)
        v = best(lambda: verify(checked), args.repeat)
        sizes = plain.stat().st_size, checked.stat().st_size
    print(f"{args.videos} videos x {args.rows} rows of 512-d float16 ({total:,} rows, "
          f"{sizes[0] / 2**20:,.0f} MiB plain, {sizes[1] / 2**20:,.0f} MiB checked)")
    print(f"write   plain {total / w_plain:>12,.0f} rows/s   checked {total / w_checked:>12,.0f}"
          f" rows/s   checked/plain time {w_checked / w_plain:.2f}x")
    print(f"read    plain {total / r_plain:>12,.0f} rows/s   checked {total / r_checked:>12,.0f}"
          f" rows/s   checked/plain time {r_checked / r_plain:.2f}x")
    print(f"verify  {total / v:,.0f} rows/s ({args.videos / v:,.0f} videos/s) for info --verify")


if __name__ == "__main__":
    main()
