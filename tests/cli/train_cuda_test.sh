#!/usr/bin/env bash
# kiln train with train.device: cuda, on the emulated device (KILN_CUDA_DEVICE=emulated: the
# same kernel sources and host code as the GPU build, run on the CPU): fp32 trains step for
# step as the CPU backend does; a run rolled back to a checkpoint resumes bit for bit; a CUDA
# checkpoint resumes on the CPU; precision auto is bf16 on CUDA and still learns; the banner,
# meta.json and metrics.jsonl say cuda/bf16; MFU uses log.peak_tflops when given; a device that
# is not there is refused naming the key (several ranks: train_multi_gpu_test.sh); cuDNN attention trains
# within bf16 of kiln's attention and resumes bit for bit (refused on the CPU and in fp32); so does
# kiln's attention on wgmma (train.attention: flash-wgmma); eval, score and generate with
# --device cuda give the CPU's numbers and tokens.
# $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
export OMP_NUM_THREADS=1
if ! "$kiln" --version | grep -q "emulated device"; then
  echo "skipped: this kiln is built without the emulated CUDA device (KILN_CUDA_EMULATION=OFF)"
  exit 0
fi
# Largest relative per-step loss difference between the CUDA backend in fp32 and the CPU: the
# same fp32 math in another order (cuBLASLt's / the emulated GEMM's blocking, tree reductions).
# Measured over these 6 steps: at worst 5e-9; the bound leaves room for other GEMM orders.
F32_RTOL=1e-5
# bf16 storage against fp32: a few 2^-9 roundings per activation; measured at most 6.1e-5 (as
# the CPU's bf16 test, whose bound is the same).
BF16_RTOL=1e-3

train() {  # train RUN_DIR [--set ...]: on the CPU unless the arguments say cuda
  local dir=$1
  shift
  "$kiln" train "$work/llama.yaml" --run-dir "$dir" "$@" >"$dir.log" 2>&1 || { tail -5 "$dir.log"; return 1; }
}
on_cuda=(--set train.device=cuda)
export KILN_CUDA_DEVICE=emulated

"$kiln" corpus --out "$work/corpus.jsonl" --docs 1500 --seed 3 >/dev/null
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 300 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --val-fraction 0.05 \
  --quiet >/dev/null
# Llama with GQA, an odd vocabulary (300, padded), packed documents; two micro-batches a step.
cat >"$work/llama.yaml" <<YAML
model: {family: llama, d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, max_seq_len: 16}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5, val: $work/data/val.h5}
train: {steps: 6, seq_len: 16, batch_size: 4, micro_batch_size: 2, seed: 7}
optim: {lr: 3.0e-3, warmup_steps: 2, schedule: cosine}
checkpoint: {every_steps: 3, keep_last: 5}
eval: {every_steps: 3, batches: 1}
YAML

cpu=$work/cpu cuda=$work/cuda
check "cpu fp32 run" train "$cpu"
check "cuda fp32 run" train "$cuda" "${on_cuda[@]}" --set train.precision=fp32
check "cuda fp32 within $F32_RTOL of the CPU, step for step" within "$F32_RTOL" "$cuda" "$cpu"
check "banner names the device" grep -q "^device cuda, emulated device" "$cuda.log"
check "banner: auto precision on the CPU is fp32" grep -q "train.precision fp32" "$cpu.log"
check "validation ran on the device" grep -q '"val_loss"' "$cuda/metrics.jsonl"
check "meta.json records the device" grep -q '"device": *"cuda"' "$cuda/checkpoints/step_00000006/meta.json"

# Rolled back to step 3, the CUDA run repeats steps 4..6 bit for bit.
rolled=$work/cuda-rolled
cp -r "$cuda" "$rolled"
rm -rf "$rolled/checkpoints/step_00000006"
echo step_00000003 >"$rolled/checkpoints/latest"
check "cuda resume" train "$rolled" "${on_cuda[@]}" --set train.precision=fp32
check "cuda resume message" grep -q "resuming from .*step_00000003" "$rolled.log"
check "cuda resumed losses identical to the last bit" diff <(losses "$cuda") <(losses "$rolled")

# The same checkpoint continues on the CPU.
moved=$work/cuda-to-cpu
cp -r "$rolled" "$moved"
rm -rf "$moved/checkpoints/step_00000006"
echo step_00000003 >"$moved/checkpoints/latest"
check "cuda checkpoint resumes on the CPU" train "$moved" --set train.device=cpu
check "cuda -> cpu continues within $F32_RTOL" within "$F32_RTOL" "$moved" "$cuda"

