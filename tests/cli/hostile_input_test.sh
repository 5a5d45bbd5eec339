#!/usr/bin/env bash
# Hostile input from the issue-16 probe, each a named error (exit 1, never a crash, a hang or an
# "internal error"): repeated keys, sections and documents in training and curate recipes and
# --set values; recipes that are not regular files; a run.dir that is a file; a `latest` that is
# a directory; config.json sizes beyond what the weights hold, numbers JSON cannot hold; a
# symlink loop as model.safetensors. $1: the kiln binary, $2: tests/fixtures.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
fixtures=$2/interop

# expect_named NAME PATTERN COMMAND...: expect_error, and the error is not an internal one.
expect_named() {
  expect_error "$@"
  if grep -q "internal error" "$work/err"; then echo "FAIL $1: internal error"; failures=$((failures + 1)); fi
}

# --- training recipes ---------------------------------------------------------------------
cat >"$work/base.yaml" <<YAML
model: {family: gpt2, d_model: 32, n_layers: 2, n_heads: 4, max_seq_len: 32}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5}
train: {steps: 2, seq_len: 32, batch_size: 8, micro_batch_size: 4, threads: 1}
optim:
  lr: 3.0e-3
YAML
{ cat "$work/base.yaml"; echo "  lr: 30.0"; } >"$work/dup_key.yaml"
expect_named "repeated key in a recipe" "dup_key.yaml:6:3: optim.lr: duplicate key (first written at 5:3)" \
  "$kiln" train "$work/dup_key.yaml"
{ cat "$work/base.yaml"; echo "train: {steps: 1000}"; } >"$work/dup_section.yaml"
expect_named "repeated section in a recipe" "dup_section.yaml:6:1: train: duplicate key (first written at 3:1)" \
  "$kiln" train "$work/dup_section.yaml"
{ cat "$work/base.yaml"; printf -- "---\noptim: {lr: 30.0}\n"; } >"$work/two_docs.yaml"
expect_named "second document in a recipe" "two_docs.yaml:6:1: a second YAML document" \
  "$kiln" train "$work/two_docs.yaml"
expect_named "repeated --set" "--set optim.lr=2: \`optim.lr\` is already set by --set optim.lr=1" \
  "$kiln" train "$work/base.yaml" --set optim.lr=1 --set optim.lr=2
mkfifo "$work/fifo.yaml"
expect_named "FIFO recipe refused unopened" "recipe '$work/fifo.yaml' is a FIFO" timeout -k 5 20 "$kiln" train "$work/fifo.yaml"
expect_named "/dev/zero recipe" "recipe '/dev/zero' is a character device" timeout -k 5 20 "$kiln" train /dev/zero
expect_named "directory recipe" "is a directory" "$kiln" train "$work"

# --- curate recipes -----------------------------------------------------------------------
printf '{"text": "one document here"}\n' >"$work/docs.jsonl"
cat >"$work/curate.yaml" <<YAML
input:
  paths: [$work/docs.jsonl]
output:
  dir: $work/curated
gopher_quality:
  min_doc_words: 1
YAML
{ cat "$work/curate.yaml"; echo "  min_doc_words: 500"; } >"$work/curate_dup.yaml"
expect_named "repeated key in a curate recipe" "curate_dup.yaml:7:3: gopher_quality.min_doc_words: duplicate key" \
  "$kiln" curate "$work/curate_dup.yaml" --quiet
{ cat "$work/curate.yaml"; echo "output: {dir: /elsewhere}"; } >"$work/curate_section.yaml"
expect_named "repeated section in a curate recipe" "curate_section.yaml:7:1: output: duplicate key (first written at 3:1)" \
  "$kiln" curate "$work/curate_section.yaml" --quiet
{ cat "$work/curate.yaml"; printf -- "---\ninput: {paths: [x]}\n"; } >"$work/curate_docs.yaml"
expect_named "second document in a curate recipe" "curate_docs.yaml:7:1: a second YAML document" \
  "$kiln" curate "$work/curate_docs.yaml" --quiet
