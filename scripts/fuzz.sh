#!/usr/bin/env bash
# Fuzzes kiln's parsers (tests/fuzz/README.md): configures and builds build-fuzz/ with clang,
# ASan, UBSan and libFuzzer (-DKILN_FUZZ=ON), replays the committed regression inputs, then runs
# each target over its seed corpus and prints one line per target.
#
#   scripts/fuzz.sh [--ci] [--seconds N] [TARGET...]
#     TARGET      tokenizer_json safetensors_header hf_config gguf_reader token_dataset
#                 recipe_yaml checkpoint_meta (default: all)
#     --seconds N fuzzing time per target (default 300)
#     --ci        3000 inputs per target from a fixed seed (a few seconds each; at most 30 s)
#     --strict    also stop at the known, unfixed findings listed in tests/fuzz/pending/
#
# New inputs go to build-fuzz/corpus/<target>/ (kept between runs, so long runs build on each
# other; --ci uses an empty one each time, so its run time stays fixed); the committed corpus
# tests/fuzz/corpus/ is only read. Crashes, sanitizer reports,
# hangs (-timeout) and allocations over 2 GB are saved to build-fuzz/findings/<target>/.
# Exits non-zero when a regression input is not refused cleanly or any run found something.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${KILN_FUZZ_BUILD_DIR:-$root/build-fuzz}
fuzz_dir=$root/tests/fuzz
all_targets=(tokenizer_json safetensors_header hf_config gguf_reader token_dataset recipe_yaml checkpoint_meta)

seconds=300
ci=0
ci_runs=3000  # --ci: inputs per target (a few seconds each on 2 cores)
strict=0
targets=()
while (($#)); do
  case $1 in
    --ci) seconds=30; ci=1; shift ;;
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --strict) strict=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $target "* ]] || { echo "fuzz.sh: unknown target $target (one of: ${all_targets[*]})" >&2; exit 2; }
done

if ! command -v clang++ >/dev/null || ! compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null; then
  echo "fuzz.sh: needs clang with libFuzzer and OpenMP (apt install clang libclang-rt-dev libomp-dev)" >&2
  exit 2
fi
# Debug: assertions stay on (a failed assert is a finding); fuzz_build.cmake adds -O1.
CC=clang CXX=clang++ cmake -S "$root" -B "$build_dir" -DKILN_FUZZ=ON -DKILN_CUDA=OFF -DKILN_MPI=OFF \
  -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_BENCHMARKS=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build_dir" -j "$(nproc)" >/dev/null

# The targets carry their sanitizer settings (tests/fuzz/sanitizer_defaults.cpp). Known,
# unfixed findings (tests/fuzz/pending/) are tolerated while fuzzing unless --strict, so one of
# them does not end every run; regression inputs are always replayed strictly.
pending=$fuzz_dir/pending
tolerate_pending=()
if ((!strict)); then
  tolerate_pending=(env "KILN_FUZZ_KNOWN_FINDINGS=$pending/known_findings.txt"
                    "UBSAN_OPTIONS=suppressions=$pending/ubsan.supp"
                    "ASAN_OPTIONS=suppressions=$pending/asan.supp")
fi
# The file-reading targets rewrite their input file for every run: keep it in memory.
if [[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]]; then export TMPDIR=/dev/shm; fi
limits=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10)
# Extra libFuzzer flags a target gets while a known finding is pending (pending/libfuzzer_flags.txt).
pending_flags() {
  ((strict)) || awk -v t="$1" '$1 == t { $1 = ""; print }' "$pending/libfuzzer_flags.txt"
}
logs=$build_dir/fuzz-logs
mkdir -p "$logs"
status=0

