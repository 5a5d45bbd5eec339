#include "trainer/export/gguf_writer.hpp"

#include <bit>
#include <cstring>
#include <set>

#include "trainer/core/atomic_file.hpp"
#include "trainer/core/error.hpp"

namespace kiln::interop {

namespace {

static_assert(std::endian::native == std::endian::little, "GGUF is little-endian; kiln writes host order");

// Serialises GGUF primitives into a byte string.
class ByteSink {
 public:
  template <class T>
  void put(T value) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    out_.append(bytes, sizeof(T));
  }
  void put_string(const std::string& text) {
    put<std::uint64_t>(text.size());
    out_ += text;
  }
  void put_scalar(const GgufScalar& scalar) {
    std::visit(
        [&](const auto& value) {
          using T = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<T, std::string>) {
            put_string(value);
          } else if constexpr (std::is_same_v<T, bool>) {
            put<std::uint8_t>(value ? 1 : 0);
          } else {
            put<T>(value);
          }
        },
        scalar);
  }
  void put_value(const GgufValue& value) {
    put<std::uint32_t>(static_cast<std::uint32_t>(value.type));
    if (value.type != GgufType::array) return put_scalar(value.scalar);
    put<std::uint32_t>(static_cast<std::uint32_t>(value.element_type));
    put<std::uint64_t>(value.elements.size());
    for (const auto& element : value.elements) {
      if (type_of(element) != value.element_type) fail("GGUF array of {} holds a {}", gguf_type_name(value.element_type), gguf_type_name(type_of(element)));
      put_scalar(element);
    }
  }
  void pad_to(std::uint64_t alignment) { out_.append((alignment - out_.size() % alignment) % alignment, '\0'); }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

std::uint64_t aligned(std::uint64_t offset, std::uint64_t alignment) {
  return (offset + alignment - 1) / alignment * alignment;
}

}  // namespace

GgufWriter::GgufWriter(std::uint64_t alignment) : alignment_(alignment) {
  if (alignment == 0 || alignment % 8 != 0) fail("GGUF alignment must be a positive multiple of 8, got {}", alignment);
}

void GgufWriter::add_metadata(std::string key, GgufValue value) {
  for (const auto& [existing, ignored] : metadata_) {
    if (existing == key) fail("GGUF metadata key '{}' added twice", key);
  }
  metadata_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::add_tensor(std::string name, std::vector<std::uint64_t> ne, GgmlType type) {
  for (const auto& tensor : tensors_) {
    if (tensor.name == name) fail("GGUF tensor '{}' added twice", name);
  }
  GgufTensorInfo info{std::move(name), std::move(ne), type, aligned(data_bytes_, alignment_)};
  data_bytes_ = info.offset + info.byte_count();
  tensors_.push_back(std::move(info));
}

std::uint64_t GgufWriter::write(const std::filesystem::path& path, const Producer& produce) {
  auto metadata = metadata_;
  bool has_alignment = false;
  for (const auto& [key, ignored] : metadata) has_alignment |= key == "general.alignment";
  if (!has_alignment) metadata.emplace_back("general.alignment", GgufValue::of(static_cast<std::uint32_t>(alignment_)));

  ByteSink header;
  header.put<std::uint32_t>(kGgufMagic);
  header.put<std::uint32_t>(kGgufVersion);
  header.put<std::uint64_t>(tensors_.size());
  header.put<std::uint64_t>(metadata.size());
  for (const auto& [key, value] : metadata) {
    header.put_string(key);
    header.put_value(value);
  }
  for (const auto& tensor : tensors_) {
    header.put_string(tensor.name);
    header.put<std::uint32_t>(static_cast<std::uint32_t>(tensor.ne.size()));
    for (const auto extent : tensor.ne) header.put<std::uint64_t>(extent);
    header.put<std::uint32_t>(static_cast<std::uint32_t>(tensor.type));
    header.put<std::uint64_t>(tensor.offset);
  }
  header.pad_to(alignment_);

  AtomicFile out(path);
  out.write(header.bytes());
  std::uint64_t written = 0;
  const std::string zeros(alignment_, '\0');
  for (const auto& tensor : tensors_) {
    out.write(zeros.data(), tensor.offset - written);
    const auto bytes = produce(tensor);
    if (bytes.size() != tensor.byte_count()) {
      fail("GGUF tensor '{}' ({}) needs {} bytes, {} were produced", tensor.name, ggml_type_name(tensor.type),
           tensor.byte_count(), bytes.size());
    }
    out.write(bytes.data(), bytes.size());
    written = tensor.offset + bytes.size();
  }
  out.write(zeros.data(), aligned(written, alignment_) - written);
  out.commit();
  return header.bytes().size() + aligned(written, alignment_);
}

}  // namespace kiln::interop