# precision auto on CUDA: bf16, which learns and stays near fp32.
bf16=$work/cuda-bf16
check "cuda bf16 run" train "$bf16" "${on_cuda[@]}" --set log.peak_tflops=0.001
check "banner: auto precision on cuda is bf16" grep -q "train.precision bf16" "$bf16.log"
check "metrics.jsonl records bf16" grep -q '"precision":"bf16"' "$bf16/metrics.jsonl"
check "cuda bf16 within $BF16_RTOL of fp32" within "$BF16_RTOL" "$bf16" "$cpu"
check "MFU against log.peak_tflops" grep -q "MFU" "$bf16.log"
# Its checkpoint holds fp32 masters: it continues on the CPU in fp32.
bf16_moved=$work/cuda-bf16-to-cpu
cp -r "$bf16" "$bf16_moved"
rm -rf "$bf16_moved/checkpoints/step_00000006"
echo step_00000003 >"$bf16_moved/checkpoints/latest"
check "cuda bf16 checkpoint resumes on the CPU in fp32" train "$bf16_moved" --set train.device=cpu --set train.precision=fp32
check "cuda bf16 -> cpu fp32 continues within $BF16_RTOL" within "$BF16_RTOL" "$bf16_moved" "$bf16"

# train.attention: cudnn (cuDNN's fused SDPA; on the emulated device the frontend validates each
# graph and a host implementation attends through the same ragged offsets): bf16 like the run
# above, within the bf16 bound of it, and a rolled-back run repeats its steps bit for bit.
if "$kiln" --version | grep -q "cuDNN [0-9]"; then
  cudnn=$work/cuda-cudnn
  check "cuda bf16 run with cuDNN attention" train "$cudnn" "${on_cuda[@]}" --set train.attention=cudnn
  check "banner names cuDNN attention" grep -q "train.attention cudnn (cuDNN 9" "$cudnn.log"
  # (Often equal to the bit here: both attend in >= f32 and round each output once to bf16.)
  check "cuDNN attention within $BF16_RTOL of kiln's bf16 attention" within "$BF16_RTOL" "$cudnn" "$bf16"
  cudnn_rolled=$work/cuda-cudnn-rolled
  cp -r "$cudnn" "$cudnn_rolled"
  rm -rf "$cudnn_rolled/checkpoints/step_00000006"
  echo step_00000003 >"$cudnn_rolled/checkpoints/latest"
  check "cuDNN attention resume" train "$cudnn_rolled" "${on_cuda[@]}" --set train.attention=cudnn
  check "cuDNN attention resumed losses identical to the last bit" diff <(losses "$cudnn") <(losses "$cudnn_rolled")
  expect_error "cuDNN attention in fp32 refused with the fix" "set train.precision: bf16" \
    "$kiln" train "$work/llama.yaml" --run-dir "$work/cudnn-fp32" "${on_cuda[@]}" --set train.attention=cudnn \
    --set train.precision=fp32
else
  echo "  (cuDNN attention not checked: $("$kiln" --version | grep -o 'cuDNN not available.*'))"
fi

# train.attention: flash-wgmma (kiln's attention on Hopper's warpgroup MMA, forward and backward;
# the emulated device checks the wgmma contract): a head dim of 64, where kiln's tensor-core kernels run, in
# bf16 beside flash; refused on the CPU, in fp32, and for a head dim the kernel does not take.
sed -e 's/d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2/d_model: 128, n_layers: 2, n_heads: 2, n_kv_heads: 1/' \
  "$work/llama.yaml" >"$work/wide.yaml"
wide() {  # wide RUN_DIR [--set ...]
  local dir=$1
  shift
  "$kiln" train "$work/wide.yaml" --run-dir "$dir" "$@" >"$dir.log" 2>&1 || { tail -5 "$dir.log"; return 1; }
}
check "head dim 64 bf16 run with kiln's attention" wide "$work/wide-flash" "${on_cuda[@]}" --set train.precision=bf16
check "head dim 64 bf16 run with the wgmma kernels" wide "$work/wide-wgmma" "${on_cuda[@]}" \
  --set train.precision=bf16 --set train.attention=flash-wgmma
check "banner names the wgmma kernels" grep -q "train.attention flash-wgmma" "$work/wide-wgmma.log"
check "the wgmma kernels within $BF16_RTOL of the mma.sync ones" within "$BF16_RTOL" "$work/wide-wgmma" \
  "$work/wide-flash"
expect_error "the wgmma kernels in fp32 refused with the fix" "set train.precision: bf16" \
  "$kiln" train "$work/wide.yaml" --run-dir "$work/wgmma-fp32" "${on_cuda[@]}" --set train.attention=flash-wgmma \
  --set train.precision=fp32
