#pragma once
// The execution context of one emulated CUDA thread (a fiber) or of the block's scheduler, and
// the switch between two of them.
//
// On x86-64 the switch is a few instructions (kiln_emu_switch in fiber_context.cpp): it saves
// the callee-saved registers and the SSE/x87 control words on the running stack and swaps
// stack pointers. glibc's swapcontext also saves and restores the signal mask, a system call
// per switch, which made the emulator spend most of its time in the kernel (a training step of
// a tiny model switches a few hundred thousand times). Elsewhere, and under AddressSanitizer
// (which must be told about stack switches), ucontext is used.
#include <cstddef>

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define KILN_EMU_FAST_SWITCH 1
#else
#define KILN_EMU_FAST_SWITCH 0
#include <ucontext.h>
#endif

namespace kiln::emu {

class FiberContext {
 public:
  // Makes this the context of a fiber that starts by calling entry() on the stack
  // [stack, stack + bytes). entry must never return: it ends by switching away for good.
  void prepare(void* stack, std::size_t bytes, void (*entry)());

  // Saves the running context into `from` and continues `to` (prepared, or saved by an
  // earlier switch); returns when something switches back to `from`.
  friend void switch_context(FiberContext& from, FiberContext& to);

 private:
#if KILN_EMU_FAST_SWITCH
  void* stack_pointer_ = nullptr;
#else
  ucontext_t context_{};
#endif
};

void switch_context(FiberContext& from, FiberContext& to);

}  // namespace kiln::emu
