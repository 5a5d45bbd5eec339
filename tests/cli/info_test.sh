#!/usr/bin/env bash
# `kiln info` on good and bad token datasets, end to end through the real binary.
# $1 = kiln binary, $2 = fixtures dir (unused: every file is generated here, in a temp dir).
set -u
kiln=$1
source "$(dirname "$0")/testlib.sh"

contains() { grep -qF -- "$2" "$1"; }
# run NAME ARGS...: runs kiln, keeps stdout/stderr in $work/NAME.{out,err} and the status in $status
run() {
  local name=$1
  shift
  "$kiln" "$@" >"$work/$name.out" 2>"$work/$name.err"
  status=$?
}

run write info --write-test-dataset "$work/prepared"
check "fixtures written" test "$status" -eq 0 -a -f "$work/prepared/train.h5" -a -f "$work/prepared/val.h5" \
  -a -f "$work/prepared/tokenizer.json"

# A prepared directory: both splits and the tokenizer described and verified.
run dir info "$work/prepared"
check "directory: exit 0" test "$status" -eq 0
check "directory: both splits and the tokenizer verified" test "$(grep -c 'verify  *verified' "$work/dir.out")" -eq 3
check "directory: the tokenizer matches the datasets" contains "$work/dir.out" "its hash is the datasets' tokenizer_hash"
check "directory: split" contains "$work/dir.out" "split            train"
check "directory: dtype" contains "$work/dir.out" "token dtype      uint16"
check "directory: documents" contains "$work/dir.out" "documents        201"
check "directory: doc lengths" contains "$work/dir.out" "doc length       min 5 /"
check "directory: longest doc" contains "$work/dir.out" "/ max 129"
check "directory: special ids" contains "$work/dir.out" "eos=50256"
check "directory: vocab" contains "$work/dir.out" "vocab size       50257"
check "directory: no mask in train" contains "$work/dir.out" "loss mask        absent"
check "directory: mask coverage in val" contains "$work/dir.out" "loss mask        50.00% of tokens (80 in loss)"

# One file, machine-readable.
run json info --json "$work/prepared/val.h5"
check "json: exit 0" test "$status" -eq 0
if command -v python3 >/dev/null; then
  check "json: fields" python3 -c '
import json, sys
report = json.load(open(sys.argv[1]))
(dataset,) = report["datasets"]
assert dataset["verified"] is True, dataset
assert dataset["split"] == "val" and dataset["num_tokens"] == 160 and dataset["num_documents"] == 20
assert dataset["loss_mask"]["tokens_in_loss"] == 80
assert len(dataset["checksums"]["loss_mask"]) == 16
' "$work/json.out"
else
  check "json: verified" contains "$work/json.out" '"verified": true'
fi

# A flipped byte inside /tokens: the structure is fine, the checksum is not.
cp "$work/prepared/train.h5" "$work/corrupt.h5"
offset=$(grep -obUaF 'KILNKILNKILN' "$work/corrupt.h5" | head -n1 | cut -d: -f1)
check "corrupt: marker found" test -n "$offset"
printf 'X' | dd of="$work/corrupt.h5" bs=1 seek="$offset" conv=notrunc status=none
run corrupt info "$work/corrupt.h5"
check "corrupt: non-zero exit" test "$status" -ne 0
check "corrupt: names the problem" contains "$work/corrupt.err" "/tokens checksum mismatch"
check "corrupt: names the file" contains "$work/corrupt.err" "corrupt.h5"
run skip info --skip-verify "$work/corrupt.h5"
check "skip-verify: exit 0" test "$status" -eq 0
check "skip-verify: says skipped" contains "$work/skip.out" "verify           skipped"

# A directory where one split is damaged: everything reported, non-zero exit.
cp -r "$work/prepared" "$work/mixed"
cp "$work/corrupt.h5" "$work/mixed/train.h5"
run mixed info "$work/mixed"
check "mixed: non-zero exit" test "$status" -ne 0
check "mixed: val still verified" contains "$work/mixed.out" "verified"
check "mixed: summary" contains "$work/mixed.err" "1 of 3 files of the prepared directory"

# A prepared directory must hold what prepare writes: a truncated or missing tokenizer.json, a
# tokenizer of another run, or a missing val.h5 is a failure that names the file.
cp -r "$work/prepared" "$work/torn"
head -c 1000 "$work/prepared/tokenizer.json" >"$work/torn/tokenizer.json"
run torn info "$work/torn"
check "truncated tokenizer.json: non-zero exit" test "$status" -ne 0
check "truncated tokenizer.json: named" contains "$work/torn.out" "tokenizer '$work/torn/tokenizer.json': malformed JSON"
cp -r "$work/prepared" "$work/no_tokenizer"
rm "$work/no_tokenizer/tokenizer.json"
run no_tokenizer info "$work/no_tokenizer"
check "missing tokenizer.json: non-zero exit" test "$status" -ne 0
check "missing tokenizer.json: named" contains "$work/no_tokenizer.out" "no_tokenizer/tokenizer.json' is missing"
cp -r "$work/prepared" "$work/no_val"
rm "$work/no_val/val.h5"
run no_val info "$work/no_val"
check "missing val.h5: non-zero exit" test "$status" -ne 0
check "missing val.h5: named" contains "$work/no_val.out" "no_val/val.h5' is missing"
cp -r "$work/prepared" "$work/other_tokenizer"
cp "$2/tokenizer/gpt2.json" "$work/other_tokenizer/tokenizer.json"
run other_tokenizer info "$work/other_tokenizer"
check "another run's tokenizer: non-zero exit" test "$status" -ne 0
check "another run's tokenizer: says so" contains "$work/other_tokenizer.out" "the directory mixes files of different prepare runs"

# Truncated, foreign and missing inputs.
size=$(stat -c %s "$work/prepared/train.h5")
head -c $((size / 2)) "$work/prepared/train.h5" >"$work/truncated.h5"
run truncated info "$work/truncated.h5"
check "truncated: non-zero exit" test "$status" -ne 0
check "truncated: says so" contains "$work/truncated.err" "truncated"

echo "plain text, not a dataset" >"$work/notes.txt"
run text info "$work/notes.txt"
check "text: non-zero exit" test "$status" -ne 0
check "text: not HDF5" contains "$work/text.err" "not an HDF5 file"

run missing info "$work/nothing-here.h5"
check "missing: non-zero exit" test "$status" -ne 0
check "missing: names the path" contains "$work/missing.err" "nothing-here.h5': no such file"

mkdir "$work/empty"
run empty info "$work/empty"
check "empty dir: non-zero exit" test "$status" -ne 0
check "empty dir: says what was expected" contains "$work/empty.err" "expected train.h5 and/or val.h5"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed; outputs were:"
  for file in "$work"/*.out "$work"/*.err; do echo "== $file"; cat "$file"; done
  exit 1
fi
echo "all info checks passed"
