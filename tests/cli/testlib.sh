# Shared by the tests/cli/*_test.sh scripts (source it; it is not a test itself):
# a scratch directory removed on exit, and the check / expect_error / finish helpers that
# count failures and end the script with a non-zero status when any check failed.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# check NAME CONDITION...: records a failure when the condition is false.
check() {
  local name=$1
  shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi
}

# expect_error NAME PATTERN COMMAND...: a non-zero exit that is not a crash (< 128), and
# PATTERN on stderr.
expect_error() {
  local name=$1 pattern=$2
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local code=$?
  if [[ $code -ne 0 && $code -lt 128 ]] && grep -q -- "$pattern" "$work/err"; then
    echo "ok   $name"
  else
    echo "FAIL $name (exit $code)"; cat "$work/err"; failures=$((failures + 1))
  fi
}

# finish: the summary line and the exit status.
finish() {
  echo "$failures failure(s)"
  exit $((failures > 0))
}

# losses RUN_DIR: the training losses of metrics.jsonl, one per step.
losses() { grep -o '"loss":[^,}]*' "$1/metrics.jsonl" | cut -d: -f2; }
# within RTOL A B: A's per-step losses agree with B's within RTOL relative; prints the worst.
within() {
  [[ -s $2/metrics.jsonl && $(losses "$2" | wc -l) -eq $(losses "$3" | wc -l) ]] || { echo "step counts differ"; return 1; }
  paste <(losses "$2") <(losses "$3") | awk -v tol="$1" '
    { d = $1 - $2; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2); if (r > worst) { worst = r; at = NR } }
    END { printf "      worst relative loss difference %.3e at step %d\n", worst, at; exit !(NR > 0 && worst <= tol) }'
}

# train_ranks RANKS RUN_DIR RECIPE [ARGS...]: `kiln train RECIPE --run-dir RUN_DIR ARGS` ($kiln),
# its output in RUN_DIR.log; under mpirun --oversubscribe (KILN_CUDA_DEVICE passed on) when
# RANKS > 1. On failure prints the log's last lines (mpirun's own noise left out).
train_ranks() {
  local ranks=$1 dir=$2 recipe=$3
  shift 3
  if [[ $ranks == 1 ]]; then
    "$kiln" train "$recipe" --run-dir "$dir" "$@" >"$dir.log" 2>&1
  else
    timeout 300 mpirun --oversubscribe -np "$ranks" -x KILN_CUDA_DEVICE "$kiln" train "$recipe" --run-dir "$dir" "$@" \
      >"$dir.log" 2>&1
  fi || { grep -v '^\[' "$dir.log" | tail -6; return 1; }
}
# field RUN_DIR NAME: NAME's value in each metrics.jsonl record that has it.
field() { grep -o "\"$2\":[^,}]*" "$1/metrics.jsonl" | cut -d: -f2; }
# same NAME A B FIRST_RTOL ALL_RTOL: NAME agrees record by record (the first within FIRST_RTOL,
# every one within ALL_RTOL, relative); prints the largest difference.
same() {
  [[ $(field "$2" "$1" | wc -l) -gt 0 && $(field "$2" "$1" | wc -l) -eq $(field "$3" "$1" | wc -l) ]] ||
    { echo "different numbers of $1 records"; return 1; }
  paste <(field "$2" "$1") <(field "$3" "$1") | awk -v first="$4" -v all="$5" -v what="$1" '
    { d = $1 - $2; if (d < 0) d = -d; m = ($2 < 0 ? -$2 : $2); r = m > 0 ? d / m : d; if (r > worst) worst = r;
      if ((NR == 1 && r > first) || r > all) { printf "record %d: %s vs %s (rel %.2e)\n", NR, $1, $2, r; bad = 1 } }
    END { printf "     %d %s records, largest relative difference %.1e\n", NR, what, worst; exit bad }'
}
# peak_activations RUN_DIR: the last step's peak activation bytes per rank (metrics.jsonl).
peak_activations() {
  python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "\"loss\"" in l][-1]["memory_peak_bytes"]["activations"])' \
    "$1/metrics.jsonl"
}

# tiny_dataset DOCS SEED: the built-in corpus of DOCS documents, a 300-token tokenizer
# ($work/tok.json) and train/val datasets ($work/data, 5% validation) for the tests' tiny models.
tiny_dataset() {
  "$kiln" corpus --out "$work/corpus.jsonl" --docs "$1" --seed "$2" >/dev/null
  "$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 300 --out "$work/tok.json" >/dev/null 2>&1
  "$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --val-fraction 0.05 \
    --quiet >/dev/null
}

# skip_without_mpi: ends the test as skipped (exit 0) when this kiln ($kiln) has no MPI.
skip_without_mpi() {
  if ! "$kiln" --version | grep -q "MPI: built"; then echo "SKIP: kiln built without MPI"; exit 0; fi
}

# mpi_environment: what mpirun --oversubscribe needs here: running as root allowed, one thread
# per rank, and idle ranks yielding the few cores to the busy ones.
mpi_environment() {
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1
}
