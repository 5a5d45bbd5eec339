#include "kernels/cuda/emulation/fiber_context.hpp"

#include <cstdint>
#include <cstring>

namespace kiln::emu {

#if KILN_EMU_FAST_SWITCH

// kiln_emu_switch(save, load): pushes rbp, rbx, r12-r15 and an 8-byte slot with MXCSR and the
// x87 control word, stores the stack pointer at *save, loads `load` as the stack pointer, pops
// the same frame and returns into whatever pushed it (or, for a fresh fiber, into its entry).
extern "C" void kiln_emu_switch(void** save, void* load);
asm(R"(
  .text
  .globl kiln_emu_switch
  .type kiln_emu_switch, @function
kiln_emu_switch:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size kiln_emu_switch, .-kiln_emu_switch
  .section .note.GNU-stack, "", @progbits
  .text
)");

void FiberContext::prepare(void* stack, std::size_t bytes, void (*entry)()) {
  // From the 16-byte aligned top down: a zero "return address" that ends unwinding (entry never
  // returns), entry's address for the switch's ret, six zeroed registers, the control words.
  // After the ret the stack pointer is 8 mod 16, as at any function's entry.
  auto top = (reinterpret_cast<std::uintptr_t>(stack) + bytes) & ~std::uintptr_t{15};
  auto* slots = reinterpret_cast<std::uint64_t*>(top) - 9;
  std::memset(slots, 0, 9 * sizeof(std::uint64_t));
  const std::uint32_t mxcsr = 0x1F80;  // round to nearest, all exceptions masked: the ABI default
  const std::uint16_t x87 = 0x037F;
  std::memcpy(&slots[0], &mxcsr, sizeof(mxcsr));
  std::memcpy(reinterpret_cast<unsigned char*>(&slots[0]) + 4, &x87, sizeof(x87));
  // slots[1..6]: r15, r14, r13, r12, rbx, rbp
  slots[7] = reinterpret_cast<std::uint64_t>(entry);
  slots[8] = 0;  // entry's return address: none
  stack_pointer_ = slots;
}

void switch_context(FiberContext& from, FiberContext& to) { kiln_emu_switch(&from.stack_pointer_, to.stack_pointer_); }

#else

void FiberContext::prepare(void* stack, std::size_t bytes, void (*entry)()) {
  getcontext(&context_);
  context_.uc_stack.ss_sp = stack;
  context_.uc_stack.ss_size = bytes;
  context_.uc_link = nullptr;
  makecontext(&context_, entry, 0);
}

void switch_context(FiberContext& from, FiberContext& to) { swapcontext(&from.context_, &to.context_); }

#endif

}  // namespace kiln::emu
