#!/usr/bin/env bash
# Datasets a step can trust, end to end (issues 16 and 10): a full disk publishes nothing and
# crashes nothing, `train` refuses a corrupt dataset before its first step, and FIFOs and
# devices are refused instead of read forever. $1: the kiln binary, $2: tests/fixtures.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"
# A FIFO blocks whoever opens it for reading; old builds hung there, so every such call is
# bounded (exit 124 then fails the check instead of hanging the suite).
bounded() { timeout 20 "$@"; }

"$kiln" corpus --out "$work/corpus.jsonl" --docs 3000 --seed 3 >/dev/null || exit 1
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 400 --out "$work/tok.json" >/dev/null || exit 1

# --- A full disk (RLIMIT_FSIZE with SIGXFSZ ignored: writes fail with EFBIG, as on a full
# --- disk): prepare fails with the file named, publishes nothing, and does not crash at exit.
full_disk() {  # full_disk KILOBYTES OUT: prepare under a file-size limit
  (trap '' XFSZ; ulimit -f "$1"; "$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" \
    --out "$2" --val-fraction 0.1 --quiet)
}
for limit in 4 64 400; do
  full_disk "$limit" "$work/full$limit" >"$work/full$limit.out" 2>&1
  code=$?
  check "full disk ($limit KB): fails" test "$code" -ne 0
  check "full disk ($limit KB): no crash at exit (exit $code)" test "$code" -lt 128
  check "full disk ($limit KB): says why" grep -q -E "File too large|No space left" "$work/full$limit.out"
  check "full disk ($limit KB): nothing published" test -z "$(ls -A "$work/full$limit" 2>/dev/null)"
done
# import writes its checkpoint through HDF5 too: the same failure, the same clean exit.
(trap '' XFSZ; ulimit -f 32; exec "$kiln" import --from hf "$2/interop/gpt2" --out "$work/imported") >"$work/import.out" 2>&1
code=$?
check "full disk, import: fails without a crash (exit $code)" test "$code" -ne 0 -a "$code" -lt 128
check "full disk, import: names the checkpoint file" grep -q "cannot flush and close checkpoint" "$work/import.out"
check "full disk, import: no checkpoint published" test ! -e "$work/imported/checkpoints/step_00000000"
# A real 2 MB tmpfs where this machine lets us mount one (root in CI containers).
mkdir -p "$work/tmpfs"
if mount -t tmpfs -o size=2m tmpfs "$work/tmpfs" 2>/dev/null; then
  "$kiln" corpus --out "$work/big.jsonl" --docs 12000 --seed 4 >/dev/null
  head -n 2000 "$work/big.jsonl" >"$work/medium.jsonl"
  # medium: both splits fit but tokenizer.json does not; big: val.h5 fails while HDF5 closes it.
  for input in medium big; do
    rm -rf "$work/tmpfs/data"
    "$kiln" prepare --tokenizer "$work/tok.json" --input "$work/$input.jsonl" --out "$work/tmpfs/data" --quiet \
      >"$work/tmpfs_$input.out" 2>&1
    code=$?
    check "2 MB tmpfs, $input corpus: fails without a crash (exit $code)" test "$code" -ne 0 -a "$code" -lt 128
    check "2 MB tmpfs, $input corpus: no dataset or tokenizer published" \
      test ! -e "$work/tmpfs/data/train.h5" -a ! -e "$work/tmpfs/data/val.h5" -a ! -e "$work/tmpfs/data/tokenizer.json"
  done
  umount "$work/tmpfs"
else
  echo "skip 2 MB tmpfs (mount not permitted here; the RLIMIT_FSIZE cases above cover it)"
fi

# --- train refuses a corrupt dataset before its first step, naming the file and the field.
"$kiln" info --write-test-dataset "$work/fixture" >/dev/null || exit 1
cp "$work/fixture/train.h5" "$work/corrupt.h5"
offset=$(grep -obUaF 'KILNKILNKILN' "$work/corrupt.h5" | head -n1 | cut -d: -f1)
printf 'X' | dd of="$work/corrupt.h5" bs=1 seek="$offset" conv=notrunc status=none
tiny=(--set model.d_model=16 --set model.n_layers=1 --set model.n_heads=2 --set model.max_seq_len=8
      --set train.seq_len=8 --set train.steps=2 --set train.batch_size=2 --set train.micro_batch_size=2
      --set eval.every_steps=0 --set checkpoint.every_steps=0 --set optim.warmup_steps=1
      --set "data.tokenizer=$work/fixture/tokenizer.json" --set "data.val=$work/fixture/val.h5")
root=$(cd "$(dirname "$0")/../.." && pwd)
expect_error "train refuses a dataset whose checksum fails" \
  "train dataset refused: token dataset '$work/corrupt.h5': /tokens checksum mismatch" \
  "$kiln" train "$root/recipes/quickstart.yaml" "${tiny[@]}" --set "data.train=$work/corrupt.h5" --set "run.dir=$work/run"
check "no step was trained on it" test ! -s "$work/run/metrics.jsonl"
"$kiln" train "$root/recipes/quickstart.yaml" "${tiny[@]}" --set "data.train=$work/fixture/train.h5" \
  --set "run.dir=$work/good_run" >"$work/good_train.out" 2>&1
check "the intact copy trains" test $? -eq 0
expect_error "eval refuses the corrupt dataset too" "eval dataset refused: token dataset '$work/corrupt.h5': /tokens checksum mismatch" \
  "$kiln" eval --checkpoint "$work/good_run" --data "$work/corrupt.h5"
"$kiln" eval --checkpoint "$work/good_run" --data "$work/fixture/val.h5" >"$work/eval.out" 2>&1
check "eval of an intact dataset works" grep -q '"loss"' "$work/eval.out"
mkfifo "$work/pipe.h5"
expect_error "train refuses a FIFO" "train dataset '$work/pipe.h5' is a FIFO" \
  bounded "$kiln" train "$root/recipes/quickstart.yaml" "${tiny[@]}" --set "data.train=$work/pipe.h5" --set "run.dir=$work/run"

# --- FIFOs and devices as inputs: refused up front, never read.
expect_error "info /dev/zero" "'/dev/zero' is a character device" bounded "$kiln" info /dev/zero
expect_error "info FIFO" "is a FIFO" bounded "$kiln" info "$work/pipe.h5"
expect_error "prepare --input /dev/zero" "input file '/dev/zero' is a character device" \
  bounded "$kiln" prepare --tokenizer "$work/tok.json" --input /dev/zero --out "$work/x" --quiet
expect_error "prepare --input FIFO" "is a FIFO" \
  bounded "$kiln" prepare --tokenizer "$work/tok.json" --input "$work/pipe.h5" --out "$work/x" --quiet
check "refused inputs leave no output" test ! -e "$work/x/train.h5"

finish
