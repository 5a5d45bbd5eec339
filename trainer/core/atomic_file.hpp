#pragma once
// The one way kiln writes a file that a later step trusts (datasets, tokenizer.json,
// checkpoints, exports, reports): bytes go to a temporary name beside the target, are fsync'ed,
// and only then renamed over the target, and the directory is fsync'ed so the rename itself is
// durable. A failed write (disk full, I/O error, a kill) never renames anything: readers see
// the old file or none, never a truncated one.
#include <cstddef>
#include <filesystem>
#include <string_view>

namespace kiln {

// fsync of a file's data, or of a directory's entries. Throws kiln::Error naming the path.
void sync_file(const std::filesystem::path& path);
void sync_directory(const std::filesystem::path& path);

// Creates or truncates path, writes text and fsyncs it (no rename: for files inside a
// directory that is itself published atomically, like a checkpoint's).
void write_file_synced(const std::filesystem::path& path, std::string_view text);

// rename(2) with a kiln::Error naming both paths on failure.
void rename_path(const std::filesystem::path& from, const std::filesystem::path& to);

// The temporary name a target is written under before it is published: "<target>.tmp".
std::filesystem::path temporary_path_for(const std::filesystem::path& target);

// Publishes a finished temporary file: fsync it, rename it over target, fsync the directory.
// For writers that produce the temporary file through a library (HDF5).
void publish_file(const std::filesystem::path& temporary, const std::filesystem::path& target);

// Replaces target with text atomically (temporary file, fsync, rename, directory fsync).
void write_file_atomically(const std::filesystem::path& target, std::string_view text);

// A file written in pieces and published by commit(). Every write error throws at once;
// destroying an uncommitted AtomicFile removes the temporary file and leaves target untouched.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // fsync, close (whose error is checked too), rename over target, fsync the directory.
  void commit();

  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& temporary() const { return temporary_; }

 private:
  std::filesystem::path target_;
  std::filesystem::path temporary_;
  int fd_ = -1;
};

}  // namespace kiln
