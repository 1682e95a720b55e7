#!/usr/bin/env bash
# Stage one on a lent CUDA machine, in one go (budget: ~8 min on one H200 + 16 cores; see
# docs/benchmarks.md, Stage one). In order:
#   1. the machine: nproc, the cgroup CPU quota, GPUs, versions;
#   2. what ffmpeg alone decodes with 1/2/4/8/16 processes at 320x240: the old rgb24 path,
#      the yuv444p CPU path, NVDEC (bench/ffmpeg_scaling.py): is decoding CPU-bound there?
#   3. bare ViT-B/16 fp16 encoder frames/s and end-to-end frames/s, NVDEC and CPU decoders
#      side by side, on 32 x 60 s 320x240 30 fps clips, then 32 x 15 s 720p 25 fps clips
#      (bench/extract.py, random ViT-B/16 weights);
#   4. do NVDEC and the CPU decoder make the same rows (bench/decoders_agree.py)?
# Without a GPU (a dry run) the clips are short, steps 3-4 run on the CPU path only where
# cheap, and every GPU part is skipped with a line saying so. ALL=1 adds the stage-two
# measurements (bench/train_time.py, the demo on CUDA). Logs and JSON under ${OUT:-bench/out};
# each step runs even when an earlier one failed; the exit status says whether all passed.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-bench/out}; mkdir -p "$out"; log="$out/gpu.log"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
status=0
step() {
    echo "=== $*" | tee -a "$log"
    timeout "${STEP_TIMEOUT:-300}" "$@" 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || { status=1; echo "=== FAILED: $*" | tee -a "$log"; }
}
skip() { echo "=== skipped (no GPU): $*" | tee -a "$log"; }

gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 \
        && $py -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    gpu=1
fi
echo "=== nproc $(nproc); cgroup cpu.max: $(cat /sys/fs/cgroup/cpu.max 2>/dev/null \
    || echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null) (v1 quota)"); GPU: $gpu" \
    | tee -a "$log"
if [ $gpu = 1 ]; then
    step nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
step $py -c "import torch, transformers; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"

if [ $gpu = 1 ]; then
    step $py bench/ffmpeg_scaling.py --seconds 20 --parallel 1,2,4,8,16 --nvdec
    step $py bench/extract.py --model vit-b-16 --device cuda --batch-size 256 --videos 32 \
        --seconds 60 --size 320x240 --rate 30 --naive-frames 2000 --decoders nvdec,cpu
    step $py bench/extract.py --model vit-b-16 --device cuda --batch-size 256 --videos 32 \
        --seconds 15 --size 1280x720 --rate 25 --naive-frames 1000 --decoders nvdec,cpu
    step $py bench/decoders_agree.py --model vit-b-16 --device cuda
else
    step $py bench/ffmpeg_scaling.py --seconds 4 --parallel 1,2,4,8,16
    skip "NVDEC column of ffmpeg_scaling, ViT-B/16 fp16 encoder and end-to-end on CUDA"
    step $py bench/decoders_agree.py --model tiny --device cpu
fi

if [ "${ALL:-0}" = 1 ]; then
    if [ $gpu = 1 ]; then
        step $py bench/train_time.py --small --steps 20 --device cuda --model vit-b-16
        step $py -m pipeline demo --device cuda --workdir "$out/demo_gpu"
    else
        skip "stage two on CUDA (ALL=1)"
    fi
fi
cp bench/out/*.json "$out"/ 2>/dev/null
exit $status
