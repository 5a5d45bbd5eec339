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
