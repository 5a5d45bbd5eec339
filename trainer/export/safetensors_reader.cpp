#include "trainer/export/safetensors_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"

namespace kiln::interop {

namespace {

using nlohmann::json;

// nlohmann keeps the last of two equal keys silently; the format forbids duplicates, so the
// top-level keys are collected while parsing.
json parse_rejecting_duplicates(std::string_view text, std::string_view source) {
  std::set<std::string> seen;
  std::string duplicate;
  const json::parser_callback_t callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second &&
        duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& error) {  // parse_error, and out_of_range for numbers like 1e999
    fail("{}: the safetensors header is not valid JSON: {}", source, error.what());
  }
  if (!duplicate.empty()) fail("{}: the safetensors header names tensor '{}' twice", source, duplicate);
  return header;
}

std::uint64_t checked_product(const std::vector<std::uint64_t>& shape, std::uint64_t element_bytes,
                              std::string_view source, std::string_view name) {
  std::uint64_t bytes = element_bytes;
  for (const auto extent : shape) {
    if (extent != 0 && bytes > std::numeric_limits<std::uint64_t>::max() / extent) {
      fail("{}: tensor '{}': shape {} is too large to address", source, name, fmt::join(shape, "x"));
    }
    bytes *= extent;
  }
  return bytes;
}

std::uint64_t unsigned_field(const json& value, std::string_view source, std::string_view name,
                             std::string_view field) {
  if (!value.is_number_unsigned()) {
    fail("{}: tensor '{}': {} must hold non-negative integers, found {}", source, name, field, value.dump());
  }
  return value.get<std::uint64_t>();
}

SafetensorsTensorInfo parse_entry(const std::string& name, const json& entry, std::string_view source) {
  if (!entry.is_object()) fail("{}: tensor '{}': expected an object, found {}", source, name, entry.type_name());
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(field)) fail("{}: tensor '{}': missing field \"{}\"", source, name, field);
  }
  if (entry.size() != 3) fail("{}: tensor '{}': unexpected fields in {}", source, name, entry.dump());
  SafetensorsTensorInfo info;
  info.name = name;
  const json& dtype = entry["dtype"];
  const auto parsed = dtype.is_string() ? parse_safetensors_dtype(dtype.get<std::string>()) : std::nullopt;
  if (!parsed) fail("{}: tensor '{}': unknown dtype {}", source, name, dtype.dump());
  info.dtype = *parsed;
  const json& shape = entry["shape"];
  if (!shape.is_array()) fail("{}: tensor '{}': shape must be an array, found {}", source, name, shape.dump());
  for (const auto& extent : shape) info.shape.push_back(unsigned_field(extent, source, name, "shape"));
  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    fail("{}: tensor '{}': data_offsets must be [begin, end], found {}", source, name, offsets.dump());
  }
  info.begin = unsigned_field(offsets[0], source, name, "data_offsets");
  info.end = unsigned_field(offsets[1], source, name, "data_offsets");
  if (info.end < info.begin) fail("{}: tensor '{}': data_offsets {} end before they begin", source, name, offsets.dump());
  const std::uint64_t expected = checked_product(info.shape, safetensors_dtype_bytes(info.dtype), source, name);
  if (info.end - info.begin != expected) {
    fail("{}: tensor '{}': data_offsets {} span {} bytes, but shape [{}] of {} needs {}", source, name,
         offsets.dump(), info.end - info.begin, fmt::join(info.shape, ", "), safetensors_dtype_name(info.dtype),
         expected);
  }
  return info;
}

std::map<std::string, std::string> parse_metadata(const json& metadata, std::string_view source) {
  if (!metadata.is_object()) fail("{}: __metadata__ must be an object, found {}", source, metadata.type_name());
  std::map<std::string, std::string> result;
  for (const auto& [key, value] : metadata.items()) {
    if (!value.is_string()) fail("{}: __metadata__.{} must be a string, found {}", source, key, value.dump());
    result[key] = value.get<std::string>();
  }
  return result;
}

// Byte ranges in offset order must tile [0, data_bytes) exactly.
void check_layout(const std::vector<SafetensorsTensorInfo>& tensors, std::uint64_t data_bytes, std::string_view source) {
  std::uint64_t cursor = 0;
  const SafetensorsTensorInfo* previous = nullptr;
  for (const auto& info : tensors) {
    if (info.begin < cursor) {
      fail("{}: tensors '{}' and '{}' overlap (bytes {} and {} of the data section)", source,
           previous ? previous->name : "", info.name, cursor, info.begin);
    }
    if (info.begin > cursor) {
      fail("{}: bytes [{}, {}) of the data section belong to no tensor (before '{}')", source, cursor, info.begin,
           info.name);
    }
    cursor = info.end;
    previous = &info;
  }
  if (cursor != data_bytes) {
    fail("{}: the data section is {} bytes but the tensors cover {} (truncated or padded file)", source, data_bytes,
         cursor);
  }
}

}  // namespace

