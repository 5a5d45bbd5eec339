#!/usr/bin/env bash
# Configures and builds kiln into ./build (Release). Extra arguments go to CMake, e.g.
#   scripts/build.sh -DKILN_CUDA=OFF -DKILN_MPI=OFF
# KILN_BUILD_TARGETS="kiln" builds only those targets (the quickstart needs just the binary).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${KILN_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-Release} "$@" >/dev/null
targets=()
for target in ${KILN_BUILD_TARGETS:-}; do targets+=(--target "$target"); done
cmake --build "$build_dir" -j "$(nproc)" "${targets[@]}"
