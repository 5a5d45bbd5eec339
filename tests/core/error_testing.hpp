#pragma once
// The message of the kiln::Error an action throws, for tests that check what a refusal says.
#include <string>

#include "trainer/core/error.hpp"

namespace kiln::testing {

// "(no error)" when the action returns normally, so EXPECT_NE(error_of(...).find(...)) fails.
template <class Action>
std::string error_of(Action&& action) {
  try {
    action();
  } catch (const kiln::Error& error) {
    return error.what();
  }
  return "(no error)";
}

}  // namespace kiln::testing
