#!/usr/bin/env bash
# Every GPU measurement of the project in one go, for a lent CUDA machine (see README,
# Benchmarks). Writes logs and JSON reports under ${OUT:-bench/out}. Each step runs even
# when an earlier one failed; the exit status says whether all passed.
set -u
out=${OUT:-bench/out}; mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
status=0
step() { echo "=== $*"; "$@" 2>&1 | tee -a "$out/gpu.log" || status=1; }
step nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__, torch.cuda.get_device_name())"
# stage one: UCF-Crime-like 320x240 30 fps, then 720p 25 fps; random ViT-B/16 in fp16
step python3 bench/extract.py --model vit-b-16 --device cuda --batch-size 256 --videos 32 --seconds 60 --size 320x240 --rate 30 --naive-frames 2000
step python3 bench/extract.py --model vit-b-16 --device cuda --batch-size 256 --videos 32 --seconds 15 --size 1280x720 --rate 25 --naive-frames 1000
# stage two: preset step time at UCF-Crime scale, extrapolated to 50 epochs
step python3 bench/train_time.py --small --steps 20 --device cuda --model vit-b-16
# the whole pipeline on CUDA
step python3 -m pipeline demo --device cuda --workdir /tmp/demo_gpu
cp bench/out/*.json "$out"/ 2>/dev/null
exit $status
