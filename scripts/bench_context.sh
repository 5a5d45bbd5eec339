#!/usr/bin/env bash
# Benchmark (not a test): context length vs tokens/s and peak memory per rank, under context
# parallelism cp = 1, 2, 4 (and recompute none / full at the longest length), on the CPU
# backend with mpirun. A small Llama (d_model 64, 2 layers, GQA 4/2) on the built-in corpus'
# documents joined into long windows (data.packed: false, so attention spans the whole
# window), 4 steps of 4 sequences; tokens/s is the mean of the steps after the first.
# On a machine with fewer cores than ranks, ranks share cores: compare memory across cp, and
# tokens/s only between runs with equal ranks.
#   scripts/bench_context.sh [LENGTHS (default "256 512 1024")] [RANK COUNTS (default "1 2 4")]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${KILN_BUILD_DIR:-$root/build}/trainer/cli/kiln
[[ -x $kiln ]] || "$root/scripts/build.sh" >/dev/null
lengths=${1:-256 512 1024}
cps=${2:-1 2 4}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

"$kiln" corpus --out "$work/corpus.jsonl" --docs 3000 --seed 1 >/dev/null
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 512 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --quiet >/dev/null
longest=0
for t in $lengths; do ((t > longest)) && longest=$t; done

run() {  # run T CP RECOMPUTE: prints "tokens/s activations communication"
  local t=$1 cp=$2 recompute=$3 dir=$work/run-$1-$2-$3
  cat >"$work/recipe.yaml" <<YAML
model: {family: llama, d_model: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, max_seq_len: $longest}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5, packed: false}
train: {steps: 4, seq_len: $t, batch_size: 4, micro_batch_size: 4, seed: 3, threads: 1, recompute: $recompute}
optim: {lr: 1.0e-3, warmup_steps: 1}
checkpoint: {every_steps: 0}
log: {every_steps: 1}
parallel: {cp: $cp}
YAML
  if ((cp == 1)); then
    "$kiln" train "$work/recipe.yaml" --run-dir "$dir" >"$dir.log" 2>&1
  else
    mpirun --oversubscribe --bind-to none -np "$cp" "$kiln" train "$work/recipe.yaml" --run-dir "$dir" >"$dir.log" 2>&1
  fi
  python3 - "$dir/metrics.jsonl" <<'PY'
import json, sys
steps = [json.loads(line) for line in open(sys.argv[1]) if '"loss"' in line]
rate = sum(s["tokens_per_s"] for s in steps[1:]) / max(1, len(steps) - 1)
peak = steps[-1]["memory_peak_bytes"]
print(f'{rate:.0f} {peak["activations"] / 2**20:.2f} {peak["communication"] / 2**20:.2f}')
PY
}

printf '%8s %4s %10s %12s %20s %18s\n' seq_len cp recompute "tokens/s" "activations MiB/rank" "comm MiB/rank"
for t in $lengths; do
  for cp in $cps; do
    read -r rate activations communication <<<"$(run "$t" "$cp" none)"
    printf '%8s %4s %10s %12s %20s %18s\n' "$t" "$cp" none "$rate" "$activations" "$communication"
  done
done
for cp in $cps; do
  read -r rate activations communication <<<"$(run "$longest" "$cp" full)"
  printf '%8s %4s %10s %12s %20s %18s\n' "$longest" "$cp" full "$rate" "$activations" "$communication"
done
echo "cores: $(nproc --all); ranks beyond them share cores (tokens/s is then not a speed-up measure)"
