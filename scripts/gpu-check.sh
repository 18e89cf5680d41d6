#!/usr/bin/env bash
# The GPU check: run on a GPU machine from the folder that `cargo xtask gpu-kit` builds
# (target/gpu-kit, copied there with this script in it). Needs python3 with torch and transformers
# (for the reference numbers and to make the random BERT-base); no Rust, no network.
#
#   bash gpu-check.sh [OUT]        OUT: where gpu-check.json, gpu-check.md and gpu-check.log go
#                                  (default: ./gpu-check-out)
#
# OUT/details.tar.gz keeps the raw material (metrics.jsonl of each run, test logs, memory samples),
# OUT/cubecl-cache.tar.gz the compiled kernels and autotune results (see CACHE below).
#
# Steps, each under its own time limit, run in the order 2, 3, 4, 1 (GPU_CHECK_STEPS="train recipe
# encode parity" picks and orders them), the report rewritten after each (a check cut short still
# leaves the numbers measured so far):
#   1. parity: the CUDA tests (tiny BERT and GELU vs PyTorch/flex, 20 training updates vs PyTorch,
#      checkpoint resume, MiniLM scoring vs burn-flex), from the test binaries in the kit
#   2. training throughput and peak GPU memory: supervised SimCSE on a random BERT-base with KR-BERT's
#      vocabulary (configs/sup.toml: batch 128 triples, max_len 32), ours in f32 and bf16, PyTorch
#      fp32, tf32 and bf16 autocast
#   3. the configs/sup-xnli-minilm.toml recipe: KorSTS dev Spearman after one epoch, f32 and bf16
#   4. encode throughput: all-MiniLM-L6-v2 on KorSTS test, max_len 128, ours and PyTorch fp32/bf16
#
# Environment: GPU_CHECK_DEVICE (cuda; wgpu for a dry-run on Vulkan or Mesa's lavapipe, with a kit
# built by `cargo xtask gpu-kit --device wgpu`), GPU_CHECK_SMALL=1 (a tiny BERT and a few updates
# instead of BERT-base: for the dry-run), GPU_CHECK_BUDGET (seconds for all steps, default 540; a
# cold machine needs more than that: see CACHE below).
set -uo pipefail

KIT=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "${1:-gpu-check-out}" && cd "${1:-gpu-check-out}" && pwd)
WORK=$(mktemp -d /tmp/gpu-check.XXXX)
PARTS=$WORK/parts
mkdir -p "$PARTS"
DEVICE=${GPU_CHECK_DEVICE:-cuda}
SMALL=${GPU_CHECK_SMALL:-0}
BUDGET=${GPU_CHECK_BUDGET:-540}
START=$SECONDS
exec > >(tee "$OUT/gpu-check.log") 2>&1
REF="python3 $KIT/gpu_reference.py"
BIN=$WORK/bin

# cubecl compiles every kernel at run time (NVRTC) and autotunes each new matrix shape: on a fresh
# H200 the first BERT-base update took over 70 s. Both caches go to one folder that the binaries
# find through cubecl.toml in their working directory; it comes back as OUT/cubecl-cache.tar.gz,
# and a kit built with that file in .cache/gpu-kit/ starts from it.
CACHE=$WORK/cubecl-cache
mkdir -p "$CACHE"
[[ -f $KIT/cubecl-cache.tar.gz ]] && tar -xzf "$KIT/cubecl-cache.tar.gz" -C "$CACHE"
# Each run also logs what cubecl compiled ("[Compiling kernel]") and autotuned ("Fastest result",
# with the top 3 times) to NAME.cubecl.log; the report counts both per run.
cubecl_config() {
  local log=$WORK/$1.cubecl.log
  printf '[compilation]\ncache = { file = "%s/compiled" }\nlogger = { level = "basic", file = "%s" }\n\n' \
    "$CACHE" "$log" >"$WORK/cubecl.toml"
  printf '[autotune]\ncache = { file = "%s/autotune" }\nlogger = { level = "minimal", file = "%s" }\n' \
    "$CACHE" "$log" >>"$WORK/cubecl.toml"
}
cubecl_config setup
cd "$WORK" || exit 1

