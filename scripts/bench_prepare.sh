#!/usr/bin/env bash
# Benchmark (not a test): how `kiln prepare` scales with threads and MPI ranks on this machine.
# Prints one table: configuration, seconds, tokens/s, speed-up over one thread.
# Usage: scripts/bench_prepare.sh [documents]   (default 200000, about 40 MB of text)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln="${KILN_BUILD_DIR:-$root/build}/trainer/cli/kiln"
[[ -x $kiln ]] || "$root/scripts/build.sh"
documents=${1:-200000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

"$kiln" corpus --out "$work/corpus.jsonl" --docs "$documents" --seed 11 >/dev/null
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 4096 --out "$work/tok.json" >/dev/null
megabytes=$(du -m "$work/corpus.jsonl" | cut -f1)

# run LAUNCHER...: prints "seconds tokens" for one prepare run.
run() {
  local start end
  start=$(date +%s.%N)
  "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v seconds="$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')" \
    '/\.h5: +[0-9]+ documents/ {tokens += $4} END {print seconds, tokens}' "$work/out"
}

echo "kiln prepare on $megabytes MB of built-in corpus ($(nproc) cores), vocab 4096"
printf '%-24s %8s %14s %9s\n' configuration seconds tokens/s speed-up
base=""
for config in "1 thread:1:1" "2 threads:1:2" "2 ranks x 1 thread:2:1"; do
  IFS=: read -r label ranks threads <<<"$config"
  args=(prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/out_$ranks$threads"
        --threads "$threads" --quiet)
  if [[ $ranks == 1 ]]; then
    read -r seconds tokens < <(run "$kiln" "${args[@]}")
  else
    read -r seconds tokens < <(run mpirun --oversubscribe -np "$ranks" "$kiln" "${args[@]}")
  fi
  [[ -z $base ]] && base=$seconds
  awk -v l="$label" -v s="$seconds" -v t="$tokens" -v b="$base" \
    'BEGIN {printf "%-24s %8.2f %14.0f %8.2fx\n", l, s, t / s, b / s}'
done
