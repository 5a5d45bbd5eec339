#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test with ctest
# (unit tests, golden comparisons, command-line tests and multi-rank mpirun tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
# Open MPI refuses to run as root unless told; CI and containers run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
ctest --test-dir "${KILN_BUILD_DIR:-$root/build}" --output-on-failure -j "$(nproc)" "$@"
