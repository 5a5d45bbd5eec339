#include "trainer/export/gguf_reader.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/ranges.h>

#include "kernels/tensor.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"
#include "trainer/export/q8_0.hpp"

namespace kiln::interop {

namespace {

// Bounds-checked sequential reads of the file's header part.
class ByteSource {
 public:
  ByteSource(std::ifstream& in, std::uint64_t size, std::string source) : in_(in), size_(size), source_(std::move(source)) {}

  template <class T>
  T get(std::string_view what) {
    T value;
    read(&value, sizeof(T), what);
    return value;
  }
  std::string get_string(std::string_view what) {
    const auto length = get<std::uint64_t>(what);
    require(length, what);
    std::string text(static_cast<std::size_t>(length), '\0');
    read(text.data(), text.size(), what);
    return text;
  }
  // Refuses a count whose elements cannot fit in what is left of the file (each at least
  // min_bytes): a corrupt count must not become a huge allocation.
  void check_count(std::uint64_t count, std::uint64_t min_bytes, std::string_view what) const {
    if (min_bytes > 0 && count > (size_ - position_) / min_bytes) {
      fail("{}: {} claims {} entries but only {} bytes remain (truncated or corrupt file)", source_, what, count,
           size_ - position_);
    }
  }
  std::uint64_t position() const { return position_; }

 private:
  void require(std::uint64_t bytes, std::string_view what) const {
    if (bytes > size_ - position_) {
      fail("{}: truncated file: {} needs {} bytes at offset {}, but the file has {}", source_, what, bytes, position_, size_);
    }
  }
  void read(void* out, std::size_t bytes, std::string_view what) {
    require(bytes, what);
    in_.read(static_cast<char*>(out), static_cast<std::streamsize>(bytes));
    if (!in_) fail("{}: read error at offset {} ({})", source_, position_, what);
    position_ += bytes;
  }

