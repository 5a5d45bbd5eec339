#include "trainer/checkpoint/checkpoint_meta.hpp"

#include "trainer/checkpoint/checkpoint_names.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"

namespace kiln::checkpoint {

nlohmann::json meta_to_json(const CheckpointMeta& meta) {
  return {{"format", std::string(kCheckpointFormat)},
          {"format_version", kCheckpointFormatVersion},
          {"created_by", meta.created_by},
          {"step", meta.step},
          {"tokens_seen", meta.tokens_seen},
          {"layout", config::layout_to_json(meta.layout)},
          {"recipe", meta.recipe},
          {"loader", meta.loader},
          {"rng", meta.rng},
          {"schedule", meta.schedule},
          {"extra", meta.extra},
          {"checksums", meta.checksums}};
}

namespace {

// A non-negative integer field. nlohmann converts a float (3e25) to an integer by a cast whose
// overflow is undefined behaviour, so the type is checked first and a float is refused.
std::int64_t whole_number(const nlohmann::json& json, const char* key, const std::filesystem::path& source) {
  const auto& value = json.at(key);
  if (!value.is_number_integer()) {
    fail("{}: checkpoint metadata field '{}' is {}; expected a whole number", source.string(), key, value.dump());
  }
  const auto number = value.get<std::int64_t>();
  if (number < 0 || (value.is_number_unsigned() && value.get<std::uint64_t>() > 0x7fffffffffffffffULL)) {
    fail("{}: checkpoint metadata field '{}' = {} is out of range", source.string(), key, value.dump());
  }
  return number;
}

}  // namespace

CheckpointMeta meta_from_json(const nlohmann::json& json, const std::filesystem::path& source) {
  try {
    if (json.value("format", std::string()) != kCheckpointFormat) {
      fail("{}: not a kiln checkpoint (format is not '{}')", source.string(), kCheckpointFormat);
    }
    const int version = static_cast<int>(whole_number(json, "format_version", source));
    if (version > kCheckpointFormatVersion) {
      fail("{}: checkpoint format version {} is newer than this kiln reads ({}). Fix: upgrade kiln",
           source.string(), version, kCheckpointFormatVersion);
    }
    CheckpointMeta meta;
    meta.created_by = json.value("created_by", std::string());
    meta.step = whole_number(json, "step", source);
    meta.tokens_seen = whole_number(json, "tokens_seen", source);
    meta.layout = config::layout_from_json(json.at("layout"));
    meta.recipe = json.at("recipe");
    meta.loader = json.at("loader");
    meta.rng = json.at("rng");
    meta.schedule = json.at("schedule");
    meta.extra = json.value("extra", nlohmann::json::object());
    meta.checksums = json.at("checksums").get<std::map<std::string, std::string>>();
    return meta;
  } catch (const nlohmann::json::exception& error) {
    fail("{}: malformed checkpoint metadata: {}", source.string(), error.what());
  }
}

CheckpointMeta read_meta_file(const std::filesystem::path& path) {
  const auto json = nlohmann::json::parse(read_text_file(path, "checkpoint metadata", kMaxMetaBytes), nullptr,
                                          /*allow_exceptions=*/false);
  if (json.is_discarded()) fail("{}: checkpoint metadata is not valid JSON", path.string());
  return meta_from_json(json, path);
}

}  // namespace kiln::checkpoint
