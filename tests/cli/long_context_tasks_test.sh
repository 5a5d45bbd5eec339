#!/usr/bin/env bash
# Long-context tasks end to end: `kiln corpus --long-context` writes passkey and invented-
# language tasks at each length (deterministic, held-out fields, bad flags refused), and
# `kiln eval` on a tiny checkpoint reports accuracy by kind and by (kind, length) with the
# prompts' token counts, skips (and counts) the prompts longer than the model's context, and
# reports the loss by position, whose buckets average to the overall loss. A model this small
# solves nothing; the test checks the structure and the numbers that do not depend on that.
# $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"

lc=(--long-context 300,3k --long-context-tasks 3)
"$kiln" corpus --out "$work/corpus.jsonl" --docs 1500 --seed 4 --tasks-out "$work/tasks.jsonl" --tasks 6 "${lc[@]}" \
  --long-context-docs 5 >"$work/out"
check "corpus with long-context tasks exits 0" test $? -eq 0
check "6 short + 2 kinds x 2 lengths x 3 tasks" test "$(wc -l <"$work/tasks.jsonl")" -eq 18
check "passkey tasks carry context_chars and depth" grep -q '"context_chars":3000,"depth":' "$work/tasks.jsonl"
check "language tasks carry context_chars" grep -q '"context_chars":300,"kind":"language"' "$work/tasks.jsonl"
check "some documents are passkey documents" grep -q '"kind":"passkey"' "$work/corpus.jsonl"
check "some documents are language documents" grep -q '"kind":"language"' "$work/corpus.jsonl"
"$kiln" corpus --out "$work/again.jsonl" --docs 1500 --seed 4 --tasks-out "$work/again_tasks.jsonl" --tasks 6 "${lc[@]}" \
  --long-context-docs 5 >/dev/null
check "same seed, same documents and tasks" bash -c "cmp -s '$work/corpus.jsonl' '$work/again.jsonl' && cmp -s '$work/tasks.jsonl' '$work/again_tasks.jsonl'"
"$kiln" corpus --out "$work/plain.jsonl" --docs 300 --seed 4 >/dev/null
"$kiln" corpus --out "$work/plain_lc.jsonl" --docs 300 --seed 4 --tasks-out "$work/t.jsonl" --tasks 0 "${lc[@]}" >/dev/null
check "long-context tasks leave the documents as they were" cmp -s "$work/plain.jsonl" "$work/plain_lc.jsonl"
expect_error "--long-context alone does nothing" "does nothing without --tasks-out" \
  "$kiln" corpus --out "$work/x.jsonl" --docs 10 --long-context 1000
expect_error "--long-context-docs needs lengths" "needs --long-context" \
  "$kiln" corpus --out "$work/x.jsonl" --docs 10 --long-context-docs 5
expect_error "a bad length is named" "'4q' is not a length" \
  "$kiln" corpus --out "$work/x.jsonl" --docs 10 --tasks-out "$work/x_tasks.jsonl" --long-context 1000,4q

"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 400 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --val-fraction 0.05 \
  --quiet >/dev/null
# Context 256 tokens: the 300-character passkeys fit, the language prompts (grammar and
# dictionary alone are ~1100 characters) and everything at 3000 characters do not.
cat >"$work/model.yaml" <<YAML
model: {family: llama, d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, max_seq_len: 256}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5, val: $work/data/val.h5, packed: false}
train: {steps: 4, seq_len: 64, batch_size: 4, micro_batch_size: 4, seed: 3, threads: 1}
optim: {lr: 3.0e-3, warmup_steps: 1}
checkpoint: {every_steps: 4}
eval: {every_steps: 0}
YAML
"$kiln" train "$work/model.yaml" --run-dir "$work/run" >"$work/train.log" 2>&1
check "tiny model trains" test $? -eq 0

"$kiln" eval --checkpoint "$work/run" --data "$work/data/val.h5" --batches 4 --by-position 16 \
  --tasks "$work/tasks.jsonl" >"$work/eval.json" 2>"$work/eval.err"
check "eval exits 0" test $? -eq 0
check "eval prints the by-length table" grep -q "long-context tasks (the model's context: 256 tokens)" "$work/eval.err"
check "eval says why tasks were skipped" grep -q "exceed the model's context of 256 tokens" "$work/eval.err"
python3 - "$work/eval.json" "$work/tasks.jsonl" "$work/tok.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
tasks = [json.loads(line) for line in open(sys.argv[2])]
failures = []
def expect(condition, message):
    if not condition:
        failures.append(message)

