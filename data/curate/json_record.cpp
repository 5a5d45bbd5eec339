#include "data/curate/json_record.hpp"

#include <simdjson.h>

#include <optional>

#include "data/curate/text_units.hpp"

namespace kiln::curate {

namespace {

std::string fmt_error(const char* what, simdjson::error_code error) {
  return std::string(what) + " (" + simdjson::error_message(error) + ")";
}

// A scanner over JSON that simdjson has already validated: it only has to find where
// things are, never to diagnose.
class RawScanner {
 public:
  explicit RawScanner(std::string_view json) : json_(json) {}

  // Byte span of the value of top-level `key`, if present (the last one wins, as in parsers).
  std::optional<std::pair<std::size_t, std::size_t>> field_span(std::string_view key) {
    std::optional<std::pair<std::size_t, std::size_t>> span;
    skip_space();
    if (!take('{')) return span;
    skip_space();
    if (take('}')) return span;
    while (at_ < json_.size()) {
      skip_space();
      const std::size_t key_begin = at_;
      skip_string();
      const std::string_view raw_key = json_.substr(key_begin + 1, at_ - key_begin - 2);
      skip_space();
      take(':');
      skip_space();
      const std::size_t value_begin = at_;
      skip_value();
      if (raw_key == key) span = std::make_pair(value_begin, at_);
      skip_space();
      if (!take(',')) break;
    }
    return span;
  }

 private:
  void skip_space() {
    while (at_ < json_.size() && (json_[at_] == ' ' || json_[at_] == '\t' || json_[at_] == '\n' || json_[at_] == '\r')) ++at_;
  }
  bool take(char c) {
    if (at_ < json_.size() && json_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  void skip_string() {
    ++at_;  // opening quote
    while (at_ < json_.size() && json_[at_] != '"') at_ += json_[at_] == '\\' ? 2 : 1;
    ++at_;  // closing quote
  }
  void skip_value() {
    if (at_ >= json_.size()) return;
    if (json_[at_] == '"') return skip_string();
    if (json_[at_] == '{' || json_[at_] == '[') {
      int depth = 0;
      while (at_ < json_.size()) {
        const char c = json_[at_];
        if (c == '"') {
          skip_string();
          continue;
        }
        if (c == '{' || c == '[') ++depth;
        if (c == '}' || c == ']') --depth;
        ++at_;
        if (depth == 0) return;
      }
      return;
    }
    while (at_ < json_.size() && json_[at_] != ',' && json_[at_] != '}' && json_[at_] != ']' && json_[at_] != ' ' &&
           json_[at_] != '\t' && json_[at_] != '\n' && json_[at_] != '\r') {
      ++at_;
    }
  }

  std::string_view json_;
  std::size_t at_ = 0;
};

std::size_t count_key(simdjson::dom::object object, std::string_view key) {
  std::size_t count = 0;
  for (const auto field : object) count += field.key == key;
  return count;
}

}  // namespace

std::string parse_record(const std::string& record, std::string_view text_field, ParsedRecord& parsed) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(record).get(root)) return fmt_error("malformed JSON", error);
  simdjson::dom::object object;
  if (root.get(object)) return "expected a JSON object per line";
  auto field = object[text_field];
  if (field.error() == simdjson::NO_SUCH_FIELD) {
    return "no \"" + std::string(text_field) + "\" field (choose the field with input.text_field or --text-field)";
  }
  if (count_key(object, text_field) > 1) {
    // JSON readers disagree on which copy wins (simdjson: the first, Python's json: the last),
    // so any choice would silently differ from some other tool reading the same file.
    return "the \"" + std::string(text_field) + "\" key appears more than once in the record; write it once";
  }
  std::string_view text;
  if (field.get(text)) return "field \"" + std::string(text_field) + "\" is not a string";
  const auto span = RawScanner(record).field_span(text_field);
  if (!span) return "field \"" + std::string(text_field) + "\" is written with escapes in its name; rename it";
  parsed.text.assign(text);
  parsed.value_begin = span->first;
  parsed.value_end = span->second;
  return "";
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (byte < 0x20) {
          out += "\\u00";
          out.push_back(kHex[byte >> 4]);
          out.push_back(kHex[byte & 15]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

std::string json_string(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  append_json_string(out, text);
  return out;
}

std::string splice(std::string_view record, std::size_t begin, std::size_t end, std::string_view replacement) {
  std::string out;
  out.reserve(record.size() - (end - begin) + replacement.size());
  out.append(record.substr(0, begin));
  out.append(replacement);
  out.append(record.substr(end));
  return out;
}

std::string set_json_field(std::string_view record, std::string_view key, std::string_view raw_value) {
  if (const auto span = RawScanner(record).field_span(key)) return splice(record, span->first, span->second, raw_value);
  const std::size_t close = rstrip(record).size() - 1;  // the object's '}'
  const std::string_view before = rstrip(record.substr(0, close));
  const bool empty_object = before.ends_with('{');
  std::string addition = empty_object ? "" : ",";
  append_json_string(addition, key);
  addition.push_back(':');
  addition.append(raw_value);
  return splice(record, before.size(), before.size(), addition);
}

}  // namespace kiln::curate
