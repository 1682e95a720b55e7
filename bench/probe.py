"""Probing videos, old header reading against new, side by side in one run.

  old   ``ffmpeg -i FILE`` in a subprocess, its banner parsed with regexes
        (bench/baseline_probe.py): what stage one did before
  new   extract.probe.read_header: PyAV reads the container header in process (and
        decodes the first frame, the only place PyAV shows the display rotation)

Both are followed by the same packet listing (a framecrc stream copy, extract.probe
.list_packets) in a whole probe. Many small files of every kind the tests use (H.264 and
MPEG-4, mp4 / mkv / avi / ts, rotated, anamorphic, colour-tagged, with audio, 29.97 fps)
are probed one after the other, old and new interleaved, repeated; the table shows the
median milliseconds per video and the ratio. It also checks that both read the same facts.

    python bench/probe.py                 # 48 files, 3 repeats
    python bench/probe.py --files 96 --repeats 5
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import OUT                                              # noqa: E402
from bench.baseline_probe import banner_header                              # noqa: E402
from extract.ffmpeg_bin import ffmpeg_exe                                 # noqa: E402
from extract.probe import list_packets, read_header                      # noqa: E402
from features.safe_write import atomic_write                              # noqa: E402

KINDS = {  # name: (file suffix, ffmpeg output options, lavfi size:rate, after-the-fact options)
    "plain": (".mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "320x240:25", None),
    "ntsc": (".mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "176x144:30000/1001", None),
    "audio": (".mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"],
              "320x240:25", None),
    "rot90": (".mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "320x240:25", "90"),
    "rot270": (".mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "320x240:25", "-90"),
    "anamorphic": (".mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-aspect", "16:9"],
                   "320x240:25", None),
    "bt709_pc": (".mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-colorspace", "bt709",
                          "-color_range", "pc"], "320x240:25", None),
    "mpeg4_avi": (".avi", ["-c:v", "mpeg4", "-bf", "2"], "320x240:25", None),
    "bframes_mkv": (".mkv", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "3"],
                    "320x240:25", None),
    "offset_ts": (".ts", ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "320x240:25", None),
    "hd": (".mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "1280x720:25", None),
    "bt2020": (".mp4", ["-c:v", "libx264", "-pix_fmt", "yuv444p", "-colorspace", "bt2020nc"],
               "320x240:25", None),
}


def make_files(n: int, seconds: float) -> list[Path]:
    """``n`` files cycling through KINDS, made once under bench/out/probe_clips."""
    folder = OUT / "probe_clips"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        name = list(KINDS)[i % len(KINDS)]
        suffix, options, size_rate, rotate = KINDS[name]
        path = folder / f"{name}_{i:03d}{suffix}"
        files.append(path)
        if path.exists():
            continue
        size, rate = size_rate.split(":")
        cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
               f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
        if "-c:a" in options:
            cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
        atomic_write(path, lambda tmp: subprocess.run(cmd + options + ["-threads", "1", str(tmp)],
                                                      check=True), keep_suffix=True)
        if rotate:
            atomic_write(path, lambda tmp: subprocess.run(
                [ffmpeg_exe(), "-v", "error", "-y", "-display_rotation", rotate, "-i",
                 str(path), "-c", "copy", str(tmp)], check=True), keep_suffix=True)
    return files


def per_video_ms(files: list[Path], run) -> float:
    t = time.perf_counter()
    for f in files:
        run(str(f))
    return 1000 * (time.perf_counter() - t) / len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    files = make_files(args.files, args.seconds)

    differences = {}
    for f in files:
        old, new = banner_header(str(f)), read_header(str(f))
        diff = {k: (old[k], new[k]) for k in new if old[k] != new[k]}
        if diff:
            differences[f.name] = {k: (str(a), str(b)) for k, (a, b) in diff.items()}

    runs = {"header": (banner_header, read_header),
            "probe": (lambda p: (banner_header(p), list_packets(p)),
                      lambda p: (read_header(p), list_packets(p)))}
    times: dict[str, dict[str, list[float]]] = {k: {"old": [], "new": []} for k in runs}
    for _ in range(args.repeats):
        for what, (old, new) in runs.items():
            times[what]["old"].append(per_video_ms(files, old))
            times[what]["new"].append(per_video_ms(files, new))

    print(f"{len(files)} files ({len(KINDS)} kinds, {args.seconds:g} s each), "
          f"median of {args.repeats} interleaved runs, ms per video")
    print(f"  {'':<28} {'old':>8} {'new':>8} {'old / new':>10}")
    report = {"files": len(files), "repeats": args.repeats}
    for what, label in (("header", "header facts"), ("probe", "whole probe (+ packet list)")):
        old, new = (statistics.median(times[what][k]) for k in ("old", "new"))
        print(f"  {label:<28} {old:8.1f} {new:8.1f} {old / new:10.1f}")
        report[what] = {"old_ms": old, "new_ms": new, "old_over_new": old / new}
    same = len(files) - len(differences)
    print(f"  facts read alike: {same} of {len(files)} files")
    for name, diff in list(differences.items())[:len(KINDS)]:
        print(f"    {name}: " + "; ".join(f"{k} old {a} new {b}" for k, (a, b) in diff.items()))
    report["differences"] = differences
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "probe.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