expect_named "repeated key inside a --set value" "--set input.paths={a: 1, a: 2}:1:8: a: duplicate key" \
  "$kiln" curate "$work/curate.yaml" --quiet --set "input.paths={a: 1, a: 2}"
expect_named "second document inside a --set value" "a second YAML document" \
  "$kiln" curate "$work/curate.yaml" --quiet --set $'input.paths=[a]\n---\n[b]'
expect_named "repeated curate --set" "is already set by --set gopher_quality.min_doc_words=2" \
  "$kiln" curate "$work/curate.yaml" --quiet --set gopher_quality.min_doc_words=2 --set gopher_quality.min_doc_words=3
{ cat "$work/curate.yaml"; echo "[a, b]: 1"; } >"$work/curate_key.yaml"
expect_named "a list as a curate recipe key" "curate_key.yaml:7:1: (recipe): a key is a list, not a plain name" \
  "$kiln" curate "$work/curate_key.yaml" --quiet
expect_named "FIFO curate recipe" "curate recipe '$work/fifo.yaml' is a FIFO" timeout -k 5 20 "$kiln" curate "$work/fifo.yaml"

# --- run directory, checked before the first step -----------------------------------------
"$kiln" corpus --out "$work/corpus.jsonl" --docs 300 --seed 1 >/dev/null
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 300 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --val-fraction 0 \
  --quiet >/dev/null
touch "$work/a_file"
expect_named "run.dir that is a file" "run.dir '$work/a_file' is a file, not a directory" \
  "$kiln" train "$work/base.yaml" --run-dir "$work/a_file"
mkdir -p "$work/run/checkpoints/latest"
expect_named "latest that is a directory, before the first step" "checkpoint pointer '$work/run/checkpoints/latest' is a directory" \
  "$kiln" train "$work/base.yaml" --run-dir "$work/run"
check "no step ran" test ! -e "$work/run/metrics.jsonl"

# --- import --------------------------------------------------------------------------------
with_config() {  # with_config KEY VALUE: a copy of the gpt2 fixture whose config.json sets KEY
  rm -rf "$work/hf"; cp -r "$fixtures/gpt2" "$work/hf"
  sed -i "s/\"$1\": [^,}]*/\"$1\": $2/" "$work/hf/config.json"
  grep -q "\"$1\": $2" "$work/hf/config.json" || echo "FAIL test setup: $1 not in config.json"
}
# An address-space limit far below what the old code allocated (~60 GB for vocab 10^7): a
# regression would end in bad_alloc instead of the named error.
limited() { (ulimit -v 4000000; "$@"); }
with_config vocab_size 10000000
expect_named "vocab_size 10^7 refused before allocating" "model.safetensors: holds [0-9]* values, but config.json implies" \
  limited "$kiln" import --from hf "$work/hf" --out "$work/imported"
check "nothing written for it" test ! -e "$work/imported"
with_config n_layer 100000000
expect_named "n_layer 10^8 refused by key" '"n_layer" = 100000000 is out of range' \
  limited "$kiln" import --from hf "$work/hf" --out "$work/imported"
with_config layer_norm_epsilon 1e999
expect_named "1e999 in config.json" "config.json: not valid JSON" "$kiln" import --from hf "$work/hf" --out "$work/imported"
with_config n_embd '"32"'
expect_named "a string for a size" '"n_embd" must be a positive integer, found "32"' \
  "$kiln" import --from hf "$work/hf" --out "$work/imported"
rm -rf "$work/hf"; cp -r "$fixtures/gpt2" "$work/hf"
rm "$work/hf/model.safetensors"; ln -s model.safetensors "$work/hf/model.safetensors"
expect_named "symlink loop as model.safetensors" "model.safetensors' is a symbolic link loop" \
  "$kiln" import --from hf "$work/hf" --out "$work/imported"

finish
