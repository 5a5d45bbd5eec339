#!/usr/bin/env bash
# Benchmark (not a test): one CPU training step (forward + backward + AdamW) of the same model
# in kiln and in PyTorch (transformers' GPT-2 / Llama), same shapes, same thread count, side by
# side in one run. Prints tokens/s for both, the ratio, and kiln's GFLOP/s against the fp32
# peak of the cores used (cores x clock x FLOPs/cycle: the clock measured by a dependent-add
# chain, turbo included; FLOPs/cycle from the AVX flags in /proc/cpuinfo).
# kiln runs each shape in every precision of KILN_BENCH_PRECISIONS (default "fp32 bf16": bf16
# stores weights and activations in bf16 with fp32 compute and fp32 masters); PyTorch in fp32.
# Usage: scripts/bench_train_cpu.sh [threads] [steps]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KILN_BUILD_DIR:-$root/build}
threads=${1:-$(nproc)}
steps=${2:-3}
precisions=${KILN_BENCH_PRECISIONS:-fp32 bf16}
[[ -x $build/tests/kiln_train_step_bench ]] || "$root/scripts/build.sh" >/dev/null
python3 -c "import torch, transformers" 2>/dev/null || pip install -q torch transformers
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads

# name family d_model layers heads kv_heads d_ff vocab seq batch
shapes=(
  "gpt2-small/T=128  gpt2  768 12 12 12 3072 50257 128 4"
  "llama-small/T=256 llama 512  8  8  4 1408 32000 256 4"
)
printf '%-18s %9s %12s %12s %7s %12s %8s\n' model precision "kiln tok/s" "torch tok/s" ratio "kiln GF/s" "of peak"
for shape in "${shapes[@]}"; do
  read -r name family d layers heads kv dff vocab seq batch <<<"$shape"
  read -r _ torch_tps _ _ < <(python3 "$root/scripts/bench_train_torch.py" \
    "$family" "$d" "$layers" "$heads" "$kv" "$dff" "$vocab" "$seq" "$batch" "$steps" "$threads")
  for precision in $precisions; do
    read -r _ kiln_tps kiln_gflops _ peak _ < <("$build/tests/kiln_train_step_bench" \
      "$family" "$d" "$layers" "$heads" "$kv" "$dff" "$vocab" "$seq" "$batch" "$steps" "$precision")
    awk -v n="$name" -v q="$precision" -v k="$kiln_tps" -v t="$torch_tps" -v g="$kiln_gflops" -v p="$peak" \
      'BEGIN {printf "%-18s %9s %12.0f %12.0f %6.2fx %12.1f %7.1f%%\n", n, q, k, t, k / t, g, 100 * g / p}'
  done
done
echo "threads: $threads, steps timed: $steps (after one warm-up), peak used: ${peak} GFLOP/s fp32 (measured clock x FLOPs/cycle)"
