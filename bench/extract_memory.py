"""Peak memory of `extract_videos` stays flat with video length.

Extracts a long generated 720p clip (default 10 minutes) and one 10x shorter, each in a
fresh subprocess, with the tiny model, and prints the peak resident memory (RSS) of the
Python process (ffmpeg runs in its own process with constant memory) and their ratio.

    python bench/extract_memory.py [--minutes 10]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import OUT, make_clips, model_path  # noqa: E402

CHILD = """
import json, resource, sys
from pathlib import Path
from extract import extract_videos
res = extract_videos(sys.argv[1], out=Path(sys.argv[2]), model=sys.argv[3], progress=False)
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": res.rows, "failed": len(res.failed), "peak_rss_mib": peak_kib / 1024,
                  "fps": res.fps}))
"""


def measure(clip: Path, model: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        single = Path(tmp) / "videos"
        single.mkdir()
        (single / clip.name).symlink_to(clip)
        out = subprocess.run([sys.executable, "-c", CHILD, str(single), str(Path(tmp) / "m.h5"),
                              model], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--size", default="1280x720")
    args = ap.parse_args()
    model = model_path("tiny")
    long_clip = make_clips(1, args.minutes * 60, args.size, 25)[0]
    short_clip = make_clips(1, args.minutes * 6, args.size, 25)[0]
    short, long = measure(short_clip, model), measure(long_clip, model)
    print(f"\npeak RSS of extract_videos, tiny model, {args.size} 25 fps H.264")
    for name, r, mins in (("short", short, args.minutes / 10), ("long", long, args.minutes)):
        print(f"  {name:<6} {mins:5.1f} min  {r['rows']:>7,} frames  peak RSS "
              f"{r['peak_rss_mib']:7.1f} MiB  ({r['fps']:.0f} frames/s)")
    print(f"  long / short peak RSS: {long['peak_rss_mib'] / short['peak_rss_mib']:.2f} "
          f"for {long['rows'] / short['rows']:.0f}x the frames")
    (OUT / "extract_memory.json").write_text(json.dumps({"short": short, "long": long}, indent=2))


if __name__ == "__main__":
    main()
