#include "data/dataset/hdf5_layout_check.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset/hdf5_file.hpp"
#include "trainer/core/error.hpp"

namespace kiln::data::hdf5 {

namespace {

// Object header message types (HDF5 file format specification, section IV.A.2).
constexpr unsigned kLayoutMessage = 0x0008;
constexpr unsigned kContinuationMessage = 0x0010;
constexpr unsigned kSharedMessageFlag = 0x02;
constexpr unsigned kChunkedLayoutClass = 2;
// Bounds on what a damaged header can make kiln read: blocks followed and bytes per block.
constexpr int kMaxHeaderBlocks = 64;
constexpr std::uint64_t kMaxBlockBytes = std::uint64_t{1} << 20;

// Little-endian reads from one block of header bytes; a read past the end sets `ok` false.
struct Cursor {
  const std::vector<std::uint8_t>& bytes;
  std::size_t at = 0;
  bool ok = true;

  std::uint64_t read(std::size_t width) {
    if (!ok || width > 8 || bytes.size() - at < width) {
      ok = false;
      return 0;
    }
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < width; ++i) value |= std::uint64_t{bytes[at + i]} << (8 * i);
    at += width;
    return value;
  }
  void skip(std::uint64_t count) {
    if (!ok || bytes.size() - at < count) {
      ok = false;
      return;
    }
    at += static_cast<std::size_t>(count);
  }
  std::size_t left() const { return ok ? bytes.size() - at : 0; }
};

struct FileGeometry {
  std::string path;
  std::uint64_t base = 0;       // addresses are relative to the superblock (after a user block)
  std::size_t offset_size = 8;  // the superblock's "size of offsets" and "size of lengths"
  std::size_t length_size = 8;
};

std::optional<FileGeometry> geometry_of(hid_t file) {
  FileGeometry geometry;
  const ssize_t name_length = H5Fget_name(file, nullptr, 0);
  if (name_length <= 0) return std::nullopt;
  geometry.path.resize(static_cast<std::size_t>(name_length) + 1);
  H5Fget_name(file, geometry.path.data(), geometry.path.size());
  geometry.path.resize(static_cast<std::size_t>(name_length));
  Handle create_list(H5Fget_create_plist(file), H5Pclose);
  hsize_t user_block = 0;
  if (!create_list.valid() || H5Pget_userblock(create_list.get(), &user_block) < 0 ||
      H5Pget_sizes(create_list.get(), &geometry.offset_size, &geometry.length_size) < 0) {
    return std::nullopt;
  }
  geometry.base = user_block;
  return geometry;
}

// Up to `length` bytes at `address`; with `whole`, fewer (the file ends first) is a failure.
std::optional<std::vector<std::uint8_t>> read_block(const FileGeometry& geometry, std::uint64_t address,
                                                    std::uint64_t length, bool whole = true) {
  if (length == 0 || length > kMaxBlockBytes || address > INT64_MAX - geometry.base) return std::nullopt;
  std::ifstream in(geometry.path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(geometry.base + address));
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(length));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(length));
  const auto got = static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0));
  if (got == 0 || (whole && got != bytes.size())) return std::nullopt;
  bytes.resize(got);
  return bytes;
}

// A layout message's body (section IV.A.2.i). Versions 1 and 2: version, dimensionality, class,
// five reserved bytes, an address unless compact, then one 4-byte size per dimension.
void check_layout_message(const std::vector<std::uint8_t>& bytes, std::size_t at, std::size_t size,
                          const FileGeometry& geometry, const char* dataset_name) {
  const std::vector<std::uint8_t> body(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                                       bytes.begin() + static_cast<std::ptrdiff_t>(at + size));
  Cursor cursor{body};
  const auto version = cursor.read(1);
  if (version != 1 && version != 2) return;
  const auto dimensions = cursor.read(1);
  const auto layout_class = cursor.read(1);
  if (!cursor.ok || layout_class != kChunkedLayoutClass) return;
  cursor.skip(5);
  cursor.skip(geometry.offset_size);
  for (std::uint64_t d = 0; d < dimensions && cursor.ok; ++d) {
    const auto extent = cursor.read(4);
    if (cursor.ok && extent == 0) {
      fail("HDF5: cannot open dataset {}: its version {} layout message declares a chunk dimension "
           "of 0 (dimension {} of {}): the file is damaged",
           dataset_name, version, d, dimensions);
    }
  }
}

