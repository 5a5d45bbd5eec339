#include "data/dataset/hdf5_file.hpp"

#include "data/dataset/hdf5_layout_check.hpp"

#include <array>
#include <cstring>
#include <fstream>
#include <vector>

#include "trainer/core/error.hpp"

namespace kiln::data::hdf5 {

namespace {

void initialise_library() {
  // HDF5 1.10's own exit handler closes every ID still in its tables; a file whose H5Fclose
  // failed (disk full while flushing) is left there half torn down, and closing it again at
  // exit is a use-after-free (SIGSEGV in H5F__close_cb after kiln already reported the
  // error). kiln owns every handle and closes it explicitly, so the library needs no exit hook.
  H5dont_atexit();
  H5open();
  // Errors are reported through kiln::Error; HDF5's stack dump on stderr would only confuse.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

herr_t collect_description(unsigned depth, const H5E_error2_t* error, void* sink) {
  auto& text = *static_cast<std::string*>(sink);
  if (depth > 1 || error->desc == nullptr || error->desc[0] == '\0') return 0;
  if (!text.empty()) text += "; ";
  // Some descriptions (the POSIX driver's write failure) hold a newline: keep one line.
  for (const char* c = error->desc; *c != '\0'; ++c) text += *c == '\n' ? ' ' : *c;
  return 0;
}

hsize_t to_hsize(std::uint64_t value) { return static_cast<hsize_t>(value); }

Handle select_range(hid_t dataset, std::uint64_t begin, std::uint64_t count) {
  Handle space(H5Dget_space(dataset), H5Sclose);
  const hsize_t start = to_hsize(begin);
  const hsize_t size = to_hsize(count);
  if (!space.valid() ||
      H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &start, nullptr, &size, nullptr) < 0) {
    fail("HDF5: cannot select elements [{}, {}): {}", begin, begin + count, take_error_detail());
  }
  return space;
}

}  // namespace

std::recursive_mutex& library_mutex() {
  static std::recursive_mutex mutex;
  static std::once_flag initialised;
  std::call_once(initialised, initialise_library);
  return mutex;
}

std::string take_error_detail() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_description, &text);
  H5Eclear2(H5E_DEFAULT);
  return text.empty() ? std::string("no detail from HDF5") : text;
}

Handle::Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) {
  other.id_ = H5I_INVALID_HID;
}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    closer_ = other.closer_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

bool Handle::close() {
  if (id_ < 0) return true;
  std::lock_guard lock(library_mutex());
  const herr_t status = closer_(id_);
  id_ = H5I_INVALID_HID;
  return status >= 0;
}

void close_checked(Handle& handle, std::string_view what) {
  std::lock_guard lock(library_mutex());
  if (!handle.close()) fail("HDF5: cannot flush and close {}: {}", what, take_error_detail());
}

bool has_hdf5_signature(const std::filesystem::path& path) {
  static constexpr std::array<char, 8> kSignature = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::error_code ignored;
  const auto size = std::filesystem::file_size(path, ignored);
  for (std::uint64_t offset = 0; offset + kSignature.size() <= size;
       offset = offset == 0 ? 512 : offset * 2) {
    std::array<char, 8> bytes{};
    in.seekg(static_cast<std::streamoff>(offset));
    if (!in.read(bytes.data(), bytes.size())) return false;
    if (bytes == kSignature) return true;
  }
  return false;
}

Handle create_file(const std::filesystem::path& path) {
  std::lock_guard lock(library_mutex());
  Handle access_list(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // With the default (weak) close degree H5Fclose "succeeds" while an object is still open and
  // the file is only flushed later; a writer would then publish a file that is not on disk yet.
  // Semi: H5Fclose fails unless everything inside was closed, so success means flushed.
  if (!access_list.valid() || H5Pset_fclose_degree(access_list.get(), H5F_CLOSE_SEMI) < 0) {
    fail("HDF5: cannot prepare to create '{}': {}", path.string(), take_error_detail());
  }
  Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access_list.get()), H5Fclose);
  if (!file.valid()) {
    fail("cannot create HDF5 file '{}': {}", path.string(), take_error_detail());
  }
  return file;
}

