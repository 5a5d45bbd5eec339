#!/usr/bin/env bash
# `mpirun -np 2 kiln curate` writes byte-identical shards, rejected records and report
# stages to the single-process run: ranks share the work by batch and exchange the dedup
# state (exact hashes, MinHash bands, line hashes) with MPI. A tiny memory budget makes the
# external sort spill to disk on both sides.
set -euo pipefail
kiln="$1"
root="$(cd "$2/../.." && pwd)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
if ! command -v mpirun > /dev/null; then echo "mpirun not found; skipping"; exit 0; fi
if ! "$kiln" --version | grep -q "MPI: built"; then echo "kiln built without MPI; skipping"; exit 0; fi

"$kiln" corpus --out "$work/corpus.jsonl" --docs 4000 --seed 3 --tasks-out "$work/tasks.jsonl" --tasks 200 > /dev/null
# Plant exact copies of earlier documents late in the corpus so dedup crosses ranks.
head -50 "$work/corpus.jsonl" | sed 's/"id":\([0-9]*\)/"id":"copy-\1"/' >> "$work/corpus.jsonl"
common=(--set "input.paths=[$work/corpus.jsonl]" --set "decontamination.eval_sets=[$work/tasks.jsonl]"
        --set run.batch_docs=64 --set run.memory_budget_mb=0.02 --set exact_dedup.lines=true --quiet)
"$kiln" curate "$root/recipes/curate-builtin.yaml" --set "output.dir=$work/one" --threads 2 "${common[@]}" > /dev/null
mpirun --oversubscribe -np 2 "$kiln" curate "$root/recipes/curate-builtin.yaml" --set "output.dir=$work/two" \
  --threads 1 "${common[@]}" > "$work/mpi.txt"
grep -q "on 2 rank(s)" "$work/mpi.txt" || fail "the run did not use 2 ranks"
for file in part-00000.jsonl rejected/part-00000.jsonl; do
  cmp "$work/one/$file" "$work/two/$file" || fail "$file differs between 1 process and 2 ranks"
done
python3 - "$work" <<'PY'
import json, sys
one, two = (json.load(open(f"{sys.argv[1]}/{d}/report.json")) for d in ("one", "two"))
assert one["stages"] == two["stages"], "report stages differ"
assert two["run"]["ranks"] == 2 and two["run"]["spilled_sort_runs"] > 0
exact = next(s for s in one["stages"] if s["name"] == "exact_dedup")
assert exact["dropped"].get("exact_duplicate", 0) >= 50, exact
PY
echo "curate under mpirun: OK"
