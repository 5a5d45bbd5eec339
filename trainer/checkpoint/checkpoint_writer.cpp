#include "trainer/checkpoint/checkpoint_writer.hpp"

#include <algorithm>
#include <iostream>
#include <system_error>
#include <vector>

#include "trainer/checkpoint/checkpoint_names.hpp"
#include "trainer/core/atomic_file.hpp"
#include "trainer/core/checksum.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/version.hpp"

namespace kiln::checkpoint {

namespace fs = std::filesystem;

namespace {

void remove_tree(const fs::path& path) {
  std::error_code error;
  fs::remove_all(path, error);
  if (error) fail("checkpoint: cannot remove '{}': {}", path.string(), error.message());
}

// Housekeeping after a successful commit must not turn it into a failure: warn and go on.
void remove_tree_or_warn(const fs::path& path) {
  std::error_code error;
  fs::remove_all(path, error);
  if (error) {
    std::cerr << fmt::format("kiln: warning: cannot remove old checkpoint data '{}': {}\n",
                             path.string(), error.message());
  }
}

std::vector<std::pair<std::int64_t, fs::path>> committed_steps(const fs::path& checkpoints_dir) {
  std::vector<std::pair<std::int64_t, fs::path>> steps;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    const auto step = parse_step_dir_name(entry.path().filename().string());
    if (step && entry.is_directory()) steps.emplace_back(*step, entry.path());
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

}  // namespace

CheckpointWriter::CheckpointWriter(fs::path checkpoints_dir, std::int64_t step, int rank)
    : checkpoints_dir_(std::move(checkpoints_dir)), step_(step), rank_(rank) {
  if (step < 0) fail("checkpoint: step must be >= 0, got {}", step);
  temporary_dir_ = checkpoints_dir_ / (step_dir_name(step) + std::string(kTemporarySuffix));
  std::error_code error;
  fs::create_directories(checkpoints_dir_, error);
  if (error) fail("checkpoint: cannot create '{}': {}", checkpoints_dir_.string(), error.message());
  // A .tmp of this step is the remains of an interrupted attempt: start it afresh.
  if (rank_ == 0) remove_tree(temporary_dir_);
  fs::create_directories(temporary_dir_, error);
  if (error) fail("checkpoint: cannot create '{}': {}", temporary_dir_.string(), error.message());
  rank_file_ = std::make_unique<PieceFileWriter>(temporary_dir_ / rank_file_name(rank_), rank_);
  meta_.step = step_;
}

CheckpointWriter::~CheckpointWriter() = default;

fs::path CheckpointWriter::final_dir() const { return checkpoints_dir_ / step_dir_name(step_); }

void CheckpointWriter::add_piece(std::string_view name, const Shape& global_shape,
                                 const Shape& offset, const Shape& shape, std::size_t value_count,
                                 PieceDtype dtype, const void* values) {
  if (!rank_file_) fail("checkpoint: piece {} added after the rank file was finished", name);
  if (value_count != element_count(shape)) {
    fail("checkpoint piece {}: {} values given for shape {} ({} elements)", name, value_count,
         shape_text(shape), element_count(shape));
  }
  rank_file_->write(name, global_shape, Region{offset, shape}, dtype, values);
}

void CheckpointWriter::add(std::string_view name, const Shape& global_shape, const Shape& offset,
                           std::span<const float> values, const Shape& shape) {
  add_piece(name, global_shape, offset, shape, values.size(), PieceDtype::float32, values.data());
}

void CheckpointWriter::add(std::string_view name, const Shape& global_shape, const Shape& offset,
                           std::span<const double> values, const Shape& shape) {
  add_piece(name, global_shape, offset, shape, values.size(), PieceDtype::float64, values.data());
}

void CheckpointWriter::add_whole(std::string_view name, const Shape& shape,
                                 std::span<const float> values) {
  add(name, shape, Shape(shape.size(), 0), values, shape);
}

void CheckpointWriter::add_whole(std::string_view name, const Shape& shape,
                                 std::span<const double> values) {
  add(name, shape, Shape(shape.size(), 0), values, shape);
}

void CheckpointWriter::set_meta(CheckpointMeta meta) {
  meta_ = std::move(meta);
  meta_.step = step_;
  meta_set_ = true;
}

void CheckpointWriter::finish_rank_file() {
  if (!rank_file_) return;
  rank_file_->close();
  sync_file(rank_file_->path());
  rank_file_.reset();
}

void CheckpointWriter::write_meta_and_marker() {
  meta_.created_by = std::string("kiln ") + kVersion;
  meta_.checksums.clear();
  for (const auto& entry : fs::directory_iterator(temporary_dir_)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file()) meta_.checksums[name] = to_hex(xxh3_64_file(entry.path()));
  }
  const std::string meta_text = meta_to_json(meta_).dump(2) + "\n";
  write_file_synced(temporary_dir_ / kMetaFile, meta_text);
  // `complete` is written last: its presence proves meta.json (and through it every file) is
  // whole, and its checksum catches a meta.json damaged later.
  write_file_synced(temporary_dir_ / kCompleteFile,
                    std::string(kMetaFile) + " " + to_hex(xxh3_64(meta_text)) + "\n");
  sync_directory(temporary_dir_);
}

void CheckpointWriter::publish() {
  const fs::path final_path = final_dir();
  fs::path replaced = final_path;
  replaced += ".replaced";
  const bool had_previous = fs::exists(final_path);
  // Saving a step that exists (a resumed run passing the same step again) swaps directories;
  // the ".replaced" name is not a step name, so readers never pick it up.
  if (had_previous) {
    remove_tree(replaced);
    rename_path(final_path, replaced);
  }
  rename_path(temporary_dir_, final_path);
  sync_directory(checkpoints_dir_);
  write_file_atomically(checkpoints_dir_ / kLatestFile, final_path.filename().string() + "\n");
  if (had_previous) remove_tree_or_warn(replaced);
}

void CheckpointWriter::remove_stale_temporaries() const {
  for (const auto& entry : fs::directory_iterator(checkpoints_dir_)) {
    if (parse_temporary_step_dir_name(entry.path().filename().string())) remove_tree_or_warn(entry.path());
  }
}

void CheckpointWriter::apply_retention(int keep_last) const {
  if (keep_last <= 0) return;
  auto steps = committed_steps(checkpoints_dir_);
  std::erase_if(steps, [&](const auto& item) { return item.first > step_; });
  const auto excess = static_cast<std::ptrdiff_t>(steps.size()) - keep_last;
  for (std::ptrdiff_t i = 0; i < excess; ++i) {
    const auto& [step, path] = steps[static_cast<std::size_t>(i)];
    if (step != step_) remove_tree_or_warn(path);
  }
}

fs::path CheckpointWriter::commit(int keep_last) {
  if (committed_) fail("checkpoint: step {} was already committed", step_);
  if (rank_ != 0) fail("checkpoint: only rank 0 commits (this is rank {})", rank_);
  if (!meta_set_) fail("checkpoint: set_meta() was not called before commit() of step {}", step_);
  finish_rank_file();
  write_meta_and_marker();
  publish();
  committed_ = true;
  remove_stale_temporaries();
  apply_retention(keep_last);
  return final_dir();
}

}  // namespace kiln::checkpoint
