#!/usr/bin/env bash
# kiln's flash-attention kernels beside cuDNN's fused SDPA and FlashAttention-2 (both through
# PyTorch's scaled_dot_product_attention) on a GPU (issue 13): bf16, head dim 128, 16 heads and
# 16 KV heads, causal and full, T = 1024, 4096, 16384 at 16384 tokens a batch (B = 16, 4, 1).
# Forward and backward TFLOP/s, one table row a shape: kiln (the better of its 4- and 8-warp
# blocks, forward and backward apart), cuDNN, the ratio kiln / cuDNN, and FA2 (the flash backend);
# then kiln's wgmma kernels (sm_90a builds), forward and backward, and their ratios to cuDNN, with
# the largest difference of out, dq, dk, dv from the mma.sync kernels' (bf16 rounding: ~1e-2).
#
#   scripts/bench_attention.sh [KILN_BENCH_BINARY] [REPS]
#
# KILN_BENCH_BINARY defaults to build/tests/kiln_cuda_attention_bench under the repository root,
# REPS (timed calls, median) to 20. KILN_BENCH_ATTENTION_T="1024 4096 16384" picks the lengths.
# Each command runs under a 120 s timeout; one that fails or is unsupported shows as "-". The raw
# output of every command goes to $KILN_BENCH_LOG (default: a new temporary file), named at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bench=${1:-$root/build/tests/kiln_cuda_attention_bench}
reps=${2:-20}
lengths=${KILN_BENCH_ATTENTION_T:-1024 4096 16384}
log=${KILN_BENCH_LOG:-$(mktemp "${TMPDIR:-/tmp}/kiln_bench_attention.XXXXXX")}
tokens=16384 heads=16 kv_heads=16 dim=128

# run COMMAND...: the command's output (stdout and stderr) on stdout and appended to the log;
# never fails. --foreground keeps the command in this script's process group, so a timeout
# around the whole script ends it too.
run() {
  echo "== $*" >>"$log"
  timeout --foreground 120 "$@" 2>&1 | tee -a "$log" || echo "== exit status $?" >>"$log"
}

# tflops PREFIX KEY: the highest TFLOP/s after KEY (fwd or bwd) in the lines of stdin whose first
# word is PREFIX ("attention" for kiln, "torch-attention" for PyTorch), laid out as
# "KEY <ms> ms <TFLOP/s> TFLOP/s"; "-" when there is none.
tflops() {
  awk -v prefix="$1" -v key="$2" '
    $1 == prefix {
      for (i = 1; i + 4 <= NF; i++)
        if ($i == key && $(i + 2) == "ms" && $(i + 4) == "TFLOP/s" && $(i + 3) ~ /^[0-9]+(\.[0-9]*)?$/) {
          value = $(i + 3) + 0
          if (!found || value > best) best = value
          found = 1
        }
    }
    END { if (found) print best; else print "-" }'
}

# ratio A B: A / B to two decimals, "-" unless both are positive numbers.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && a > 0 && b > 0) printf "%.2f\n", a / b; else print "-" }'
}

row='%-22s %-6s %8s %9s %6s %8s %9s %6s %7s %7s %9s %6s %9s %6s %9s\n'
echo "attention TFLOP/s (bf16; ratio = kiln / cuDNN; FA2 = PyTorch's flash backend; - = failed or unsupported):"
# shellcheck disable=SC2059
printf "$row" shape mask kiln-fwd cudnn-fwd ratio kiln-bwd cudnn-bwd ratio fa2-fwd fa2-bwd wgmma-fwd ratio wgmma-bwd ratio max-diff
for mask in causal full; do
  for t in $lengths; do
    b=$((tokens / t))
    ((b >= 1)) || b=1
    shape=(B"$b" T"$t" H"$heads/$kv_heads" D"$dim")
    kiln=$(run "$bench" "$b" "$t" "$heads" "$kv_heads" "$dim" "$reps" "$mask")
    cudnn=$(run python3 "$root/scripts/bench_attention_torch.py" "$b" "$t" "$heads" "$kv_heads" "$dim" "$reps" \
              --mask "$mask" --backend cudnn)
    flash=$(run python3 "$root/scripts/bench_attention_torch.py" "$b" "$t" "$heads" "$kv_heads" "$dim" "$reps" \
              --mask "$mask" --backend flash)
    kiln_fwd=$(tflops attention fwd <<<"$kiln") kiln_bwd=$(tflops attention bwd <<<"$kiln")
    cudnn_fwd=$(tflops torch-attention fwd <<<"$cudnn") cudnn_bwd=$(tflops torch-attention bwd <<<"$cudnn")
    flash_fwd=$(tflops torch-attention fwd <<<"$flash") flash_bwd=$(tflops torch-attention bwd <<<"$flash")
    wgmma_fwd=$(tflops attention-wgmma fwd <<<"$kiln") wgmma_bwd=$(tflops attention-wgmma bwd <<<"$kiln")
    wgmma_diff=$(awk '$1 == "attention-wgmma" { for (i = 1; i < NF; i++) if ($i == "max-diff") {
                          if (!found || $(i + 1) + 0 > d + 0) d = $(i + 1); found = 1 } }
                      END { print found ? d : "-" }' <<<"$kiln")
    # shellcheck disable=SC2059
    printf "$row" "${shape[*]}" "$mask" "$kiln_fwd" "$cudnn_fwd" "$(ratio "$kiln_fwd" "$cudnn_fwd")" \
      "$kiln_bwd" "$cudnn_bwd" "$(ratio "$kiln_bwd" "$cudnn_bwd")" "$flash_fwd" "$flash_bwd" \
      "$wgmma_fwd" "$(ratio "$wgmma_fwd" "$cudnn_fwd")" "$wgmma_bwd" "$(ratio "$wgmma_bwd" "$cudnn_bwd")" "$wgmma_diff"
  done
done
echo "raw output of every command: $log"
