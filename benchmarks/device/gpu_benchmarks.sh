#!/bin/bash
# Run ON the GPU machine from the repository root (the `device` tool's `run`, with carry [".whl"]):
#   bash benchmarks/device/gpu_benchmarks.sh
# Installs the carried wheels beside the machine's own torch (hdl_monai itself from the working tree via
# PYTHONPATH: its pinned CPU torch must not be installed there), then times the phase-synthesis trainer
# at the bundle's small size and at the paper's size (float32 and mixed precision). Results go to
# $OUT (the device tool brings them back) or benchmarks/results.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
out=${OUT:-benchmarks/results}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, monai, ignite; print('torch', torch.__version__, 'monai', monai.__version__, 'ignite', ignite.__version__)"
python3 benchmarks/phase_speed.py --device cuda --iterations 50 --warmup 5 --out "$out"
python3 benchmarks/phase_speed.py --device cuda --preset paper --iterations 20 --warmup 5 --out "$out"
python3 benchmarks/phase_speed.py --device cuda --preset paper --amp --iterations 20 --warmup 5 --out "$out"
