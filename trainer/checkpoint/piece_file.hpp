#pragma once
// One rank's checkpoint file (rank_XXXXX.h5): a dataset per piece it owns, stored at the
// tensor's canonical global name ("/model/blocks.0.attn.qkv.weight", "/optim/exp_avg/...")
// with the piece's local shape, plus two uint64 array attributes:
//   global_shape  the shape of the whole tensor
//   offset        where this piece's first element sits in the whole tensor
// Values are float32 or float64 as given; readers convert to what they ask for.
// A rank may own several pieces of one tensor (a ZeRO shard boundary cutting a matrix mid-row
// gives up to three rectangles): the second and later go to "<name>~1", "<name>~2", ... with
// a `tensor` attribute naming the tensor they belong to.
// The root group carries kiln_format = "kiln.checkpoint_rank" and the writing rank.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "data/dataset/hdf5_file.hpp"
#include "trainer/checkpoint/tensor_region.hpp"

namespace kiln::checkpoint {

enum class PieceDtype { float32, float64 };
std::string_view to_string(PieceDtype dtype);

struct PieceInfo {
  std::string name;  // canonical global name, always starting with '/'
  std::string dataset;  // HDF5 path of the piece in its file (the name, or name~k)
  Shape global_shape;
  Region region;     // offset and local shape inside the global tensor
  PieceDtype dtype = PieceDtype::float32;
  std::filesystem::path file;
};

// "model/wte.weight" -> "/model/wte.weight"; throws kiln::Error for names HDF5 cannot hold
// as a path (empty parts, "." or "..", characters outside [A-Za-z0-9_.-]).
std::string canonical_piece_name(std::string_view name);

class PieceFileWriter {
 public:
  PieceFileWriter(const std::filesystem::path& path, int rank);  // creates or truncates
  // data holds element_count(region.shape) values in row-major order. Throws kiln::Error when
  // the region does not fit the global shape.
  void write(std::string_view name, const Shape& global_shape, const Region& region,
             PieceDtype dtype, const void* data);
  // Flushes and closes; an HDF5 failure to flush is an error, not a silent loss.
  void close();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  data::hdf5::Handle file_;
};

class PieceFileReader {
 public:
  // Opens read-only and lists every piece; throws kiln::Error naming the file when it is not a
  // kiln rank file or a piece's attributes are inconsistent.
  explicit PieceFileReader(const std::filesystem::path& path);
  const std::vector<PieceInfo>& pieces() const { return pieces_; }

  // Copies the part of `piece` inside `overlap` (global coordinates) into out, which holds the
  // row-major box `destination`; overlap must lie in both. Values convert to double or float
  // as `as_double` says.
  void read_overlap(const PieceInfo& piece, const Region& overlap, const Region& destination,
                    bool as_double, void* out) const;

 private:
  std::filesystem::path path_;
  data::hdf5::Handle file_;
  std::vector<PieceInfo> pieces_;
};

}  // namespace kiln::checkpoint
