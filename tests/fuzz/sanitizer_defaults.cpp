// Sanitizer settings compiled into every fuzz target, so running a target by hand on an input
// gives the same verdict as scripts/fuzz.sh (ASAN_OPTIONS / UBSAN_OPTIONS / LSAN_OPTIONS from
// the environment still override them).
extern "C" {

// UBSan stops at the first report (the build keeps checks recoverable only so that
// tests/fuzz/pending/ubsan.supp can silence a known, still unfixed finding).
const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

// A malloc far beyond what the machine has returns NULL, as glibc's does in production, instead
// of aborting: libhdf5 (not kiln) mallocs metadata sizes straight from the file and fails
// cleanly on NULL. kiln's own allocations go through operator new, which ASan still reports,
// and -malloc_limit_mb=2048 still reports any allocation over 2 GB that succeeds.
const char* __asan_default_options() { return "allocator_may_return_null=1:detect_leaks=1"; }

// libhdf5 keeps small blocks on some of its own error paths (it is not instrumented and is
// stripped, so only the library can be named). kiln closes every HDF5 handle through RAII
// (data/dataset/hdf5_file.hpp).
const char* __lsan_default_suppressions() { return "leak:libhdf5_serial.so\nleak:libhdf5.so\n"; }

}
