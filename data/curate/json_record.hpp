#pragma once
// Editing one JSONL record without disturbing it: the text value is found with simdjson and
// replaced in place, so every other field keeps its bytes and its position (an "id" stays an
// "id", numbers keep their spelling). Fields kiln adds ("perplexity", "reason") are spliced
// in the same way: replaced where present, appended before the closing brace otherwise.
#include <string>
#include <string_view>

namespace kiln::curate {

struct ParsedRecord {
  std::string text;              // the unescaped text field
  std::size_t value_begin = 0;   // byte span of the text's JSON string token in the record
  std::size_t value_end = 0;
};

// Parses `record` (one JSON object); the error message is empty on success.
std::string parse_record(const std::string& record, std::string_view text_field, ParsedRecord& parsed);

// Appends `text` as a JSON string (quotes included) to out.
void append_json_string(std::string& out, std::string_view text);
std::string json_string(std::string_view text);

// record with its bytes [begin, end) replaced by `replacement`.
std::string splice(std::string_view record, std::size_t begin, std::size_t end, std::string_view replacement);

// record with top-level `key` set to the raw JSON `value` (replaced if present, else appended).
std::string set_json_field(std::string_view record, std::string_view key, std::string_view raw_value);

}  // namespace kiln::curate
