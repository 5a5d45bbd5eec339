#!/usr/bin/env bash
# kiln train on several CUDA ranks under mpirun, on the emulated device (KILN_CUDA_DEVICE=
# emulated): the data groups are NCCL communicators (parallel/nccl_communicator.hpp) whose
# emulated library moves the bytes over MPI. fp32 training under dp=2 (ZeRO off and on), tp=2,
# pp=2 and dp=2 x tp=2 gives the serial CPU run's losses step for step; bf16 under dp=2 (ZeRO)
# follows bf16 on one GPU; a run resumes on another layout; precision auto picks fp32 where
# bf16 is not wired (tp/pp > 1) and says so.
# $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
if ! "$kiln" --version | grep -q "MPI: built"; then echo "skipped: kiln built without MPI"; exit 0; fi
if ! "$kiln" --version | grep -q "emulated device"; then echo "skipped: kiln built without the emulated device"; exit 0; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 KILN_CUDA_DEVICE=emulated
# fp32 on the device against the CPU: the same math in other orders (GEMM blocking, reductions
# over ranks), as in train_cuda_test.sh; bf16 against bf16 on one GPU: the dp sum of f32
# gradients in another order, seen through bf16 weights.
F32_RTOL=1e-5
BF16_RTOL=1e-3

train() {  # train RANKS RUN_DIR [--set ...]: the llama recipe
  local ranks=$1 dir=$2
  shift 2
  train_ranks "$ranks" "$dir" "$work/llama.yaml" "$@"
}
cuda=(--set train.device=cuda)

tiny_dataset 1200 5
# Llama with GQA (4 query heads, 2 kv heads: tp = 2 splits both), an odd vocabulary, packed
# documents, two micro-batches a step.
cat >"$work/llama.yaml" <<YAML
model: {family: llama, d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, max_seq_len: 16}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5, val: $work/data/val.h5}
train: {steps: 4, seq_len: 16, batch_size: 4, micro_batch_size: 2, seed: 11, precision: fp32}
optim: {lr: 3.0e-3, warmup_steps: 2, schedule: cosine}
checkpoint: {every_steps: 2, keep_last: 5}
YAML

serial=$work/serial
check "serial CPU run" train 1 "$serial"
check "dp=2 on CUDA" train 2 "$work/dp" "${cuda[@]}" --set parallel.dp=2
check "dp=2 on CUDA within $F32_RTOL of the CPU" within "$F32_RTOL" "$work/dp" "$serial"
check "banner: CUDA ranks whose data groups are NCCL's" grep -q "^device cuda, emulated device.*on 2 rank(s).*data groups over NCCL" "$work/dp.log"
check "dp=2 zero=1 on CUDA" train 2 "$work/zero" "${cuda[@]}" --set parallel.dp=2 --set parallel.zero=1
check "dp=2 zero=1 on CUDA within $F32_RTOL of the CPU" within "$F32_RTOL" "$work/zero" "$serial"
check "tp=2 on CUDA" train 2 "$work/tp" "${cuda[@]}" --set parallel.tp=2
check "tp=2 on CUDA within $F32_RTOL of the CPU" within "$F32_RTOL" "$work/tp" "$serial"
check "pp=2 on CUDA" train 2 "$work/pp" "${cuda[@]}" --set parallel.pp=2
check "pp=2 on CUDA within $F32_RTOL of the CPU" within "$F32_RTOL" "$work/pp" "$serial"
check "dp=2 tp=2 on CUDA" train 4 "$work/dptp" "${cuda[@]}" --set parallel.dp=2 --set parallel.tp=2
check "dp=2 tp=2 on CUDA within $F32_RTOL of the CPU" within "$F32_RTOL" "$work/dptp" "$serial"

# A tp=2 CUDA checkpoint continues under dp=2 on CUDA as the serial run does.
moved=$work/tp-to-dp
cp -r "$work/tp" "$moved"
rm -rf "$moved/checkpoints/step_00000004"
echo step_00000002 >"$moved/checkpoints/latest"
check "tp=2 checkpoint resumes under dp=2" train 2 "$moved" "${cuda[@]}" --set parallel.dp=2
check "resumed under dp=2 within $F32_RTOL of the CPU" within "$F32_RTOL" "$moved" "$serial"

# bf16 over dp=2 with ZeRO (f32 gradients reduced over NCCL, the bf16 working copy gathered)
# follows bf16 on one GPU.
check "bf16 on one GPU" train 1 "$work/bf16" "${cuda[@]}" --set train.precision=bf16
check "bf16 dp=2 zero=1" train 2 "$work/bf16-dp" "${cuda[@]}" --set train.precision=bf16 --set parallel.dp=2 \
  --set parallel.zero=1
check "bf16 dp=2 zero=1 within $BF16_RTOL of one GPU" within "$BF16_RTOL" "$work/bf16-dp" "$work/bf16"

# bf16 under tp=2 and pp=2 (bf16 activations summed and sent over NCCL) follows bf16 on one GPU.
check "bf16 tp=2" train 2 "$work/bf16-tp" "${cuda[@]}" --set train.precision=bf16 --set parallel.tp=2
check "bf16 tp=2 within $BF16_RTOL of one GPU" within "$BF16_RTOL" "$work/bf16-tp" "$work/bf16"
check "bf16 pp=2" train 2 "$work/bf16-pp" "${cuda[@]}" --set train.precision=bf16 --set parallel.pp=2
check "bf16 pp=2 within $BF16_RTOL of one GPU" within "$BF16_RTOL" "$work/bf16-pp" "$work/bf16"
check "precision auto is bf16 on CUDA ranks under tp=2" train 2 "$work/tp-auto" "${cuda[@]}" --set parallel.tp=2 \
  --set train.precision=auto --set train.steps=2
check "the banner says bf16" grep -q "train.precision bf16" "$work/tp-auto.log"
# On CPU ranks (device auto: no GPU) bf16 under tp is refused once the device is known.
expect_error "bf16 tp=2 on CPU ranks is refused" "needs CUDA ranks" timeout 120 mpirun --oversubscribe -np 2 \
  "$kiln" train "$work/llama.yaml" --run-dir "$work/bf16-cpu-tp" --set train.precision=bf16 --set parallel.tp=2
finish
