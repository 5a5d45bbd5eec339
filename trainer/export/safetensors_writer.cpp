#include "trainer/export/safetensors_writer.hpp"

#include <nlohmann/json.hpp>
#include <set>

#include "trainer/core/error.hpp"

namespace kiln::interop {

std::uint64_t SafetensorsEntry::byte_count() const {
  std::uint64_t bytes = safetensors_dtype_bytes(dtype);
  for (const auto extent : shape) bytes *= extent;
  return bytes;
}

std::string safetensors_header(const std::vector<SafetensorsEntry>& entries,
                               const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps the tensors in file order, which makes the header easy to read.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& entry : entries) {
    const std::uint64_t end = offset + entry.byte_count();
    header[entry.name] = {{"dtype", safetensors_dtype_name(entry.dtype)}, {"shape", entry.shape},
                          {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  return text;
}

SafetensorsWriter::SafetensorsWriter(std::filesystem::path path, std::vector<SafetensorsEntry> entries,
                                     const std::map<std::string, std::string>& metadata)
    : path_(std::move(path)), entries_(std::move(entries)) {
  std::set<std::string> names;
  for (const auto& entry : entries_) {
    if (entry.name == "__metadata__" || !names.insert(entry.name).second) {
      fail("{}: tensor name '{}' is reserved or repeated", path_.string(), entry.name);
    }
  }
  const std::string header = safetensors_header(entries_, metadata);
  out_.emplace(path_);
  unsigned char length[8];
  std::uint64_t value = header.size();
  for (auto& byte : length) {
    byte = static_cast<unsigned char>(value & 0xff);
    value >>= 8;
  }
  out_->write(length, sizeof length);
  out_->write(header);
}

const SafetensorsEntry& SafetensorsWriter::expect_next(std::string_view name, std::uint64_t byte_count) const {
  if (next_ >= entries_.size() || entries_[next_].name != name) {
    fail("{}: tensor '{}' written out of the declared order (expected '{}')", path_.string(), name,
         next_ < entries_.size() ? entries_[next_].name : "nothing more");
  }
  const auto& entry = entries_[next_];
  if (entry.byte_count() != byte_count) {
    fail("{}: tensor '{}' declared {} bytes but {} were given", path_.string(), name, entry.byte_count(), byte_count);
  }
  return entry;
}

void SafetensorsWriter::write_bytes(std::string_view name, std::span<const std::byte> bytes) {
  expect_next(name, bytes.size());
  if (!out_) fail("{}: tensor '{}' written after finish()", path_.string(), name);
  out_->write(bytes.data(), bytes.size());
  ++next_;
}

void SafetensorsWriter::write_floats(std::string_view name, std::span<const float> values) {
  if (next_ >= entries_.size()) expect_next(name, 0);  // fails: nothing more was declared
  const auto& entry = entries_[next_];
  std::vector<std::byte> bytes(values.size() * safetensors_dtype_bytes(entry.dtype));
  encode_floats(entry.dtype, values, bytes);
  write_bytes(name, bytes);
}

void SafetensorsWriter::finish() {
  if (next_ != entries_.size()) {
    fail("{}: only {} of {} declared tensors were written", path_.string(), next_, entries_.size());
  }
  if (!out_) fail("{}: finish() called twice", path_.string());
  out_->commit();
  out_.reset();
}

}  // namespace kiln::interop
