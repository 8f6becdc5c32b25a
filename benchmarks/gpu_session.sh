#!/usr/bin/env bash
# The GPU measurements in docs/BENCHMARKS.md, as one script (a lent GPU machine has minutes, not hours).
# Runs from the repository root without installing (PYTHONPATH); needs torch, transformers, accelerate.
# Writes logs and JSON under ${OUT:-gpu-results}.
set -uo pipefail
out="${OUT:-gpu-results}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.txt"
python -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$out/gpu.txt"
step() { local name=$1 limit=$2; shift 2; echo "== $name"; timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"; }
bench=(python benchmarks/bench_train.py --preset kantai --device cuda --hf-steps 60 --eval-every 10)
step kantai-b256 120 "${bench[@]}" --batch-size 256 --json "$out/kantai-b256.json"
step kantai-b32 120 "${bench[@]}" --json "$out/kantai-b32.json"
step kantai-b256-eager 60 "${bench[@]}" --batch-size 256 --compile off --json "$out/kantai-b256-eager.json"
[ "${SKIP_SCALING:-}" ] || step scaling 120 python benchmarks/bench_train.py --device cuda --no-compare --scaling --compile off --json "$out/scaling.json"
# what the defaults' model knows after 15 s and 60 s on this GPU, against the tutorial's Trainer (issue 13)
step quality 300 python benchmarks/bench_quality.py --device cuda --budgets 15,60 --json "$out/quality.json"
