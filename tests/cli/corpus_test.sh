#!/usr/bin/env bash
# `kiln corpus`: deterministic JSONL (plain and zstd) and held-out tasks; `kiln --version/--help`.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"

"$kiln" corpus --out "$work/a.jsonl" --docs 500 --seed 9 --tasks-out "$work/t.jsonl" --tasks 40 >/dev/null
check "corpus exits 0" test $? -eq 0
check "500 documents" test "$(wc -l <"$work/a.jsonl")" -eq 500
check "40 tasks" test "$(wc -l <"$work/t.jsonl")" -eq 40
check "records carry id, kind, text" grep -q '^{"id":0,"kind":"[a-z]*","text":"' "$work/a.jsonl"
"$kiln" corpus --out "$work/b.jsonl" --docs 500 --seed 9 >/dev/null
check "same seed, same corpus" cmp -s "$work/a.jsonl" "$work/b.jsonl"
"$kiln" corpus --out "$work/c.jsonl" --docs 500 --seed 10 >/dev/null
check "other seed, other corpus" bash -c "! cmp -s '$work/a.jsonl' '$work/c.jsonl'"
"$kiln" corpus --out "$work/a.jsonl.zst" --docs 500 --seed 9 >/dev/null
check "zstd output decompresses to the same corpus" cmp -s <(zstd -dc "$work/a.jsonl.zst") "$work/a.jsonl"
"$kiln" corpus --out "$work/z.jsonl" --docs 0 >/dev/null 2>"$work/err"
check "zero documents is refused" test $? -ne 0
"$kiln" --version >"$work/version"
check "--version names kiln" grep -q "^kiln [0-9]" "$work/version"
# scripts/setup.sh installs OpenBLAS's OpenMP build and CMake links it (see CMakeLists.txt).
check "--version: OpenBLAS shares kiln's OpenMP threads" grep -q "threads: OpenMP" "$work/version"
for verb in corpus tokenizer prepare info; do
  "$kiln" "$verb" --help >"$work/help" 2>&1
  check "$verb --help" grep -q -i "usage" "$work/help"
done
"$kiln" no-such-verb >/dev/null 2>&1
check "unknown verb fails" test $? -ne 0

finish