Handle open_file_read_only(const std::filesystem::path& path) {
  std::lock_guard lock(library_mutex());
  return Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
}

Handle create_extendable_1d(hid_t file, const char* name, hid_t file_type,
                            std::uint64_t chunk_elements) {
  std::lock_guard lock(library_mutex());
  const hsize_t initial = 0;
  const hsize_t unlimited = H5S_UNLIMITED;
  const hsize_t chunk = to_hsize(chunk_elements);
  Handle space(H5Screate_simple(1, &initial, &unlimited), H5Sclose);
  Handle create_list(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!space.valid() || !create_list.valid() || H5Pset_chunk(create_list.get(), 1, &chunk) < 0) {
    fail("HDF5: cannot prepare dataset {}: {}", name, take_error_detail());
  }
  Handle dataset(H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT, create_list.get(),
                            H5P_DEFAULT),
                 H5Dclose);
  if (!dataset.valid()) fail("HDF5: cannot create dataset {}: {}", name, take_error_detail());
  return dataset;
}

void append_1d(hid_t dataset, hid_t mem_type, const void* data, std::uint64_t count) {
  if (count == 0) return;
  std::lock_guard lock(library_mutex());
  const std::uint64_t old_length = describe(dataset).length;
  const hsize_t new_length = to_hsize(old_length + count);
  if (H5Dset_extent(dataset, &new_length) < 0) {
    fail("HDF5: cannot extend dataset to {} elements: {}", old_length + count,
         take_error_detail());
  }
  Handle file_space = select_range(dataset, old_length, count);
  const hsize_t mem_size = to_hsize(count);
  Handle mem_space(H5Screate_simple(1, &mem_size, nullptr), H5Sclose);
  if (H5Dwrite(dataset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, data) < 0) {
    fail("HDF5: cannot write {} elements: {}", count, take_error_detail());
  }
}

void read_1d(hid_t dataset, hid_t mem_type, std::uint64_t begin, std::uint64_t count, void* out) {
  if (count == 0) return;
  std::lock_guard lock(library_mutex());
  Handle file_space = select_range(dataset, begin, count);
  const hsize_t mem_size = to_hsize(count);
  Handle mem_space(H5Screate_simple(1, &mem_size, nullptr), H5Sclose);
  if (H5Dread(dataset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, out) < 0) {
    fail("HDF5: cannot read elements [{}, {}): {}", begin, begin + count, take_error_detail());
  }
}

bool link_exists(hid_t file, const char* name) {
  std::lock_guard lock(library_mutex());
  const htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
  if (exists < 0) H5Eclear2(H5E_DEFAULT);
  return exists > 0;
}

