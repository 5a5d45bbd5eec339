#!/usr/bin/env bash
# Parallel training under mpirun (CPU, --oversubscribe): every (dp, tp, pp) layout computes the
# serial run's losses for both families (step 1 within 1e-6 relative, every step within 1e-4),
# step-1 gradients match per tensor (AdamW's first moment after step 1 is (1 - beta1) * grad),
# checkpoints resume under other layouts, a killed rank ends the job without a hang and leaves
# the last checkpoint intact.
# $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
skip_without_mpi
mpi_environment
losses() { grep -o '"loss":[^,}]*' "$1/metrics.jsonl" | cut -d: -f2; }
# same_losses A B FIRST_RTOL ALL_RTOL [FROM_STEP]: per-step losses agree.
same_losses() {
  [[ -s $1/metrics.jsonl && -s $2/metrics.jsonl ]] || { echo "missing metrics.jsonl"; return 1; }
  [[ $(losses "$1" | wc -l) -eq $(losses "$2" | wc -l) ]] || { echo "different numbers of steps"; return 1; }
  paste <(losses "$1") <(losses "$2") | awk -v first="$3" -v all="$4" -v from="${5:-1}" '
    NR >= from { d = $1 - $2; if (d < 0) d = -d; m = ($2 < 0 ? -$2 : $2); r = m > 0 ? d / m : d;
         if ((NR == from && r > first) || r > all) { printf "step %d: %s vs %s (rel %.2e)\n", NR, $1, $2, r; bad = 1 } }
    END { if (NR == 0) bad = 1; exit bad }'
}
# compare_checkpoints A B: AdamW's first moment after one step, (1 - beta1) * gradient, per tensor.
compare_checkpoints() {
  "$kiln" info "$1" --compare "$2" --tensors /optim/exp_avg/ --tolerance 1e-5 >"$work/compare.out" 2>&1 ||
    { tail -5 "$work/compare.out"; return 1; }
}
train() {  # train RANKS RUN_DIR RECIPE [--set ...]
  local ranks=$1 dir=$2 recipe=$3; shift 3
  if [[ $ranks == 1 ]]; then
    "$kiln" train "$recipe" --run-dir "$dir" "$@" >"$dir.log" 2>&1
  else
    timeout 300 mpirun --oversubscribe -np "$ranks" "$kiln" train "$recipe" --run-dir "$dir" "$@" >"$dir.log" 2>&1
  fi
}

"$kiln" corpus --out "$work/corpus.jsonl" --docs 3000 --seed 4 >/dev/null
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 300 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --val-fraction 0.05 \
  --quiet >/dev/null
cat >"$work/gpt2.yaml" <<YAML
model: {family: gpt2, d_model: 32, n_layers: 4, n_heads: 4, max_seq_len: 32}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5, val: $work/data/val.h5}
train: {steps: 20, seq_len: 32, batch_size: 8, micro_batch_size: 2, seed: 11, threads: 1}
optim: {lr: 3.0e-3, warmup_steps: 2, schedule: cosine, grad_clip: 1.0}
checkpoint: {every_steps: 10, keep_last: 5}
eval: {every_steps: 10, batches: 1}
YAML
sed -e 's/family: gpt2, d_model: 32, n_layers: 4, n_heads: 4,/family: llama, d_model: 32, n_layers: 4, n_heads: 4, n_kv_heads: 2, tie_embeddings: false,/' \
  "$work/gpt2.yaml" >"$work/llama.yaml"

layouts=("2 dp=2" "2 tp=2" "2 pp=2" "4 dp=2,tp=2" "4 tp=2,pp=2" "4 dp=2,pp=2" "8 dp=2,tp=2,pp=2" "2 dp=2,zero=1")
# Open MPI spins while it waits; with more ranks than cores that only steals the cores.
export OMPI_MCA_mpi_yield_when_idle=1
for family in gpt2 llama; do
  train 1 "$work/$family-serial" "$work/$family.yaml"
  check "$family serial run" test -s "$work/$family-serial/metrics.jsonl"
  one_step=(--set train.steps=1 --set optim.warmup_steps=0)
  train 1 "$work/$family-serial-1" "$work/$family.yaml" "${one_step[@]}"
  for layout in "${layouts[@]}"; do
    read -r ranks settings <<<"$layout"
    sets=()
    IFS=, read -ra pairs <<<"$settings"
    for pair in "${pairs[@]}"; do sets+=(--set "parallel.$pair"); done
    dir="$work/$family-$ranks-${settings//[=,]/_}"
    train "$ranks" "$dir" "$work/$family.yaml" "${sets[@]}"
    check "$family ($settings) runs" test -s "$dir/metrics.jsonl"
    check "$family ($settings) losses equal serial" same_losses "$dir" "$work/$family-serial" 1e-6 1e-4
    train "$ranks" "$dir-1" "$work/$family.yaml" "${sets[@]}" "${one_step[@]}"
    check "$family ($settings) step-1 gradients equal serial" compare_checkpoints "$dir-1" "$work/$family-serial-1"
  done
