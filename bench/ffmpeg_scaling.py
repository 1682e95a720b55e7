"""What ffmpeg alone can decode on this machine: N parallel processes, no Python reading.

Runs the exact ffmpeg commands of stage one (output thrown away) on N clips at once, for
N = 1, 2, 4, 8, 16, and prints the aggregate frames/s of each path side by side:

  rgb24    the old path: swscale resizes and converts to RGB (bench/baseline_decode.py)
  yuv444p  the CPU path: swscale resizes into full-chroma YUV (extract/decode.py)
  nvdec    the GPU path: NVDEC decodes, scale_cuda resizes, 224x224 YUV copied back
           (with --nvdec; a refused clip counts as failed, not as frames)

Also prints the CPU count and cgroup quota: the numbers say whether decoding stops scaling
with processes (a CPU quota, memory bandwidth) or not (then the limit was elsewhere).

    python bench/ffmpeg_scaling.py --seconds 60 --parallel 1,2,4,8,16 --nvdec
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import OUT, make_clips                                  # noqa: E402
from bench.baseline_decode import rgb24_command                            # noqa: E402
from extract.decode import ffmpeg_command                                 # noqa: E402
from extract.probe import probe                                           # noqa: E402


def cpu_quota() -> str:
    """cgroup v2 ``cpu.max`` (or v1 quota/period) as "N CPUs" or "none"."""
    v2 = Path("/sys/fs/cgroup/cpu.max")
    v1 = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    try:
        if v2.exists():
            quota, period = v2.read_text().split()
        else:
            quota, period = (p.read_text().strip() for p in v1)
    except (OSError, ValueError):
        return "unknown"
    if quota in ("max", "-1"):
        return "none"
    return f"{int(quota) / int(period):.1f} CPUs ({quota}/{period})"


def run_parallel(commands: list[list[str]], frames: int) -> tuple[float, int]:
    """(aggregate frames/s, processes that failed) of the commands run all at once."""
    def one(cmd):
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL).returncode

    t = time.perf_counter()
    with ThreadPoolExecutor(len(commands)) as pool:
        codes = list(pool.map(one, commands))
    failed = sum(1 for c in codes if c != 0)
    return frames / (time.perf_counter() - t), failed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--rate", type=int, default=30)
    ap.add_argument("--parallel", default="1,2,4,8,16")
    ap.add_argument("--clips", type=int, default=32, help="clip set to take the first N from")
    ap.add_argument("--nvdec", action="store_true", help="also the GPU decoder")
    args = ap.parse_args()
    counts = [int(n) for n in args.parallel.split(",")]
    clips = make_clips(max(args.clips, max(counts)), args.seconds, args.size, args.rate)
    infos = [probe(str(p)) for p in clips]
    paths = {"rgb24": lambda p, i: rgb24_command(str(p), i),
             "yuv444p": lambda p, i: ffmpeg_command(str(p), i)}
    if args.nvdec:
        paths["nvdec"] = lambda p, i: ffmpeg_command(str(p), i, decoder="nvdec", gpu=0)

    print(f"nproc {os.cpu_count()}, cgroup CPU quota: {cpu_quota()}")
    print(f"decode-only frames/s, ffmpeg alone, {args.size} {args.rate} fps clips of "
          f"{args.seconds:g} s, N processes at once")
    print(f"  {'N':>3} " + " ".join(f"{k:>12}" for k in paths))
    report = {"nproc": os.cpu_count(), "cpu_quota": cpu_quota(), "size": args.size, "rows": []}
    for n in counts:
        frames = sum(i.n_packets for i in infos[:n])
        row = {"N": n}
        for name, make in paths.items():
            fps, failed = run_parallel([make(p, i) for p, i in zip(clips[:n], infos[:n])], frames)
            row[name] = fps if not failed else None
            row[f"{name}_failed"] = failed
        report["rows"].append(row)
        cells = [f"{row[k]:>12,.0f}" if row[k] is not None
                 else f"{row[k + '_failed']:>5} failed" for k in paths]
        print(f"  {n:>3} " + " ".join(cells))
    OUT.mkdir(exist_ok=True)
    (OUT / f"ffmpeg_scaling_{args.size}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
