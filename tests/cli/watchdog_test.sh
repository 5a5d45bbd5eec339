#!/usr/bin/env bash
# parallel.timeout_s, the collective watchdog: two data-parallel ranks train; once a checkpoint
# is committed, rank 1 is stopped (SIGSTOP) mid-run. Rank 0's next collective waits past the
# deadline, names itself, the collective, the group and the step, and names rank 1 as showing
# no sign of life; the whole job exits non-zero within the deadline plus 60 s, and the last
# committed checkpoint still verifies. A bad timeout is refused naming the key.
# $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
skip_without_mpi
mpi_environment
timeout_s=5

"$kiln" corpus --out "$work/corpus.jsonl" --docs 400 --seed 9 >/dev/null
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 300 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --quiet >/dev/null
cat >"$work/tiny.yaml" <<YAML
model: {family: gpt2, d_model: 32, n_layers: 2, n_heads: 2, max_seq_len: 32}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5}
train: {steps: 100000, seq_len: 32, batch_size: 4, micro_batch_size: 2, seed: 1, threads: 1}
optim: {lr: 1.0e-3, warmup_steps: 1}
checkpoint: {every_steps: 5, keep_last: 2}
parallel: {timeout_s: $timeout_s}
YAML

run=$work/run
mpirun --oversubscribe -np 2 "$kiln" train "$work/tiny.yaml" --run-dir "$run" >"$work/train.log" 2>&1 &
launcher=$!
rank_pid() {  # the pid of world rank $1 of this job
  local pid
  for pid in $(pgrep -f "kiln train $work/tiny.yaml"); do
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$pid"; return; }
  done
}
for _ in $(seq 600); do  # a committed checkpoint, within 60 s
  [[ -f $run/checkpoints/latest ]] && break
  sleep 0.1
done
check "the job committed a checkpoint before the stall" test -f "$run/checkpoints/latest"
stalled=$(rank_pid 1)
check "found rank 1's process" test -n "$stalled"
[[ -n $stalled ]] && kill -STOP "$stalled"
stopped_at=$(date +%s)
exited=""
for _ in $(seq $(( (timeout_s + 60) * 10 ))); do
  if ! kill -0 "$launcher" 2>/dev/null; then exited=yes; break; fi
  sleep 0.1
done
wait "$launcher"
status=$?
elapsed=$(( $(date +%s) - stopped_at ))
check "the job ended within timeout_s + 60 s (took ${elapsed} s)" test -n "$exited"
check "with a non-zero exit ($status)" test "$status" -ne 0
grep "watchdog:" "$work/train.log" | sed 's/^/      /'
check "rank 0 names the collective, the group and the step" \
  grep -qE "watchdog: rank 0 waited [0-9.]+ s \(parallel.timeout_s = $timeout_s\) in [a-z_]+ on the [a-z.]+ group at step [0-9]+" \
  "$work/train.log"
check "and rank 1 as stalled" grep -q "rank 1 shows no sign of life" "$work/train.log"
[[ -n $exited ]] || { kill -CONT "$stalled" 2>/dev/null; kill -KILL "$launcher" "$stalled" 2>/dev/null; }
check "the last committed checkpoint still verifies" "$kiln" info "$run/checkpoints"

expect_error "a timeout of 0 is refused naming the key" "parallel.timeout_s" \
  "$kiln" train "$work/tiny.yaml" --run-dir "$work/bad" --set parallel.timeout_s=0
finish
