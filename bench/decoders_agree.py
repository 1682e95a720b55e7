"""Do the GPU decoder (NVDEC + scale_cuda) and the CPU decoder make the same rows?

Extracts a few clips twice, ``--decoder cpu`` and ``--decoder nvdec``, at stride 1 and 3,
and prints per video: which decoder the file records (and why it fell back, if it did),
whether rows, frame indices and timestamps are identical, and the cosine between the two
paths' embeddings (they need not be bit-identical: another resize kernel). Without CUDA
every nvdec video falls back to the CPU: the check then shows the fallback working.

    python bench/decoders_agree.py --model vit-b-16 --device cuda
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import model_path                                       # noqa: E402
from extract import extract_videos                                       # noqa: E402
from features import open_store                                          # noqa: E402
from tests.media import make_video                                       # noqa: E402

CLIPS = {  # name: make_video kwargs
    "qvga_30fps": dict(size="320x240", rate="30", seconds=4),
    "hd_bt709": dict(size="1280x720", rate="25", seconds=2,
                     extra=["-colorspace", "bt709", "-color_range", "tv"]),
    "vfr_bframes": dict(size="640x360", rate="25", seconds=3, vfr=True, extra=["-bf", "3"]),
    "anamorphic": dict(size="320x240", rate="25", seconds=2, extra=["-aspect", "16:9"]),
    # High 4:4:4: no NVDEC decodes it, so this one must fall back to the CPU
    "h264_444": dict(size="320x240", rate="25", seconds=2, extra=["-pix_fmt", "yuv444p"]),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    model = model_path(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp) / "videos"
        for name, kw in CLIPS.items():
            make_video(videos / f"{name}.mp4", **kw)
        print(f"{'video':<12} {'stride':>6} {'decoder':<8} {'rows':>5} {'same idx/times':>14} "
              f"{'cos min':>8} {'cos mean':>8}  fallback")
        for stride in (1, 3):
            stores = {d: extract_videos(videos, out=Path(tmp) / f"{d}{stride}.h5", model=model,
                                        device=args.device, decoder=d, stride=stride,
                                        progress=False) for d in ("cpu", "nvdec")}
            for res in stores.values():
                for f in res.failed:
                    print(f"FAILED {f.video_id} ({res.out.name}): {f.reason}")
            with open_store(stores["cpu"].out) as a, open_store(stores["nvdec"].out) as b:
                for vid in sorted(set(a.video_ids) & set(b.video_ids)):
                    x, y = (s.embeddings(vid)[()].astype(np.float32) for s in (a, b))
                    same = (np.array_equal(a.frame_index(vid), b.frame_index(vid))
                            and np.array_equal(a.timestamps_ms(vid), b.timestamps_ms(vid)))
                    cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
                    attrs = b.video_attrs(vid)
                    print(f"{vid:<12} {stride:>6} {attrs['decoder']:<8} {len(y):>5} "
                          f"{str(same):>14} {cos.min():>8.5f} {cos.mean():>8.5f}  "
                          f"{attrs['decoder_fallback'][:90]}")


if __name__ == "__main__":
    main()
