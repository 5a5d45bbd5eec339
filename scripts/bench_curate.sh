#!/usr/bin/env bash
# kiln curate vs datatrove (PyPI), two measurements:
#
#   scripts/bench_curate.sh agreement [DOCS=6000] [CORES=nproc]
#     The agreement corpus (scripts/curate_agreement_corpus.py: web-page shapes, seeded) run
#     through each rule alone -- Gopher quality, Gopher repetition, C4, FineWeb -- in kiln (one
#     stage, normalisation and dedup off) and as the same datatrove filter with the same
#     (published default) parameters, then through the four chained; prints the per-rule table
#     of recipes/CURATE.md and every disagreement by (shape, kiln verdict, datatrove verdict).
#     The documents behind each disagreement are listed in $BENCH_DIR/disagreements-RULE.jsonl.
#
#   scripts/bench_curate.sh [MEGABYTES=1000] [CORES=nproc]
#     Throughput on a generated corpus with the same stages (Gopher quality + Gopher repetition
#     + MinHash near-dedup, 14 bands x 8 rows over word 5-grams) and the same cores: documents/s
#     per core for both, the ratio, and how often the two agree on whether a document is kept.
#
# A benchmark, not a test. datatrove is installed from PyPI into $BENCH_DIR/venv when the
# python3 on PATH lacks it (or set BENCH_PYTHON to an interpreter that has it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln="${KILN_BUILD_DIR:-$root/build}/trainer/cli/kiln"
work=${BENCH_DIR:-$root/runs/bench_curate}
[[ -x $kiln ]] || { echo "build kiln first (scripts/build.sh); looked for $kiln" >&2; exit 1; }
mkdir -p "$work"
# datatrove tokenizes English words with spaCy and hashes shingles with xxhash.
python=${BENCH_PYTHON:-python3}
if ! "$python" -c "import datatrove, spacy, xxhash" 2>/dev/null; then
  [[ -x $work/venv/bin/python ]] || python3 -m venv "$work/venv"
  python=$work/venv/bin/python
  "$python" -c "import datatrove, spacy, xxhash" 2>/dev/null || "$python" -m pip install -q datatrove spacy xxhash
fi

if [[ ${1:-} == agreement ]]; then
  docs=${2:-6000}
  cores=${3:-$(nproc)}
  corpus="$work/agreement-${docs}.jsonl"
  [[ -f $corpus ]] || python3 "$root/scripts/curate_agreement_corpus.py" "$corpus" "$docs"
  exec "$python" "$root/scripts/bench_curate.py" agreement "$corpus" "$kiln" "$work/agreement-${docs}" "$cores"
fi

megabytes=${1:-1000}
cores=${2:-$(nproc)}

corpus="$work/corpus-${megabytes}mb"
if [[ ! -f $corpus/done ]]; then
  rm -rf "$corpus"
  python3 "$root/scripts/bench_curate.py" generate "$corpus" "$megabytes" "$cores"
  touch "$corpus/done"
fi
docs=$(cat "$corpus"/*.jsonl | wc -l)

cat > "$work/bench-recipe.yaml" <<YAML
input: {paths: [$(ls "$corpus"/*.jsonl | paste -sd, -)]}
output: {dir: $work/kiln}
normalize: {enabled: false}
c4: {enabled: false}
fineweb: {enabled: false}
exact_dedup: {enabled: false}
pii: {enabled: false}
near_dedup: {bands: 14, rows: 8, shingle_words: 5}
YAML
start=$(date +%s.%N)
"$kiln" curate "$work/bench-recipe.yaml" --threads "$cores" --quiet > "$work/kiln.txt"
kiln_seconds=$(echo "$(date +%s.%N) - $start" | bc)

rm -rf "$work/datatrove"
trove_seconds=$("$python" "$root/scripts/bench_curate.py" datatrove "$corpus" "$work/datatrove" "$cores" 2> "$work/datatrove.log" \
  | tail -1 | python3 -c "import json,sys; print(json.load(sys.stdin)['seconds'])")
agreement=$(python3 "$root/scripts/bench_curate.py" compare "$work/kiln" "$work/datatrove" "$docs")

python3 - "$docs" "$cores" "$kiln_seconds" "$trove_seconds" "$agreement" "$megabytes" <<'PY'
import json, sys
docs, cores, kiln_s, trove_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
agree = json.loads(sys.argv[5])
kiln_rate, trove_rate = docs / kiln_s / cores, docs / trove_s / cores
print(f"corpus: {docs} documents, {sys.argv[6]} MB; stages: Gopher quality + Gopher repetition + MinHash 14x8; {cores} cores")
print(f"{'tool':<12} {'seconds':>9} {'docs/s/core':>12} {'kept':>9}")
print(f"{'kiln':<12} {kiln_s:>9.1f} {kiln_rate:>12.0f} {agree['kiln_kept']:>9}")
print(f"{'datatrove':<12} {trove_s:>9.1f} {trove_rate:>12.0f} {agree['datatrove_kept']:>9}")
print(f"ratio (kiln / datatrove, per core): {kiln_rate / trove_rate:.1f}x")
print(f"agreement on kept/dropped: {100 * agree['agreement']:.2f}% of documents "
      f"(both kept {agree['both_kept']}; Jaccard of kept sets {agree['jaccard_of_kept']:.4f})")
PY
