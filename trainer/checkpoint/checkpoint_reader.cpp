#include "trainer/checkpoint/checkpoint_reader.hpp"

#include <algorithm>

#include "trainer/checkpoint/checkpoint_names.hpp"
#include "trainer/core/error.hpp"

namespace kiln::checkpoint {

namespace fs = std::filesystem;

namespace {

CheckpointMeta read_meta(const fs::path& dir) { return read_meta_file(dir / kMetaFile); }

// A whole tensor is read only when its pieces store at least as many values as its global
// shape claims: the buffer is sized by that claim, so a piece attribute saying [1e12] must be
// refused before it becomes an allocation. (Pieces may leave holes; gather() names them.)
void check_stored_whole(const fs::path& dir, const TensorInfo& info) {
  std::uint64_t stored = 0;
  for (const auto& piece : info.pieces) stored += element_count(piece.region.shape);
  if (stored < element_count(info.global_shape)) {
    fail("checkpoint {}: tensor {} claims shape {} ({} elements) but its pieces hold only {}", dir.string(), info.name,
         shape_text(info.global_shape), element_count(info.global_shape), stored);
  }
}

}  // namespace

CheckpointReader::CheckpointReader(const fs::path& step_dir) : dir_(step_dir), meta_(read_meta(step_dir)) {
  std::vector<fs::path> rank_files;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (is_rank_file_name(entry.path().filename().string())) rank_files.push_back(entry.path());
  }
  std::sort(rank_files.begin(), rank_files.end());
  if (rank_files.empty()) fail("checkpoint {} holds no rank_XXXXX.h5 file", dir_.string());
  for (const auto& file : rank_files) index_rank_file(file);
}

CheckpointReader::~CheckpointReader() = default;
CheckpointReader::CheckpointReader(CheckpointReader&&) noexcept = default;
CheckpointReader& CheckpointReader::operator=(CheckpointReader&&) noexcept = default;

void CheckpointReader::index_rank_file(const fs::path& file) {
  auto reader = std::make_unique<PieceFileReader>(file);
  for (const auto& piece : reader->pieces()) {
    auto& info = tensors_[piece.name];
    if (info.pieces.empty()) {
      info.name = piece.name;
      info.global_shape = piece.global_shape;
    } else if (info.global_shape != piece.global_shape) {
      fail("checkpoint {}: tensor {} has global shape {} in {} but {} in {}", dir_.string(),
           piece.name, shape_text(info.global_shape), info.pieces.front().file.filename().string(),
           shape_text(piece.global_shape), file.filename().string());
    }
    info.pieces.push_back(piece);
  }
  files_[file] = std::move(reader);
}

std::vector<std::string> CheckpointReader::tensor_names() const {
  std::vector<std::string> names;
  for (const auto& [name, info] : tensors_) names.push_back(name);
  return names;
}

bool CheckpointReader::has(std::string_view name) const {
  return tensors_.contains(canonical_piece_name(name));
}

const TensorInfo& CheckpointReader::tensor(std::string_view name) const {
  const auto found = tensors_.find(canonical_piece_name(name));
  if (found == tensors_.end()) {
    fail("checkpoint {} has no tensor {} ({} tensors stored)", dir_.string(), name, tensors_.size());
  }
  return found->second;
}

std::vector<PieceInfo> CheckpointReader::pieces() const {
  std::vector<PieceInfo> all;
  for (const auto& [name, info] : tensors_) all.insert(all.end(), info.pieces.begin(), info.pieces.end());
  return all;
}

void CheckpointReader::gather(std::string_view name, const Region& wanted, std::size_t out_size,
                              bool as_double, void* out) const {
  const TensorInfo& info = tensor(name);
  if (!fits_inside(wanted, info.global_shape)) {
    fail("checkpoint {}: region {} is outside tensor {} of shape {}", dir_.string(),
         region_text(wanted), info.name, shape_text(info.global_shape));
  }
  if (out_size != element_count(wanted.shape)) {
    fail("checkpoint {}: reading {} of {} needs {} values, the buffer holds {}", dir_.string(),
         region_text(wanted), info.name, element_count(wanted.shape), out_size);
  }
  CoverageMask coverage(wanted);
  for (const auto& piece : info.pieces) {
    const auto overlap = intersect(piece.region, wanted);
    if (!overlap) continue;
    files_.at(piece.file)->read_overlap(piece, *overlap, wanted, as_double, out);
    coverage.mark(*overlap);
  }
  if (const auto gap = coverage.first_gap()) {
    fail("checkpoint {}: tensor {} region {} is not fully stored: element {} is in no piece",
         dir_.string(), info.name, region_text(wanted), shape_text(*gap));
  }
}

void CheckpointReader::read_region(std::string_view name, const Shape& offset, const Shape& shape,
                                   std::span<float> out) const {
  gather(name, Region{offset, shape}, out.size(), false, out.data());
}

void CheckpointReader::read_region(std::string_view name, const Shape& offset, const Shape& shape,
                                   std::span<double> out) const {
  gather(name, Region{offset, shape}, out.size(), true, out.data());
}

std::vector<float> CheckpointReader::read(std::string_view name) const {
  check_stored_whole(dir_, tensor(name));
  const auto& shape = tensor(name).global_shape;
  std::vector<float> values(element_count(shape));
  read_region(name, Shape(shape.size(), 0), shape, values);
  return values;
}

std::vector<double> CheckpointReader::read_double(std::string_view name) const {
  check_stored_whole(dir_, tensor(name));
  const auto& shape = tensor(name).global_shape;
  std::vector<double> values(element_count(shape));
  read_region(name, Shape(shape.size(), 0), shape, values);
  return values;
}

}  // namespace kiln::checkpoint
