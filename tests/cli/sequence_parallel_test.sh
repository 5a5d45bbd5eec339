#!/usr/bin/env bash
# parallel.sequence_parallel (Megatron SP) end to end under mpirun on the CPU: layouts
# (dp,tp,pp) = (1,2,1), (2,2,1) with ZeRO and (2,2,2) with and without ZeRO, SP on, train the
# serial run's losses (step 1 within 1e-6 relative, every step within 1e-4, as
# parallel_test.sh) and the same losses, gradient norms and validation loss as tp without SP;
# step-1 gradients match the serial ones per tensor (AdamW's first moment), so the norms'
# per-chunk gradients are summed over tp and counted once by the clipping. Each rank's peak
# activation memory is smaller by exactly what the shapes say (activations.hpp). On CUDA ranks
# (the emulated device, when built) tp=2 with SP gives the serial losses too. A setting that
# cannot be honoured is refused naming the key.
# $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
skip_without_mpi
mpi_environment

tiny_dataset 600 6
cat >"$work/gpt2.yaml" <<YAML
model: {family: gpt2, d_model: 32, n_layers: 4, n_heads: 4, max_seq_len: 32}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5, val: $work/data/val.h5}
train: {steps: 6, seq_len: 32, batch_size: 8, micro_batch_size: 2, seed: 9, threads: 1}
optim: {lr: 3.0e-3, warmup_steps: 1, grad_clip: 1.0}
checkpoint: {every_steps: 6}
eval: {every_steps: 6, batches: 1}
YAML
sed -e 's/family: gpt2, d_model: 32, n_layers: 4, n_heads: 4,/family: llama, d_model: 32, n_layers: 4, n_heads: 4, n_kv_heads: 2, tie_embeddings: false,/' \
  "$work/gpt2.yaml" >"$work/llama.yaml"

# AdamW's first moment after one step is (1 - beta1) * gradient: per tensor.
same_gradients() {
  "$kiln" info "$1" --compare "$2" --tensors /optim/exp_avg/ --tolerance 1e-5 >"$work/compare.out" 2>&1 ||
    { tail -5 "$work/compare.out"; return 1; }
  echo "     $(tail -1 "$work/compare.out")"
}
# activation_saving FAMILY: bytes a rank saves with SP at tp = 2, pp = 1 (B = micro_batch_size
# 2, T = 32, C = 32, 4 layers): the residual stream's tensors (4 per block; embedded,
# final_norm, d_residual, d_norm), the norms' statistics (2 per LayerNorm, 1 per RMSNorm) and
# zero_ids keep T/2 of T rows, less the two [B, T, C] buffers of the sequence collectives. Every
# changed slot is a multiple of the arena's 64-byte alignment.
activation_saving() {
  local B=2 T=32 C=32 L=4 tp=2 stats=$([[ $1 == gpt2 ]] && echo 2 || echo 1)
  local rows=$((B * T))
  local split=$((4 * (rows * C * (4 * L + 4) + rows * stats * (2 * L + 1) + rows)))
  echo $((split - split / tp - 4 * 2 * B * T * C))
}