  std::ifstream& in_;
  std::uint64_t size_;
  std::uint64_t position_ = 0;
  std::string source_;
};

std::size_t scalar_min_bytes(GgufType type) {
  switch (type) {
    case GgufType::uint8: case GgufType::int8: case GgufType::boolean: return 1;
    case GgufType::uint16: case GgufType::int16: return 2;
    case GgufType::uint32: case GgufType::int32: case GgufType::float32: return 4;
    case GgufType::uint64: case GgufType::int64: case GgufType::float64: case GgufType::string: return 8;
    case GgufType::array: return 12;
  }
  return 1;
}

GgufType checked_type(std::uint32_t raw, const std::string& source, std::string_view key) {
  if (raw > static_cast<std::uint32_t>(GgufType::float64)) fail("{}: metadata '{}' has unknown value type {}", source, key, raw);
  return static_cast<GgufType>(raw);
}

GgufScalar read_scalar(ByteSource& in, GgufType type, const std::string& source, std::string_view key) {
  switch (type) {
    case GgufType::uint8: return in.get<std::uint8_t>(key);
    case GgufType::int8: return in.get<std::int8_t>(key);
    case GgufType::uint16: return in.get<std::uint16_t>(key);
    case GgufType::int16: return in.get<std::int16_t>(key);
    case GgufType::uint32: return in.get<std::uint32_t>(key);
    case GgufType::int32: return in.get<std::int32_t>(key);
    case GgufType::float32: return in.get<float>(key);
    case GgufType::boolean: {
      const auto byte = in.get<std::uint8_t>(key);
      if (byte > 1) fail("{}: metadata '{}' is a bool of value {}", source, key, byte);
      return byte == 1;
    }
    case GgufType::string: return in.get_string(key);
    case GgufType::uint64: return in.get<std::uint64_t>(key);
    case GgufType::int64: return in.get<std::int64_t>(key);
    case GgufType::float64: return in.get<double>(key);
    case GgufType::array: break;
  }
  fail("{}: metadata '{}': nested arrays are not supported", source, key);
}

GgufValue read_value(ByteSource& in, const std::string& source, const std::string& key) {
  const GgufType type = checked_type(in.get<std::uint32_t>(key), source, key);
  if (type != GgufType::array) return GgufValue::of(read_scalar(in, type, source, key));
  const GgufType element_type = checked_type(in.get<std::uint32_t>(key), source, key);
  const auto count = in.get<std::uint64_t>(key);
  in.check_count(count, scalar_min_bytes(element_type), key);
  std::vector<GgufScalar> elements;
  elements.reserve(static_cast<std::size_t>(count));
  for (std::uint64_t i = 0; i < count; ++i) elements.push_back(read_scalar(in, element_type, source, key));
  return GgufValue::array_of(element_type, std::move(elements));
}

GgufTensorInfo read_tensor_info(ByteSource& in, const std::string& source) {
  GgufTensorInfo info;
  info.name = in.get_string("tensor name");
  const auto dims = in.get<std::uint32_t>(info.name);
  if (dims == 0 || dims > 4) fail("{}: tensor '{}' has {} dimensions (ggml allows 1 to 4)", source, info.name, dims);
  for (std::uint32_t d = 0; d < dims; ++d) info.ne.push_back(in.get<std::uint64_t>(info.name));
  const auto type = in.get<std::uint32_t>(info.name);
  if (!is_known_ggml_type(type)) fail("{}: tensor '{}' has ggml type {}, which kiln does not read", source, info.name, type);
  info.type = static_cast<GgmlType>(type);
  info.offset = in.get<std::uint64_t>(info.name);
  return info;
}

// A tensor's element count may not exceed the file's size in bytes (no ggml type stores more
// than one element per byte), which also keeps byte_count() from overflowing.
void check_extent(const GgufTensorInfo& info, std::uint64_t file_bytes, const std::string& source) {
  std::uint64_t elements = 1;
  for (const auto extent : info.ne) {
    if (extent != 0 && elements > file_bytes / extent) {
      fail("{}: tensor '{}' has shape [{}], more elements than the file's {} bytes can hold (corrupt tensor info)",
           source, info.name, fmt::join(info.ne, ", "), file_bytes);
    }
    elements *= extent;
  }
}

// Tensor data must lie inside the file, each tensor's bytes its own.
void check_data_layout(std::vector<const GgufTensorInfo*> tensors, std::uint64_t data_offset, std::uint64_t file_bytes,
                       const std::string& source) {
  std::sort(tensors.begin(), tensors.end(), [](const auto* a, const auto* b) { return a->offset < b->offset; });
  const GgufTensorInfo* previous = nullptr;
  for (const auto* info : tensors) {
    if (info->offset > file_bytes || data_offset + info->offset + info->byte_count() > file_bytes) {
      fail("{}: tensor '{}' (offset {}, {} bytes) ends past the end of the file (truncated)", source, info->name,
           info->offset, info->byte_count());
    }
    if (previous && info->offset < previous->offset + previous->byte_count()) {
      fail("{}: tensors '{}' and '{}' overlap (offsets {} and {} of the data section)", source, previous->name,
           info->name, previous->offset, info->offset);
    }
    previous = info;
  }
}

}  // namespace

GgufReader::GgufReader(const std::filesystem::path& path) : path_(path) {
  const std::string source = path.string();
  require_regular_file(path, "GGUF file");  // not a directory, FIFO, device or symlink loop
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  if (error) fail("{}: cannot read: {}", source, error.message());
  stream_.open(path, std::ios::binary);
  if (!stream_) fail("{}: cannot open", source);
  ByteSource in(stream_, size, source);
  if (in.get<std::uint32_t>("magic") != kGgufMagic) fail("{}: not a GGUF file (magic is not \"GGUF\")", source);
  version_ = in.get<std::uint32_t>("version");
  if (version_ != kGgufVersion) fail("{}: GGUF version {}; kiln reads version {}", source, version_, kGgufVersion);
  const auto tensor_count = in.get<std::uint64_t>("tensor_count");
  const auto metadata_count = in.get<std::uint64_t>("metadata_kv_count");
  in.check_count(metadata_count, 12, "metadata_kv_count");
  for (std::uint64_t i = 0; i < metadata_count; ++i) {
    std::string key = in.get_string("metadata key");
    if (metadata_index_.count(key)) fail("{}: metadata key '{}' appears twice", source, key);
    GgufValue value = read_value(in, source, key);
    metadata_index_.emplace(key, metadata_.size());
    metadata_.emplace_back(std::move(key), std::move(value));
  }
  if (const auto* alignment = find("general.alignment")) {
    if (alignment->type != GgufType::uint32 || std::get<std::uint32_t>(alignment->scalar) == 0 ||
        std::get<std::uint32_t>(alignment->scalar) % 8 != 0) {
      fail("{}: general.alignment must be a uint32 multiple of 8 (the GGUF specification)", source);
    }
    alignment_ = std::get<std::uint32_t>(alignment->scalar);
  }
  in.check_count(tensor_count, 24, "tensor_count");
  for (std::uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo info = read_tensor_info(in, source);
    if (tensor_index_.count(info.name)) fail("{}: tensor '{}' appears twice", source, info.name);
    tensor_index_.emplace(info.name, tensors_.size());
    tensors_.push_back(std::move(info));
  }
  data_offset_ = (in.position() + alignment_ - 1) / alignment_ * alignment_;
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& info : tensors_) {
    if (info.offset % alignment_ != 0) fail("{}: tensor '{}' offset {} is not a multiple of {}", source, info.name, info.offset, alignment_);
    if (info.type == GgmlType::q8_0 && info.ne[0] % kQ8_0BlockElements != 0) {
      fail("{}: Q8_0 tensor '{}' has ne[0] = {}, not a multiple of 32", source, info.name, info.ne[0]);
    }
    check_extent(info, size, source);
    by_offset.push_back(&info);
  }
  check_data_layout(std::move(by_offset), data_offset_, size, source);
}

