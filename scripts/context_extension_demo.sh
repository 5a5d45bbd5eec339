#!/usr/bin/env bash
# Context extension, end to end on the CPU (about 10 minutes on 2 cores):
#   1. the built-in corpus with 10% long-context documents (passkeys, invented languages) and a
#      held-out set of long-context tasks; a tokenizer; train/val datasets;
#   2. recipes/long-context-base.yaml: a tiny Llama trained at 128 tokens;
#   3. recipes/long-context-extend.yaml: the same weights continued at 512 tokens with Llama 3.1
#      RoPE scaling (factor 4);
#   4. kiln eval --by-position 64 of both: validation loss by position bucket, the base at its
#      128-token windows and the extended model at 512.
# Everything lands in runs/long-context/; re-running resumes. Extra arguments go to both trainings
# (e.g. --set train.steps=100 for a quick look).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kiln=${KILN_BUILD_DIR:-$root/build}/trainer/cli/kiln
[[ -x $kiln ]] || KILN_BUILD_TARGETS=kiln scripts/build.sh >/dev/null
run_dir=runs/long-context
mkdir -p "$run_dir"
if [[ ! -f $run_dir/data/val.h5 ]]; then
  "$kiln" corpus --out "$run_dir/corpus.jsonl" --docs 12000 --seed 7 --long-context 600,1200,2000 \
    --long-context-docs 10 --tasks-out "$run_dir/tasks.jsonl" --tasks 0 --long-context-tasks 20
  "$kiln" tokenizer train --input "$run_dir/corpus.jsonl" --vocab-size 1024 --out "$run_dir/tokenizer.json"
  "$kiln" prepare --tokenizer "$run_dir/tokenizer.json" --input "$run_dir/corpus.jsonl" --out "$run_dir/data" \
    --val-fraction 0.05 --quiet
fi
"$kiln" train recipes/long-context-base.yaml "$@"
"$kiln" train recipes/long-context-extend.yaml "$@"

table() {  # table EVAL_JSON TITLE
  python3 - "$1" "$2" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
buckets = result["loss_by_position"]["buckets"]
print(f"{sys.argv[2]}: validation loss by position ({result['loss_by_position']['positions']} positions)")
for b in buckets:
    loss = "-" if b["loss"] is None else f"{b['loss']:.3f}"
    print(f"  {b['first']:>4}-{b['end'] - 1:<4} {loss:>7}  {'#' * int(0 if b['loss'] is None else 8 * b['loss'])}")
PY
}
"$kiln" eval --checkpoint "$run_dir/base" --data "$run_dir/data/val.h5" --batches 24 --by-position 64 \
  >"$run_dir/eval-base.json"
"$kiln" eval --checkpoint "$run_dir/extended" --data "$run_dir/data/val.h5" --batches 24 --by-position 64 \
  >"$run_dir/eval-extended.json"
table "$run_dir/eval-base.json" "base (128 tokens)"
table "$run_dir/eval-extended.json" "extended (512 tokens, llama3 RoPE scaling x4)"
