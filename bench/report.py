"""The report at UCF-Crime scale: size and render time of ``report.html`` for a made-up test
split of 290 videos, ~1.1 M frames, 14 classes (samples/scores.py), next to what the scoring
already spends on the same split (its per-video PNGs), in one run.

    python bench/report.py [--videos 290] [--frames 1100000] [--png-sample 29]

Prints: the report's size (MB) and what it is made of (the plotting library, the data),
its render time from the folder's files (best of --repeat), reading the frame table alone,
and the per-video PNGs of evaluate/plots.py for --png-sample videos scaled to the split.
Thumbnails need source videos, which a made-up split has none of: their share is measured
on one 320x240 clip (one JPEG) times the most a report embeds (MAX_THUMBS_PER_VIDEO per
video), the upper bound a real UCF-Crime report can reach.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import OUT  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=290)
    ap.add_argument("--frames", type=int, default=1_100_000)
    ap.add_argument("--png-sample", type=int, default=29)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    import numpy as np
    import pandas as pd

    from evaluate import plots, report, tables
    from samples.scores import UCF_CLASSES, make_scoring_folder
    from samples.videos import SampleSpec, write_sample_video

    folder = OUT / f"report_{args.videos}x{args.frames}"
    if not (folder / tables.METRICS).exists():
        shutil.rmtree(folder, ignore_errors=True)
        t = time.perf_counter()
        make_scoring_folder(folder, args.videos, args.frames, UCF_CLASSES)
        print(f"made the scoring folder {folder} in {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    frames = pd.read_parquet(folder / tables.TABLE)
    read_s = time.perf_counter() - t
    renders = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        made = report.write_report(folder, thumbnails=False)
        renders.append(time.perf_counter() - t)
    page = made.path.read_text(encoding="utf-8")
    bokeh = len(report._bokeh_js().encode())
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page,
                     re.S).group(1)
    body = json.loads(data)
    p_bytes = sum(len(v["p"]) for v in body["videos"])
    display = sum(len(v["t"]) + len(v["cp"]) + len(v.get("lo", "")) + len(v.get("hi", ""))
                  for v in body["videos"])

    # one real thumbnail: 320x240 like UCF-Crime's videos
    clip = OUT / "report_thumb.mp4"
    if not clip.exists():
        write_sample_video(SampleSpec("thumb", "test", "Arson", seed=1, interval=(8, 40),
                                      seconds=6, fps=8, width=320, height=240), clip)
    jpeg = report.take_thumbnail(clip, 3.0, 8.0) or b""
    thumb_b64 = (len(jpeg) + 2) // 3 * 4
    worst = thumb_b64 * report.MAX_THUMBS_PER_VIDEO * args.videos

    # what scoring already spends: the per-video PNGs, on a sample
    table = pd.read_csv(folder / tables.VIDEOS).head(args.png_sample)
    groups = dict(tuple(frames.groupby("video_id", sort=False)))
    pdir = OUT / "report_pngs"
    t = time.perf_counter()
    for row in table.itertuples():
        g = groups[row.video_id]
        probs = g[[f"p_{c}" for c in UCF_CLASSES]].to_numpy()
        plots.video_figure(row.video_id, g["p_anomaly"].to_numpy(), probs, UCF_CLASSES,
                           row.fps, pdir / f"{row.video_id}.png", [], g["label"].to_numpy(),
                           row.class_name, 0.5, [])
    png_s = (time.perf_counter() - t) / len(table) * args.videos

    n = len(frames)
    print(f"split: {args.videos} videos, {n:,} frames, {len(UCF_CLASSES)} classes; "
          f"display buckets per video <= {report.DISPLAY_BUCKETS}")
    print(f"report.html: {made.bytes / 1e6:.2f} MB = BokehJS {bokeh / 1e6:.2f} MB + every "
          f"frame's p(anomaly) {p_bytes / 1e6:.2f} MB + display curves {display / 1e6:.2f} MB "
          f"+ the rest {(made.bytes - bokeh - p_bytes - display) / 1e6:.2f} MB")
    print(f"thumbnails: {len(jpeg):,} B per JPEG ({report.THUMB_WIDTH} px wide, 320x240 "
          f"source); at most {report.MAX_THUMBS_PER_VIDEO} per video adds <= {worst / 1e6:.2f} MB"
          f" -> <= {(made.bytes + worst) / 1e6:.2f} MB")
    print(f"render from the folder: {min(renders):.2f} s (best of {len(renders)}: "
          + ", ".join(f"{s:.2f}" for s in renders) + ")")
    print(f"  reading frame_scores.parquet alone: {read_s:.2f} s "
          f"({min(renders) / read_s:.1f}x the read)")
    print(f"  the split's per-video PNGs (evaluate/plots.py, {len(table)} timed, scaled to "
          f"{args.videos}): {png_s:.1f} s; report / PNGs = {min(renders) / png_s:.2f}")
    print(f"budget: < 25 MB ({'ok' if made.bytes + worst < 25e6 else 'OVER'}), "
          f"< 30 s ({'ok' if min(renders) < 30 else 'OVER'})")
    del np


if __name__ == "__main__":
    main()
