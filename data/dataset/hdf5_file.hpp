#pragma once
// A thin RAII layer over the serial HDF5 C API, just what kiln's file formats need:
// owned handles, 1-D extendable datasets read and written by hyperslab, scalar attributes.
//
// Serial HDF5 is not thread-safe. Every call into the library must hold library_mutex();
// callers take it once per public operation (it is recursive, so helpers may nest). HDF5's
// own error printing is switched off; failures become kiln::Error with HDF5's innermost
// message appended, so the user sees one clear line instead of a stack dump.
#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::data::hdf5 {

// Process-wide lock for the HDF5 library; also initialises it and silences its error printer.
std::recursive_mutex& library_mutex();

// HDF5's description of the most recent failure (innermost first), then clears the stack.
std::string take_error_detail();

// Owns one hid_t and closes it with the matching H5?close on destruction.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now and reports whether HDF5 succeeded (matters for files: close flushes).
  bool close();
  void reset() { (void)close(); }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Closes now; a failure (for a written object: its flush) throws kiln::Error naming `what`.
// Writers close every dataset and then the file this way before they publish anything.
void close_checked(Handle& handle, std::string_view what);

// True when the file carries the HDF5 signature at one of the offsets HDF5 allows
// (0, 512, 1024, 2048, ...). Distinguishes "not HDF5" from "HDF5 but damaged".
bool has_hdf5_signature(const std::filesystem::path& path);

// Truncates; throws kiln::Error. Its H5Fclose fails while any object inside is still open.
Handle create_file(const std::filesystem::path& path);
// Returns an invalid handle on failure; take_error_detail() then says why.
Handle open_file_read_only(const std::filesystem::path& path);

// --- 1-D datasets ---------------------------------------------------------------------------
// Chunked, extendable (unlimited max size), uncompressed: a window read touches only its bytes.
Handle create_extendable_1d(hid_t file, const char* name, hid_t file_type,
                            std::uint64_t chunk_elements);
// Appends count elements of mem_type at the end of a 1-D extendable dataset.
void append_1d(hid_t dataset, hid_t mem_type, const void* data, std::uint64_t count);
// Reads elements [begin, begin + count) converted to mem_type into out.
void read_1d(hid_t dataset, hid_t mem_type, std::uint64_t begin, std::uint64_t count, void* out);

bool link_exists(hid_t file, const char* name);
// Opens with a dataset access list whose chunk cache holds cache_bytes (0: no caching; chunks
// bigger than the cache are read and written directly, only the selected bytes).
Handle open_dataset(hid_t file, const char* name, std::size_t cache_bytes);

struct DatasetShape {
  int rank = 0;
  std::uint64_t length = 0;  // first dimension
  H5T_class_t type_class = H5T_NO_CLASS;
  std::size_t type_size = 0;
  bool is_unsigned = false;
  H5D_layout_t layout = H5D_LAYOUT_ERROR;  // kiln writes H5D_CHUNKED
};
DatasetShape describe(hid_t dataset);
// "uint16", "float32", "string", ...: for messages that say what was found.
std::string type_name(const DatasetShape& shape);
// "chunked", "contiguous", "compact", ...
const char* layout_name(H5D_layout_t layout);

// --- scalar attributes on an object -----------------------------------------------------
void write_string_attribute(hid_t object, const char* name, std::string_view value);
void write_uint64_attribute(hid_t object, const char* name, std::uint64_t value);
bool attribute_exists(hid_t object, const char* name);
// nullopt when the attribute is absent or not a (fixed or variable length) string.
std::optional<std::string> read_string_attribute(hid_t object, const char* name);
// nullopt when absent or not an integer.
std::optional<std::uint64_t> read_uint64_attribute(hid_t object, const char* name);

}  // namespace kiln::data::hdf5
