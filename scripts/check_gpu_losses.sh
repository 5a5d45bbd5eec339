#!/usr/bin/env bash
# The same small Llama (d 256, 4 layers, 4 heads of 64 (GQA 4/2), seq 128, batch 8) trained for
# STEPS steps on the CPU in fp32, on the CUDA device in fp32 (the fp32 kernels) and in bf16 (the
# tensor-core attention, bf16 GEMMs), on the same data and seed; prints the per-step loss
# agreement, for scripts/gpu_check.sh:
#   gpu-losses <steps> fp32 worst <rel> final <rel> bf16 worst <rel> final <rel>
# (relative to the CPU's loss at each step). A check that reports; scripts/gpu_check.sh shows it.
# Usage: scripts/check_gpu_losses.sh [KILN_BINARY] [STEPS]   (KILN_CUDA_DEVICE=emulated: on the CPU)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${1:-$root/build/trainer/cli/kiln}
steps=${2:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$kiln" corpus --out "$work/corpus.jsonl" --docs 6000 --seed 11 >/dev/null
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 1000 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --val-fraction 0.01 \
  --quiet >/dev/null
cat >"$work/small.yaml" <<YAML
model: {family: llama, d_model: 256, n_layers: 4, n_heads: 4, n_kv_heads: 2, max_seq_len: 128}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5}
train: {steps: $steps, seq_len: 128, batch_size: 8, micro_batch_size: 8, seed: 3}
optim: {lr: 1.0e-3, warmup_steps: $(( steps > 10 ? 10 : steps - 1 ))}
checkpoint: {every_steps: 0}
log: {every_steps: 1}
YAML
run() {  # run NAME [--set ...]
  local name=$1
  shift
  "$kiln" train "$work/small.yaml" --run-dir "$work/$name" "$@" >"$work/$name.log" 2>&1 || { tail -5 "$work/$name.log" >&2; exit 1; }
}
losses() { grep -o '"loss":[^,}]*' "$work/$1/metrics.jsonl" | cut -d: -f2; }
compare() {  # compare NAME: "worst <rel> final <rel>" against the CPU run
  paste <(losses "$1") <(losses cpu) | awk '
    { d = $1 - $2; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2); if (r > worst) worst = r; last = r }
    END { printf "worst %.2e final %.2e", worst, last }'
}
run cpu --set train.device=cpu --set train.precision=fp32
run fp32 --set train.device=cuda --set train.precision=fp32
run bf16 --set train.device=cuda --set train.precision=bf16
echo "gpu-losses $steps fp32 $(compare fp32) bf16 $(compare bf16) (cpu final loss $(losses cpu | tail -1))"