say() { echo "==> [$((SECONDS - START)) s] $*"; }
# The raw material behind the report (metrics, test logs, memory samples), however the script ends.
details() {
  # (cubecl-cache/ goes back on its own, below: its autotune files end in .log too)
  (cd "$WORK" && find . -path ./cubecl-cache -prune -o \( -name metrics.jsonl -o -name 'eval.json' -o -name '*.log' \
    -o -name '*.mem' -o -name '*.peak' -o -name '*.json' -path './torch-*' \) -print | tar -czf "$OUT/details.tar.gz" -T -) 2>/dev/null
}
finish() {
  details
  tar -czf "$OUT/cubecl-cache.tar.gz" -C "$CACHE" . 2>/dev/null
}
trap finish EXIT
# A step's time limit: its own, or what is left of the budget.
limit() { local left=$((BUDGET - (SECONDS - START))); ((left < $1)) && echo $((left > 5 ? left : 5)) || echo "$1"; }
part() { printf '%s\n' "$2" >"$PARTS/$1.json"; }
report() { $REF report "$PARTS" "$OUT" || echo "report failed"; }

# GPU memory in use (MiB) sampled every 100 ms while a command runs; its peak minus what was in
# use before is the command's peak. "null" where nvidia-smi is absent.
peak_run() {
  local name=$1 secs=$2
  shift 2
  cubecl_config "$name"
  if command -v nvidia-smi >/dev/null; then
    local base
    base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$WORK/$name.mem" &
    local sampler=$!
    timeout "$secs" "$@"
    local rc=$?
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    echo $(( $(sort -n "$WORK/$name.mem" | tail -1) - base )) >"$WORK/$name.peak"
    return $rc
  fi
  echo null >"$WORK/$name.peak"
  timeout "$secs" "$@"
}

