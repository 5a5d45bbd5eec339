#pragma once
// Where memory comes from (DESIGN.md §4). One allocator per kind of memory: the host one
// today, a CUDA one with the CUDA backend. Buffers and arenas only ever talk to this
// interface, so a device allocator is one more implementation, not a change to its users.
//
// A pointer from an allocator is valid on device() only: host code must never dereference a
// CUDA allocation (copies between devices go through ops::copy). free() takes back exactly
// what allocate() gave, with the same size and alignment, so an implementation may keep no
// bookkeeping of its own (a stream-ordered free can be added beside it later).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kiln {
enum class Device : std::uint8_t;  // kernels/tensor.hpp, which includes this header
}

namespace kiln::memory {

class Allocator {
 public:
  virtual ~Allocator() = default;

  virtual Device device() const = 0;
  virtual std::string_view name() const = 0;  // for messages: "host", "cuda:0"

  // `bytes` of zero-filled memory aligned to `alignment` (a power of two); bytes > 0. Throws
  // kiln::Error when the memory is not there.
  virtual void* allocate(std::size_t bytes, std::size_t alignment) = 0;
  // What allocate(bytes, alignment) really takes, padding included: what the ledger counts.
  virtual std::size_t allocation_size(std::size_t bytes, std::size_t alignment) const = 0;
  // Returns memory from allocate(bytes, alignment) of this allocator.
  virtual void free(void* memory, std::size_t bytes, std::size_t alignment) noexcept = 0;
};

}  // namespace kiln::memory
