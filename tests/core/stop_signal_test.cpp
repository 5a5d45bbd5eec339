#include "trainer/core/stop_signal.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

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
  kiln::clear_stop_request();  // the flag is process-wide: later tests in this process train
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

// A checkpoint being written when the second signal comes is finished first: the process
// ends only when the deferral's scope does.
TEST(StopSignalDeathTest, SecondSignalDuringADeferralWaitsForItsEnd) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        kiln::StopSignalHandler handler(false);
        std::raise(SIGTERM);
        {
          kiln::StopSignalDeferral saving;
          std::raise(SIGTERM);
          std::fprintf(stderr, "checkpoint complete\n");
        }
        std::fprintf(stderr, "still running after the deferral\n");
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGTERM), "checkpoint complete\n$");
}

TEST(StopSignal, FirstSignalDuringADeferralOnlySetsTheFlag) {
  kiln::StopSignalHandler handler(false);
  {
    kiln::StopSignalDeferral saving;
    std::raise(SIGINT);
    EXPECT_TRUE(kiln::stop_requested());
  }
  EXPECT_TRUE(kiln::stop_requested());  // the process lives on and stops at the next poll
  EXPECT_TRUE(default_action(SIGINT));   // and a second signal now ends it at once
  kiln::clear_stop_request();
}

TEST(StopSignal, DeferralWithoutAHandlerChangesNothing) {
  { kiln::StopSignalDeferral saving; }
  EXPECT_TRUE(default_action(SIGTERM));
}

}  // namespace