const GgufValue* GgufReader::find(std::string_view key) const {
  const auto found = metadata_index_.find(key);
  return found == metadata_index_.end() ? nullptr : &metadata_[found->second].second;
}

const GgufValue& GgufReader::at(std::string_view key) const {
  const auto* value = find(key);
  if (!value) fail("{}: no metadata key '{}'", path_.string(), key);
  return *value;
}

const GgufTensorInfo& GgufReader::tensor(std::string_view name) const {
  const auto found = tensor_index_.find(name);
  if (found == tensor_index_.end()) fail("{}: no tensor '{}'", path_.string(), name);
  return tensors_[found->second];
}

std::vector<std::byte> GgufReader::read_bytes(std::string_view name) const {
  const auto& info = tensor(name);
  std::vector<std::byte> bytes(static_cast<std::size_t>(info.byte_count()));
  stream_.clear();
  stream_.seekg(static_cast<std::streamoff>(data_offset_ + info.offset));
  stream_.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!stream_) fail("{}: cannot read tensor '{}'", path_.string(), name);
  return bytes;
}

std::vector<float> GgufReader::read_floats(std::string_view name) const {
  const auto& info = tensor(name);
  const auto bytes = read_bytes(name);
  if (info.type == GgmlType::q8_0) return dequantize_q8_0(bytes);
  std::vector<float> values(static_cast<std::size_t>(info.element_count()));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (info.type == GgmlType::f32) {
      std::memcpy(&values[i], bytes.data() + 4 * i, 4);
      continue;
    }
    std::uint16_t bits = 0;
    std::memcpy(&bits, bytes.data() + 2 * i, 2);
    values[i] = info.type == GgmlType::f16 ? to_float(Float16{bits}) : to_float(BFloat16{bits});
  }
  return values;
}

}  // namespace kiln::interop
