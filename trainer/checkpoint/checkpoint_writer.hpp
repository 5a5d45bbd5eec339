#pragma once
// Writes one checkpoint (DESIGN.md §9), crash-safe: nothing becomes visible until it is whole.
//
//   CheckpointWriter writer(run_dir / "checkpoints", step);
//   writer.add("/model/wte.weight", {vocab, d}, {0, 0}, wte_values, {vocab, d});
//   writer.add("/optim/exp_avg/model/wte.weight", ...);
//   writer.set_meta(meta);                 // step is filled in by the writer
//   writer.commit(recipe.checkpoint.keep_last);
//
// Sequence: pieces go to step_XXXXXXXX.tmp/rank_XXXXX.h5; commit closes and fsyncs the rank
// files, checksums every file, writes meta.json (with the checksums) and then `complete`
// (holding meta.json's checksum), fsyncs, renames the directory to step_XXXXXXXX, updates
// `latest` atomically, and finally applies retention. A crash at any point leaves either the
// previous checkpoints untouched plus an ignored .tmp directory, or the new checkpoint complete.
//
// Multi-rank use (each rank writes only what it owns): rank 0 constructs first (it clears any
// stale .tmp of this step), barrier, the other ranks construct, every rank adds its pieces and
// calls finish_rank_file(), barrier, rank 0 calls commit().
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>

#include "trainer/checkpoint/checkpoint_meta.hpp"
#include "trainer/checkpoint/piece_file.hpp"
#include "trainer/checkpoint/tensor_region.hpp"

namespace kiln::checkpoint {

class CheckpointWriter {
 public:
  CheckpointWriter(std::filesystem::path checkpoints_dir, std::int64_t step, int rank = 0);
  ~CheckpointWriter();  // an uncommitted checkpoint stays a .tmp directory, which readers skip
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Stores the piece of tensor `name` with global shape global_shape whose element [0, 0, ...]
  // sits at `offset` and whose extent is `shape`; values are row-major, element_count(shape) of
  // them. float64 is kept as float64 (for gradient-check runs); float32 otherwise.
  void add(std::string_view name, const Shape& global_shape, const Shape& offset,
           std::span<const float> values, const Shape& shape);
  void add(std::string_view name, const Shape& global_shape, const Shape& offset,
           std::span<const double> values, const Shape& shape);
  // A tensor this rank holds whole (offset 0, shape = global shape).
  void add_whole(std::string_view name, const Shape& shape, std::span<const float> values);
  void add_whole(std::string_view name, const Shape& shape, std::span<const double> values);

  void set_meta(CheckpointMeta meta);

  // Closes and fsyncs this rank's file; then no more pieces can be added.
  void finish_rank_file();

  // Rank 0, after every rank finished its file: publishes the checkpoint and returns the final
  // step directory. keep_last > 0 then deletes older committed steps beyond the newest
  // keep_last, never the one just written; steps newer than this one (left by an abandoned
  // run that went further) are not touched.
  std::filesystem::path commit(int keep_last = 0);

  const std::filesystem::path& temporary_dir() const { return temporary_dir_; }
  std::filesystem::path final_dir() const;

 private:
  void add_piece(std::string_view name, const Shape& global_shape, const Shape& offset,
                 const Shape& shape, std::size_t value_count, PieceDtype dtype, const void* values);
  void write_meta_and_marker();
  void publish();
  void apply_retention(int keep_last) const;
  void remove_stale_temporaries() const;

  std::filesystem::path checkpoints_dir_;
  std::int64_t step_;
  int rank_;
  std::filesystem::path temporary_dir_;
  std::unique_ptr<PieceFileWriter> rank_file_;
  CheckpointMeta meta_;
  bool meta_set_ = false;
  bool committed_ = false;
};

}  // namespace kiln::checkpoint
