#!/usr/bin/env bash
# The main job on the built-in data, end to end on a bare machine:
#   generate the built-in corpus -> train a BPE tokenizer -> curate -> prepare HDF5 datasets
#   -> train a small GPT-2-style model (recipes/quickstart.yaml) -> evaluate it on the
#   validation split and on held-out tasks it never saw -> generate from it.
# Everything lands in runs/quickstart/. Re-running resumes or reuses what is there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
KILN_BUILD_TARGETS=kiln "$root/scripts/build.sh"
kiln="${KILN_BUILD_DIR:-$root/build}/trainer/cli/kiln"
cd "$root"  # the recipe's paths are relative to the repository root
run_dir=runs/quickstart
mkdir -p "$run_dir"

step() { printf '\n==> %s\n' "$*"; }

step "kiln $("$kiln" --version | head -1 | cut -d' ' -f2-)"
step "Generating the built-in corpus"
[[ -f $run_dir/tasks.jsonl ]] || "$kiln" corpus --out "$run_dir/corpus.jsonl" --docs 40000 --seed 1 \
  --tasks-out "$run_dir/tasks.jsonl" --tasks 500

step "Training a byte-level BPE tokenizer"
[[ -f $run_dir/tokenizer.json ]] || "$kiln" tokenizer train --input "$run_dir/corpus.jsonl" --vocab-size 1024 \
  --special '<|endoftext|>' --out "$run_dir/tokenizer.json"

step "Curating the corpus (recipes/curate-builtin.yaml: dedup, decontamination against held-out tasks, ...)"
grep -v '"kind":"facts"' "$run_dir/tasks.jsonl" >"$run_dir/tasks-procedural.jsonl"
[[ -f $run_dir/curated/report.json ]] || "$kiln" curate recipes/curate-builtin.yaml

step "Preparing train/val datasets"
[[ -f $run_dir/data/val.h5 ]] || "$kiln" prepare --tokenizer "$run_dir/tokenizer.json" --input "$run_dir"/curated/part-*.jsonl \
  --out "$run_dir/data" --val-fraction 0.02 --seed 1234

step "Inspecting and verifying the datasets"
"$kiln" info "$run_dir/data"

step "Round trip through the tokenizer"
printf 'What is 47 plus 38? 85\nSort 9, 2, 7 in increasing order: 2, 7, 9' > "$run_dir/sample.txt"
ids=$("$kiln" tokenizer encode --tokenizer "$run_dir/tokenizer.json" --input "$run_dir/sample.txt")
echo "text:    $(cat "$run_dir/sample.txt")"
echo "ids:     $ids"
echo "decoded: $(echo "$ids" | "$kiln" tokenizer decode --tokenizer "$run_dir/tokenizer.json")"

step "Training (recipes/quickstart.yaml; Ctrl-C saves a checkpoint, re-running resumes)"
"$kiln" train recipes/quickstart.yaml

step "Evaluating: validation loss and exact-match accuracy on held-out tasks"
"$kiln" eval --checkpoint "$run_dir" --data "$run_dir/data/val.h5" --batches 16 \
  --tasks "$run_dir/tasks.jsonl" | tee "$run_dir/eval.json"

step "Sampling"
for prompt in "What is 12 plus 7?" "Sort 41, 7, 23 in increasing order:" "One morning"; do
  "$kiln" generate --checkpoint "$run_dir" --prompt "$prompt" --max-tokens 24 --temperature 0 2>/dev/null | head -2
done

percent() {  # percent KIND: that kind's held-out accuracy from eval.json (task_accuracy: all)
  grep -o "\"$1\":{\"accuracy\":[0-9.e-]*" "$run_dir/eval.json" | sed 's/.*://' |
    awk '{printf "%.1f%%", 100 * $1}'
}
step "Done. Held-out task accuracy (exact match, greedy):
  arithmetic $(percent arithmetic) (chance < 1%: sums up to 198, products up to 900; operand pairs never seen in training)
  sorting    $(percent sorting) (chance ~0%: the whole sorted list must be right; lists never seen in training)
  reversal   $(percent reversal) (chance ~0%: 3-5 words in reverse order; word lists never seen in training)
  facts      $(percent facts) (chance ~5%: 1 of 8 countries, 48 rivers or 900 years; recall of the generated world)
  all        $(percent task_accuracy) of the held-out tasks
Outputs in $run_dir"