accuracy = result["task_accuracy"]
expect(accuracy["tasks"] + accuracy["skipped"] == len(tasks), f"scored + skipped != {len(tasks)}: {accuracy}")
expect(accuracy["max_seq_len"] == 256, "max_seq_len")
kinds = {task["kind"] for task in tasks}
expect(set(accuracy["by_kind"]) == kinds, f"by_kind {sorted(accuracy['by_kind'])} != {sorted(kinds)}")
buckets = {(b["kind"], b["context_chars"]): b for b in accuracy["by_length"]}
expect(set(buckets) == {(k, n) for k in ("passkey", "language") for n in (300, 3000)}, f"buckets {sorted(buckets)}")
for key, b in buckets.items():
    expect(b["tasks"] + b["skipped"] == 3, f"{key}: {b}")
    tokens = b["prompt_tokens"]
    expect(tokens["min"] <= tokens["mean"] <= tokens["max"], f"{key}: token stats {tokens}")
    if tokens["min"] + 8 > 256:  # no prompt of the bucket can fit with its answer
        expect(b["skipped"] == 3 and b["tasks"] == 0 and b["accuracy"] is None, f"{key} should be skipped: {b}")
expect(buckets[("passkey", 300)]["skipped"] == 0, f"300-character passkeys fit 256 tokens: {buckets[('passkey', 300)]}")
expect(buckets[("passkey", 3000)]["skipped"] == 3, "3000-character passkeys cannot fit 256 tokens")
expect(buckets[("language", 3000)]["skipped"] == 3, "3000-character language prompts cannot fit 256 tokens")
expect(buckets[("passkey", 3000)]["prompt_tokens"]["min"] > 256, "3000-character prompts are longer than 256 tokens")

by_position = result["loss_by_position"]
expect(by_position["bucket"] == 16 and by_position["positions"] == "window", f"{by_position['bucket']} {by_position['positions']}")
spans = [(b["first"], b["end"]) for b in by_position["buckets"]]
expect(spans == [(0, 16), (16, 32), (32, 48), (48, 64)], f"spans {spans}")
total = sum(b["tokens"] for b in by_position["buckets"])
expect(total == result["tokens"], f"bucket tokens {total} != {result['tokens']}")
mean = sum(b["loss"] * b["tokens"] for b in by_position["buckets"]) / total
expect(abs(mean - result["loss"]) < 1e-5 * result["loss"], f"bucket mean {mean} != loss {result['loss']}")
for message in failures:
    print("     ", message)
sys.exit(1 if failures else 0)
PY
check "eval JSON: accuracy by kind and length, skips, loss by position" test $? -eq 0

"$kiln" eval --checkpoint "$work/run" --data "$work/data/val.h5" --batches 2 --by-position >"$work/auto.json" 2>/dev/null
check "--by-position without N: eight buckets" python3 -c "
import json, sys
b = json.load(open(sys.argv[1]))['loss_by_position']
sys.exit(not (b['bucket'] == 8 and len(b['buckets']) == 8))" "$work/auto.json"
# The per-target losses come from the model's logits on its own device: the same buckets on
# the emulated CUDA device (where the kernels' argument contracts are checked) as on the CPU.
if "$kiln" --version | grep -q "emulated device"; then
  "$kiln" eval --checkpoint "$work/run" --data "$work/data/val.h5" --batches 1 --by-position 16 --device cpu \
    >"$work/cpu.json" 2>/dev/null
  KILN_CUDA_DEVICE=emulated "$kiln" eval --checkpoint "$work/run" --data "$work/data/val.h5" --batches 1 \
    --by-position 16 --device cuda >"$work/cuda.json" 2>"$work/cuda.err"
  check "--by-position on the CUDA device: the CPU's buckets" python3 -c "
import json, sys
cpu, cuda = (json.load(open(f))['loss_by_position']['buckets'] for f in sys.argv[1:3])
sys.exit(not (len(cpu) == len(cuda) == 4 and all(a['tokens'] == b['tokens'] and abs(a['loss'] - b['loss']) < 1e-5
                                                 for a, b in zip(cpu, cuda))))" "$work/cpu.json" "$work/cuda.json"
fi
expect_error "--by-position needs --data" "--by-position measures the loss on --data" \
  "$kiln" eval --checkpoint "$work/run" --tasks "$work/tasks.jsonl" --by-position 16

finish
