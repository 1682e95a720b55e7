"""Stage one's decoding on the CPU, old path against new, side by side in one run.

  old       what stage one did before: swscale resizes and converts to rgb24, a Python
            thread regex-parses one showinfo log line per frame, a new array per chunk
            (bench/baseline_decode.py)
  new       extract.decode.FrameStream: yuv444p straight after the resize, frame times
            from the probe's packet list, chunks in reused buffers (RGB is made later,
            in torch, by the encoder)
  pipeline  extract_videos with a near-free encoder (CLIP of width 16, one layer): all
            of stage one except the model's cost, against the old decode path alone

All videos of a size decode in parallel (one single-threaded ffmpeg per worker). Each
measurement is repeated, old and new interleaved; the table shows medians and the CPU
time (this process and its ffmpeg children) per frame, which a busy machine disturbs less
than wall time.

    python bench/decode.py                       # 4 x 120 s 320x240 30 fps, 4 x 20 s 720p
    python bench/decode.py --seconds 30 --repeats 2
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import OUT, make_clips, model_path                      # noqa: E402
from bench.baseline_decode import rgb24_frames                             # noqa: E402
from extract import extract_videos                                       # noqa: E402
from extract.decode import FrameStream                                    # noqa: E402
from extract.probe import probe                                           # noqa: E402


def _cpu_seconds() -> float:
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(run, frames_expected: int) -> tuple[float, float]:
    """(frames/s, CPU ms per frame) of ``run()``, which returns the frames it made."""
    cpu, t = _cpu_seconds(), time.perf_counter()
    frames = run()
    wall, cpu = time.perf_counter() - t, _cpu_seconds() - cpu
    assert frames == frames_expected, (frames, frames_expected)
    return frames / wall, 1000 * cpu / frames


def decode_all(clips, infos, workers: int, new: bool) -> int:
    def one(i):
        if new:
            return sum(len(c.frames) for c in FrameStream(str(clips[i]), infos[i]))
        return sum(len(c) for c in rgb24_frames(str(clips[i]), infos[i]))

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(one, range(len(clips))))


def pipeline(clips, model: str, workers: int) -> tuple[int, float, float]:
    """(rows, frames/s of the decode + encode phase, its seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        res = extract_videos(clips[0].parent, out=Path(tmp) / "bench.h5", model=model,
                             device="cpu", workers=workers, progress=False)
    assert not res.failed, res.summary()
    return res.rows, res.fps, res.encode_seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=120, help="length of the 320x240 clips")
    ap.add_argument("--hd-seconds", type=float, default=20, help="length of the 720p clips")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()

    sizes = {"320x240 30fps": make_clips(args.videos, args.seconds, "320x240", 30),
             "1280x720 25fps": make_clips(args.videos, args.hd_seconds, "1280x720", 25)}
    model = model_path("free")
    results: dict[str, dict[str, list]] = {}
    for label, clips in sizes.items():
        infos = [probe(str(p)) for p in clips]
        n = sum(i.n_packets for i in infos)
        runs = results[label] = {"old": [], "new": [], "pipeline": []}
        for _ in range(args.repeats):
            runs["old"].append(timed(lambda: decode_all(clips, infos, args.workers, False), n))
            runs["new"].append(timed(lambda: decode_all(clips, infos, args.workers, True), n))
            if label.startswith("320x240"):
                cpu = _cpu_seconds()
                rows, fps, seconds = pipeline(clips, model, args.workers)
                runs["pipeline"].append((fps, 1000 * (_cpu_seconds() - cpu) / rows))

    def med(runs, i=0):
        return statistics.median(r[i] for r in runs)

    print(f"\nstage one decoding on this CPU ({os.cpu_count()} cores, {args.workers} decoders, "
          f"{args.videos} clips per size), frames/s, median of {args.repeats}, old and new "
          "interleaved; (CPU ms per frame)")
    print(f"  {'clips':<16} {'old rgb24':>18} {'new yuv444p':>18} {'new / old':>10}")
    report = {"cores": os.cpu_count(), "workers": args.workers, "repeats": args.repeats}
    for label, runs in results.items():
        old, new = med(runs["old"]), med(runs["new"])
        print(f"  {label:<16} {old:>9,.0f} ({med(runs['old'], 1):.2f} ms) "
              f"{new:>9,.0f} ({med(runs['new'], 1):.2f} ms) {new / old:>9.2f}x")
        report[label] = {k: v for k, v in runs.items() if v}
        report[label]["new_over_old"] = new / old
    label = "320x240 30fps"
    runs = results[label]
    fps, old = med(runs["pipeline"]), med(runs["old"])
    print(f"\n  pipeline, near-free CLIP (width 16, 1 layer), {label}: {fps:,.0f} frames/s "
          f"({med(runs['pipeline'], 1):.2f} CPU ms per frame) = {fps / old:.2f} x the old "
          "decode path alone (target >= 1.3)")
    report["pipeline_over_old_decode"] = fps / old
    OUT.mkdir(exist_ok=True)
    (OUT / "decode.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