say "kit $KIT, device $DEVICE, output $OUT"
python3 -c "import tarfile; tarfile.open('$KIT/payload.tar.xz').extractall('$WORK', filter='data')" || exit 1
chmod +x "$BIN"/*
GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
TORCH_CUDA=$(python3 -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
say "GPU: ${GPU:-none seen by nvidia-smi}; PyTorch with CUDA: $TORCH_CUDA"

# burn-cuda compiles its kernels with NVRTC at run time (cudarc loads libnvrtc.so.13 or .12).
# Without a CUDA toolkit on the library path, use the one in PyTorch's nvidia-cuda-nvrtc wheel.
NVRTC_NOTE="on the library path"
if [[ $DEVICE == cuda* ]] && ! ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so'; then
  dirs=$(python3 -c "import site; print(' '.join(site.getsitepackages()))" 2>/dev/null)
  lib=$(find /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib $dirs -name 'libnvrtc.so*' \
    ! -name '*builtins*' 2>/dev/null | sort | tail -1)
  if [[ -n $lib ]]; then
    export LD_LIBRARY_PATH=$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    NVRTC_NOTE="not on the library path: using $lib"
  else
    NVRTC_NOTE="not found (no CUDA toolkit, no nvidia-cuda-nvrtc wheel): the CUDA steps will fail"
  fi
fi
say "NVRTC: $NVRTC_NOTE"
part machine "$(python3 -c 'import json,sys; print(json.dumps(dict(zip(["gpu","nvrtc","device","small","torch_cuda"], sys.argv[1:]))))' \
  "${GPU:-none}" "$NVRTC_NOTE" "$DEVICE" "$SMALL" "$TORCH_CUDA")"

# The models: all-MiniLM-L6-v2 back to fp32 (the kit carries it in fp16, with only the word
# embeddings of the tokens that its texts use), and a random BERT-base.
$REF single "$WORK/minilm-fp16" "$WORK/minilm" || exit 1
if [[ $SMALL == 1 ]]; then
  $REF bert-base "$WORK/bert-base" "$KIT/shared-data/kr-bert/vocab_snu_char16424.txt" --small
  STEPS=4 BATCH=8
else
  $REF bert-base "$WORK/bert-base" "$KIT/shared-data/kr-bert/vocab_snu_char16424.txt"
  STEPS=25 BATCH=128
fi
report

step_parity() {
  say "1. parity: the $DEVICE tests"
  export SIMCSE_REPO_DIR=$KIT/repo SIMCSE_SHARED_DATA=$KIT/shared-data SIMCSE_MINILM_DIR=$WORK/minilm
  export SIMCSE_REQUIRE_WGPU=1
  for t in parity train eval; do
    # Autotune at its lightest: the tests check numbers, and each new shape is otherwise tuned.
    cubecl_config "tests-$t" # not test-*.log: those are the test logs below
    CUBECL_AUTOTUNE_LEVEL=minimal timeout "$(limit 150)" "$BIN/test-$t" "${DEVICE%%:*}" --nocapture --test-threads 1 >"$WORK/test-$t.log" 2>&1
    echo "exit $?" >>"$WORK/test-$t.log"
    cat "$WORK/test-$t.log"
  done
  $REF tests "$WORK"/test-*.log >"$PARTS/parity.json"
  report
}

step_train() {
  say "2. training throughput: supervised SimCSE, random BERT-base, batch $BATCH, max_len 32"
  for p in f32 bf16; do
    peak_run ours-train-$p "$(limit 180)" "$BIN/simcse-train" --device "$DEVICE" --config "$KIT/configs/sup.toml" \
      --init "$WORK/bert-base" --train-file "$KIT/data/kornli_triples.parquet" --dev-file "" \
      --out "$WORK/run-base-$p" --batch-size "$BATCH" --max-steps "$STEPS" --log-steps 1 --prefetch 8 \
      --save-steps 0 --precision $p
    $REF ours-train "$WORK/run-base-$p/metrics.jsonl" "$WORK/ours-train-$p.peak" "$BATCH" $p >"$PARTS/train-ours-$p.json"
    report
  done
  if [[ $TORCH_CUDA == 1 ]]; then
    for p in fp32 tf32 bf16; do
      peak_run torch-train-$p "$(limit 45)" $REF train "$WORK/bert-base" "$KIT/data/kornli_triples.parquet" \
        --precision $p --batch-size "$BATCH" --steps "$STEPS" >"$WORK/torch-train-$p.json"
      $REF merge "$WORK/torch-train-$p.json" "$WORK/torch-train-$p.peak" >"$PARTS/train-torch-$p.json"
      report
    done
  fi
}

step_recipe() {
  say "3. the sup-xnli-minilm recipe (CPU: KorSTS dev Spearman 61.41 after one epoch)"
  extra=()
  [[ $SMALL == 1 ]] && extra=(--max-steps 2 --eval-steps 0)
  for p in f32 bf16; do
    t0=$SECONDS
    peak_run recipe-$p "$(limit 120)" "$BIN/simcse-train" --device "$DEVICE" --config "$KIT/configs/sup-xnli-minilm.toml" \
      --init "$WORK/minilm" --train-file "$KIT/data/kornli_triples.parquet" \
      --dev-file "$KIT/data/sts/korsts_dev.parquet" --out "$WORK/run-minilm-$p" --precision $p "${extra[@]}"
    $REF recipe "$WORK/run-minilm-$p/metrics.jsonl" "$WORK/recipe-$p.peak" $((SECONDS - t0)) $p >"$PARTS/recipe-$p.json"
    report
  done
}

step_encode() {
  say "4. encode throughput: all-MiniLM-L6-v2, KorSTS test, max_len 128, batch 128"
  peak_run ours-encode "$(limit 90)" "$BIN/simcse-eval" --device "$DEVICE" --model "$WORK/minilm" \
    --data-dir "$KIT/data" --sets korsts_dev,korsts_test --batch-size 128 --max-len 128 --out "$WORK/eval-minilm"
  $REF ours-encode "$WORK/eval-minilm/eval.json" "$WORK/ours-encode.peak" >"$PARTS/encode-ours.json"
  report
  if [[ $TORCH_CUDA == 1 ]]; then
    for p in fp32 bf16; do
      peak_run torch-encode-$p "$(limit 30)" $REF encode "$WORK/minilm" "$KIT/data" --precision $p \
        >"$WORK/torch-encode-$p.json"
      $REF merge "$WORK/torch-encode-$p.json" "$WORK/torch-encode-$p.peak" >"$PARTS/encode-torch-$p.json"
      report
    done
  fi
}

# The most wanted numbers first: a budget that runs out cuts the last step, not the throughput.
for step in ${GPU_CHECK_STEPS:-train recipe encode parity}; do
  "step_$step"
done
say "done: $OUT/gpu-check.md"
cat "$OUT/gpu-check.md"
