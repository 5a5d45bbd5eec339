#!/usr/bin/env bash
# Stop signals outside the training steps (issue 16): SIGTERM during an evaluation ends it after
# the batch in flight, saves the last finished step and exits 0; a second SIGTERM once every
# step is done does not lose the final checkpoint; `kiln eval` stops on SIGTERM too; and
# eval.batches / kiln eval --batches are bounded. $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"

"$kiln" corpus --out "$work/corpus.jsonl" --docs 3000 --seed 2 >/dev/null
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 400 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --val-fraction 0.05 \
  --quiet >/dev/null
# The training split as validation set: ~1200 batches, so the final evaluation takes seconds
# and a signal surely lands inside it.
cat >"$work/recipe.yaml" <<YAML
model: {family: llama, d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, max_seq_len: 32}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5, val: $work/data/train.h5}
train: {steps: 3, seq_len: 32, batch_size: 8, micro_batch_size: 4, seed: 7, threads: 1}
optim: {lr: 3.0e-3, warmup_steps: 1}
eval: {batches: 100000}
YAML

# start_until_last_step RUN_DIR: starts training in the background (pid in $pid) and returns
# once the last step's line is out, i.e. when the final evaluation has begun.
start_until_last_step() {
  "$kiln" train "$work/recipe.yaml" --run-dir "$1" >"$1.out" 2>"$1.err" &
  pid=$!
  for _ in $(seq 1 600); do grep -q "^step 3/3" "$1.out" 2>/dev/null && return; sleep 0.05; done
}
# wait_bounded PID: its exit status, or 124 when it is still running after 60 s (then killed).
wait_bounded() {
  for _ in $(seq 1 600); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$1" 2>/dev/null; then kill -KILL "$1"; wait "$1"; return 124; fi
  wait "$1"
}
eval_quietly() { "$kiln" eval --checkpoint "$1" --data "$work/data/val.h5" --batches 2 >/dev/null; }
complete_checkpoint() { test -f "$1/checkpoints/step_00000003/complete" && grep -q step_00000003 "$1/checkpoints/latest"; }

run=$work/eval-stop
start_until_last_step "$run"
kill -TERM $pid
wait_bounded $pid
code=$?
check "SIGTERM during the evaluation exits 0 (got $code)" test $code -eq 0
check "the evaluation ended early, saying after how many batches" grep -q "evaluation interrupted after [0-9]* of 1232 batches" "$run.err"
check "no partial val_loss recorded" test "$(grep -c '"val_loss"' "$run/metrics.jsonl")" -eq 0
check "the checkpoint of the last step is saved" complete_checkpoint "$run"
check "and loads" eval_quietly "$run"

run=$work/double-stop
start_until_last_step "$run"
kill -TERM $pid; sleep 0.01; kill -TERM $pid 2>/dev/null  # the second lands during the save (or after the exit)
wait_bounded $pid
code=$?
# 143 when the second signal was held until the checkpoint was written, 0 when it came too late.
check "second SIGTERM after the last step: exit 0 or 143 after the save (got $code)" test $code -eq 0 -o $code -eq 143
check "second SIGTERM after the last step keeps the final checkpoint" complete_checkpoint "$run"
check "and it loads" eval_quietly "$run"

# kiln eval: SIGTERM stops it with an error instead of being ignored (or killing it mid-way).
"$kiln" eval --checkpoint "$work/eval-stop" --data "$work/data/train.h5" --rows 1 >"$work/eval.out" 2>"$work/eval.err" &
pid=$!
sleep 1
kill -TERM $pid
wait_bounded $pid
code=$?
check "kiln eval stopped by SIGTERM exits 1 (got $code)" test $code -eq 1
check "kiln eval says it was stopped" grep -q "evaluation stopped by signal 15 after [0-9]* of [0-9]* batches" "$work/eval.err"
check "kiln eval prints no partial result" test ! -s "$work/eval.out"

# A prompt file that is a FIFO would block generate forever: refused by name.
mkfifo "$work/prompt.fifo"
expect_error "generate --prompt-file FIFO refused" "prompt file '$work/prompt.fifo' is a FIFO" \
  timeout -k 5 20 "$kiln" generate --checkpoint "$work/eval-stop" --prompt-file "$work/prompt.fifo"

# Bounds.
expect_error "eval.batches 10^12 refused by key" "eval.batches.*in \[1, 100000\]" \
  timeout -k 5 20 "$kiln" train "$work/recipe.yaml" --set eval.batches=1000000000000 --run-dir "$work/huge"
expect_error "kiln eval --batches beyond the dataset refused" "--batches 1000000000000: .*val.h5 holds [0-9]* batch" \
  timeout -k 5 20 "$kiln" eval --checkpoint "$work/eval-stop" --data "$work/data/val.h5" --batches 1000000000000
"$kiln" train "$work/recipe.yaml" --set train.steps=4 --set eval.batches=5 --run-dir "$work/eval-stop" \
  >"$work/small.out" 2>"$work/small.err"
check "a small eval.batches runs exactly that many (no note)" test "$(grep -c 'note: eval.batches' "$work/small.err")" -eq 0
check "and records val_loss" grep -q '"val_loss"' "$work/eval-stop/metrics.jsonl"

finish