# Inputs that once found a bug: each must now be accepted or refused with kiln::Error.
replay_regressions() {
  local target=$1 binary=$2 inputs
  shopt -s nullglob
  inputs=("$fuzz_dir/regressions/$target"/*)
  shopt -u nullglob
  ((${#inputs[@]})) || return 0
  if ! env -u KILN_FUZZ_KNOWN_FINDINGS -u UBSAN_OPTIONS -u ASAN_OPTIONS "$binary" "${limits[@]}" "${inputs[@]}" >"$logs/$target.regressions.log" 2>&1; then
    echo "fuzz.sh: $target: a regression input is not refused cleanly; see $logs/$target.regressions.log" >&2
    grep -E "^Running:|SUMMARY|kiln fuzz finding|ERROR" "$logs/$target.regressions.log" | tail -5 >&2
    return 1
  fi
  echo "fuzz.sh: $target: ${#inputs[@]} regression input(s) refused cleanly"
}

# Known findings' reproducers that no longer fail: fixed, so they belong in regressions/.
report_fixed_pending() {
  local target=$1 binary=$2 input
  shopt -s nullglob
  for input in "$fuzz_dir/pending/$target"/*; do
    if env -u KILN_FUZZ_KNOWN_FINDINGS -u UBSAN_OPTIONS -u ASAN_OPTIONS "$binary" "${limits[@]}" "$input" >/dev/null 2>&1; then
      echo "fuzz.sh: $target: pending/${input#"$fuzz_dir/pending/"} is refused cleanly now: move it to regressions/ and drop its entry in pending/" >&2
    fi
  done
  shopt -u nullglob
}

# One fuzzing run; prints "execs corpus_files findings".
fuzz_target() {
  local target=$1 binary=$2 scratch=$build_dir/corpus/$1 findings=$build_dir/findings/$1
  ((ci)) && scratch=$build_dir/corpus-ci/$1 && rm -rf "$scratch"
  local dict=$fuzz_dir/dictionaries/$1.dict before after execs
  mkdir -p "$scratch" "$findings"
  before=$(find "$findings" -type f | wc -l)
  local options=("${limits[@]}" $(pending_flags "$target") -max_total_time="$seconds"
                 -print_final_stats=1 -artifact_prefix="$findings/")
  [[ -f $dict ]] && options+=(-dict="$dict")
  # CI runs a fixed number of inputs from a fixed seed, so what is tried does not depend on the
  # machine's speed (a time budget would); a finding's input is printed in the report.
  ((ci)) && options+=(-seed=1 -runs="$ci_runs")
  "${tolerate_pending[@]}" "$binary" "${options[@]}" "$scratch" "$fuzz_dir/corpus/$target" \
    >"$logs/$target.log" 2>&1 || true
  after=$(find "$findings" -type f | wc -l)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log" | tail -1)
  echo "${execs:-0} $(find "$scratch" -type f | wc -l) $((after - before))"
}

rows=()
for target in "${targets[@]}"; do
  binary=$build_dir/fuzz/${target}_fuzz
  replay_regressions "$target" "$binary" || status=1
  report_fixed_pending "$target" "$binary"
  started=$(date +%s.%N)
  read -r execs corpus found < <(fuzz_target "$target" "$binary")
  rows+=("$(awk -v t="$target" -v s="$started" -v e="$(date +%s.%N)" -v n="$execs" -v c="$corpus" \
              -v f="$found" 'BEGIN { printf "%-20s %8.1f %10d %9.0f %8d %9d", t, e - s, n, n / (e - s), c, f }')")
  if ((found)); then
    status=1
    echo "fuzz.sh: $target: $found finding(s) in $build_dir/findings/$target/; log $logs/$target.log" >&2
    grep -E "SUMMARY|kiln fuzz finding|ERROR: libFuzzer" "$logs/$target.log" | head -3 >&2
    # The input itself, so a finding on a CI machine can be replayed from its log alone (libhdf5's
    # known reads of freed memory make a run depend on the heap's layout, so the same seed does
    # not always find the same inputs on another machine).
    ls -t "$build_dir/findings/$target" | head -n "$((found < 2 ? found : 2))" | while read -r name; do
        finding=$build_dir/findings/$target/$name
        (($(stat -c %s "$finding") < 16384)) || continue
        echo "fuzz.sh: $(basename "$finding") as base64 (base64 -d > input; ${target}_fuzz input):" >&2
        base64 -w0 "$finding" >&2 && echo >&2
      done
  fi
done

printf '%-20s %8s %10s %9s %8s %9s\n' target seconds execs execs/s corpus findings
printf '%s\n' "${rows[@]}"
exit $status
