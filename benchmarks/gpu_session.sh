#!/usr/bin/env bash
# Issue 17's GPU measurements as one script: a lent GPU machine has about 15 minutes, start-up included,
# and one command may run 10, so the script runs in two parts of about 5-6 minutes each (PART=1, PART=2;
# both when PART is unset), every step with its own time limit, writing as it goes. Part 1 holds what the
# issue's targets need first (the CUDA tests, MFU at the defaults, the first run to final/, resume).
#
#   here, once:      bash benchmarks/gpu_wheels.sh        (the wheels the GPU image lacks, into .whl)
#   on the GPU:      run(carry=[".whl"], command="PART=1 OUT=$OUT bash benchmarks/gpu_session.sh", timeout_s=420)
#                    then the same with PART=2
#   try it first:    DEVICE=cpu QUICK=1 OUT=/tmp/gpu-try bash benchmarks/gpu_session.sh
#
# Order: the CUDA tests, the defaults' tokens/s and MFU for tiny/small/kantai (and kantai's best setting),
# the tutorial pipeline's rate beside kantai's, `kantai train` to final/ and its answer, the quality
# benchmark's GPU budgets, exact resume, then `kantai gpu --json` beside nvidia-smi and the Device pane
# in a real terminal while a run trains. Logs and JSON go under ${OUT:-gpu-results}; copy what is kept to
# benchmarks/results/ and tests/fixtures/gpu/.
set -uo pipefail
out="${OUT:-gpu-results}"
device="${DEVICE:-cuda}"
quick="${QUICK:-}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1 && [ "$device" != cpu ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export XDG_CACHE_HOME="$out/xdg/cache" XDG_DATA_HOME="$out/xdg/data" XDG_CONFIG_HOME="$out/xdg/config"
began=$(date +%s)
failed=()
step() {  # step NAME LIMIT_S COMMAND...: run it with its limit, log it, note a failure and go on
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s, $(($(date +%s) - began))s into the session)"
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  tail -n 4 "$out/$name.log"
  [ "$rc" -eq 0 ] || { echo "!! $name exited $rc"; failed+=("$name:$rc"); }
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv 2>&1 || echo "no nvidia-smi"
  python3 -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__)"
  nproc
} | tee "$out/machine.txt"

if [ "$quick" ]; then  # a CPU rehearsal: the same steps at toy sizes
  steps=8 presets=tiny extra=tiny:64 preset=tiny hf_steps=12 budgets=20 resume_steps=6 e2e=20s capture_s=40
else
  steps=300 presets=tiny,small,kantai extra=kantai:512 preset=kantai hf_steps=60 budgets=10,60 resume_steps=40 \
    e2e=30s capture_s=75
fi

part="${PART:-all}"
if [ "$part" != 2 ]; then
  # 1. the CUDA path on the real GPU: no host sync between log steps, masks on the device, batch measured
  step cuda-tests 100 python3 -m pytest -q -p no:cacheprovider -n 0 tests/gpu
  # 2. the defaults' tokens/s and MFU (nominal and measured peaks) per preset; kantai's best setting beside them
  step defaults 170 python3 benchmarks/bench_train.py --device "$device" --no-compare --defaults --presets "$presets" \
    --steps "$steps" ${quick:+--measure --compile off} --extra "$extra" --json "$out/defaults.json"
  # 3. a new user's first run: `kantai train` on the bundled books to final/, timed whole, then the tutorial's prompt
  step first-run 100 bash -c "set -e; start=\$(date +%s.%N); python3 -m kantai_tui train kant --time $e2e \
    --runs-dir '$out/runs' --run first --device $device; end=\$(date +%s.%N); \
    python3 -c \"print('kantai train to final/:', round(\$end - \$start, 1), 's')\"; \
    python3 benchmarks/ask.py '$out/runs/first/final'"
  # 4. stopped and resumed against unbroken, at the defaults (batch measured once, CUDA graphs)
  step resume 90 python3 benchmarks/check_resume.py --device "$device" --steps "$resume_steps" --json "$out/resume.json"
fi
if [ "$part" != 1 ]; then
  # 5. the tutorial's Trainer pipeline against kantai's defaults on the same GPU (rate, MFU, time to its loss)
  step tutorial-rate 90 python3 benchmarks/bench_train.py --device "$device" --preset "$preset" \
    --hf-steps "$hf_steps" --eval-every 10 ${quick:+--compile off} --json "$out/tutorial-rate.json"
  # 6. what the defaults' model knows after each GPU budget, against the tutorial's Trainer
  step quality 220 python3 benchmarks/bench_quality.py --device "$device" --budgets "$budgets" --json "$out/quality.json"
  # 7. kantai gpu --json beside nvidia-smi while a run trains, and the Device pane in a real terminal
  step device-capture 100 python3 benchmarks/capture_device.py --device "$device" --seconds "$capture_s" --out "$out/device"
fi

echo "== done in $(($(date +%s) - began))s; failed: ${failed[*]:-none}"
[ ${#failed[@]} -eq 0 ]
