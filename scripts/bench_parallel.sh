#!/usr/bin/env bash
# Benchmark (not a test): per (dp, tp, pp) layout, step time, tokens/s and the bytes each rank
# sends per step, measured vs Megatron's analytic count. See scripts/bench_parallel.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[[ -x ${KILN_BUILD_DIR:-$root/build}/trainer/cli/kiln ]] || "$root/scripts/build.sh" >/dev/null
exec python3 "$root/scripts/bench_parallel.py" --kiln "${KILN_BUILD_DIR:-$root/build}/trainer/cli/kiln" "$@"
