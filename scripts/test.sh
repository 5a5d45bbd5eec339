#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test with ctest
# (unit tests, golden comparisons, command-line tests and multi-rank mpirun tests). First, a
# few seconds of each parser fuzz target (scripts/fuzz.sh --ci, build-fuzz/), so ctest's
# summary stays the last thing printed (a failed fuzz run is reported again after it);
# KILN_SKIP_FUZZ=1 skips that.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
fuzz_status=0
fuzz_log=$(mktemp)
trap 'rm -f "$fuzz_log"' EXIT
if [[ -z ${KILN_SKIP_FUZZ:-} ]]; then
  "$root/scripts/fuzz.sh" --ci 2>&1 | tee "$fuzz_log" || fuzz_status=${PIPESTATUS[0]}
fi
# Open MPI refuses to run as root unless told; CI and containers run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
ctest --test-dir "${KILN_BUILD_DIR:-$root/build}" --output-on-failure -j "$(nproc)" "$@"
# A red fuzz run would otherwise be hidden far above ctest's summary: say it again last.
if ((fuzz_status)); then
  echo "test.sh: scripts/fuzz.sh --ci failed (exit $fuzz_status); its report:" >&2
  grep -v "refused cleanly$" "$fuzz_log" >&2 || true
fi
exit "$fuzz_status"