// The messages of one header block; continuation blocks found are appended to `pending`.
struct Block {
  std::uint64_t address;
  std::uint64_t length;
};

void scan_messages(Cursor& cursor, int header_version, bool creation_order, std::vector<Block>& pending,
                   const FileGeometry& geometry, const char* dataset_name) {
  const std::size_t prefix = header_version == 1 ? 8 : (creation_order ? 6 : 4);
  const std::size_t trailer = header_version == 1 ? 0 : 4;  // version 2 blocks end in a checksum
  while (cursor.ok && cursor.left() >= prefix + trailer) {
    const auto type = cursor.read(header_version == 1 ? 2 : 1);
    const auto size = cursor.read(2);
    const auto flags = cursor.read(1);
    cursor.skip(header_version == 1 ? 3 : (creation_order ? 2 : 0));
    if (!cursor.ok || size > cursor.left()) return;
    const std::size_t body = cursor.at;
    if (!(flags & kSharedMessageFlag)) {
      if (type == kLayoutMessage) check_layout_message(cursor.bytes, body, size, geometry, dataset_name);
      if (type == kContinuationMessage) {
        Cursor continuation{cursor.bytes, body};
        const auto address = continuation.read(geometry.offset_size);
        const auto length = continuation.read(geometry.length_size);
        if (continuation.ok) pending.push_back({address, length});
      }
    }
    cursor.skip(size);
  }
}

}  // namespace

void refuse_zero_chunk_dimensions(hid_t file, const char* dataset_name) {
  H5O_info_t info{};
  if (H5Oget_info_by_name2(file, dataset_name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
    H5Eclear2(H5E_DEFAULT);  // H5Dopen2 reports the missing or unreadable object itself
    return;
  }
  const auto geometry = geometry_of(file);
  if (!geometry || (geometry->offset_size != 4 && geometry->offset_size != 8) ||
      (geometry->length_size != 4 && geometry->length_size != 8)) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  // Version 1 header: version, reserved, message count (2), reference count (4), header size (4),
  // padding to 16 bytes. Version 2: "OHDR", version, flags, optional times and attribute limits,
  // then the first block's size in 1 to 8 bytes (section IV.A.1).
  const auto start = read_block(*geometry, info.addr, 16 + 16 + 4 + 8, /*whole=*/false);
  if (!start) return;
  Cursor prefix{*start};
  std::vector<Block> pending;
  int header_version = 0;
  bool creation_order = false;
  Block first{};
  if ((*start)[0] == 1) {
    header_version = 1;
    prefix.skip(8);
    first = {info.addr + 16, prefix.read(4)};
  } else if (prefix.read(4) == 0x5244484f /* "OHDR" */ && prefix.read(1) == 2) {
    header_version = 2;
    const auto flags = prefix.read(1);
    creation_order = flags & 0x04;
    if (flags & 0x20) prefix.skip(16);
    if (flags & 0x10) prefix.skip(4);
    const auto size = prefix.read(std::size_t{1} << (flags & 0x03));
    first = {info.addr + prefix.at, size + 4};
  } else {
    return;
  }
  if (!prefix.ok) return;
  pending.push_back(first);
  for (int blocks = 0; blocks < kMaxHeaderBlocks && !pending.empty(); ++blocks) {
    const Block block = pending.back();
    pending.pop_back();
    const auto bytes = read_block(*geometry, block.address, block.length);
    if (!bytes) continue;
    Cursor cursor{*bytes};
    // Version 2 continuation blocks start with "OCHK"; the first block's prefix was read above.
    if (header_version == 2 && blocks > 0 && cursor.read(4) != 0x4b48434f /* "OCHK" */) continue;
    scan_messages(cursor, header_version, creation_order, pending, *geometry, dataset_name);
  }
}

}  // namespace kiln::data::hdf5
