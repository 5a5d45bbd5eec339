#!/usr/bin/env bash
# train.recompute: selective and full train bitwise the same as none (checkpoints equal to the
# bit, the same losses) while the peak activation memory per rank drops: serially for both
# families, and on 4 ranks with tp = 2 (sequence parallelism on) x cp = 2, where full
# recomputation repeats the blocks' collectives. A bad value is refused naming the key.
# $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1

tiny_dataset 500 9
cat >"$work/gpt2.yaml" <<YAML
model: {family: gpt2, d_model: 32, n_layers: 3, n_heads: 4, max_seq_len: 32}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5}
train: {steps: 3, seq_len: 32, batch_size: 4, micro_batch_size: 2, seed: 17, threads: 1}
optim: {lr: 3.0e-3, warmup_steps: 1}
checkpoint: {every_steps: 3}
YAML
sed -e 's/family: gpt2, d_model: 32, n_layers: 3, n_heads: 4,/family: llama, d_model: 32, n_layers: 3, n_heads: 4, n_kv_heads: 2,/' \
  "$work/gpt2.yaml" >"$work/llama.yaml"

bitwise_equal() {
  "$kiln" info "$1/checkpoints" --compare "$2/checkpoints" --tolerance 0 >"$work/compare.out" 2>&1 ||
    { tail -3 "$work/compare.out"; return 1; }
}
less_memory() {  # less_memory SMALLER LARGER: peak activation bytes per rank
  local small large
  small=$(peak_activations "$1") large=$(peak_activations "$2")
  echo "     activations per rank: $small vs $large bytes"
  ((small < large))
}

compare_modes() {  # NAME RANKS RECIPE [--set ...]
  local name=$1 ranks=$2 recipe=$3
  shift 3
  check "$name: recompute none" train_ranks "$ranks" "$work/$name-none" "$recipe" "$@" --set train.recompute=none
  local previous=none
  for mode in selective full; do
    check "$name: recompute $mode" train_ranks "$ranks" "$work/$name-$mode" "$recipe" "$@" --set train.recompute=$mode
    check "$name: $mode trains the same bits as none" bitwise_equal "$work/$name-$mode" "$work/$name-none"
    check "$name: $mode losses identical" diff <(losses "$work/$name-$mode") <(losses "$work/$name-none")
    check "$name: $mode keeps less than $previous" less_memory "$work/$name-$mode" "$work/$name-$previous"
    previous=$mode
  done
}

compare_modes gpt2 1 "$work/gpt2.yaml"
compare_modes llama 1 "$work/llama.yaml"
if "$kiln" --version | grep -q "MPI: built"; then
  compare_modes llama-tp2-sp-cp2 4 "$work/llama.yaml" --set parallel.tp=2 --set parallel.cp=2 \
    --set parallel.sequence_parallel=true
fi
expect_error "a recompute mode kiln does not know is refused" "train.recompute" \
  "$kiln" train "$work/gpt2.yaml" --run-dir "$work/bad" --set train.recompute=some
finish
