"""Stage-one throughput, measured side by side in one run (this machine is noisy).

Prints, for one model on the same generated clips:
  decode   decode + resize/crop frames/s as stage one reads them (CPU decoder, frames into
           Python), all videos decoded in parallel (one single-threaded ffmpeg per
           worker), no encoding
  encode   bare encoder frames/s on pre-decoded 224x224 frames (same model, batch, device)
  pipeline extract_videos frames/s (decode + encode phase; model load and merge excluded,
           both also printed); with --decoders cpu,nvdec once per decoder
  naive    the loop most peer code runs: full-resolution frames from ffmpeg, PIL resize +
           crop each frame, encode one batch at a time, sequentially
  ratios   pipeline / encode, pipeline / limit (CPU: 1 / (1/decode + 1/encode), decode and
           encode sharing the cores; GPU: min(decode, encode)), pipeline / naive

    python bench/extract.py --model tiny
    python bench/extract.py --model vit-b-16 --seconds 4 --videos 2     # random ViT-B/16
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extract import extract_videos                                      # noqa: E402
from extract.decode import FrameStream                                 # noqa: E402
from extract.encode import FrameEncoder, default_batch_size            # noqa: E402
from extract.ffmpeg_bin import ffmpeg_exe                              # noqa: E402
from extract.probe import probe                                        # noqa: E402
from features.clip_loader import CLIP_MEAN, CLIP_STD, load_clip        # noqa: E402
from bench.common import OUT, make_clips, model_path                     # noqa: E402

def bench_decode(clips: list[Path], workers: int) -> float:
    infos = [probe(str(p)) for p in clips]

    def one(item):
        n = 0
        for chunk in FrameStream(str(item[0]), item[1]):
            n += len(chunk.frames)
        return n

    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        frames = sum(pool.map(one, zip(clips, infos)))
    return frames / (time.perf_counter() - t)


def predecoded(clip: Path, n: int):
    """The first ``n`` frames (YUV, as the decoder gives them) and their colour."""
    chunks = []
    stream = FrameStream(str(clip), probe(str(clip)))
    for chunk in stream:
        chunks.append(chunk.frames.clone())
        if sum(len(c) for c in chunks) >= n:
            break
    stream.close()
    return torch.cat(chunks)[:n], stream.colour


def bench_encode(encoder: FrameEncoder, frames, colour, repeats: int = 1) -> float:
    b = encoder.batch_size
    frames = frames.pin_memory() if encoder.device.type == "cuda" else frames
    encoder(frames[:b], colour)                           # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        for i in range(0, len(frames), b):
            encoder(frames[i:i + b], colour)
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    return repeats * len(frames) / (time.perf_counter() - t)


def bench_naive(clips: list[Path], clip, batch: int, max_frames: int) -> float:
    """Full-resolution decode, PIL resize/crop per frame, encode per batch, sequential."""
    from PIL import Image

    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    done, t = 0, time.perf_counter()
    for p in clips:
        info = probe(str(p))
        proc = subprocess.Popen([ffmpeg_exe(), "-v", "error", "-i", str(p), "-map", "0:v:0",
                                 "-pix_fmt", "rgb24", "-f", "rawvideo", "-"],
                                stdout=subprocess.PIPE)
        size = info.width * info.height * 3
        batch_imgs = []
        while done < max_frames:
            raw = proc.stdout.read(size)
            if len(raw) < size:
                break
            img = Image.frombuffer("RGB", (info.width, info.height), raw)
            s = 224 / min(img.size)
            img = img.resize((max(224, round(img.size[0] * s)), max(224, round(img.size[1] * s))),
                             Image.BICUBIC)
            left, top = (img.size[0] - 224) // 2, (img.size[1] - 224) // 2
            batch_imgs.append(np.asarray(img.crop((left, top, left + 224, top + 224))))
            done += 1
            if len(batch_imgs) == batch:
                _encode_naive(clip, batch_imgs, mean, std)
                batch_imgs = []
        if batch_imgs:
            _encode_naive(clip, batch_imgs, mean, std)
        proc.kill()
        proc.wait()
        if done >= max_frames:
            break
    return done / (time.perf_counter() - t)


def _encode_naive(clip, imgs, mean, std):
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255
    x = ((x - mean) / std).to(clip.device, clip.dtype)
    with torch.inference_mode():
        clip.model.get_image_features(pixel_values=x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="tiny", help="tiny | vit-b-16 | hub id or local path")
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--rate", type=int, default=25)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--naive-frames", type=int, default=None,
                    help="frames for the naive loop (default: all of the clips)")
    ap.add_argument("--decoders", default="auto",
                    help="pipeline decoders, comma-separated: auto | cpu | nvdec")
    args = ap.parse_args()

    clips = make_clips(args.videos, args.seconds, args.size, args.rate)
    model = model_path(args.model)
    clip = load_clip(model, args.device)
    batch = args.batch_size or default_batch_size(clip.device)
    encoder = FrameEncoder(clip, batch)
    n_frames = sum(probe(str(p)).n_packets for p in clips)

    decode = bench_decode(clips, args.workers)
    frames, colour = predecoded(clips[0], min(n_frames, max(2 * batch, 256)))
    # the same frames several times on a GPU, so the timing spans thousands of frames
    encode = bench_encode(encoder, frames, colour, repeats=max(1, 8192 // len(frames))
                          if clip.device.type == "cuda" else 1)
    pipelines = {}
    for decoder in args.decoders.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            res = extract_videos(clips[0].parent, out=Path(tmp) / "bench.h5", model=model,
                                 batch_size=batch, device=args.device, workers=args.workers,
                                 progress=False, decoder=decoder)
        assert res.rows == n_frames and not res.failed, res.summary()
        pipelines[decoder] = res
    res = next(iter(pipelines.values()))
    pipeline = res.fps
    naive = bench_naive(clips, clip, batch, args.naive_frames or n_frames)
    limit = min(decode, encode) if clip.device.type == "cuda" else 1 / (1 / decode + 1 / encode)

    report = {
        "model": args.model, "device": str(clip.device), "dtype": str(clip.dtype), "batch": batch,
        "workers": args.workers, "clips": f"{args.videos} x {args.seconds:g}s {args.size} "
        f"{args.rate}fps h264+aac", "frames": n_frames, "cpu_cores": os.cpu_count(),
        "decode_fps": decode, "encode_fps": encode, "pipeline_fps": pipeline,
        "pipeline_total_s": res.seconds, "pipeline_encode_phase_s": res.encode_seconds,
        "naive_fps": naive, "limit_fps": limit,
        "pipeline_over_encoder": pipeline / encode, "pipeline_over_limit": pipeline / limit,
        "pipeline_over_naive": pipeline / naive,
        "pipeline_fps_by_decoder": {d: r.fps for d, r in pipelines.items()},
    }
    print(f"\nstage one throughput: {report['clips']}, model {args.model}, {clip.device} "
          f"{str(clip.dtype).replace('torch.', '')}, batch {batch}, {args.workers} decoders, "
          f"{os.cpu_count()} cores")
    for key in ("decode", "encode", "limit", "pipeline", "naive"):
        print(f"  {key:<10} {report[key + '_fps']:>10,.1f} frames/s")
    if len(pipelines) > 1:
        print("  pipeline by decoder: " + ", ".join(f"{d} {r.fps:,.1f} ({r.fps / encode:.2f} "
                                                    "of the encoder)"
                                                    for d, r in pipelines.items()))
    print(f"  pipeline wall time {res.seconds:.1f} s in all, {res.encode_seconds:.1f} s "
          "decode+encode")
    for key in ("pipeline_over_encoder", "pipeline_over_limit", "pipeline_over_naive"):
        print(f"  {key.replace('_', ' '):<24} {report[key]:.2f}")
    OUT.mkdir(exist_ok=True)
    (OUT / f"extract_{args.model.replace('/', '_')}_{clip.device.type}.json").write_text(
        json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
