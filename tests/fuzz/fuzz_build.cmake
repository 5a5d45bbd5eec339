# KILN_FUZZ=ON (scripts/fuzz.sh, build dir build-fuzz/): the parsers kiln reads untrusted files
# with, built with AddressSanitizer + UndefinedBehaviorSanitizer and libFuzzer's coverage
# instrumentation, and one fuzz target per parser (tests/fuzz/CMakeLists.txt). Nothing else is
# built here: no kernels, model, CLI or test suite, so the sanitized build stays small for CI.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "KILN_FUZZ=ON needs clang's libFuzzer: configure with CC=clang CXX=clang++")
endif()
if(KILN_HAVE_CUDA)
  message(FATAL_ERROR "KILN_FUZZ=ON builds host parsers only: configure with -DKILN_CUDA=OFF")
endif()

# Every kiln source compiled in this build dir, libraries included: a sanitizer or coverage
# blind spot inside a parser would hide exactly the bugs the fuzzers are for. UBSan checks stay
# recoverable so a suppression file can silence a known finding; the targets set
# halt_on_error=1 (sanitizer_defaults.cpp), so any other report aborts and becomes a finding.
add_compile_options(-fsanitize=address,undefined -fsanitize=fuzzer-no-link
                    -fno-omit-frame-pointer -g -O1)
add_link_options(-fsanitize=address,undefined)

add_subdirectory(trainer/core)
add_subdirectory(tests/fuzz)
