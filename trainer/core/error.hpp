#pragma once
// kiln's one error type. Anything a user can cause (a bad file, a wrong flag, an impossible
// layout) is thrown as kiln::Error with a message that names the file, the field and what was
// expected; the CLI prints it and exits non-zero. Bugs use assertions, not this.
#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace kiln {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace kiln
