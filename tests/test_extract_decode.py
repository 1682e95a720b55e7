"""Stage one's decoding: colour exactly as ffmpeg converts it, reused buffers, the GPU
decoder's fallback to the CPU, and the devices that encode."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

from extract import extract_videos
from extract.colour import Colour
from extract.decode import FrameStream, ffmpeg_command
from extract.devices import EncoderPool, encoder_devices
from extract.encode import FrameEncoder
from extract.ffmpeg_bin import ffmpeg_exe
from extract.probe import probe
from features import UserError, open_store
from features.clip_loader import CLIP_MEAN, CLIP_STD, load_clip
from tests.media import make_video

TAGS = {  # name: (x264 colour options, what the probe must read)
    "untagged": ([], Colour("bt601", False)),
    "bt601_tv": (["-colorspace", "bt470bg", "-color_range", "tv"], Colour("bt601", False)),
    "bt709_tv": (["-colorspace", "bt709", "-color_range", "tv"], Colour("bt709", False)),
    "bt601_pc": (["-colorspace", "smpte170m", "-color_range", "pc"], Colour("bt601", True)),
    "bt709_pc": (["-colorspace", "bt709", "-color_range", "pc"], Colour("bt709", True)),
    "bt2020_tv": (["-colorspace", "bt2020nc", "-color_range", "tv"], Colour("bt2020", False)),
}


def _raw(path, pix_fmt: str) -> np.ndarray:
    return np.frombuffer(subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-pix_fmt", pix_fmt,
         "-f", "rawvideo", "-"], capture_output=True, check=True).stdout, np.uint8)


@pytest.mark.parametrize("name", list(TAGS))
def test_yuv_to_rgb_in_torch_is_ffmpegs_own_conversion(tmp_path, tiny_clip, name):
    """Lossless 4:4:4 clips (no resampling anywhere): ffmpeg's rgb24 output against our
    fused conversion, undone back to 0..255. Only rounding may differ (ffmpeg: 8-bit output,
    fixed-point coefficients)."""
    x264, colour = TAGS[name]
    path = make_video(tmp_path / f"{name}.mp4", size="224x224", seconds=0.2,
                      extra=["-pix_fmt", "yuv444p", "-qp", "0", *x264])
    assert probe(str(path)).colour == colour
    rgb = _raw(path, "rgb24").reshape(-1, 224, 224, 3).astype(np.float32)
    yuv = torch.from_numpy(_raw(path, "yuv444p").reshape(-1, 3, 224, 224).copy())
    encoder = FrameEncoder(load_clip(tiny_clip, "cpu"), batch_size=8)
    with torch.inference_mode():
        pixels = encoder.pixels(yuv, colour).permute(0, 2, 3, 1).numpy()
    ours = (pixels * np.array(CLIP_STD) + np.array(CLIP_MEAN)) * 255
    assert np.abs(ours - rgb).max() < 0.6
    assert rgb.std() > 30                       # colourful: a wrong matrix would show


def test_frames_land_in_a_few_reused_buffers(tmp_path, tiny_clip):
    """Nothing is allocated per chunk: a 60-frame video read 8 frames at a time passes
    through the same 3 buffers, and the encoder's float buffers stay the same too."""
    path = make_video(tmp_path / "clip.mp4", seconds=2.4)
    stream = FrameStream(str(path), probe(str(path)), chunk=8, ring=3)
    storage, rows = set(), 0
    encoder = FrameEncoder(load_clip(tiny_clip, "cpu"), batch_size=8)
    pixels = set()
    for chunk in stream:
        storage.add(chunk.frames.untyped_storage().data_ptr())
        rows += len(chunk.frames)
        with torch.inference_mode():
            pixels.add(encoder.pixels(chunk.frames, stream.colour).data_ptr())
    assert rows == 60 and len(storage) == 3 and len(pixels) == 1


def _nvdec_refused_ffmpeg(tmp_path):
    """An ffmpeg that refuses every NVDEC decode as a GPU does for an unsupported profile
    (then behaves normally): the same on machines with and without a GPU."""
    wrapper = tmp_path / "ffmpeg_refuses_nvdec.sh"
    wrapper.write_text(f"""#!/bin/sh
case "$*" in
  *hwaccel*) echo "[h264 @ 0x1] [error] Failed setup for format cuda: hwaccel initialisation \
returned error." >&2
             echo "[error] Impossible to convert between the formats supported by the filter \
'graph 0 input from stream 0:0' and the filter 'auto_scale_0'" >&2; exit 234;;
esac
exec "{ffmpeg_exe()}" "$@"
""")
    wrapper.chmod(0o755)
    return wrapper


@pytest.fixture
def cpu_store(tmp_path_factory, tiny_clip):
    root = tmp_path_factory.mktemp("fallback")
    make_video(root / "videos" / "a.mp4", seconds=1.2)
    make_video(root / "videos" / "b.mkv", size="176x144", seconds=1.0, extra=["-bf", "3"])
    make_video(root / "videos" / "rotated.mp4", seconds=0.6, rotate=90)
    out = extract_videos(root / "videos", out=root / "cpu.h5", model=tiny_clip, device="cpu",
                         decoder="cpu", stride=2, progress=False).out
    return root / "videos", out


