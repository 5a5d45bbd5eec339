#pragma once
// Writes that survive a crash or power loss in a known state: data is fsync'ed before the
// rename that makes it visible, and the directory is fsync'ed so the rename itself is durable.
#include <filesystem>
#include <string_view>

namespace kiln::checkpoint {

// fsync of a file's data, or of a directory's entries. Throws kiln::Error naming the path.
void sync_file(const std::filesystem::path& path);
void sync_directory(const std::filesystem::path& path);

// Creates or truncates path, writes text and fsyncs it.
void write_file_synced(const std::filesystem::path& path, std::string_view text);

// Replaces target so that readers see either the old or the new content, never a mix:
// write target.tmp, fsync, rename over target, fsync the directory.
void replace_file_atomically(const std::filesystem::path& target, std::string_view text);

// rename(2) with a kiln::Error naming both paths on failure.
void rename_path(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace kiln::checkpoint