Handle open_dataset(hid_t file, const char* name, std::size_t cache_bytes) {
  std::lock_guard lock(library_mutex());
  Handle access_list(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
  // 521 slots (a prime, as HDF5 advises) is plenty for the few chunks a reader keeps.
  H5Pset_chunk_cache(access_list.get(), 521, cache_bytes, 1.0);
  refuse_zero_chunk_dimensions(file, name);  // before libhdf5 1.10.8 divides by one
  Handle dataset(H5Dopen2(file, name, access_list.get()), H5Dclose);
  if (!dataset.valid()) fail("HDF5: cannot open dataset {}: {}", name, take_error_detail());
  return dataset;
}

DatasetShape describe(hid_t dataset) {
  std::lock_guard lock(library_mutex());
  DatasetShape shape;
  Handle space(H5Dget_space(dataset), H5Sclose);
  Handle type(H5Dget_type(dataset), H5Tclose);
  if (!space.valid() || !type.valid()) fail("HDF5: cannot inspect dataset: {}", take_error_detail());
  shape.rank = H5Sget_simple_extent_ndims(space.get());
  if (shape.rank == 1) {
    hsize_t length = 0;
    H5Sget_simple_extent_dims(space.get(), &length, nullptr);
    shape.length = static_cast<std::uint64_t>(length);
  }
  shape.type_class = H5Tget_class(type.get());
  shape.type_size = H5Tget_size(type.get());
  shape.is_unsigned =
      shape.type_class == H5T_INTEGER && H5Tget_sign(type.get()) == H5T_SGN_NONE;
  Handle create_list(H5Dget_create_plist(dataset), H5Pclose);
  shape.layout = create_list.valid() ? H5Pget_layout(create_list.get()) : H5D_LAYOUT_ERROR;
  if (shape.layout == H5D_LAYOUT_ERROR) H5Eclear2(H5E_DEFAULT);
  return shape;
}

const char* layout_name(H5D_layout_t layout) {
  switch (layout) {
    case H5D_COMPACT: return "compact";
    case H5D_CONTIGUOUS: return "contiguous";
    case H5D_CHUNKED: return "chunked";
    case H5D_VIRTUAL: return "virtual";
    default: return "with an unreadable layout";
  }
}

std::string type_name(const DatasetShape& shape) {
  const auto bits = shape.type_size * 8;
  switch (shape.type_class) {
    case H5T_INTEGER: return fmt::format("{}int{}", shape.is_unsigned ? "u" : "", bits);
    case H5T_FLOAT: return fmt::format("float{}", bits);
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    default: return fmt::format("HDF5 type class {}", static_cast<int>(shape.type_class));
  }
}

void write_string_attribute(hid_t object, const char* name, std::string_view value) {
  std::lock_guard lock(library_mutex());
  if (attribute_exists(object, name)) H5Adelete(object, name);
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  // HDF5 refuses zero-sized string types; an empty value is stored as one NUL byte.
  H5Tset_size(type.get(), value.empty() ? 1 : value.size());
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                   H5Aclose);
  const std::string padded = value.empty() ? std::string(1, '\0') : std::string(value);
  if (!attribute.valid() || H5Awrite(attribute.get(), type.get(), padded.data()) < 0) {
    fail("HDF5: cannot write attribute {}: {}", name, take_error_detail());
  }
}

void write_uint64_attribute(hid_t object, const char* name, std::uint64_t value) {
  std::lock_guard lock(library_mutex());
  if (attribute_exists(object, name)) H5Adelete(object, name);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(
      H5Acreate2(object, name, H5T_STD_U64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attribute.valid() || H5Awrite(attribute.get(), H5T_NATIVE_UINT64, &value) < 0) {
    fail("HDF5: cannot write attribute {}: {}", name, take_error_detail());
  }
}

bool attribute_exists(hid_t object, const char* name) {
  std::lock_guard lock(library_mutex());
  const htri_t exists = H5Aexists(object, name);
  if (exists < 0) H5Eclear2(H5E_DEFAULT);
  return exists > 0;
}

std::optional<std::string> read_string_attribute(hid_t object, const char* name) {
  std::lock_guard lock(library_mutex());
  if (!attribute_exists(object, name)) return std::nullopt;
  Handle attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(attribute.get()), H5Tclose);
  if (!type.valid() || H5Tget_class(type.get()) != H5T_STRING) return std::nullopt;
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle memory_type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(memory_type.get(), H5T_VARIABLE);
    char* text = nullptr;
    if (H5Aread(attribute.get(), memory_type.get(), &text) < 0 || text == nullptr) {
      H5Eclear2(H5E_DEFAULT);
      return std::nullopt;
    }
    std::string value(text);
    H5free_memory(text);
    return value;
  }
  std::vector<char> bytes(H5Tget_size(type.get()) + 1, '\0');
  if (H5Aread(attribute.get(), type.get(), bytes.data()) < 0) return std::nullopt;
  return std::string(bytes.data(), ::strnlen(bytes.data(), bytes.size()));
}

std::optional<std::uint64_t> read_uint64_attribute(hid_t object, const char* name) {
  std::lock_guard lock(library_mutex());
  if (!attribute_exists(object, name)) return std::nullopt;
  Handle attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(attribute.get()), H5Tclose);
  if (!type.valid() || H5Tget_class(type.get()) != H5T_INTEGER) return std::nullopt;
  std::uint64_t value = 0;
  if (H5Aread(attribute.get(), H5T_NATIVE_UINT64, &value) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return std::nullopt;
  }
  return value;
}

}  // namespace kiln::data::hdf5
