#include "trainer/core/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "trainer/core/error.hpp"

namespace kiln {

namespace {

// Owns a POSIX file descriptor.
class Descriptor {
 public:
  Descriptor(const std::filesystem::path& path, int flags, mode_t mode = 0)
      : fd_(::open(path.c_str(), flags | O_CLOEXEC, mode)) {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void fail_errno(std::string_view action, const std::filesystem::path& path) {
  fail("cannot {} '{}': {}", action, path.string(), std::strerror(errno));
}

void sync_descriptor(int fd, const std::filesystem::path& path) {
  if (fd < 0) fail_errno("open", path);
  if (::fsync(fd) != 0) fail_errno("fsync", path);
}

void write_all(int fd, const void* data, std::size_t size, const std::filesystem::path& path) {
  const auto* bytes = static_cast<const char*>(data);
  std::size_t written = 0;
  while (written < size) {
    const ssize_t count = ::write(fd, bytes + written, size - written);
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) fail_errno("write", path);
    written += static_cast<std::size_t>(count);
  }
}

std::filesystem::path directory_of(const std::filesystem::path& path) {
  return path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
}

}  // namespace

void sync_file(const std::filesystem::path& path) {
  const Descriptor descriptor(path, O_RDONLY);
  sync_descriptor(descriptor.get(), path);
}

void sync_directory(const std::filesystem::path& path) {
  const Descriptor descriptor(path, O_RDONLY | O_DIRECTORY);
  sync_descriptor(descriptor.get(), path);
}

void write_file_synced(const std::filesystem::path& path, std::string_view text) {
  const Descriptor out(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out.get() < 0) fail_errno("create", path);
  write_all(out.get(), text.data(), text.size(), path);
  sync_descriptor(out.get(), path);
}

void rename_path(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    fail("cannot rename '{}' to '{}': {}", from.string(), to.string(), std::strerror(errno));
  }
}

std::filesystem::path temporary_path_for(const std::filesystem::path& target) {
  auto temporary = target;
  temporary += ".tmp";
  return temporary;
}

void publish_file(const std::filesystem::path& temporary, const std::filesystem::path& target) {
  sync_file(temporary);
  rename_path(temporary, target);
  sync_directory(directory_of(target));
}

void write_file_atomically(const std::filesystem::path& target, std::string_view text) {
  AtomicFile file(target);
  file.write(text);
  file.commit();
}

AtomicFile::AtomicFile(std::filesystem::path target)
    : target_(std::move(target)), temporary_(temporary_path_for(target_)) {
  fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_errno("create", temporary_);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temporary_.empty()) {
    std::error_code ignored;
    std::filesystem::remove(temporary_, ignored);
  }
}

void AtomicFile::write(const void* data, std::size_t size) {
  if (fd_ < 0) fail("'{}' was already committed; nothing more can be written", target_.string());
  write_all(fd_, data, size, temporary_);
}

void AtomicFile::commit() {
  if (fd_ < 0) fail("'{}' was already committed", target_.string());
  sync_descriptor(fd_, temporary_);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail_errno("close", temporary_);
  rename_path(temporary_, target_);
  temporary_.clear();  // published: nothing left to remove
  sync_directory(directory_of(target_));
}

}  // namespace kiln
