#include "parallel/collective_handle.hpp"

namespace kiln::parallel {

CollectiveHandle& CollectiveHandle::operator=(CollectiveHandle&& other) noexcept {
  if (this != &other) {
    wait_quietly();  // the operation this handle held must not outlive its handle
    pending_ = std::move(other.pending_);
  }
  return *this;
}

CollectiveHandle::~CollectiveHandle() { wait_quietly(); }

bool CollectiveHandle::test() {
  if (pending_ && pending_->test()) pending_.reset();
  return done();
}

void CollectiveHandle::wait() {
  if (!pending_) return;
  // Released before the wait so a failing operation is not waited for again by the destructor.
  const std::unique_ptr<PendingCollective> pending = std::move(pending_);
  pending->wait();
}

void CollectiveHandle::wait_quietly() noexcept {
  try {
    wait();
  } catch (...) {
  }
}

}  // namespace kiln::parallel
