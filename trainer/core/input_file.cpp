#include "trainer/core/input_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "trainer/core/error.hpp"

namespace kiln {

namespace {

std::string_view kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

void require_regular_file(const std::filesystem::path& path, std::string_view role) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    const int error = errno;
    if (error == ENOENT) fail("{} '{}' does not exist", role, path.string());
    if (error == ELOOP) fail("{} '{}' is a symbolic link loop", role, path.string());
    fail("{} '{}' cannot be read: {}", role, path.string(), std::strerror(error));
  }
  if (!S_ISREG(info.st_mode)) {
    fail("{} '{}' is {}; expected a regular file", role, path.string(), kind_of(info.st_mode));
  }
}

std::string read_text_file(const std::filesystem::path& path, std::string_view role, std::uint64_t max_bytes) {
  require_regular_file(path, role);
  std::error_code error;
  const std::uint64_t size = std::filesystem::file_size(path, error);
  if (error) fail("{} '{}' cannot be read: {}", role, path.string(), error.message());
  if (size > max_bytes) {
    fail("{} '{}' is {} bytes; the limit for this kind of file is {} bytes", role, path.string(), size, max_bytes);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{} '{}' cannot be opened: {}", role, path.string(), std::strerror(errno));
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uint64_t>(in.gcount()) != size) {
    fail("{} '{}': read {} of {} bytes (was it truncated while kiln read it?)", role, path.string(), in.gcount(), size);
  }
  return bytes;
}

}  // namespace kiln
