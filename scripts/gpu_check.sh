#!/usr/bin/env bash
# The GPU check: one command for a lent GPU machine, which has no package registry.
#
#   scripts/gpu_check.sh --pack     here: build with CUDA and bundle the kiln binary, the test
#                                   and benchmark programs and every shared library they need
#                                   that is not part of the base system into gpu_bundle.tar.gz
#                                   (~29 MB; pass it with carry: the whole carry must stay under
#                                   64 MiB, which the unpacked 80 MB would not)
#   scripts/gpu_check.sh            on the GPU machine: run what the bundle holds and print a
#                                   short table (device, CUDA tests, benchmarks)
#
# The CUDA backend has its own kernels for every non-GEMM op and kiln::ops dispatches to them
# for device tensors; the check proves the toolchain end to end (sm_90a code built here loads
# and runs there), then, GPU first: the CUDA tests on the real GPU (kiln_cuda_tests: the
# kernel tests, the ops-through-the-backend tests and the model-on-the-device tests CI runs on
# the emulated device), attention against PyTorch's SDPA and cuDNN, the GEMMs' TFLOP/s and
# every memory-bound kernel's bandwidth against the device copy (kiln_cuda_kernels_bench),
# kiln train of GPT-2 small in bf16 beside PyTorch (scripts/bench_train_gpu.sh: tokens/s and
# MFU of the bf16 dense peak), and 200 steps of a small Llama on the GPU against the CPU's
# losses (scripts/check_gpu_losses.sh). KILN_GPU_CHECK_CPU=1 adds the CPU reference suite and
# CPU benchmarks on the GPU machine's cores (minutes; CI runs them anyway).
# cuBLASLt, cuDNN and NCCL are not bundled (hundreds of MB: libnccl alone is 218 MB): the GPU
# image has them in its Python packages (nvidia-cublas, nvidia-cudnn-cu13, nvidia-nccl-cu13),
# found at run time. The scripts travel in the
# working tree the device tool copies, so only the bundle needs carrying.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bundle=$root/gpu_bundle
# The CUDA build to bundle: ./build when it already is one (KILN_CUDA=AUTO finds nvcc), else build-gpu.
gpu_build=${KILN_GPU_BUILD_DIR:-$root/build-gpu}

