#include "trainer/core/stop_signal.hpp"

#include <gtest/gtest.h>

#include <csignal>

namespace {

bool default_action(int signal_number) {
  struct sigaction current{};
  sigaction(signal_number, nullptr, &current);
  return current.sa_handler == SIG_DFL;
}

TEST(StopSignal, FirstSignalSetsTheFlagAndRestoresDefaultAction) {
  {
    kiln::StopSignalHandler handler(/*announce=*/false);
    EXPECT_FALSE(kiln::stop_requested());
    EXPECT_FALSE(default_action(SIGTERM));
    std::raise(SIGTERM);  // handled: the test process survives
    EXPECT_TRUE(kiln::stop_requested());
    EXPECT_EQ(kiln::stop_signal_number(), SIGTERM);
    EXPECT_TRUE(default_action(SIGTERM));  // a second one would terminate
    EXPECT_TRUE(default_action(SIGINT));
    kiln::clear_stop_request();
    EXPECT_FALSE(kiln::stop_requested());
  }
  EXPECT_TRUE(default_action(SIGINT));  // the previous (default) handlers are back
}

TEST(StopSignal, InterruptIsHandledToo) {
  kiln::StopSignalHandler handler(false);
  std::raise(SIGINT);
  EXPECT_EQ(kiln::stop_signal_number(), SIGINT);
}

TEST(StopSignal, OnlyOneHandlerAtATime) {
  kiln::StopSignalHandler handler(false);
  EXPECT_ANY_THROW(kiln::StopSignalHandler second(false));
}

TEST(StopSignalDeathTest, SecondSignalTerminates) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // re-executes the binary: safe with threads
  EXPECT_EXIT(
      {
        kiln::StopSignalHandler handler(false);
        std::raise(SIGINT);
        std::raise(SIGINT);
        std::exit(0);  // not reached
      },
      ::testing::KilledBySignal(SIGINT), "");
}

}  // namespace