std::uint64_t SafetensorsTensorInfo::element_count() const {
  std::uint64_t count = 1;
  for (const auto extent : shape) count *= extent;
  return count;
}

SafetensorsHeader parse_safetensors_header(std::string_view header_json, std::uint64_t data_bytes,
                                           std::string_view source) {
  if (header_json.empty() || header_json.front() != '{') {
    fail("{}: the safetensors header must be a JSON object starting with '{{'", source);
  }
  const json header = parse_rejecting_duplicates(header_json, source);
  if (!header.is_object()) fail("{}: the safetensors header must be a JSON object", source);
  SafetensorsHeader result;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      result.metadata = parse_metadata(entry, source);
    } else {
      result.tensors.push_back(parse_entry(name, entry, source));
    }
  }
  std::stable_sort(result.tensors.begin(), result.tensors.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  check_layout(result.tensors, data_bytes, source);
  return result;
}

SafetensorsReader::SafetensorsReader(const std::filesystem::path& path) : path_(path) {
  const std::string source = path.string();
  require_regular_file(path, "safetensors file");  // not a directory, FIFO, device or symlink loop
  std::error_code error;
  const auto file_bytes = std::filesystem::file_size(path, error);
  if (error) fail("{}: cannot read safetensors file: {}", source, error.message());
  stream_.open(path, std::ios::binary);
  if (!stream_) fail("{}: cannot open safetensors file", source);
  if (file_bytes < 8) fail("{}: truncated safetensors file: {} bytes, shorter than the 8-byte header length", source, file_bytes);
  unsigned char length_bytes[8];
  stream_.read(reinterpret_cast<char*>(length_bytes), 8);
  std::uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | length_bytes[i];
  if (header_bytes > kMaxSafetensorsHeaderBytes) {
    fail("{}: safetensors header length {} exceeds the format's limit of {} bytes (corrupt or not a safetensors file)",
         source, header_bytes, kMaxSafetensorsHeaderBytes);
  }
  if (header_bytes > file_bytes - 8) {
    fail("{}: truncated safetensors file: the header claims {} bytes but only {} follow", source, header_bytes,
         file_bytes - 8);
  }
  std::string header_text(static_cast<std::size_t>(header_bytes), '\0');
  stream_.read(header_text.data(), static_cast<std::streamsize>(header_bytes));
  if (!stream_) fail("{}: cannot read the safetensors header", source);
  data_start_ = 8 + header_bytes;
  header_ = parse_safetensors_header(header_text, file_bytes - data_start_, source);
  for (std::size_t i = 0; i < header_.tensors.size(); ++i) by_name_.emplace(header_.tensors[i].name, i);
}

const SafetensorsTensorInfo* SafetensorsReader::find(std::string_view name) const {
  const auto found = by_name_.find(name);
  return found == by_name_.end() ? nullptr : &header_.tensors[found->second];
}

const SafetensorsTensorInfo& SafetensorsReader::tensor(std::string_view name) const {
  const auto* info = find(name);
  if (!info) fail("{}: no tensor '{}'", path_.string(), name);
  return *info;
}

std::vector<std::byte> SafetensorsReader::read_bytes(std::string_view name) const {
  const auto& info = tensor(name);
  std::vector<std::byte> bytes(static_cast<std::size_t>(info.end - info.begin));
  stream_.clear();
  stream_.seekg(static_cast<std::streamoff>(data_start_ + info.begin));
  stream_.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!stream_) fail("{}: cannot read tensor '{}' (file changed or unreadable)", path_.string(), name);
  return bytes;
}

std::vector<float> SafetensorsReader::read_floats(std::string_view name) const {
  const auto& info = tensor(name);
  if (!is_weight_dtype(info.dtype)) {
    fail("{}: tensor '{}' has dtype {}; weights must be F32, F16, BF16 or F64", path_.string(), name,
         safetensors_dtype_name(info.dtype));
  }
  const auto bytes = read_bytes(name);
  std::vector<float> values(static_cast<std::size_t>(info.element_count()));
  decode_floats(info.dtype, bytes, values);
  return values;
}

}  // namespace kiln::interop
