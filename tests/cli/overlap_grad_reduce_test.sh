#!/usr/bin/env bash
# parallel.overlap_grad_reduce and parallel.overlap_param_gather: data-parallel buckets started
# during the backward, and ZeRO's parameter gathers waited for layer by layer in the next
# forward, give bitwise the same training as both done all at once, under (dp, tp, pp) =
# (2,1,1), (2,2,1), (2,1,2), (4,1,1), ZeRO off and on. Each pair of runs trains a few steps from
# the same seed; their final checkpoints (parameters and optimizer state) must not differ in
# any bit. The model has several layers, so the overlapped run really reduces (and gathers)
# buckets while the backward (the forward) continues.
# $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
skip_without_mpi
mpi_environment

"$kiln" corpus --out "$work/corpus.jsonl" --docs 600 --seed 5 >/dev/null
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 300 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --val-fraction 0.05 \
  --quiet >/dev/null
cat >"$work/llama.yaml" <<YAML
model: {family: llama, d_model: 32, n_layers: 4, n_heads: 4, n_kv_heads: 2, max_seq_len: 32}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5}
train: {steps: 3, seq_len: 32, batch_size: 8, micro_batch_size: 2, seed: 3, threads: 1}
optim: {lr: 3.0e-3, warmup_steps: 1, grad_clip: 1.0}
checkpoint: {every_steps: 3}
eval: {every_steps: 0}
YAML

train() {  # train RANKS RUN_DIR --set ...
  local ranks=$1 dir=$2; shift 2
  timeout 300 mpirun --oversubscribe -np "$ranks" "$kiln" train "$work/llama.yaml" --run-dir "$dir" "$@" >"$dir.log" 2>&1 ||
    { tail -5 "$dir.log"; return 1; }
}
bitwise_equal() {
  "$kiln" info "$1/checkpoints" --compare "$2/checkpoints" --tolerance 0 >"$work/compare.out" 2>&1 ||
    { tail -3 "$work/compare.out"; return 1; }
}

# dp=4 as well: with more than two ranks the order of a sum matters, and it is still the same.
for layout in "2 dp=2" "4 dp=2,tp=2" "4 dp=2,pp=2" "4 dp=4"; do
  read -r ranks layout <<<"$layout"
  for zero in 0 1; do
    sets=(--set parallel.zero=$zero)
    IFS=, read -ra pairs <<<"$layout"
    for pair in "${pairs[@]}"; do sets+=(--set "parallel.$pair"); done
    name="${layout//[=,]/_}-zero$zero"
    check "($layout, zero=$zero) overlapped run" train "$ranks" "$work/$name-on" "${sets[@]}" \
      --set parallel.overlap_grad_reduce=true --set parallel.overlap_param_gather=true
    check "($layout, zero=$zero) sequential run" train "$ranks" "$work/$name-off" "${sets[@]}" \
      --set parallel.overlap_grad_reduce=false --set parallel.overlap_param_gather=false
    check "($layout, zero=$zero) overlap on == off bitwise" bitwise_equal "$work/$name-on" "$work/$name-off"
    check "($layout, zero=$zero) one bucket per layer, so the overlap is real" \
      grep -Eq "rank +0: .* [2-9] dp bucket\(s\), overlap on" "$work/$name-on.log"
    check "($layout, zero=$zero) the banner says overlap off" grep -q "overlap off" "$work/$name-off.log"
    if [[ $zero == 1 ]]; then
      check "($layout, zero=1) the banner says the ZeRO gather overlaps" grep -q "ZeRO gather overlap on" "$work/$name-on.log"
    fi
  done
done

expect_error "overlap_grad_reduce takes a boolean" "parallel.overlap_grad_reduce" \
  "$kiln" train "$work/llama.yaml" --run-dir "$work/bad" --set parallel.overlap_grad_reduce=sometimes
expect_error "overlap_param_gather takes a boolean" "parallel.overlap_param_gather" \
  "$kiln" train "$work/llama.yaml" --run-dir "$work/bad2" --set parallel.overlap_param_gather=maybe
finish
