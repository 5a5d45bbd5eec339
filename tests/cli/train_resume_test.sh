#!/usr/bin/env bash
# kiln train end to end on a tiny model: learning happens, a resumed run continues bitwise as
# the uninterrupted one (after a checkpoint rollback and after SIGTERM), a corrupt checkpoint
# is skipped with a message, eval and generate read the checkpoint, bad recipes are refused.
# $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
losses() { grep -o '"loss":[^,}]*' "$1/metrics.jsonl"; }

"$kiln" corpus --out "$work/corpus.jsonl" --docs 3000 --seed 2 --tasks-out "$work/tasks.jsonl" --tasks 20 >/dev/null
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 400 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --val-fraction 0.05 \
  --quiet >/dev/null
for family in gpt2 llama; do
cat >"$work/$family.yaml" <<YAML
model: {family: $family, d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, max_seq_len: 32}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5, val: $work/data/val.h5}
train: {steps: 12, seq_len: 32, batch_size: 8, micro_batch_size: 4, seed: 7, threads: 1}
optim: {lr: 3.0e-3, warmup_steps: 2, schedule: cosine}
checkpoint: {every_steps: 4, keep_last: 5}
eval: {every_steps: 6, batches: 2}
YAML
done
sed -i 's/, n_kv_heads: 2//' "$work/gpt2.yaml"

for family in gpt2 llama; do
  full=$work/$family-full
  "$kiln" train "$work/$family.yaml" --run-dir "$full" >"$work/out" 2>&1
  check "$family: train runs" test $? -eq 0
  check "$family: metrics per step" test "$(losses "$full" | wc -l)" -eq 12
  check "$family: val loss recorded" grep -q '"val_loss"' "$full/metrics.jsonl"
  first=$(losses "$full" | head -1 | cut -d: -f2); last=$(losses "$full" | tail -1 | cut -d: -f2)
  check "$family: loss falls ($first -> $last)" awk -v a="$first" -v b="$last" 'BEGIN {exit !(b < a - 0.5)}'

  # Roll back to step 4 and resume: steps 5..12 must repeat bit for bit.
  rolled=$work/$family-rolled
  cp -r "$full" "$rolled"
  rm -rf "$rolled/checkpoints/step_00000008" "$rolled/checkpoints/step_00000012"
  echo step_00000004 >"$rolled/checkpoints/latest"
  "$kiln" train "$work/$family.yaml" --run-dir "$rolled" >"$work/out" 2>&1
  check "$family: resume message" grep -q "resuming from .*step_00000004" "$work/out"
  check "$family: resumed losses identical to the last bit" diff <(losses "$full") <(losses "$rolled")
done

# SIGTERM mid-run saves a checkpoint, exits cleanly, and the rerun finishes identically.
# 300 steps (~1 s of this tiny model) so the signal lands mid-run: 12 steps take ~50 ms,
# about the time the poll below needs to notice the first step.
long=(--set train.steps=300 --set checkpoint.every_steps=0 --set eval.every_steps=0)
"$kiln" train "$work/llama.yaml" "${long[@]}" --run-dir "$work/uninterrupted" >/dev/null 2>&1
stopped=$work/stopped
"$kiln" train "$work/llama.yaml" "${long[@]}" --run-dir "$stopped" >"$work/stop.out" 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q "^step [1-9]" "$work/stop.out" 2>/dev/null && break; sleep 0.05; done
kill -TERM $pid
wait $pid
code=$?
check "SIGTERM exits 0 (got $code)" test $code -eq 0
check "SIGTERM saved a checkpoint mid-run" grep -q "stopped by signal" "$work/stop.out"
"$kiln" train "$work/llama.yaml" "${long[@]}" --run-dir "$stopped" >"$work/stop2.out" 2>&1
check "resume after SIGTERM" grep -q "resuming from" "$work/stop2.out"
check "resume after SIGTERM: identical losses" diff <(losses "$work/uninterrupted") <(losses "$stopped")

# A corrupt newest checkpoint is skipped with a message; the previous one is used.
corrupt=$work/corrupt
cp -r "$work/gpt2-full" "$corrupt"
file=$(ls "$corrupt"/checkpoints/step_00000012/*.h5 | head -1)
printf '\xff\xff\xff\xff' | dd of="$file" bs=1 seek=4096 conv=notrunc status=none
"$kiln" eval --checkpoint "$corrupt/checkpoints" --data "$work/data/val.h5" --batches 2 >"$work/eval.json" 2>"$work/eval.err"
check "corrupt checkpoint skipped with a message" grep -q "step_00000012" "$work/eval.err"
check "previous checkpoint used" grep -q '"step":8' "$work/eval.json"

# eval and generate.
"$kiln" eval --checkpoint "$work/gpt2-full" --data "$work/data/val.h5" --batches 2 --tasks "$work/tasks.jsonl" \
  >"$work/eval.json" 2>&1
check "eval prints loss, perplexity, tokens" grep -q '"loss":.*' "$work/eval.json"
check "eval perplexity" grep -q '"perplexity"' "$work/eval.json"
check "eval task accuracy" grep -q '"task_accuracy"' "$work/eval.json"
"$kiln" generate --checkpoint "$work/llama-full" --prompt "What is 2 plus 2?" --max-tokens 8 --seed 1 \
  >"$work/gen1" 2>/dev/null
"$kiln" generate --checkpoint "$work/llama-full" --prompt "What is 2 plus 2?" --max-tokens 8 --seed 1 \
  >"$work/gen2" 2>/dev/null
check "generate continues the prompt" grep -q "^What is 2 plus 2?" "$work/gen1"
check "generate is reproducible per seed" cmp -s "$work/gen1" "$work/gen2"

# Bad recipes and checkpoints.
"$kiln" train "$work/gpt2.yaml" --set optim.lrr=1 >/dev/null 2>"$work/err"
check "unknown key names it and suggests" grep -q "optim.lrr.*optim.lr" "$work/err"
"$kiln" train "$work/gpt2.yaml" --set model.n_heads=5 >/dev/null 2>"$work/err"
check "impossible shape refused" grep -q "n_heads" "$work/err"
"$kiln" eval --checkpoint "$work/nowhere" --data "$work/data/val.h5" >/dev/null 2>"$work/err"
check "missing checkpoint is a clear error" grep -q "nowhere" "$work/err"

finish
