#pragma once
// A non-blocking collective in flight (Communicator v2, DESIGN.md §6).
//
// A communicator's *_async call starts the operation and returns a handle; the buffers it was
// given belong to the operation until wait() returns (or test() has returned true): neither
// read the result nor write the input before. test() also lets the library progress the
// operation, so a caller doing other work (the backward) calls it now and then.
//
// A handle is move-only. A default-constructed handle is already complete (what a group of one
// returns). Destroying a pending handle waits for it, so an operation is never abandoned with
// its buffers freed underneath it; errors met there are dropped (a destructor cannot throw),
// which is why callers wait() explicitly on the normal path.
#include <memory>

namespace kiln::parallel {

// What a backend keeps of one operation in flight (an MPI_Request, the arrays it reads).
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // True once complete; never blocks.
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class CollectiveHandle {
 public:
  CollectiveHandle() = default;
  explicit CollectiveHandle(std::unique_ptr<PendingCollective> pending) : pending_(std::move(pending)) {}
  CollectiveHandle(CollectiveHandle&&) noexcept = default;
  CollectiveHandle& operator=(CollectiveHandle&& other) noexcept;
  CollectiveHandle(const CollectiveHandle&) = delete;
  CollectiveHandle& operator=(const CollectiveHandle&) = delete;
  ~CollectiveHandle();

  bool done() const { return pending_ == nullptr; }
  // Progresses the operation; true once it is complete (then the buffers are the caller's).
  bool test();
  // Blocks until complete. Idempotent. Throws kiln::Error when the operation failed.
  void wait();

 private:
  void wait_quietly() noexcept;
  std::unique_ptr<PendingCollective> pending_;
};

}  // namespace kiln::parallel
