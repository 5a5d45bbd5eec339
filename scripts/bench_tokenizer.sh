#!/usr/bin/env bash
# Single-thread tokenizer throughput: kiln vs the `tokenizers` library on the same text and
# the same tokenizer.json.
#
#   scripts/bench_tokenizer.sh [BUILD_DIR] [--mb 50] [--tokenizer T.json ...]
#
# Generates ~50 MB of mixed text (English-like prose, code, CJK, numbers) as JSONL, trains an
# 8192-token GPT-2-style and Llama-3-style tokenizer on it with `kiln tokenizer train` (timed),
# adds any --tokenizer given (e.g. a real Llama-3 tokenizer.json), then encodes every document
# with kiln (tests/bench/tokenizer_bench.cpp, one thread) and with `tokenizers`
# (RAYON_NUM_THREADS=1, encode per document and encode_batch). Prints MB/s and the ratio, and
# checks that both produced the same token count and id sum.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
[ $# -gt 0 ] && shift
megabytes=50
tokenizers=()
while [ $# -gt 0 ]; do
  case $1 in
    --mb) megabytes=$2; shift 2 ;;
    --tokenizer) tokenizers+=("$2"); shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
kiln=$build/trainer/cli/kiln
bench=$build/tests/kiln_tokenizer_bench
for binary in "$kiln" "$bench"; do
  [ -x "$binary" ] || { echo "missing $binary: build the kiln and kiln_tokenizer_bench targets" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "generating ${megabytes} MB of text..."
python3 "$here/bench_tokenizer.py" corpus "$work/docs.jsonl" --mb "$megabytes"
for style in gpt2 llama3; do
  start=$(date +%s.%N)
  "$kiln" tokenizer train --input "$work/docs.jsonl" --vocab-size 8192 --style "$style" --threads 1 \
    --special "<|endoftext|>" "<|begin_of_text|>" --out "$work/kiln_$style.json" 2>/dev/null
  printf "kiln train (%s, 8192 tokens, 1 thread): %.1f s\n" "$style" "$(python3 -c "print($(date +%s.%N) - $start)")"
  tokenizers+=("$work/kiln_$style.json")
done

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
printf "\n%-28s %12s %14s %14s %8s %s\n" tokenizer "kiln MB/s" "tokenizers" "(batch)" ratio "ids equal"
for tokenizer in "${tokenizers[@]}"; do
  kiln_result=$(OMP_NUM_THREADS=1 "$bench" "$tokenizer" "$work/docs.jsonl" 3)
  hf_result=$(RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false python3 "$here/bench_tokenizer.py" hf "$tokenizer" "$work/docs.jsonl")
  kiln_mbs=$(field "$kiln_result" mb_per_s)
  hf_mbs=$(field "$hf_result" mb_per_s)
  hf_batch=$(field "$hf_result" batch_mb_per_s)
  same=no
  if [ "$(field "$kiln_result" tokens)/$(field "$kiln_result" id_sum)" = "$(field "$hf_result" tokens)/$(field "$hf_result" id_sum)" ]; then
    same=yes
  fi
  best_hf=$(python3 -c "print(max($hf_mbs, $hf_batch))")
  printf "%-28s %12.2f %14.2f %14.2f %7.2fx %s\n" "$(basename "$tokenizer")" "$kiln_mbs" "$hf_mbs" "$hf_batch" \
    "$(python3 -c "print($kiln_mbs / $best_hf)")" "$same"
done
