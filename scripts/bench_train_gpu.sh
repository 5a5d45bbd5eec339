#!/usr/bin/env bash
# Training throughput on one GPU: GPT-2 small (124M: d_model 768, 12 layers, 12 heads, seq 1024)
# in bf16 with train.device: cuda, on data kiln generates itself (kiln corpus -> tokenizer ->
# prepare, so a bare GPU machine needs nothing else). Prints the last live line (tokens/s and
# MFU against the GPU's bf16 dense peak, 989 TFLOP/s on H100/H200 SXM) and one summary line:
#   gpu-train <tokens/s> <MFU %> <peak>
# Usage: scripts/bench_train_gpu.sh [KILN_BINARY] [STEPS]   (a benchmark: it gates nothing)
# KILN_BENCH_WRAP: a command to run kiln train under (a profiler: scripts/gpu_check.sh's
# per-kernel breakdown uses Nsight Compute); its output goes to $KILN_BENCH_WRAP_LOG.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${1:-$root/build/trainer/cli/kiln}
steps=${2:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$kiln" corpus --out "$work/generated.jsonl" --docs 20000 --seed 5 >/dev/null
# The generated documents average ~60 tokens, and kiln's attention stops at document boundaries,
# so on them a step does a small part of the attention of PyTorch's reference, which attends
# over the whole window. Joined 40 at a time (~2,400 tokens) nearly every window holds one or two
# documents: about the same attention work on both sides. KILN_BENCH_SHORT_DOCS=1 keeps them.
if [[ ${KILN_BENCH_SHORT_DOCS:-0} == 1 ]]; then
  mv "$work/generated.jsonl" "$work/corpus.jsonl"
else
  python3 - "$work/generated.jsonl" "$work/corpus.jsonl" <<'PY'
import json, sys
texts = [json.loads(line)["text"] for line in open(sys.argv[1])]
with open(sys.argv[2], "w") as out:
    for i in range(0, len(texts), 40):
        out.write(json.dumps({"id": i // 40, "text": "\n".join(texts[i:i + 40])}) + "\n")
PY
fi
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 8192 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --val-fraction 0.01 \
  --quiet >/dev/null
# KILN_BENCH_FAMILY=llama: the Llama family at the same width (GQA 12/4 heads, SwiGLU 2048, RoPE,
# RMSNorm). KILN_BENCH_BATCH: sequences per step (8), one micro-batch.
# KILN_BENCH_ATTENTION=cudnn: cuDNN's fused SDPA instead of kiln's flash kernels (train.attention);
# =flash-wgmma: kiln's attention kernels on wgmma (sm_90a), forward and backward.
family=${KILN_BENCH_FAMILY:-gpt2}
attention=${KILN_BENCH_ATTENTION:-flash}
batch=${KILN_BENCH_BATCH:-8}
case $family in
  gpt2) model="{family: gpt2, d_model: 768, n_layers: 12, n_heads: 12, max_seq_len: 1024}" ;;
  llama) model="{family: llama, d_model: 768, n_layers: 12, n_heads: 12, n_kv_heads: 4, d_ff: 2048, max_seq_len: 1024}" ;;
  *) echo "bench_train_gpu.sh: KILN_BENCH_FAMILY is gpt2 or llama, not $family" >&2; exit 2 ;;
esac
cat >"$work/gpt2.yaml" <<YAML
model: $model
data: {tokenizer: $work/tok.json, train: $work/data/train.h5}
train: {steps: $steps, seq_len: 1024, batch_size: $batch, micro_batch_size: $batch, device: cuda, precision: bf16,
        attention: $attention}
optim: {lr: 6.0e-4, warmup_steps: $(( steps > 5 ? 5 : steps - 1 ))}
checkpoint: {every_steps: 0}
log: {every_steps: 5}
YAML
if [[ -n ${KILN_BENCH_WRAP:-} ]]; then
  $KILN_BENCH_WRAP "$kiln" train "$work/gpt2.yaml" --run-dir "$work/run" >"${KILN_BENCH_WRAP_LOG:-/dev/stdout}" 2>&1
  exit
fi
"$kiln" train "$work/gpt2.yaml" --run-dir "$work/run" >"$work/train.log" 2>&1 || { tail -20 "$work/train.log"; exit 1; }
grep '^device' "$work/train.log"
line=$(grep '^step' "$work/train.log" | tail -1)
echo "$line"
# "... | 123k tok/s | MFU 41.2% (peak 989 TFLOP/s bf16 dense) ..." -> the three figures.
tokens=$(grep -o '[0-9.]*[kMG]* tok/s' <<<"$line" | awk '{print $1}')
mfu=$(grep -o 'MFU [0-9.]*%' <<<"$line" | tr -dc '0-9.')
peak=$(grep -o '(peak [0-9.]* [A-Z]*FLOP/s' <<<"$line" | awk '{print $2, $3}')
echo "gpu-train ${tokens:-?} ${mfu:-?} ${peak:-?}"