expect_error "the wgmma kernels on the CPU refused with the fix" "set train.attention: flash" \
  "$kiln" train "$work/wide.yaml" --run-dir "$work/wgmma-cpu" --set train.attention=flash-wgmma --set train.device=cpu
expect_error "the wgmma kernels with head dim 8 refused naming the key" "flash-wgmma needs a head dim of 64 or 128" \
  "$kiln" train "$work/llama.yaml" --run-dir "$work/wgmma-dim8" "${on_cuda[@]}" --set train.attention=flash-wgmma

# eval, score and generate of the fp32 CPU run's checkpoint with --device cuda: the model, its
# activations and the KV cache on the device; the same numbers as on the CPU (fp32 either
# way), and greedy and seeded sampling pick the same tokens.
ckpt=$work/cpu/checkpoints/step_00000006
printf '{"text": "The river\\r\\n\\nran"}\n{"text": "# A\\n- b"}\n' >"$work/score.jsonl"
infer() {  # infer NAME DEVICE VERB ARGS...: stdout to NAME.out
  local name=$1 device=$2 verb=$3
  shift 3
  "$kiln" "$verb" --checkpoint "$ckpt" --device "$device" "$@" >"$work/$name.out" 2>"$work/$name.err" ||
    { tail -3 "$work/$name.err"; return 1; }
}
numbers() { grep -o "\"$2\":\[*[-0-9.e,]*" "$1" | sed 's/^[^:]*:\[*//' | tr ',' '\n' | grep -v '^$'; }
close() {  # close A B KEY: the numbers under KEY (a value or an array) in two outputs agree within F32_RTOL
  [[ $(numbers "$1" "$3" | wc -l) -eq $(numbers "$2" "$3" | wc -l) ]] || { echo "value counts differ"; return 1; }
  paste <(numbers "$1" "$3") <(numbers "$2" "$3") |
    awk -v tol="$F32_RTOL" '{ d = $1 - $2; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2); if (r > worst) worst = r; n++ }
      END { printf "      worst relative difference of %d values %.3e\n", n, worst; exit !(n > 0 && worst <= tol) }'
}
for device in cpu cuda; do
  check "eval --device $device" infer "eval-$device" "$device" eval --data "$work/data/val.h5" --batches 2
  check "score --device $device" infer "score-$device" "$device" score --input "$work/score.jsonl" --logprobs
  check "greedy generate --device $device" infer "greedy-$device" "$device" generate --prompt "The" --temperature 0 \
    --max-tokens 10
  check "sampled generate --device $device" infer "sampled-$device" "$device" generate --prompt "The" --top-k 20 \
    --seed 5 --max-tokens 10
done
check "eval reports the device" grep -q '"device":"cuda (emulated device' "$work/eval-cuda.out"
check "eval loss on cuda within $F32_RTOL of the CPU" close "$work/eval-cuda.out" "$work/eval-cpu.out" loss
check "score nll on cuda within $F32_RTOL of the CPU" close "$work/score-cuda.out" "$work/score-cpu.out" nll
check "score logprobs on cuda within $F32_RTOL of the CPU" close "$work/score-cuda.out" "$work/score-cpu.out" logprobs
check "greedy generate picks the same tokens on cuda" diff "$work/greedy-cuda.out" "$work/greedy-cpu.out"
check "sampled generate picks the same tokens on cuda" diff "$work/sampled-cuda.out" "$work/sampled-cpu.out"
check "generate says it ran on the device" grep -q "on cuda (emulated device" "$work/greedy-cuda.err"

# What is refused, and how.
unset KILN_CUDA_DEVICE
if ! command -v nvidia-smi >/dev/null 2>&1; then
  expect_error "no GPU: train.device cuda refused naming the key" "train.device: cuda: no usable CUDA device" \
    "$kiln" train "$work/llama.yaml" --run-dir "$work/none" "${on_cuda[@]}"
  expect_error "no GPU: eval --device cuda refused naming the option" "--device cuda: no usable CUDA device" \
    "$kiln" eval --checkpoint "$ckpt" --device cuda --data "$work/data/val.h5"
  check "no GPU: eval --device auto runs on the CPU" grep -q '"device":"cpu"' <("$kiln" eval --checkpoint "$ckpt" \
    --device auto --data "$work/data/val.h5" --batches 1)
fi
expect_error "cuDNN attention on the CPU refused with the fix" "set train.attention: flash" \
  "$kiln" train "$work/llama.yaml" --run-dir "$work/cudnn" --set train.attention=cudnn --set train.device=cpu
finish
