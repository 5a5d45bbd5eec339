#!/usr/bin/env bash
# The main job on the built-in data, end to end on a bare machine:
#   generate the built-in corpus -> train a BPE tokenizer -> prepare HDF5 datasets -> inspect them.
# (Training, evaluation and generation join this script with the trainer.)
# Everything lands in runs/quickstart/ (override with KILN_QUICKSTART_DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
kiln="${KILN_BUILD_DIR:-$root/build}/trainer/cli/kiln"
run_dir=${KILN_QUICKSTART_DIR:-$root/runs/quickstart}
mkdir -p "$run_dir"

step() { printf '\n==> %s\n' "$*"; }

step "kiln $("$kiln" --version | head -1 | cut -d' ' -f2-)"
step "Generating the built-in corpus"
"$kiln" corpus --out "$run_dir/corpus.jsonl" --docs 40000 --seed 1 \
  --tasks-out "$run_dir/tasks.jsonl" --tasks 500

step "Training a byte-level BPE tokenizer"
"$kiln" tokenizer train --input "$run_dir/corpus.jsonl" --vocab-size 1024 \
  --special '<|endoftext|>' --out "$run_dir/tokenizer.json"

step "Preparing train/val datasets"
"$kiln" prepare --tokenizer "$run_dir/tokenizer.json" --input "$run_dir/corpus.jsonl" \
  --out "$run_dir/data" --val-fraction 0.02 --seed 1234

step "Inspecting and verifying the datasets"
"$kiln" info "$run_dir/data"

step "Round trip through the tokenizer"
printf 'What is 47 plus 38? 85\nSort 9, 2, 7 in increasing order: 2, 7, 9' > "$run_dir/sample.txt"
ids=$("$kiln" tokenizer encode --tokenizer "$run_dir/tokenizer.json" --input "$run_dir/sample.txt")
echo "text:    $(cat "$run_dir/sample.txt")"
echo "ids:     $ids"
echo "decoded: $(echo "$ids" | "$kiln" tokenizer decode --tokenizer "$run_dir/tokenizer.json")"

step "Done. Outputs are in $run_dir"
