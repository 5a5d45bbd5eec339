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
