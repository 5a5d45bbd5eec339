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
#include <fstream>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "trainer/core/error.hpp"

namespace kiln::fuzz {

[[noreturn]] inline void report_finding(std::string_view what) {
  std::fprintf(stderr, "kiln fuzz finding: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

// KILN_FUZZ_SHOW_VERDICT=1 prints "accepted" or the refusal message for each input, to check
// that seeds are accepted and regression inputs refused for the right reason.
inline bool show_verdict() {
  static const bool show = std::getenv("KILN_FUZZ_SHOW_VERDICT") != nullptr;
  return show;
}

// Findings that are known, reported and not fixed yet: one substring per line of the file
// KILN_FUZZ_KNOWN_FINDINGS names (scripts/fuzz.sh passes tests/fuzz/pending/known_findings.txt
// unless --strict), '#' lines ignored, matched against an escaped exception's message or a
// broken property's name. They end the input like a refusal, so a known finding does not stop
// every run; their reproducers wait in tests/fuzz/pending/.
inline const std::vector<std::string>& known_findings() {
  static const std::vector<std::string> known = [] {
    std::vector<std::string> lines;
    const char* file = std::getenv("KILN_FUZZ_KNOWN_FINDINGS");
    if (file == nullptr) return lines;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.front() != '#') lines.push_back(line);
    }
    return lines;
  }();
  return known;
}

inline bool is_known_finding(std::string_view message) {
  for (const auto& known : known_findings()) {
    if (message.find(known) != std::string_view::npos) return true;
  }
  return false;
}

// Thrown by require() for a known finding; not a std::exception, so only accept_or_refuse sees it.
struct KnownFinding {
  std::string what;
};

// Runs `use` (parse the input, then use the result as kiln does); a kiln::Error ends it quietly.
template <class Use>
void accept_or_refuse(Use&& use) {
  try {
    use();
    if (show_verdict()) std::fprintf(stderr, "kiln fuzz verdict: accepted\n");
  } catch (const kiln::Error& refusal) {
    // bad input, refused the documented way
    if (show_verdict()) std::fprintf(stderr, "kiln fuzz verdict: refused: %s\n", refusal.what());
  } catch (const KnownFinding& known) {
    if (show_verdict()) std::fprintf(stderr, "kiln fuzz verdict: known pending finding: %s\n", known.what.c_str());
  } catch (const std::exception& error) {
    if (is_known_finding(error.what())) {
      if (show_verdict()) std::fprintf(stderr, "kiln fuzz verdict: known pending finding: %s\n", error.what());
      return;
    }
    std::fprintf(stderr, "kiln fuzz finding: %s escaped instead of kiln::Error: %s\n",
                 typeid(error).name(), error.what());
    std::abort();
  } catch (...) {
    report_finding("a non-std exception escaped instead of kiln::Error");
  }
}

// A property every accepted input must have (e.g. "what kiln writes back, it reads back").
inline void require(bool holds, std::string_view property) {
  if (holds) return;
  if (is_known_finding(property)) throw KnownFinding{std::string(property)};
  report_finding(property);
}

}  // namespace kiln::fuzz
