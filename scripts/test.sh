#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test with ctest
# (unit tests, golden comparisons, command-line tests and multi-rank mpirun tests). First, a
# few seconds of each parser fuzz target (scripts/fuzz.sh --ci, build-fuzz/), so ctest's
# summary stays the last thing printed; KILN_SKIP_FUZZ=1 skips that.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
fuzz_status=0
if [[ -z ${KILN_SKIP_FUZZ:-} ]]; then "$root/scripts/fuzz.sh" --ci || fuzz_status=$?; fi
# Open MPI refuses to run as root unless told; CI and containers run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
ctest --test-dir "${KILN_BUILD_DIR:-$root/build}" --output-on-failure -j "$(nproc)" "$@"
exit "$fuzz_status"
