#pragma once
// The file a path-taking parser (safetensors, GGUF, HDF5) reads the fuzz input from: kiln opens
// these by path, so the input goes through the same open/seek/read calls a real file does.
// One file per process and target, rewritten for every input, removed at exit.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "tests/fuzz/refusal_contract.hpp"

namespace kiln::fuzz {

class ScratchFile {
 public:
  // `file_name` is what messages will show, e.g. "model.safetensors".
  explicit ScratchFile(std::string_view file_name)
      : directory_(std::filesystem::temp_directory_path() /
                   ("kiln_fuzz_" + std::to_string(::getpid()))),
        path_(directory_ / file_name) {
    std::filesystem::create_directories(directory_);
  }
  ~ScratchFile() {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  const std::filesystem::path& write(const std::uint8_t* data, std::size_t size) const {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    require(out.good(), "could not write the scratch file (disk full?)");
    return path_;
  }

 private:
  std::filesystem::path directory_;
  std::filesystem::path path_;
};

}  // namespace kiln::fuzz
