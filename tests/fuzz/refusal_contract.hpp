#pragma once
// What every fuzz target checks: a parser given arbitrary bytes either accepts them or refuses
// them with kiln::Error (the one documented refusal, trainer/core/error.hpp). Anything else is
// a finding and aborts, so libFuzzer saves the input: another exception type escaping
// (nlohmann's type_error, std::out_of_range, YAML::Exception, ...), an accepted input breaking
// a property kiln relies on later, and, caught by the sanitizers and libFuzzer itself, crashes,
// memory errors, undefined behaviour, hangs (-timeout) and huge allocations (-malloc_limit_mb).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>
#include <typeinfo>

#include "trainer/core/error.hpp"

namespace kiln::fuzz {

[[noreturn]] inline void report_finding(std::string_view what) {
  std::fprintf(stderr, "kiln fuzz finding: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

// Runs `use` (parse the input, then use the result as kiln does); a kiln::Error ends it quietly.
template <class Use>
void accept_or_refuse(Use&& use) {
  try {
    use();
  } catch (const kiln::Error&) {
    // bad input, refused the documented way
  } catch (const std::exception& error) {
    std::fprintf(stderr, "kiln fuzz finding: %s escaped instead of kiln::Error: %s\n",
                 typeid(error).name(), error.what());
    std::abort();
  } catch (...) {
    report_finding("a non-std exception escaped instead of kiln::Error");
  }
}

// A property every accepted input must have (e.g. "what kiln writes back, it reads back").
inline void require(bool holds, std::string_view property) {
  if (!holds) report_finding(property);
}

}  // namespace kiln::fuzz
