#pragma once
// Reads a committed checkpoint under any layout (DESIGN.md §9): a rank asks for the region of
// a global tensor it owns now, and the reader gathers it from whichever stored pieces overlap,
// touching only those bytes. Whole tensors and single pieces are special cases of a region.
//
//   auto found = resolve_checkpoint(path);          // step dir, checkpoints/ or run dir
//   CheckpointReader reader(found.dir);
//   reader.read_region("/model/wte.weight", {row0, 0}, {rows, d}, my_shard);
//
// The constructor reads meta.json and indexes every rank file; it does not re-verify the
// checksums (find_latest_valid / resolve_checkpoint did).
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/checkpoint/checkpoint_meta.hpp"
#include "trainer/checkpoint/piece_file.hpp"
#include "trainer/checkpoint/tensor_region.hpp"

namespace kiln::checkpoint {

struct TensorInfo {
  std::string name;
  Shape global_shape;
  std::vector<PieceInfo> pieces;  // every stored piece of this tensor, from all rank files
};

class CheckpointReader {
 public:
  explicit CheckpointReader(const std::filesystem::path& step_dir);
  ~CheckpointReader();
  CheckpointReader(CheckpointReader&&) noexcept;
  CheckpointReader& operator=(CheckpointReader&&) noexcept;

  const std::filesystem::path& dir() const { return dir_; }
  const CheckpointMeta& meta() const { return meta_; }
  std::int64_t step() const { return meta_.step; }

  // Canonical names ("/model/wte.weight"), sorted.
  std::vector<std::string> tensor_names() const;
  bool has(std::string_view name) const;
  // Throws kiln::Error naming the checkpoint when the tensor is not stored.
  const TensorInfo& tensor(std::string_view name) const;
  // Every stored piece of every tensor.
  std::vector<PieceInfo> pieces() const;

  // Fills out (row-major, element_count(shape) values) with the global tensor's elements
  // [offset, offset + shape). Throws kiln::Error when the region leaves the tensor or some
  // element of it is in no stored piece (naming the first such element).
  void read_region(std::string_view name, const Shape& offset, const Shape& shape,
                   std::span<float> out) const;
  void read_region(std::string_view name, const Shape& offset, const Shape& shape,
                   std::span<double> out) const;
  // The whole tensor.
  std::vector<float> read(std::string_view name) const;
  std::vector<double> read_double(std::string_view name) const;

 private:
  void index_rank_file(const std::filesystem::path& file);
  void gather(std::string_view name, const Region& wanted, std::size_t out_size, bool as_double,
              void* out) const;

  std::filesystem::path dir_;
  CheckpointMeta meta_;
  std::map<std::string, TensorInfo, std::less<>> tensors_;
  std::map<std::filesystem::path, std::unique_ptr<PieceFileReader>> files_;
};

}  // namespace kiln::checkpoint
