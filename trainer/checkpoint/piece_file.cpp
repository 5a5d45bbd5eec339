#include "trainer/checkpoint/piece_file.hpp"

#include <algorithm>
#include <cctype>
#include <mutex>

#include "trainer/core/error.hpp"

namespace kiln::checkpoint {

namespace hdf5 = kiln::data::hdf5;

namespace {

constexpr const char* kRankFileFormat = "kiln.checkpoint_rank";
constexpr const char* kGlobalShapeAttribute = "global_shape";
constexpr const char* kOffsetAttribute = "offset";
constexpr const char* kTensorAttribute = "tensor";  // on a rank's second and later pieces of a tensor

std::vector<hsize_t> to_hsize(const Shape& shape) { return {shape.begin(), shape.end()}; }

Shape subtract(const Shape& a, const Shape& b) {
  Shape difference(a.size());
  for (std::size_t d = 0; d < a.size(); ++d) difference[d] = a[d] - b[d];
  return difference;
}

hid_t memory_type(bool as_double) { return as_double ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT; }

bool is_name_character(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

void write_shape_attribute(hid_t object, const char* name, const Shape& values) {
  const hsize_t length = values.size();
  hdf5::Handle space(H5Screate_simple(1, &length, nullptr), H5Sclose);
  hdf5::Handle attribute(
      H5Acreate2(object, name, H5T_STD_U64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attribute.valid() ||
      H5Awrite(attribute.get(), H5T_NATIVE_UINT64, values.data()) < 0) {
    fail("HDF5: cannot write attribute {}: {}", name, hdf5::take_error_detail());
  }
}

// nullopt when the attribute is absent or not a 1-D integer array.
std::optional<Shape> read_shape_attribute(hid_t object, const char* name) {
  if (!hdf5::attribute_exists(object, name)) return std::nullopt;
  hdf5::Handle attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  hdf5::Handle space(H5Aget_space(attribute.get()), H5Sclose);
  hdf5::Handle type(H5Aget_type(attribute.get()), H5Tclose);
  if (!attribute.valid() || !space.valid() || !type.valid() ||
      H5Tget_class(type.get()) != H5T_INTEGER || H5Sget_simple_extent_ndims(space.get()) != 1) {
    H5Eclear2(H5E_DEFAULT);
    return std::nullopt;
  }
  hsize_t length = 0;
  H5Sget_simple_extent_dims(space.get(), &length, nullptr);
  Shape values(length);
  if (length > 0 && H5Aread(attribute.get(), H5T_NATIVE_UINT64, values.data()) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return std::nullopt;
  }
  return values;
}

herr_t collect_link_name(hid_t, const char* name, const H5L_info_t*, void* names) {
  static_cast<std::vector<std::string>*>(names)->emplace_back(name);
  return 0;  // continue; errors cannot cross this C callback, so only names are collected
}

bool is_dataset(hid_t file, const std::string& name) {
  hdf5::Handle object(H5Oopen(file, name.c_str(), H5P_DEFAULT), H5Oclose);
  if (!object.valid()) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  return H5Iget_type(object.get()) == H5I_DATASET;
}

void check_piece_geometry(std::string_view name, const Shape& global_shape, const Region& region) {
  if (global_shape.empty()) fail("checkpoint piece {}: global_shape is empty (store scalars as [1])", name);
  if (!fits_inside(region, global_shape)) {
    fail("checkpoint piece {}: region {} does not fit inside global shape {}", name,
         region_text(region), shape_text(global_shape));
  }
  if (element_count(region.shape) == 0) {
    fail("checkpoint piece {}: empty region {} (a rank that owns nothing of a tensor adds nothing)",
         name, region_text(region));
  }
}

PieceInfo describe_piece(hid_t file, const std::string& link, const std::filesystem::path& path) {
  hdf5::Handle dataset(H5Dopen2(file, link.c_str(), H5P_DEFAULT), H5Dclose);
  PieceInfo piece;
  const auto owner = hdf5::read_string_attribute(dataset.get(), kTensorAttribute);
  piece.name = canonical_piece_name(owner ? *owner : link);
  piece.dataset = "/" + link;
  piece.file = path;
  const auto global_shape = read_shape_attribute(dataset.get(), kGlobalShapeAttribute);
  const auto offset = read_shape_attribute(dataset.get(), kOffsetAttribute);
  if (!global_shape || !offset) {
    fail("checkpoint file {}: piece {} lacks its global_shape/offset attributes", path.string(),
         piece.name);
  }
  piece.global_shape = *global_shape;
  piece.region.offset = *offset;
  hdf5::Handle space(H5Dget_space(dataset.get()), H5Sclose);
  const int rank = std::max(0, H5Sget_simple_extent_ndims(space.get()));
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  piece.region.shape.assign(dims.begin(), dims.end());
  const auto description = hdf5::describe(dataset.get());
  if (description.type_class != H5T_FLOAT ||
      (description.type_size != 4 && description.type_size != 8)) {
    fail("checkpoint file {}: piece {} has type {}, expected float32 or float64", path.string(),
         piece.name, hdf5::type_name(description));
  }
  piece.dtype = description.type_size == 8 ? PieceDtype::float64 : PieceDtype::float32;
  if (!fits_inside(piece.region, piece.global_shape)) {
    fail("checkpoint file {}: piece {} at {} does not fit its global shape {}", path.string(),
         piece.name, region_text(piece.region), shape_text(piece.global_shape));
  }
  return piece;
}

}  // namespace

std::string_view to_string(PieceDtype dtype) {
  return dtype == PieceDtype::float32 ? "float32" : "float64";
}

std::string canonical_piece_name(std::string_view name) {
  // Built by append: GCC 12 warns falsely (-Wrestrict) about "/" + std::string.
  std::string canonical;
  if (!name.starts_with('/')) canonical.push_back('/');
  canonical.append(name);
  std::size_t begin = 1;
  while (begin <= canonical.size()) {
    std::size_t end = canonical.find('/', begin);
    if (end == std::string::npos) end = canonical.size();
    const std::string_view part = std::string_view(canonical).substr(begin, end - begin);
    if (part.empty() || part == "." || part == ".." ||
        !std::all_of(part.begin(), part.end(), is_name_character)) {
      fail("checkpoint: invalid tensor name '{}' (use '/'-separated parts of [A-Za-z0-9_.-])", name);
    }
    begin = end + 1;
  }
  return canonical;
}

PieceFileWriter::PieceFileWriter(const std::filesystem::path& path, int rank)
    : path_(path), file_(hdf5::create_file(path)) {
  std::lock_guard lock(hdf5::library_mutex());
  hdf5::write_string_attribute(file_.get(), "kiln_format", kRankFileFormat);
  hdf5::write_uint64_attribute(file_.get(), "rank", static_cast<std::uint64_t>(rank));
}

void PieceFileWriter::write(std::string_view name, const Shape& global_shape, const Region& region,
                            PieceDtype dtype, const void* data) {
  const std::string path = canonical_piece_name(name);
  check_piece_geometry(path, global_shape, region);
  std::lock_guard lock(hdf5::library_mutex());
  std::string dataset_path = path;
  for (int k = 1; hdf5::link_exists(file_.get(), dataset_path.c_str()); ++k) dataset_path = fmt::format("{}~{}", path, k);
  const auto dims = to_hsize(region.shape);
  hdf5::Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  hdf5::Handle link_list(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(link_list.get(), 1);
  const bool is_double = dtype == PieceDtype::float64;
  hdf5::Handle dataset(H5Dcreate2(file_.get(), dataset_path.c_str(),
                                  is_double ? H5T_IEEE_F64LE : H5T_IEEE_F32LE, space.get(),
                                  link_list.get(), H5P_DEFAULT, H5P_DEFAULT),
                       H5Dclose);
  if (!dataset.valid() ||
      H5Dwrite(dataset.get(), memory_type(is_double), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    fail("checkpoint {}: cannot write piece {}: {}", path_.string(), path,
         hdf5::take_error_detail());
  }
  write_shape_attribute(dataset.get(), kGlobalShapeAttribute, global_shape);
  write_shape_attribute(dataset.get(), kOffsetAttribute, region.offset);
  if (dataset_path != path) hdf5::write_string_attribute(dataset.get(), kTensorAttribute, path);
  // Closing flushes the piece; a failure here (disk full) must fail the checkpoint, not vanish.
  hdf5::close_checked(dataset, fmt::format("checkpoint {} piece {}", path_.string(), path));
}

void PieceFileWriter::close() {
  std::lock_guard lock(hdf5::library_mutex());
  if (file_.valid() && !file_.close()) {
    fail("checkpoint {}: HDF5 could not flush and close the file: {}", path_.string(),
         hdf5::take_error_detail());
  }
}

PieceFileReader::PieceFileReader(const std::filesystem::path& path)
    : path_(path), file_(hdf5::open_file_read_only(path)) {
  std::lock_guard lock(hdf5::library_mutex());
  if (!file_.valid()) {
    fail("checkpoint file {} cannot be opened as HDF5: {}", path.string(),
         hdf5::take_error_detail());
  }
  if (hdf5::read_string_attribute(file_.get(), "kiln_format") != kRankFileFormat) {
    fail("checkpoint file {} is not a kiln checkpoint rank file (no kiln_format = {})",
         path.string(), kRankFileFormat);
  }
  std::vector<std::string> links;
  H5Lvisit(file_.get(), H5_INDEX_NAME, H5_ITER_INC, collect_link_name, &links);
  for (const auto& link : links) {
    if (is_dataset(file_.get(), link)) pieces_.push_back(describe_piece(file_.get(), link, path));
  }
}

void PieceFileReader::read_overlap(const PieceInfo& piece, const Region& overlap,
                                   const Region& destination, bool as_double, void* out) const {
  std::lock_guard lock(hdf5::library_mutex());
  hdf5::Handle dataset(H5Dopen2(file_.get(), piece.dataset.c_str(), H5P_DEFAULT), H5Dclose);
  hdf5::Handle file_space(H5Dget_space(dataset.get()), H5Sclose);
  const auto count = to_hsize(overlap.shape);
  const auto file_start = to_hsize(subtract(overlap.offset, piece.region.offset));
  const auto memory_dims = to_hsize(destination.shape);
  const auto memory_start = to_hsize(subtract(overlap.offset, destination.offset));
  hdf5::Handle memory_space(
      H5Screate_simple(static_cast<int>(memory_dims.size()), memory_dims.data(), nullptr), H5Sclose);
  const bool selected =
      dataset.valid() && file_space.valid() && memory_space.valid() &&
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, file_start.data(), nullptr,
                          count.data(), nullptr) >= 0 &&
      H5Sselect_hyperslab(memory_space.get(), H5S_SELECT_SET, memory_start.data(), nullptr,
                          count.data(), nullptr) >= 0;
  if (!selected || H5Dread(dataset.get(), memory_type(as_double), memory_space.get(),
                           file_space.get(), H5P_DEFAULT, out) < 0) {
    fail("checkpoint file {}: cannot read {} of piece {}: {}", path_.string(),
         region_text(overlap), piece.name, hdf5::take_error_detail());
  }
}

}  // namespace kiln::checkpoint
