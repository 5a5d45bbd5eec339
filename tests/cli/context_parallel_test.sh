#!/usr/bin/env bash
# parallel.cp (context parallelism, ring attention) end to end under mpirun: cp = 2 and 4, and
# cp with tp, pp and dp (ZeRO), for both families (GPT-2: tied embeddings, learned positions;
# Llama: GQA, RoPE), on packed documents that cross chunk borders, train the serial run's
# losses (step 1 within 1e-6 relative, every step and the validation loss within 1e-4, as
# parallel_test.sh); checkpoints move between cp layouts (cp 2 -> 1 and 1 -> 4) and continue the
# serial losses; on CUDA ranks (the emulated device) cp = 2 gives them too; what cannot be
# honoured is refused naming the key.
# $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
skip_without_mpi
mpi_environment

tiny_dataset 800 8
# seq_len 32 = 8 chunks of 4 under cp = 4: the corpus's documents (tens of tokens) cross chunks.
cat >"$work/gpt2.yaml" <<YAML
model: {family: gpt2, d_model: 32, n_layers: 2, n_heads: 4, max_seq_len: 32}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5, val: $work/data/val.h5}
train: {steps: 20, seq_len: 32, batch_size: 8, micro_batch_size: 2, seed: 13, threads: 1}
optim: {lr: 3.0e-3, warmup_steps: 2}
checkpoint: {every_steps: 10, keep_last: 5}
eval: {every_steps: 20, batches: 1}
YAML
sed -e 's/family: gpt2, d_model: 32, n_layers: 2, n_heads: 4,/family: llama, d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2,/' \
  "$work/gpt2.yaml" >"$work/llama.yaml"

layout_matches_serial() {  # NAME RANKS FAMILY --set ...
  local name=$1 ranks=$2 family=$3
  shift 3
  check "$family $name trains" train_ranks "$ranks" "$work/$family-$name" "$work/$family.yaml" "$@"
  check "$family $name: the serial losses" same loss "$work/$family-$name" "$work/$family-serial" 1e-6 1e-4
  check "$family $name: the serial validation loss" same val_loss "$work/$family-$name" "$work/$family-serial" 1e-4 1e-4
}

for family in gpt2 llama; do
  check "$family serial run" train_ranks 1 "$work/$family-serial" "$work/$family.yaml"
  layout_matches_serial cp2 2 "$family" --set parallel.cp=2
  layout_matches_serial cp4 4 "$family" --set parallel.cp=4
  layout_matches_serial cp2-tp2 4 "$family" --set parallel.cp=2 --set parallel.tp=2
  layout_matches_serial cp2-pp2 4 "$family" --set parallel.cp=2 --set parallel.pp=2
done
layout_matches_serial cp2-dp2-zero 4 llama --set parallel.cp=2 --set parallel.zero=1
# Each rank keeps a quarter of the tokens' activations under cp = 4 (the arenas are planned
# for seq_len / cp from the start): measured below 30% of the serial run's.
quarter_of() {
  local part whole
  part=$(peak_activations "$1") whole=$(peak_activations "$2")
  echo "     activations per rank: $part vs $whole bytes"
  ((part * 10 < whole * 3))
}
check "cp 4 keeps under 30% of the serial activations per rank" quarter_of "$work/llama-cp4" "$work/llama-serial"
check "the banner names cp" grep -q "layout dp=1 tp=1 pp=1 cp=4" "$work/llama-cp4.log"
check "rank 1 of cp 4 says so" grep -q "rank   1: dp 0/1 tp 0/1 pp 0/1 cp 1/4" "$work/llama-cp4.log"

# Step-1 gradients per tensor (AdamW's first moment after one step is (1 - beta1) x grad) of
# cp 4 and cp 2 x tp 2 equal the serial ones within 1e-5.
for name in "cp4 4 --set parallel.cp=4" "cp2-tp2 4 --set parallel.cp=2 --set parallel.tp=2" "serial 1"; do
  read -r tag ranks sets <<<"$name"
  # shellcheck disable=SC2086
  check "llama $tag one step" train_ranks "$ranks" "$work/step1-$tag" "$work/llama.yaml" --set train.steps=1 --set optim.warmup_steps=1 \
    --set checkpoint.every_steps=1 --set eval.every_steps=0 $sets
done
for tag in cp4 cp2-tp2; do
  check "llama $tag: step-1 gradients per tensor within 1e-5 of serial" "$kiln" info "$work/step1-$tag/checkpoints" \
    --compare "$work/step1-serial/checkpoints" --tensors /optim/exp_avg/ --tolerance 1e-5
done

# Checkpoints move between cp layouts: cp 2 -> 1 and 1 -> 4 continue the serial run.
for move in "cp2 1" "serial 4"; do
  read -r from ranks <<<"$move"
  moved=$work/llama-$from-to-$ranks
  cp -r "$work/llama-$from" "$moved"
  rm -rf "$moved/checkpoints/step_00000020"
  echo step_00000010 >"$moved/checkpoints/latest"
  check "llama $from checkpoint resumes on $ranks rank(s)" train_ranks "$ranks" "$moved" "$work/llama.yaml" \
    --set parallel.cp="$ranks"
  check "llama $from -> cp $ranks continues the serial losses" same loss "$moved" "$work/llama-serial" 1e-4 1e-4
done

if "$kiln" --version | grep -q "emulated device"; then
  check "llama cp2 on CUDA ranks (emulated)" env KILN_CUDA_DEVICE=emulated bash -c \
    "$(declare -f train_ranks); kiln=$kiln; train_ranks 2 $work/llama-cp2-cuda $work/llama.yaml --set parallel.cp=2 --set train.device=cuda --set train.steps=2 --set eval.every_steps=0"
  check "llama cp2 on CUDA: the serial losses" bash -c \
    "paste <(grep -o '\"loss\":[^,}]*' $work/llama-cp2-cuda/metrics.jsonl | cut -d: -f2) <(grep -o '\"loss\":[^,}]*' $work/llama-serial/metrics.jsonl | cut -d: -f2 | head -2) |
     awk '{ d = \$1 - \$2; if (d < 0) d = -d; if (d / \$2 > 1e-5) bad = 1; n++ } END { exit bad || n != 2 }'"
fi

expect_error "seq_len not a multiple of 2 x cp is refused" "parallel.cp" \
  "$kiln" train "$work/llama.yaml" --run-dir "$work/bad1" --set parallel.cp=3
expect_error "bf16 with cp is refused" "parallel.cp" \
  "$kiln" train "$work/llama.yaml" --run-dir "$work/bad2" --set parallel.cp=2 --set train.precision=bf16
expect_error "a world that is not dp x tp x cp x pp is refused" "cp = 2" \
  mpirun --oversubscribe -np 3 "$kiln" train "$work/llama.yaml" --run-dir "$work/bad3" --set parallel.cp=2
finish