one_step=(--set train.steps=1 --set optim.warmup_steps=0 --set eval.every_steps=0)
layouts=("2 tp=2" "4 dp=2,tp=2,zero=1" "8 dp=2,tp=2,pp=2" "8 dp=2,tp=2,pp=2,zero=1")
for family in gpt2 llama; do
  recipe="$work/$family.yaml"
  check "$family serial run" train_ranks 1 "$work/$family-serial" "$recipe"
  check "$family serial step 1" train_ranks 1 "$work/$family-serial-1" "$recipe" "${one_step[@]}"
  [[ $family == llama ]] && check "llama serial 3 steps" train_ranks 1 "$work/llama-serial-3" "$recipe" --set train.steps=3 \
    --set eval.every_steps=0
  check "$family tp=2 run" train_ranks 2 "$work/$family-tp" "$recipe" --set parallel.tp=2
  for layout in "${layouts[@]}"; do
    read -r ranks settings <<<"$layout"
    sets=(--set parallel.sequence_parallel=true)
    IFS=, read -ra pairs <<<"$settings"
    for pair in "${pairs[@]}"; do sets+=(--set "parallel.$pair"); done
    dir="$work/$family-sp-${settings//[=,]/_}"
    what="$family ($settings, sequence_parallel)"
    check "$what runs" train_ranks "$ranks" "$dir" "$recipe" "${sets[@]}"
    check "$what losses equal serial" same loss "$dir" "$work/$family-serial" 1e-6 1e-4
    check "$what losses equal tp without SP" same loss "$dir" "$work/$family-tp" 1e-6 1e-4
    check "$what gradient norms equal tp without SP" same grad_norm "$dir" "$work/$family-tp" 1e-5 1e-4
    check "$what validation loss equals serial" same val_loss "$dir" "$work/$family-serial" 1e-4 1e-4
    check "$what step-1 run" train_ranks "$ranks" "$dir-1" "$recipe" "${sets[@]}" "${one_step[@]}"
    check "$what step-1 gradients equal serial (per tensor)" same_gradients "$dir-1" "$work/$family-serial-1"
  done
  without=$(peak_activations "$work/$family-tp")
  with=$(peak_activations "$work/$family-sp-tp_2")
  expected=$(activation_saving "$family")
  echo "     $family tp=2 peak activation bytes per rank: $without without SP, $with with SP (saved $((without - with)), expected $expected)"
  check "$family tp=2: SP saves the expected activation bytes per rank" test $((without - with)) -eq "$expected"
done

# The same layers on CUDA ranks (the emulated device; tp collectives over NCCL's emulation):
# the serial CPU run's losses, within the device's 1e-5 (train_multi_gpu_test.sh).
if "$kiln" --version | grep -q "emulated device"; then
  dir="$work/llama-sp-cuda"
  check "llama (tp=2, sequence_parallel) on CUDA ranks runs" env KILN_CUDA_DEVICE=emulated timeout 300 mpirun \
    --oversubscribe -np 2 -x KILN_CUDA_DEVICE -x OMP_NUM_THREADS "$kiln" train "$work/llama.yaml" --run-dir "$dir" \
    --set train.device=cuda --set train.precision=fp32 --set parallel.tp=2 --set parallel.sequence_parallel=true \
    --set train.steps=3 \
    --set eval.every_steps=0
  check "llama (tp=2, sequence_parallel) on CUDA ranks: losses equal serial" same loss "$dir" "$work/llama-serial-3" 1e-5 1e-5
  # bf16 (NCCL sums the bf16 activations): within bf16 rounding of bf16 on one GPU.
  bf16=(--set train.device=cuda --set train.precision=bf16 --set train.steps=3 --set eval.every_steps=0)
  check "llama bf16 on one CUDA rank" env KILN_CUDA_DEVICE=emulated bash -c \
    "$(declare -f train_ranks); kiln=$kiln; train_ranks 1 $work/llama-bf16 $work/llama.yaml ${bf16[*]}"
  check "llama bf16 (tp=2, sequence_parallel) on CUDA ranks" env KILN_CUDA_DEVICE=emulated bash -c \
    "$(declare -f train_ranks); kiln=$kiln; train_ranks 2 $work/llama-bf16-sp $work/llama.yaml ${bf16[*]} --set parallel.tp=2 --set parallel.sequence_parallel=true"
  check "llama bf16 (tp=2, sequence_parallel): within 1e-3 of one GPU" same loss "$work/llama-bf16-sp" "$work/llama-bf16" \
    1e-3 1e-3
fi

expect_error "sequence parallelism without tp is refused" "parallel.sequence_parallel.*splits the sequence over the tensor-parallel ranks, but parallel.tp = 1" \
  "$kiln" train "$work/gpt2.yaml" --run-dir "$work/bad" --set parallel.sequence_parallel=true
expect_error "a seq_len tp does not divide is refused" "parallel.sequence_parallel.*train.seq_len = 30 is not a multiple of parallel.tp = 4" \
  "$kiln" train "$work/gpt2.yaml" --run-dir "$work/bad" --set parallel.sequence_parallel=true --set parallel.tp=4 \
  --set train.seq_len=30
expect_error "sequence_parallel takes a boolean" "parallel.sequence_parallel" \
  "$kiln" train "$work/gpt2.yaml" --run-dir "$work/bad" --set parallel.sequence_parallel=sometimes
finish