done

# Resume under another layout: checkpoint of step 10 written by one layout, continued by another.
for pair in "4 dp=2,tp=2|4 pp=4" "4 tp=2,pp=2|2 dp=2" "2 dp=2,zero=1|4 tp=2,pp=2"; do
  IFS='|' read -r from to <<<"$pair"
  read -r from_ranks from_settings <<<"$from"
  read -r to_ranks to_settings <<<"$to"
  from_sets=(); to_sets=()
  IFS=, read -ra pairs <<<"$from_settings"; for kv in "${pairs[@]}"; do from_sets+=(--set "parallel.$kv"); done
  IFS=, read -ra pairs <<<"$to_settings"; for kv in "${pairs[@]}"; do to_sets+=(--set "parallel.$kv"); done
  dir="$work/resume-${from_settings//[=,]/_}-to-${to_settings//[=,]/_}"
  train "$from_ranks" "$dir" "$work/llama.yaml" "${from_sets[@]}" --set train.steps=20
  rm -rf "$dir/checkpoints/step_00000020"
  echo step_00000010 >"$dir/checkpoints/latest"
  train "$to_ranks" "$dir" "$work/llama.yaml" "${to_sets[@]}"
  check "resume ($from_settings) -> ($to_settings) message" grep -q "resuming from .*step_00000010" "$dir.log"
  check "resume ($from_settings) -> ($to_settings) continues the serial losses" \
    same_losses "$dir" "$work/llama-serial" 1e-4 1e-4 11
done

# A rank killed mid-run: mpirun ends the job (no hang), the last checkpoint stays valid.
killed="$work/killed"
timeout 120 mpirun --oversubscribe -np 4 "$kiln" train "$work/gpt2.yaml" --run-dir "$killed" \
  --set parallel.tp=2 --set parallel.pp=2 --set train.steps=100000 --set checkpoint.every_steps=5 \
  --set eval.every_steps=0 >"$killed.log" 2>&1 &
launcher=$!
for _ in $(seq 1 600); do [[ -f $killed/checkpoints/latest ]] && break; sleep 0.1; done
victim=$(pgrep -f "run-dir $killed" | grep -v "^$launcher$" | tail -1)
start=$(date +%s)
kill -9 "$victim"
wait "$launcher"
code=$?
elapsed=$(($(date +%s) - start))
check "killed rank ends the job with an error (exit $code)" test "$code" -ne 0 -a "$code" -ne 124
check "no hang after the kill (${elapsed}s)" test "$elapsed" -lt 60
check "last checkpoint intact" "$kiln" info "$killed/checkpoints"
train 4 "$killed" "$work/gpt2.yaml" --set parallel.tp=2 --set parallel.pp=2 --set train.steps=12
check "killed run resumes" grep -q "resuming from" "$killed.log"

# Threads per rank when neither the recipe nor OMP_NUM_THREADS sets them: unpinned ranks on one
# machine share its cores instead of each starting a thread per core.
(
  unset OMP_NUM_THREADS
  timeout 300 mpirun --oversubscribe --bind-to none -np 2 "$kiln" train "$work/gpt2.yaml" --run-dir "$work/threads" \
    --set train.threads=auto --set train.steps=2 --set eval.every_steps=0 >"$work/threads.log" 2>&1
)
share=$(($(nproc) / 2)); share=$((share > 0 ? share : 1))
check "2 unpinned ranks take $share thread(s) each" grep -q "on 2 rank(s) x $share thread(s)" "$work/threads.log"

finish
