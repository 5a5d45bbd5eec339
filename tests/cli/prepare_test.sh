#!/usr/bin/env bash
# `kiln corpus` + `kiln tokenizer train` + `kiln prepare` end to end, and prepare's bad input.
# $1: the kiln binary, $2: tests/fixtures.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"

"$kiln" corpus --out "$work/corpus.jsonl" --docs 3000 --seed 3 >/dev/null || exit 1
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 600 --out "$work/tok.json" >/dev/null || exit 1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" \
  --val-fraction 0.1 --quiet >"$work/prepare.out" 2>&1
check "prepare succeeds" test $? -eq 0
check "train.h5 written" test -s "$work/data/train.h5"
check "val.h5 written" test -s "$work/data/val.h5"
check "tokenizer carried along" cmp -s "$work/tok.json" "$work/data/tokenizer.json"
check "no temporary files left" test -z "$(find "$work/data" -name '*.tmp')"
documents=$(sed -n 's/ *train.h5: \([0-9]*\) documents.*/\1/p' "$work/prepare.out")
val_documents=$(sed -n 's/ *val.h5: *\([0-9]*\) documents.*/\1/p' "$work/prepare.out")
check "every document lands in one split" test "$((documents + val_documents))" -eq 3000
check "val fraction near 10%" test "$val_documents" -gt 220 -a "$val_documents" -lt 380
"$kiln" info "$work/data" >"$work/info.out" 2>&1
check "info verifies the result" grep -q -i "verified" "$work/info.out"

# Same inputs, different thread count: identical files' content checksums.
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data1" \
  --val-fraction 0.1 --threads 1 --quiet >/dev/null 2>&1
"$kiln" info "$work/data1" >"$work/info1.out" 2>&1
check "thread count does not change the datasets" \
  diff <(grep -i -E "checksum|xxh3|tokens|documents" "$work/info.out") <(grep -i -E "checksum|xxh3|tokens|documents" "$work/info1.out")

# Compressed input gives the same datasets as plain input.
zstd -q -f "$work/corpus.jsonl" -o "$work/corpus.jsonl.zst"
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl.zst" --out "$work/data_zst" \
  --val-fraction 0.1 --quiet >/dev/null 2>&1
"$kiln" info "$work/data_zst" >"$work/info_zst.out" 2>&1
check "jsonl.zst input equals jsonl input" \
  diff <(grep -i -E "checksum|xxh3|tokens|documents" "$work/info.out" | grep -v -i source) \
       <(grep -i -E "checksum|xxh3|tokens|documents" "$work/info_zst.out" | grep -v -i source)

# Bad input.
printf '{"text": "fine"}\n{"text": "broken\n{"text": "also fine"}\n' >"$work/bad.jsonl"
expect_error "malformed JSON names file and line" "bad.jsonl:2" \
  "$kiln" prepare --tokenizer "$work/tok.json" --input "$work/bad.jsonl" --out "$work/bad_out" --quiet
check "failed prepare leaves no dataset" test ! -e "$work/bad_out/train.h5"
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/bad.jsonl" --out "$work/skip_out" \
  --skip-bad-records --val-fraction 0 --quiet >"$work/skip.out" 2>"$work/skip.err"
check "skip flag skips and counts" grep -q "skipped 1 bad records" "$work/skip.out"
check "skip flag reports the line" grep -q "bad.jsonl:2" "$work/skip.err"
printf 'caf\xe9 au lait\n' >"$work/latin1.txt"
expect_error "non-UTF-8 text is refused" "invalid UTF-8" \
  "$kiln" prepare --tokenizer "$work/tok.json" --input "$work/latin1.txt" --out "$work/l_out" --quiet
expect_error "missing input" "does not exist" \
  "$kiln" prepare --tokenizer "$work/tok.json" --input "$work/none.jsonl" --out "$work/m_out" --quiet
expect_error "missing tokenizer" "none.json" \
  "$kiln" prepare --tokenizer "$work/none.json" --input "$work/corpus.jsonl" --out "$work/m_out" --quiet
expect_error "wrong text field" "no \"body\" field" \
  "$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --text-field body --out "$work/f_out" --quiet
expect_error "bad val fraction" "val-fraction" \
  "$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --val-fraction 1.5 --out "$work/v_out" --quiet
expect_error "unknown eos token" "--eos" \
  "$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --eos '<nope>' --out "$work/e_out" --quiet

finish
