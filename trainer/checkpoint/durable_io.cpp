#include "trainer/checkpoint/durable_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "trainer/core/error.hpp"

namespace kiln::checkpoint {

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

void sync_descriptor(const Descriptor& descriptor, const std::filesystem::path& path) {
  if (descriptor.get() < 0) fail_errno("open", path);
  if (::fsync(descriptor.get()) != 0) fail_errno("fsync", path);
}

}  // namespace

void sync_file(const std::filesystem::path& path) {
  sync_descriptor(Descriptor(path, O_RDONLY), path);
}

void sync_directory(const std::filesystem::path& path) {
  sync_descriptor(Descriptor(path, O_RDONLY | O_DIRECTORY), path);
}

void write_file_synced(const std::filesystem::path& path, std::string_view text) {
  Descriptor out(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out.get() < 0) fail_errno("create", path);
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t count = ::write(out.get(), text.data() + written, text.size() - written);
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) fail_errno("write", path);
    written += static_cast<std::size_t>(count);
  }
  sync_descriptor(out, path);
}

void rename_path(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    fail("cannot rename '{}' to '{}': {}", from.string(), to.string(), std::strerror(errno));
  }
}

void replace_file_atomically(const std::filesystem::path& target, std::string_view text) {
  auto temporary = target;
  temporary += ".tmp";
  write_file_synced(temporary, text);
  rename_path(temporary, target);
  sync_directory(target.parent_path().empty() ? std::filesystem::path(".") : target.parent_path());
}

}  // namespace kiln::checkpoint
