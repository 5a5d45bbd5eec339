#!/usr/bin/env bash
# Multi-rank prepare: `mpirun -np 2 kiln prepare` writes the same datasets as one process.
# $1: the kiln binary.
set -uo pipefail
kiln=$1
if ! command -v mpirun >/dev/null; then echo "mpirun not found"; exit 1; fi
if ! "$kiln" --version | grep -q "MPI: built"; then echo "SKIP: kiln built without MPI"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$kiln" corpus --out "$work/corpus.jsonl" --docs 4000 --seed 5 >/dev/null || exit 1
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 500 --out "$work/tok.json" >/dev/null || exit 1
# Small batches so that both ranks get many of them.
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/serial" --quiet \
  >/dev/null || exit 1
timeout 300 mpirun --oversubscribe -np 2 "$kiln" prepare --tokenizer "$work/tok.json" \
  --input "$work/corpus.jsonl" --out "$work/mpi" --quiet --threads 1 --batch-bytes 20000 >"$work/mpi.out" 2>&1
code=$?
if [[ $code -ne 0 ]]; then cat "$work/mpi.out"; echo "FAIL mpirun prepare exited $code"; exit 1; fi
grep -q "on 2 rank" "$work/mpi.out" || { cat "$work/mpi.out"; echo "FAIL: did not run on 2 ranks"; exit 1; }
"$kiln" info "$work/serial" >"$work/serial.info" 2>&1 || exit 1
"$kiln" info "$work/mpi" >"$work/mpi.info" 2>&1 || exit 1
if diff <(grep -i -E "checksum|xxh3|tokens|documents" "$work/serial.info") \
        <(grep -i -E "checksum|xxh3|tokens|documents" "$work/mpi.info"); then
  echo "ok   2-rank prepare equals 1-rank prepare"
else
  echo "FAIL 2-rank prepare differs from 1-rank prepare"; exit 1
fi
# A bad record under mpirun fails every rank with the message, no hang.
printf '{"text": "x"}\nnot json\n' >"$work/bad.jsonl"
timeout 120 mpirun --oversubscribe -np 2 "$kiln" prepare --tokenizer "$work/tok.json" --input "$work/bad.jsonl" \
  --out "$work/bad" --quiet >"$work/bad.out" 2>&1
code=$?
if [[ $code -ne 0 && $code -ne 124 ]] && grep -q "bad.jsonl:2" "$work/bad.out"; then
  echo "ok   bad record under mpirun ends the job with the message"
else
  cat "$work/bad.out"; echo "FAIL bad record under mpirun (exit $code)"; exit 1
fi
