#!/usr/bin/env bash
# Chat SFT end to end: `prepare --format chat` (packing, masks, overlong policies, bad input),
# a short fine-tune from scratch and from an imported Hugging Face model with the sft-* recipes,
# and exports that carry the chat template. $1: the kiln binary, $2: tests/fixtures.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
fixtures=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
count() {  # count SPLIT FIELD FILE: a number from prepare's "SPLIT chat: ..." line
  sed -n "s/.*$1 chat: \([0-9]*\) conversations in \([0-9]*\) windows.* \([0-9]*\) truncated, \([0-9]*\) dropped.*/\1 \2 \3 \4/p" "$3" |
    awk -v f="$2" '{ print $f }'
}

"$kiln" corpus --out "$work/corpus.jsonl" --docs 1500 --seed 5 --tasks-out "$work/tasks.jsonl" --tasks 200 >/dev/null || exit 1
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 400 --special '<|endoftext|>' '<|im_start|>' '<|im_end|>' \
  --out "$work/tok.json" >/dev/null || exit 1
chat=(--format chat --template chatml --completion-field answer --tokenizer "$work/tok.json" --input "$work/tasks.jsonl"
      --val-fraction 0.1 --quiet)
"$kiln" prepare "${chat[@]}" --seq-len 64 --out "$work/data" >"$work/packed.out" 2>&1
check "chat prepare succeeds" test $? -eq 0
conversations=$(( $(count train 1 "$work/packed.out") + $(count val 1 "$work/packed.out") ))
check "every task becomes one conversation" test "$conversations" -eq 200
"$kiln" info "$work/data" >"$work/info.out" 2>&1
check "info verifies the chat datasets" grep -q -i "verified" "$work/info.out"
"$kiln" prepare "${chat[@]}" --seq-len 64 --no-pack --out "$work/unpacked" >"$work/unpacked.out" 2>&1
check "packing needs fewer windows than one conversation per window" \
  test "$(count train 2 "$work/packed.out")" -lt "$(count train 2 "$work/unpacked.out")"
check "unpacked: one window per conversation" test "$(count train 2 "$work/unpacked.out")" -eq "$(count train 1 "$work/unpacked.out")"
"$kiln" prepare "${chat[@]}" --seq-len 28 --out "$work/short_drop" >"$work/drop.out" 2>&1
"$kiln" prepare "${chat[@]}" --seq-len 28 --overlong truncate --out "$work/short_cut" >"$work/cut.out" 2>&1
check "overlong conversations are dropped and counted" test "$(count train 4 "$work/drop.out")" -gt 0
check "or truncated and counted" test "$(count train 3 "$work/cut.out")" -gt 0

# Bad input.
expect_error "chat needs a template" "--template" "$kiln" prepare --format chat --seq-len 64 --tokenizer "$work/tok.json" \
  --input "$work/tasks.jsonl" --out "$work/x" --quiet
expect_error "unknown template" "unknown chat template 'alpaca'" "$kiln" prepare "${chat[@]/chatml/alpaca}" --seq-len 64 --out "$work/x"
expect_error "chat needs a window length" "--seq-len" "$kiln" prepare "${chat[@]}" --out "$work/x"
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 300 --out "$work/plain_tok.json" >/dev/null
expect_error "tokenizer without the template's tokens" "no special token <|im_start|>" \
  "$kiln" prepare --format chat --template chatml --seq-len 64 --completion-field answer --tokenizer "$work/plain_tok.json" \
  --input "$work/tasks.jsonl" --out "$work/x" --quiet
printf '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n{"messages": [{"role": "user"}]}\n' >"$work/bad.jsonl"
expect_error "a bad conversation names file and line" 'bad.jsonl:2: messages\[0\]: missing field "content"' \
  "$kiln" prepare --format chat --template chatml --seq-len 64 --tokenizer "$work/tok.json" --input "$work/bad.jsonl" --out "$work/x" --quiet
expect_error "--template only with --format chat" "--format chat" \
  "$kiln" prepare --template chatml --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/x" --quiet

# A short SFT run from scratch with the offline recipe, then exports that carry the template.
small=(--set model.d_model=32 --set model.n_layers=1 --set model.n_heads=2 --set model.max_seq_len=64
       --set train.seq_len=64 --set train.steps=4 --set train.batch_size=4 --set train.micro_batch_size=4
       --set eval.every_steps=2 --set eval.batches=1 --set log.every_steps=1 --set checkpoint.every_steps=0
       --set optim.warmup_steps=1)
"$kiln" train "$root/recipes/sft-builtin.yaml" "${small[@]}" --set "data.tokenizer=$work/tok.json" \
  --set "data.train=$work/data/train.h5" --set "data.val=$work/data/val.h5" --set "run.dir=$work/run" >"$work/train.out" 2>&1
check "sft-builtin trains" test $? -eq 0
check "it logs a validation loss" grep -q '"val_loss"' "$work/run/metrics.jsonl"
"$kiln" export --checkpoint "$work/run" --format hf --out "$work/hf" >"$work/export.out" 2>&1
check "hf export names the chat template" grep -q "chat template chatml" "$work/export.out"
check "tokenizer_config.json carries it" grep -q '"chat_template": ".*im_start' "$work/hf/tokenizer_config.json"
check "generation stops at <|im_end|> too" grep -q -A3 '"eos_token_id": \[' "$work/hf/generation_config.json"
"$kiln" export --checkpoint "$work/run" --format gguf --dtype f16 --out "$work/model.gguf" >/dev/null 2>&1
check "gguf carries tokenizer.chat_template" grep -a -q "tokenizer.chat_template" "$work/model.gguf"
"$kiln" generate --checkpoint "$work/run" --prompt $'<|im_start|>user\nWhat is 2 plus 2?<|im_end|>\n<|im_start|>assistant\n' \
  --temperature 0 --max-tokens 8 --stop '<|im_end|>' >/dev/null 2>&1
check "the fine-tuned model generates from a chat prompt" test $? -eq 0

# Fine-tuning an imported model (the fixture GPT-2's tokenizer has the ChatML tokens).
"$kiln" import --from hf "$fixtures/interop/gpt2" --out "$work/base" >/dev/null 2>&1
tok=$work/base/checkpoints/step_00000000/tokenizer.json
"$kiln" prepare "${chat[@]/$work\/tok.json/$tok}" --seq-len 64 --out "$work/hf_data" >/dev/null 2>&1
"$kiln" train "$root/recipes/sft-builtin.yaml" --set model.d_model=32 --set model.n_layers=2 --set model.n_heads=4 \
  --set model.max_seq_len=64 --set train.seq_len=64 --set train.steps=2 --set train.batch_size=2 --set train.micro_batch_size=2 \
  --set eval.every_steps=0 --set checkpoint.every_steps=0 --set optim.warmup_steps=1 --set "model.init_from=$work/base" \
  --set "data.tokenizer=$tok" --set "data.train=$work/hf_data/train.h5" --set "data.val=$work/hf_data/val.h5" \
  --set "run.dir=$work/hf_run" >"$work/hf_train.out" 2>&1
check "an imported model fine-tunes (model.init_from)" grep -q "initialised weights from" "$work/hf_train.out"
check "import wrote the recipe to copy the model from" grep -q "family: gpt2" "$work/base/recipe.yaml"

finish
