#!/usr/bin/env bash
# `kiln import` / `export` / `score` end to end on the transformers-made fixtures
# (scripts/fixtures/make_interop_fixtures.py), and their bad input.
# $1: the kiln binary, $2: tests/fixtures.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
fixtures=$2/interop
json_number() {  # json_number KEY FILE: the first number after "KEY":
  grep -o "\"$1\": *[-0-9.e]*" "$2" | head -1 | sed 's/.*: *//'
}
close() {  # close A B REL: |A - B| <= REL * |B|
  awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(d <= r * m) }'
}

for family in gpt2 llama; do
  src=$fixtures/$family
  "$kiln" import --from hf "$src" --out "$work/$family" >"$work/import.out" 2>&1
  check "$family: import succeeds" test $? -eq 0
  check "$family: tokenizer carried into the checkpoint" cmp -s "$src/tokenizer.json" "$work/$family/checkpoints/step_00000000/tokenizer.json"
  "$kiln" prepare --tokenizer "$src/tokenizer.json" --input "$src/eval_text.txt" --out "$work/$family-data" \
    --val-fraction 0 --quiet >/dev/null 2>&1
  loss=$("$kiln" eval --checkpoint "$work/$family" --data "$work/$family-data/train.h5" --rows 1 | json_number loss /dev/stdin)
  expected=$(json_number eval_loss "$src/expected.json")
  check "$family: eval loss $loss = transformers' $expected (1e-5 relative)" close "$loss" "$expected" 1e-5
  "$kiln" score --checkpoint "$work/$family" --input "$src/score.jsonl" --logprobs >"$work/score.out"
  nll=$(head -1 "$work/score.out" | json_number nll /dev/stdin)
  expected_nll=$(grep -o '"nll": *[-0-9.e]*' "$src/expected.json" | head -1 | sed 's/.*: *//')
  check "$family: score nll $nll = transformers' $expected_nll" close "$nll" "$expected_nll" 1e-5
  check "$family: score prints one line per input" test "$(wc -l <"$work/score.out")" -eq "$(wc -l <"$src/score.jsonl")"
  check "$family: --logprobs has n-1 values" \
    test "$(head -1 "$work/score.out" | grep -o '"logprobs":\[[^]]*\]' | tr ',' '\n' | wc -l)" -eq \
         "$(( $(head -1 "$work/score.out" | json_number tokens /dev/stdin) - 1 ))"

  # Export to Hugging Face and import the export again: the same model.
  "$kiln" export --checkpoint "$work/$family" --format hf --out "$work/$family-hf" --max-shard-size 50000 >/dev/null
  check "$family: hf export has config, weights index, tokenizer files" \
    test -s "$work/$family-hf/config.json" -a -s "$work/$family-hf/model.safetensors.index.json" \
         -a -s "$work/$family-hf/tokenizer.json" -a -s "$work/$family-hf/tokenizer_config.json" \
         -a -s "$work/$family-hf/generation_config.json"
  "$kiln" import --from hf "$work/$family-hf" --out "$work/$family-again" >/dev/null 2>&1
  again=$("$kiln" eval --checkpoint "$work/$family-again" --data "$work/$family-data/train.h5" --rows 1 | json_number loss /dev/stdin)
  check "$family: export -> import round trip keeps the loss" test "$again" = "$loss"
  for dtype in f32 f16 bf16 q8_0; do
    "$kiln" export --checkpoint "$work/$family" --format gguf --dtype "$dtype" --out "$work/$family-$dtype.gguf" >/dev/null
    check "$family: gguf $dtype written" test "$(head -c 4 "$work/$family-$dtype.gguf")" = "GGUF"
  done
done

# Bad input: each a clear error, never a crash.
expect_error "import of a missing directory" "not a directory" "$kiln" import --from hf "$work/none" --out "$work/x"
mkdir -p "$work/bad"
cp "$fixtures/gpt2/tokenizer.json" "$fixtures/gpt2/model.safetensors" "$work/bad/"
grep -v '"n_head"' "$fixtures/gpt2/config.json" >"$work/bad/config.json"
expect_error "config missing a key" 'config.json: missing key "n_head"' "$kiln" import --from hf "$work/bad" --out "$work/x"
cp "$fixtures/gpt2/config.json" "$work/bad/"
head -c 5000 "$fixtures/gpt2/model.safetensors" >"$work/bad/model.safetensors"
expect_error "truncated safetensors" "model.safetensors: the data section is" "$kiln" import --from hf "$work/bad" --out "$work/x"
printf '\x00\x00\x00\x80\x02\x00\x00\x00{}' >"$work/bad/model.safetensors"
expect_error "header claiming 10 GB" "exceeds the format's limit" "$kiln" import --from hf "$work/bad" --out "$work/x"
sed 's/"n_embd": 32/"n_embd": 64/' "$fixtures/gpt2/config.json" >"$work/bad/config.json"
cp "$fixtures/gpt2/model.safetensors" "$work/bad/"
expect_error "weights whose shapes disagree with config.json" "config.json implies" "$kiln" import --from hf "$work/bad" --out "$work/x"
check "a failed import leaves no checkpoint" test ! -e "$work/x/checkpoints/step_00000000"
expect_error "q8_0 is not a Hugging Face dtype" "q8_0" \
  "$kiln" export --checkpoint "$work/gpt2" --format hf --dtype q8_0 --out "$work/q8hf"
expect_error "export of something that is not a checkpoint" "checkpoint" \
  "$kiln" export --checkpoint "$work/bad" --format gguf --out "$work/x.gguf"
touch "$work/plain_file"
expect_error "export under a file is a named error" "export of $work/gpt2 to $work/plain_file/hf: Not a directory" \
  "$kiln" export --checkpoint "$work/gpt2" --format hf --out "$work/plain_file/hf"
check "  (not an internal error)" bash -c "! grep -q 'internal error' '$work/err'"
printf '{"text": "fine"}\n{"txt": "no text"}\n' >"$work/bad.jsonl"
expect_error "score names the bad line" "bad.jsonl:2" "$kiln" score --checkpoint "$work/gpt2" --input "$work/bad.jsonl"

finish