pack() {
  set -e
  KILN_BUILD_DIR=$gpu_build "$root/scripts/build.sh" -DKILN_CUDA=ON >/dev/null
  rm -rf "$bundle" && mkdir -p "$bundle/bin" "$bundle/lib"
  cp "$gpu_build/trainer/cli/kiln" "$gpu_build/tests/kiln_unit_tests" \
     "$gpu_build/tests/kiln_kernels_bench" "$gpu_build/tests/kiln_train_step_bench" \
     "$gpu_build/tests/kiln_cuda_tests" "$gpu_build/tests/kiln_cuda_attention_bench" \
     "$gpu_build/tests/kiln_cuda_kernels_bench" "$bundle/bin/"
  cp -r "$root/tests/fixtures" "$bundle/fixtures"
  # Every library outside glibc's core that the programs load (HDF5, MPI, OpenBLAS, ...).
  for program in "$bundle"/bin/*; do
    ldd "$program" | awk '/=> \// {print $3}' |
      grep -v -E '/(libc|libm|libpthread|libdl|librt|ld-linux|libcuda|libcublas|libcublasLt|libcudnn[a-z_]*|libnccl)[.-]' |
      xargs -r -I{} cp -Ln {} "$bundle/lib/" 2>/dev/null || true
  done
  tar -czf "$bundle.tar.gz" -C "$root" gpu_bundle
  du -sh "$bundle" "$bundle.tar.gz"
}

# One training comparison: kiln train (bench_train_gpu.sh) and PyTorch (transformers, bf16
# autocast, SDPA, fused AdamW: bench_train_torch.py) on the same shape, vocabulary 8192 as the
# bench's tokenizer; prints both and the ratio. Uses check()'s kiln, root and logs.
train_row() {
  local family=$1 batch=$2 label="$1 b$2" train torch_line kiln_tps torch_tps kv=12 d_ff=3072
  [[ $family == llama ]] && kv=4 d_ff=2048
  echo "== kiln train $label" >>"$logs/bench.log"
  train=$(KILN_BENCH_FAMILY=$family KILN_BENCH_BATCH=$batch timeout 240 "$root/scripts/bench_train_gpu.sh" "$kiln" 30 2>&1 |
            tee -a "$logs/bench.log" | tail -1)
  printf '%-32s %s\n' "kiln train $label (bf16)" "$(awk '$1 == "gpu-train" {printf "%s tok/s, MFU %s%% of %s %s", $2, $3, $4, $5; next} {print "failed: " $0}' <<<"$train")"
  echo "== PyTorch $label" >>"$logs/bench.log"
  torch_line=$(timeout 150 python3 "$root/scripts/bench_train_torch.py" "$family" 768 12 12 "$kv" "$d_ff" 8192 1024 "$batch" 20 16 cuda \
                 2>>"$logs/bench.log" | tail -1)
  torch_tps=$(awk '$1 == "torch" {print $2}' <<<"$torch_line")
  kiln_tps=$(awk '$1 == "gpu-train" {v = $2; m = 1; if (v ~ /k$/) m = 1e3; if (v ~ /M$/) m = 1e6;
                                     sub(/[kM]$/, "", v); print v * m}' <<<"$train")
  if [[ -n $torch_tps ]]; then
    printf '%-32s %.0f tok/s\n' "PyTorch $label (bf16)" "$torch_tps"
  else
    printf '%-32s failed: %s\n' "PyTorch $label (bf16)" "$(tail -1 "$logs/bench.log")"
  fi
  [[ -n $torch_tps && -n $kiln_tps ]] &&
    printf '%-32s %s\n' "kiln / PyTorch tokens/s" "$(awk -v a="$kiln_tps" -v b="$torch_tps" 'BEGIN {printf "%.2f", a / b}')"
  return 0
}

# KILN_GPU_CHECK_PROFILE=1: where the training step's time goes, kernel by kernel (Nsight
# Compute's duration of each launch over 3 steps of one run, initialisation included; the clocks
# left as they are), for GPT-2 small and the Llama shape at batch 8. Uses check()'s kiln and logs.
profile_step() {
  command -v ncu >/dev/null || { echo "profile: no ncu on this machine"; return 0; }
  local family
  for family in gpt2 llama; do
    KILN_BENCH_FAMILY=$family KILN_BENCH_WRAP="ncu --clock-control none --metrics gpu__time_duration.sum --csv --page raw --log-file $logs/ncu_$family.csv" \
      KILN_BENCH_WRAP_LOG=/tmp/ncu_train_$family.log timeout 200 "$root/scripts/bench_train_gpu.sh" "$kiln" 3
    echo "per-kernel time of a $family bf16 step at batch 8 (ncu, mean of 3 steps):"
    python3 "$root/scripts/ncu_kernel_table.py" "$logs/ncu_$family.csv" 3 20 | sed 's/^/    /'
  done
  # Why the tensor-core attention kernels run where they do: throughput, occupancy and warp stall
  # reasons of one launch each at GPT-2 small's shape (into ncu_attention.txt).
  local kernel
  for kernel in flash_forward_kernel flash_dq_kernel flash_dkdv_kernel; do
    timeout 90 ncu --clock-control none --kernel-name "regex:$kernel" --launch-count 1 --section SpeedOfLight \
      --section Occupancy --section WarpStateStats --section LaunchStats "$bundle/bin/kiln_cuda_attention_bench" 8 1024 12 12 64 1 \
      >>"$logs/ncu_attention.txt" 2>&1
  done
  grep -E '^  [a-z_]+_kernel|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Stall|One or More' \
    "$logs/ncu_attention.txt" | head -40 | sed 's/^/    /'
}

# cuda_test_row LABEL LOG FILTER: kiln_cuda_tests with a gtest filter, into $logs/LOG.log; a
# table row with the totals, then the failed tests' names.
cuda_test_row() {
  local label=$1 log=$logs/$2.log filter=$3 totals
  (cd "$bundle" && timeout 180 "$bundle/bin/kiln_cuda_tests" --gtest_filter="$filter" >"$log" 2>&1)
  totals=$(grep -E '^\[  (PASSED|FAILED)  \] [0-9]+ tests?[,.]' "$log" | tr '\n' ' ')
  printf '%-32s %s\n' "$label" "${totals:-did not finish: $(tail -1 "$log")}"
  awk '/tests?, listed below/ {listed = 1; next} listed && /^\[  FAILED  \]/ {print "    " $4}' "$log" | head -20
}

# The attention kernels beside PyTorch's scaled_dot_product_attention (FlashAttention-2) on the
# shapes of GPT-2 small, the Llama bench (GQA 12/4) and a 128-dim head. Uses check()'s logs.
attention_rows() {
  echo "attention kernels (causal bf16, kiln per block size, then PyTorch SDPA):"
  local shape
  for shape in "8 1024 12 12 64" "8 1024 12 4 64" "4 2048 16 16 128"; do
    # shellcheck disable=SC2086
    timeout 60 "$bundle/bin/kiln_cuda_attention_bench" $shape 50 2>&1 | tee -a "$logs/bench.log" | sed 's/^/    /'
    # shellcheck disable=SC2086
    timeout 60 python3 "$root/scripts/bench_attention_torch.py" $shape 50 2>&1 | tee -a "$logs/bench.log" | tail -1 | sed 's/^/    /'
  done
  # Head dim 128 beside cuDNN's fused SDPA and FlashAttention-2 (raw output in bench_attention.log):
  # T = 4096 in the full check, T = 1k/4k/16k with KILN_GPU_CHECK_ONLY=attention.
  local lengths=4096
  [[ ${KILN_GPU_CHECK_ONLY:-} == attention ]] && lengths="1024 4096 16384"
  KILN_BENCH_ATTENTION_T=${KILN_BENCH_ATTENTION_T:-$lengths} KILN_BENCH_LOG=$logs/bench_attention.log \
    timeout 240 "$root/scripts/bench_attention.sh" "$bundle/bin/kiln_cuda_attention_bench" 10 2>&1 |
    tee -a "$logs/bench.log" | sed 's/^/    /' || true
}

check() {
  [[ -d $bundle || ! -f $bundle.tar.gz ]] || tar -xzf "$bundle.tar.gz" -C "$root"
  [[ -d $bundle ]] || { echo "no gpu_bundle.tar.gz: run scripts/gpu_check.sh --pack here first and carry it" >&2; exit 1; }
  export LD_LIBRARY_PATH=$bundle/lib:${LD_LIBRARY_PATH:-}
  # cuBLASLt, cuDNN and NCCL from the image (pip's nvidia-* packages, or a toolkit install).
  local lib dir
  for lib in libcublasLt.so libcudnn.so libnccl.so; do
    dir=$(find /opt /usr/local /usr/lib -name "$lib*" 2>/dev/null | head -1)
    [[ -n $dir ]] && LD_LIBRARY_PATH=$(dirname "$dir"):$LD_LIBRARY_PATH
  done
  local kiln=$bundle/bin/kiln
  printf '%-32s %s\n' check result
  printf '%-32s %s\n' "nvidia-smi" "$(nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | head -1)"
  printf '%-32s %s\n' "kiln --version" "$("$kiln" --version 2>&1 | tr '\n' ' ')"
  # Full logs go to $KILN_GPU_CHECK_LOGS (the device tool's $OUT when set) for reading later.
  local logs=${KILN_GPU_CHECK_LOGS:-${OUT:-$(mktemp -d)}}
  mkdir -p "$logs"
  # The GPU first: device time is what a lease is short of. KILN_GPU_CHECK_ONLY=profile or
  # =attention runs the per-kernel breakdown or the attention benchmarks alone.
  [[ ${KILN_GPU_CHECK_ONLY:-} == profile ]] && { profile_step; return; }
  [[ ${KILN_GPU_CHECK_ONLY:-} == attention ]] && { attention_rows; return; }
  # The wgmma attention kernels (never yet run on a GPU) in a process of their own: a fault there
  # would leave the CUDA context unusable for every test after it.
  cuda_test_row "CUDA tests (real GPU)" cuda_tests '-*WarpgroupMma*'
  cuda_test_row "wgmma attention tests (GPU)" wgmma_tests '*WarpgroupMma*'
  attention_rows
  # The GEMMs' TFLOP/s, then each memory-bound kernel's bandwidth against a device-to-device
  # copy in the same run (GPT-2 small step shapes, bf16).
  timeout 90 "$bundle/bin/kiln_cuda_kernels_bench" 2>&1 | tee -a "$logs/bench.log" | sed 's/^/    /'
  # kiln train on the GPU (scripts/bench_train_gpu.sh) beside PyTorch on the same shape:
  # GPT-2 small in bf16 at seq 1024, batch 8; KILN_GPU_CHECK_EXTRA=1 adds Llama (GQA 12/4,
  # SwiGLU 2048), =2 also a batch of 16.
  train_row gpt2 8
  # The same run with cuDNN's fused attention (train.attention: cudnn) in place of kiln's, and
  # with kiln's attention on wgmma (train.attention: flash-wgmma).
  local attention trained
  for attention in cudnn flash-wgmma; do
    echo "== kiln train gpt2 b8 $attention" >>"$logs/bench.log"
    trained=$(KILN_BENCH_ATTENTION=$attention timeout 240 "$root/scripts/bench_train_gpu.sh" "$kiln" 30 2>&1 |
                tee -a "$logs/bench.log" | tail -1)
    printf '%-32s %s\n' "kiln train gpt2 b8 ($attention)" \
      "$(awk '$1 == "gpu-train" {printf "%s tok/s, MFU %s%% of %s %s", $2, $3, $4, $5; next} {print "failed: " $0}' <<<"$trained")"
  done
  # 200 steps of a small Llama on the CPU (fp32) and on the GPU (fp32, bf16) on the same data.
  local agree
  agree=$(timeout 240 "$root/scripts/check_gpu_losses.sh" "$kiln" 200 2>"$logs/gpu_losses.log" | tail -1)
  printf '%-32s %s\n' "GPU vs CPU losses (200 steps)" "${agree:-failed: $(tail -1 "$logs/gpu_losses.log")}"
  [[ ${KILN_GPU_CHECK_EXTRA:-0} -ge 1 ]] && train_row llama 8
  [[ ${KILN_GPU_CHECK_EXTRA:-0} -ge 2 ]] && train_row gpt2 16
  # KILN_GPU_CHECK_SANITIZE=1: the attention and model-on-the-device tests under compute-sanitizer's
  # memcheck (out-of-bounds and misaligned accesses the emulator's bounds checks could miss).
  if [[ ${KILN_GPU_CHECK_SANITIZE:-0} == 1 ]] && command -v compute-sanitizer >/dev/null; then
    (cd "$bundle" && timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 "$bundle/bin/kiln_cuda_tests" \
       --gtest_filter='*Attention*:ModelOnDevice.*:CudaCrossEntropy.*' >"$logs/memcheck.log" 2>&1)
    printf '%-32s %s\n' "memcheck (attention, model)" "rc $? $(grep -E 'ERROR SUMMARY|^\[  (PASSED|FAILED)  \] [0-9]' "$logs/memcheck.log" | tr '\n' ' ')"
    # Shared-memory races in the tensor-core attention kernels (staging against fragment reads).
    (cd "$bundle" && timeout 120 compute-sanitizer --tool racecheck --error-exitcode 3 "$bundle/bin/kiln_cuda_tests" \
       --gtest_filter='*TensorCoreTiles*bf16' >"$logs/racecheck.log" 2>&1)
    printf '%-32s %s\n' "racecheck (tensor-core attention)" "rc $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^\[  (PASSED|FAILED)  \] [0-9]' "$logs/racecheck.log" | tr '\n' ' ')"
    # The same for the wgmma kernels: cp.async staging against the tensor cores' shared reads.
    (cd "$bundle" && timeout 120 compute-sanitizer --tool racecheck --error-exitcode 3 "$bundle/bin/kiln_cuda_tests" \
       --gtest_filter='*WarpgroupMmaKernelsMatchTheCpuOp/bf16' >"$logs/racecheck_wgmma.log" 2>&1)
    printf '%-32s %s\n' "racecheck (wgmma attention)" "rc $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^\[  (PASSED|FAILED)  \] [0-9]' "$logs/racecheck_wgmma.log" | tr '\n' ' ')"
  fi
  [[ ${KILN_GPU_CHECK_PROFILE:-0} == 1 ]] && profile_step
  [[ ${KILN_GPU_CHECK_CPU:-0} == 1 ]] || return 0
  # The CPU reference suite and CPU benchmarks on the host's cores, for the record beside the GPU's.
  local start=$(date +%s) unit
  unit=$(cd "$bundle" && timeout 240 "$bundle/bin/kiln_unit_tests" --gtest_brief=1 \
           --gtest_filter='-*Cli*:*Binary*' 2>&1 | tail -1)
  printf '%-32s %s (%ss)\n' "unit tests (CPU reference)" "$unit" "$(( $(date +%s) - start ))"
  local gemm step
  gemm=$(timeout 60 "$bundle/bin/kiln_kernels_bench" 3 2>&1 | grep '^linear fwd' | awk '{print $(NF-1), $NF}')
  printf '%-32s %s\n' "CPU linear fwd (2048x768x3072)" "${gemm:-failed}"
  step=$(timeout 90 "$bundle/bin/kiln_train_step_bench" gpt2 768 12 12 12 3072 50257 128 4 2 2>&1 | tail -1)
  printf '%-32s %s\n' "CPU gpt2-small train step" "$(awk '{printf "%.0f tok/s, %.0f GFLOP/s of %.0f peak", $2, $3, $5}' <<<"$step")"
}

case ${1:-} in
  --pack) pack ;;
  "") check ;;
  *) echo "usage: scripts/gpu_check.sh [--pack]" >&2; exit 2 ;;
esac