def _assert_same_as(cpu_store, out, reason: str, rotated_reason: str):
    with open_store(cpu_store) as a, open_store(out) as b:
        assert a.video_ids == b.video_ids == ["a", "b", "rotated"]
        for vid in a.video_ids:
            np.testing.assert_array_equal(a.embeddings(vid)[()], b.embeddings(vid)[()])
            np.testing.assert_array_equal(a.timestamps_ms(vid), b.timestamps_ms(vid))
            np.testing.assert_array_equal(a.frame_index(vid), b.frame_index(vid))
            attrs = b.video_attrs(vid)
            assert attrs["decoder"] == "cpu"
            assert (rotated_reason if vid == "rotated" else reason) in attrs["decoder_fallback"]
            assert a.video_attrs(vid)["decoder_fallback"] == ""


def test_videos_the_gpu_decoder_refuses_are_decoded_on_the_cpu(cpu_store, tiny_clip, tmp_path,
                                                               monkeypatch):
    videos, cpu = cpu_store
    monkeypatch.setenv("PIPELINE_FFMPEG", str(_nvdec_refused_ffmpeg(tmp_path)))
    ffmpeg_exe.cache_clear()
    try:
        res = extract_videos(videos, out=tmp_path / "nvdec.h5", model=tiny_clip, device="cpu",
                             decoder="nvdec", stride=2, progress=False)
    finally:
        ffmpeg_exe.cache_clear()
    assert not res.failed and len(res.done) == 3, res.summary()
    _assert_same_as(cpu, res.out, "Failed setup for format cuda", "display rotation")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU decoder")
def test_without_cuda_forcing_the_gpu_decoder_still_extracts_everything(cpu_store, tiny_clip,
                                                                        tmp_path):
    videos, cpu = cpu_store
    res = extract_videos(videos, out=tmp_path / "nvdec.h5", model=tiny_clip, device="auto",
                         decoder="nvdec", stride=2, progress=False)
    assert not res.failed and len(res.done) == 3, res.summary()
    _assert_same_as(cpu, res.out, "nvdec", "display rotation")


def test_nvdec_command_uses_options_this_ffmpeg_has(tmp_path):
    """The GPU command cannot run here; check its shape, and every scale_cuda option it
    uses against the binary's own help."""
    path = make_video(tmp_path / "clip.mp4", seconds=0.2)
    cmd = ffmpeg_command(str(path), probe(str(path)), stride=3, decoder="nvdec", gpu=1)
    before_input = cmd[:cmd.index("-i")]
    for opt, value in (("-hwaccel", "cuda"), ("-hwaccel_output_format", "cuda"),
                       ("-hwaccel_device", "1")):
        assert before_input[before_input.index(opt) + 1] == value
    graph = cmd[cmd.index("-filter_complex") + 1]
    order = ["select=", "scale_cuda=", "hwdownload", "]format=yuv444p", "crop="]
    assert [graph.index(f) for f in order] == sorted(graph.index(f) for f in order)
    assert "showinfo" not in graph and cmd[cmd.index("-pix_fmt") + 1] == "yuv444p"
    helptext = subprocess.run([ffmpeg_exe(), "-hide_banner", "-h", "filter=scale_cuda"],
                              capture_output=True, text=True).stdout
    if "Unknown filter" in helptext or not helptext.strip():
        pytest.skip("this ffmpeg has no scale_cuda")
    scale_cuda = graph[graph.index("scale_cuda="):].split("[", 1)[0].split(",")[0]
    for option in scale_cuda.split("=", 1)[1].split(":")[2:]:
        assert f" {option.split('=')[0]} " in helptext, option


def test_device_lists_name_gpus_and_videos_go_to_the_least_busy(monkeypatch):
    assert encoder_devices("cpu") == [torch.device("cpu")]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert encoder_devices("auto") == [torch.device("cuda", i) for i in range(4)]
    assert encoder_devices("cuda") == encoder_devices("auto")
    assert encoder_devices("cuda:1") == [torch.device("cuda:1")]
    assert encoder_devices("cuda:0, cuda:2") == [torch.device("cuda:0"), torch.device("cuda:2")]
    for bad in ("cuda:4", "cuda:1,cuda:1", "tpu"):
        with pytest.raises(UserError, match="--device"):
            encoder_devices(bad)

    pool = EncoderPool(["gpu0", "gpu1", "gpu2"])
    with pool.take() as first, pool.take() as second:
        with pool.take() as third:
            assert (first, second, third) == ("gpu0", "gpu1", "gpu2")
        with pool.take() as again:              # gpu2 is free again, the others busy
            assert again == "gpu2"
    with pool.take() as idle:
        assert idle == "gpu0"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_one_line():
    with pytest.raises(UserError, match="--device cuda: no CUDA device"):
        encoder_devices("cuda")
