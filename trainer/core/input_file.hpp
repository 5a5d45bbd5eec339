#pragma once
// Checks for files kiln reads whole (tokenizer.json, config.json, recipes, checkpoint
// metadata, datasets). Anything that is not a regular file (a directory, a FIFO, /dev/zero, a
// socket, a symlink loop) is refused up front with a kiln::Error naming the file and its role,
// so a hostile or mistaken path never turns into an endless read or an unbounded allocation.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace kiln {

// The largest file read_text_file accepts unless told otherwise (tokenizer.json of a 256k
// vocabulary is ~20 MB; nothing kiln parses whole comes near this).
inline constexpr std::uint64_t kMaxWholeFileBytes = std::uint64_t{1} << 30;

// Throws kiln::Error when `path` does not exist or is not a regular file (symlinks followed).
// `role` says what the file is for: "tokenizer", "dataset", "recipe", ...
void require_regular_file(const std::filesystem::path& path, std::string_view role);

// The file's bytes after require_regular_file; refuses files over max_bytes and reads that
// stop short of the size stat reported (a file truncated while being read).
std::string read_text_file(const std::filesystem::path& path, std::string_view role,
                           std::uint64_t max_bytes = kMaxWholeFileBytes);

}  // namespace kiln
